"""The Numba kernels: the twins of `rnnvanish.reference`, jitted.

Every public name of the reference is here with the same arguments and results, in a file
of the same name (`backend="numba"` imports this package in its place); tests hold each
pair equal:

    recurrent.py  tanh_forward, tanh_backward, lstm_forward, lstm_backward, gru_forward,
                  gru_backward: the recurrences and their truncated BPTT;
                  lstm_forward_fm, lstm_backward_fm: the LSTM's pair with its caches kept
                  feature-major between the passes, where feature_major(dtype, batch, hidden)
                  says so; tanh_generate, lstm_generate, gru_generate: one-token generation loops
    tokens.py     tanh_forward_tokens, tanh_backward_tokens, lstm_forward_tokens,
                  lstm_backward_tokens, gru_forward_tokens, gru_backward_tokens: each cell's
                  window of the language model with its input side (input_rows,
                  window_grads) inside
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
    pool.py       the one pool of threads: SciPy's OpenBLAS runs its jobs on Numba's threads
                  while `rnnvanish.threads.limit_threads` gives the run more than one; this
                  package's tanh_forward, tanh_backward, gru_forward, gru_backward,
                  lstm_forward, lstm_backward and the token pairs then hand a window to its
                  twin split across those threads (recurrent.py, "split across threads"), and
                  adam_update splits large arrays

Kernels take arrays, sizes and activation codes, never objects: `rnnvanish.model` strings a
window of the language model together from five of them (three with a cell's token pair),
the same calls on both backends.

Kernels are compiled on first use for each dtype (some seconds each) and cached on disk
(`__pycache__` beside them); a process with a warm cache loads them in a fraction of a second.
No jitted function calls a jitted function of another module here, so the cache never runs a
stale copy after an edit.

Importing the package calls `memory.keep_freed_memory()`: glibc's malloc then reuses the
blocks a window frees instead of mapping them anew each step (see memory.py).
"""
import numpy as np

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
from .recurrent import (RELU, SIGMOID, TANH, _split_parts, _whole, feature_major, gru_generate, lstm_backward_fm,
                        lstm_forward_fm, lstm_generate, tanh_generate)
from .tokens import (gru_backward_tokens, gru_forward_tokens, lstm_backward_tokens, lstm_forward_tokens,
                     tanh_backward_tokens, tanh_forward_tokens)

# The same list as rnnvanish.reference's (a test holds the two equal).
__all__ = ["tanh_forward", "tanh_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
           "lstm_forward_fm", "lstm_backward_fm", "feature_major",
           "tanh_forward_tokens", "tanh_backward_tokens", "lstm_forward_tokens", "lstm_backward_tokens",
           "gru_forward_tokens", "gru_backward_tokens",
           "tanh_generate", "lstm_generate", "gru_generate",
           "input_rows", "output_layer", "softmax_xent", "window_grads", "embed_backward",
           "dense_rows", "outer_sum", "back_rows",
           "adam_update", "TANH", "SIGMOID", "RELU", "ACTIVATIONS",
           "indrnn_forward", "indrnn_backward",
           "lnlstm_forward", "lnlstm_backward", "layer_norm_forward", "layer_norm_backward",
           "mingru_forward", "mingru_backward", "minlstm_forward", "minlstm_backward", "linear_scan", "log_scan",
           "lru_forward", "lru_backward", "SCANS",
           "modrelu_forward", "modrelu_backward"]


# -- the recurrences split across the threads of a shared pool (rnnvanish.kernels.pool)
# The cells call these names; each hands a window without masks of FEATURE_MAJOR_BATCH streams
# or more to its split twin in recurrent.py when pool.parts says so (its parts' products are
# packed, not BLAS's), and everything else to the jitted kernel of the same name. The LSTM's
# feature-major pair is not split: while a window splits, feature_major says it is not
# feature-major, and the cells call lstm_forward / lstm_backward (or the token pair) instead.

