"""The Numba kernels: the twins of `rnnvanish.reference`, jitted.

Every public name of the reference is here with the same arguments and results, in a file
of the same name (`backend="numba"` imports this package in its place); tests hold each
pair equal:

    recurrent.py  tanh_forward, tanh_backward, lstm_forward, lstm_backward, gru_forward,
                  gru_backward: the recurrences and their truncated BPTT;
                  lstm_forward_fm, lstm_backward_fm: the LSTM's pair with its caches kept
                  feature-major between the passes, where feature_major(dtype, batch) says so;
                  tanh_generate, lstm_generate, gru_generate: one-token generation loops
    output.py     input_rows, output_layer, softmax_xent, window_grads, embed_backward:
                  the language model's pieces around the recurrence; dense_rows, outer_sum,
                  back_rows: the same whole-window products for dense inputs (stacks, tasks)
    indrnn.py     indrnn_forward, indrnn_backward: the IndRNN recurrence (Li et al. 2018)
    exprnn.py     modrelu_forward, modrelu_backward: expRNN's modReLU recurrence with a fixed
                  W_hh = expm(A) (Lezcano-Casado & Martinez-Rubio 2019)
    lnlstm.py     lnlstm_forward, lnlstm_backward: the layer-normalised LSTM (Ba et al. 2016);
                  layer_norm_forward, layer_norm_backward: its layer norm over a window
    linear.py     mingru_forward, mingru_backward, minlstm_forward, minlstm_backward: the
                  linear recurrences minGRU and minLSTM (Feng et al. 2024); lru_forward,
                  lru_backward: the LRU (Orvieto et al. 2023); linear_scan, log_scan: their
                  prefix scans (SCANS: the forward kernels' scan codes)
    optim.py      adam_update: `rnnvanish.optim.Adam`'s update in one pass, bit for bit

Kernels take arrays, sizes and activation codes, never objects: `rnnvanish.model` strings a
window of the language model together from five of them, the same calls on both backends.

Kernels are compiled on first use for each dtype (some seconds each) and cached on disk
(`__pycache__` beside them); a process with a warm cache loads them in a fraction of a second.
No jitted function calls a jitted function of another module here, so the cache never runs a
stale copy after an edit.

Importing the package calls `memory.keep_freed_memory()`: glibc's malloc then reuses the
blocks a window frees instead of mapping them anew each step (see memory.py).
"""
from ..reference import ACTIVATIONS
from ..reference.linear import SCANS
from .linear import (linear_scan, log_scan, lru_backward, lru_forward, mingru_backward,
                     mingru_forward, minlstm_backward, minlstm_forward)
from .memory import keep_freed_memory
from .exprnn import modrelu_backward, modrelu_forward
from .indrnn import indrnn_backward, indrnn_forward
from .lnlstm import layer_norm_backward, layer_norm_forward, lnlstm_backward, lnlstm_forward
from .optim import adam_update
from .output import (back_rows, dense_rows, embed_backward, input_rows, outer_sum, output_layer, softmax_xent,
                     window_grads)
from . import pool, recurrent
from .recurrent import (RELU, SIGMOID, TANH, feature_major, gru_backward, gru_forward, gru_generate, lstm_backward,
                        lstm_forward, lstm_generate, tanh_backward, tanh_forward, tanh_generate)

# The same list as rnnvanish.reference's (a test holds the two equal).
__all__ = ["tanh_forward", "tanh_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
           "lstm_forward_fm", "lstm_backward_fm", "feature_major",
           "tanh_generate", "lstm_generate", "gru_generate",
           "input_rows", "output_layer", "softmax_xent", "window_grads", "embed_backward",
           "dense_rows", "outer_sum", "back_rows",
           "adam_update", "TANH", "SIGMOID", "RELU", "ACTIVATIONS",
           "indrnn_forward", "indrnn_backward",
           "lnlstm_forward", "lnlstm_backward", "layer_norm_forward", "layer_norm_backward",
           "mingru_forward", "mingru_backward", "minlstm_forward", "minlstm_backward", "linear_scan", "log_scan",
           "lru_forward", "lru_backward", "SCANS",
           "modrelu_forward", "modrelu_backward"]


def lstm_forward_fm(xw, h0, c0, W_hh):
    """recurrent.lstm_forward_fm; split across the run's threads where pool.parts says so
    (recurrent._lstm_forward_fm_split, BLAS single-threaded inside each part)."""
    parts = pool.parts(W_hh.shape[0])
    if parts > 1:
        with pool.split_blas():
            return recurrent._lstm_forward_fm_split(xw, h0, c0, W_hh, parts)
    return recurrent.lstm_forward_fm(xw, h0, c0, W_hh)


def lstm_backward_fm(dh, dh_T, dc_T, cT, gT, W_hh, truncate):
    """recurrent.lstm_backward_fm; without truncation split across the run's threads where
    pool.parts says so (recurrent._lstm_backward_fm_split)."""
    parts = pool.parts(W_hh.shape[0])
    if parts > 1 and (truncate <= 0 or truncate >= dh.shape[0]):
        with pool.split_blas():
            return recurrent._lstm_backward_fm_split(dh, dh_T, dc_T, cT, gT, W_hh, parts)
    return recurrent.lstm_backward_fm(dh, dh_T, dc_T, cT, gT, W_hh, truncate)


keep_freed_memory()
