"""The NumPy reference kernels: the math of every kernel, written to be read.

`backend="numpy"` imports this package where `backend="numba"` imports `rnnvanish.kernels`.
The two expose the same public names (`__all__`), with the same arguments and results, in
files of the same names; tests hold each pair equal:

    recurrent.py  tanh_forward, tanh_backward, lstm_forward, lstm_backward, gru_forward,
                  gru_backward: the recurrences and their truncated BPTT;
                  tanh_generate, lstm_generate, gru_generate: one-token generation loops
    tokens.py     tanh_forward_tokens, tanh_backward_tokens, lstm_forward_tokens,
                  lstm_backward_tokens, gru_forward_tokens, gru_backward_tokens: each cell's
                  window of the language model with its input side inside (input_rows,
                  window_grads)
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
    optim.py      adam_update: `rnnvanish.optim.Adam`'s update

One window of the language model (`rnnvanish.model`), written out, is five calls on either
backend:

    xw = input_rows(ids, W_xh, b)                      x_t W_xh + b: rows of W_xh
    h, ... = <cell>_forward(xw, state_0, ...)           the recurrence
    E, dh, dW_hy, db_y = output_layer(h, targets, ...)  logits, softmax cross-entropy, back to dh
    da, dstate_0, norms = <cell>_backward(dh, 0, ...)   truncated BPTT
    dW_xh, dW_hh, db_x, db_h = window_grads(ids, h, ...) whole-window weight gradients

The tanh RNN's and the GRU's windows are three: <cell>_forward_tokens (the first two),
output_layer, <cell>_backward_tokens (the last two); so is the LSTM's where its kernels are not
feature-major (`feature_major`).

Kernels take arrays, sizes and activation codes (`ACTIVATIONS`), never objects.
"""
from .exprnn import modrelu_backward, modrelu_forward
from .indrnn import indrnn_backward, indrnn_forward
from .lnlstm import layer_norm_backward, layer_norm_forward, lnlstm_backward, lnlstm_forward
from .linear import (SCANS, linear_scan, log_scan, lru_backward, lru_forward, mingru_backward,
                     mingru_forward, minlstm_backward, minlstm_forward)
from .optim import adam_update
from .output import (back_rows, dense_rows, embed_backward, input_rows, outer_sum, output_layer, softmax_xent,
                     window_grads)
from .recurrent import (ACTIVATIONS, RELU, SIGMOID, TANH, feature_major, gru_backward, gru_forward, gru_generate,
                        lstm_backward, lstm_backward_fm, lstm_forward, lstm_forward_fm, lstm_generate, tanh_backward,
                        tanh_forward, tanh_generate)
from .recurrent import activate, activate_grad, sigmoid  # noqa: F401  (NumPy helpers, see below)
from .tokens import (gru_backward_tokens, gru_forward_tokens, lstm_backward_tokens, lstm_forward_tokens,
                     tanh_backward_tokens, tanh_forward_tokens)

# The kernels' names. activate, activate_grad and sigmoid are NumPy helpers (the tracer's
# Jacobians use them), importable from here but no kernels of their own.
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