# The split kernels read each step's input term as rows of a table X by ids (token inputs: the
# rows of W_xh + b, rnnvanish.kernels.tokens); a dense xw is its own table, row after row. Their
# backward walks sum dW_xh for token inputs only: here, none.
NO_TOKENS = (np.zeros((0, 0), np.int64), 0)


def _rows_of(xw):
    """xw (T, B, G H) as a split forward reads it: (X, ids), the table of rows and each step's ids."""
    T, B, GH = xw.shape
    return xw.reshape(T * B, GH), np.arange(T * B).reshape(T, B)


def tanh_forward(xw, h0, W_hh, act, *masks):
    """recurrent.tanh_forward (masks: its m, d, h_new); split across the run's threads where pool.parts says so."""
    if pool.PARTS > 1 and (parts := _split_parts(xw, W_hh.shape[0], masks)) > 1:
        return recurrent._tanh_forward_fm_split(*_rows_of(xw), h0, W_hh, act, parts)
    return recurrent.tanh_forward(xw, h0, W_hh, act, *masks)


def tanh_backward(dh, dh_T, h, W_hh, act, truncate, *masks):
    """recurrent.tanh_backward (masks: its m, d, h_new); without truncation split across the
    run's threads where pool.parts says so."""
    if pool.PARTS > 1 and (parts := _split_parts(dh, W_hh.shape[0], masks)) > 1 and _whole(truncate, dh.shape[0]):
        return recurrent._tanh_backward_fm_split(dh, dh_T, h, W_hh, act, parts, *NO_TOKENS)[:3]
    return recurrent.tanh_backward(dh, dh_T, h, W_hh, act, truncate, *masks)


def gru_forward(xw, h0, W_hh, b_hh, reset_after, *masks):
    """recurrent.gru_forward (masks: its m, d); the reset-after GRU split across the run's
    threads where pool.parts says so."""
    if pool.PARTS > 1 and reset_after and (parts := _split_parts(xw, W_hh.shape[0], masks)) > 1:
        return recurrent._gru_forward_split(*_rows_of(xw), h0, W_hh, b_hh, parts)
    return recurrent.gru_forward(xw, h0, W_hh, b_hh, reset_after, *masks)


def gru_backward(dh, dh_T, h, gates, hn, W_hh, reset_after, truncate, *masks):
    """recurrent.gru_backward (masks: its m, d); the reset-after GRU without truncation split
    across the run's threads where pool.parts says so."""
    if (pool.PARTS > 1 and reset_after and (parts := _split_parts(dh, W_hh.shape[0], masks)) > 1
            and _whole(truncate, dh.shape[0])):
        return recurrent._gru_backward_split(dh, dh_T, h, gates, hn, W_hh, parts, *NO_TOKENS)[:4]
    return recurrent.gru_backward(dh, dh_T, h, gates, hn, W_hh, reset_after, truncate, *masks)


def lstm_forward(xw, h0, c0, W_hh, *masks):
    """recurrent.lstm_forward (masks: its m, d); split across the run's threads where
    pool.parts says so, in the (B, .) layout (recurrent._lstm_forward_split)."""
    if pool.PARTS > 1 and (parts := _split_parts(xw, W_hh.shape[0], masks)) > 1:
        return recurrent._lstm_forward_split(*_rows_of(xw), h0, c0, W_hh, parts)
    return recurrent.lstm_forward(xw, h0, c0, W_hh, *masks)


def lstm_backward(dh, dh_T, dc_T, h, c, gates, W_hh, truncate, *masks):
    """recurrent.lstm_backward (masks: its m, d); without truncation split across the run's
    threads where pool.parts says so (recurrent._lstm_backward_split)."""
    if pool.PARTS > 1 and (parts := _split_parts(dh, W_hh.shape[0], masks)) > 1 and _whole(truncate, dh.shape[0]):
        return recurrent._lstm_backward_split(dh, dh_T, dc_T, c, gates, W_hh, parts, *NO_TOKENS)[:5]
    return recurrent.lstm_backward(dh, dh_T, dc_T, h, c, gates, W_hh, truncate, *masks)


keep_freed_memory()
