"""The language model's training step and generation on the Numba kernels.

`rnnvanish.model.LanguageModel` hands `loss_and_grads` and `sample` to these two functions
on the numba backend. One window of truncated BPTT is five kernel calls, whatever T is:

    xw = input_rows(ids, W_xh, b)                      x_t W_xh + b: rows of W_xh, no one-hot product
    h, ... = <cell>_forward(xw, state_0, ...)           the recurrence
    E, dh, dW_hy, db_y = output_layer(h, targets, ...)  logits, softmax cross-entropy, and back to dh
    da, dstate_0, norms = <cell>_backward(dh, 0, ...)   truncated BPTT
    dW_xh, dW_hh, db = window_grads(ids, h, da, ...)    whole-window products: dW_hh = h[:-1]^T da
and generation is one call of the cell's jitted loop. Results are those of the model's
generic path (the tests hold them equal): same gradient keys, the state carried out of the
window, the gradient on the initial state, the per-step norms.

This module is plain Python: it only unpacks the model and calls kernels.
"""
import numpy as np

from ..cells import _truncate_code
from ..reference import ACTIVATIONS
from .output import input_rows, output_layer, window_grads
from .recurrent import (gru_backward, gru_forward, gru_generate, lstm_backward, lstm_forward, lstm_generate,
                        tanh_backward, tanh_forward, tanh_generate)


# --------------------------------------------------------------------------- one window per cell
# Each returns (loss, grads of the cell and output layer, state_T, dstate_0, norms).

def _tanh_window(cell, p, ids, targets, state0, k):
    act = ACTIVATIONS[cell.activation]
    xw = input_rows(ids, p["W_xh"], p["b_h"])
    h = tanh_forward(xw, state0[0], p["W_hh"], act)
    loss, dh, dW_hy, db_y = output_layer(h, targets, p["W_hy"], p["b_y"])
    da, dh0, norms = tanh_backward(dh, np.zeros_like(state0[0]), h, p["W_hh"], act, k)
    dW_xh, dW_hh, db_h, _ = window_grads(ids, h, da, da, cell.input_size)
    grads = {"W_xh": dW_xh, "W_hh": dW_hh, "b_h": db_h, "W_hy": dW_hy, "b_y": db_y}
    return loss, grads, (h[-1].copy(),), (dh0,), {"h": norms}


def _lstm_window(cell, p, ids, targets, state0, k):
    xw = input_rows(ids, p["W_xh"], p["b_h"])
    h, c, gates = lstm_forward(xw, state0[0], state0[1], p["W_hh"])
    loss, dh, dW_hy, db_y = output_layer(h, targets, p["W_hy"], p["b_y"])
    zeros = np.zeros_like(state0[0])
    da, dh0, dc0, norms_h, norms_c = lstm_backward(dh, zeros, zeros, h, c, gates, p["W_hh"], k)
    dW_xh, dW_hh, db_h, _ = window_grads(ids, h, da, da, cell.input_size)
    grads = {"W_xh": dW_xh, "W_hh": dW_hh, "b_h": db_h, "W_hy": dW_hy, "b_y": db_y}
    return loss, grads, (h[-1].copy(), c[-1].copy()), (dh0, dc0), {"h": norms_h, "c": norms_c}


def _gru_window(cell, p, ids, targets, state0, k):
    xw = input_rows(ids, p["W_xh"], p["b_xh"])
    h, gates, hn = gru_forward(xw, state0[0], p["W_hh"], p["b_hh"], cell.reset_after)
    loss, dh, dW_hy, db_y = output_layer(h, targets, p["W_hy"], p["b_y"])
    dax, dah, dh0, norms = gru_backward(dh, np.zeros_like(state0[0]), h, gates, hn, p["W_hh"], cell.reset_after, k)
    dW_xh, dW_hh, db_xh, db_hh = window_grads(ids, h, dax, dah, cell.input_size)
    if not cell.reset_after:
        # The n block's recurrent input is r * h_{t-1}, not h_{t-1}.
        H = cell.hidden_size
        rh = (gates[:, :, :H] * h[:-1]).reshape(-1, H)
        dW_hh[:, 2 * H:] = rh.T @ dah[:, :, 2 * H:].reshape(-1, H)          # (H, H)
    grads = {"W_xh": dW_xh, "W_hh": dW_hh, "b_xh": db_xh, "b_hh": db_hh, "W_hy": dW_hy, "b_y": db_y}
    return loss, grads, (h[-1].copy(),), (dh0,), {"h": norms}


_WINDOWS = {"tanh": _tanh_window, "lstm": _lstm_window, "gru": _gru_window}


def _token_ids(a, what):
    """a as a C-contiguous (T, B) int64 array (one compiled signature for every caller)."""
    a = np.asarray(a)
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{what} must be token ids of shape (T, B), got {a.dtype} of shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _contiguous_state(cell, state, batch):
    return tuple(np.ascontiguousarray(s) for s in cell._check_state(state, batch))


def lm_loss_and_grads(model, inputs, targets, state=None, truncate=None):
    """`LanguageModel.loss_and_grads` on the kernels: (loss, grads, state_T, info)."""
    ids, targets = _token_ids(inputs, "inputs"), _token_ids(targets, "targets")
    if targets.shape != ids.shape:
        raise ValueError(f"targets shape {targets.shape} differs from inputs shape {ids.shape}")
    cell = model.cell
    state0 = _contiguous_state(cell, state, ids.shape[1])
    loss, grads, state_T, dstate0, norms = _WINDOWS[cell.name](
        cell, model.params, ids, targets, state0, _truncate_code(truncate))
    return float(loss), grads, state_T, {"dstate0": dstate0, "norms": norms}


# --------------------------------------------------------------------------- generation

def _tanh_generate(cell, p, token, state, uniforms, temperature):
    return tanh_generate(token, state[0], p["W_xh"], p["b_h"], p["W_hh"], p["W_hy"], p["b_y"],
                         ACTIVATIONS[cell.activation], uniforms, temperature)


def _lstm_generate(cell, p, token, state, uniforms, temperature):
    return lstm_generate(token, state[0], state[1], p["W_xh"], p["b_h"], p["W_hh"], p["W_hy"], p["b_y"],
                         uniforms, temperature)


def _gru_generate(cell, p, token, state, uniforms, temperature):
    return gru_generate(token, state[0], p["W_xh"], p["b_xh"], p["W_hh"], p["b_hh"], cell.reset_after,
                        p["W_hy"], p["b_y"], uniforms, temperature)


_GENERATORS = {"tanh": _tanh_generate, "lstm": _lstm_generate, "gru": _gru_generate}


def lm_generate(model, token, state, uniforms, temperature):
    """Feed `token` from `state` (None: zeros), then draw one token per uniform: ids (N,).

    The draws are those of `LanguageModel._sample_loop` for the same uniforms."""
    token = int(token)
    if not 0 <= token < model.vocab_size:
        raise ValueError(f"token id {token} is out of range of the vocabulary (size {model.vocab_size})")
    cell = model.cell
    uniforms = np.ascontiguousarray(uniforms, dtype=np.float64).reshape(-1)
    return _GENERATORS[cell.name](cell, model.params, token, _contiguous_state(cell, state, 1), uniforms,
                                  model.dtype.type(temperature))
