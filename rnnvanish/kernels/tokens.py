"""The twins of `rnnvanish.reference.tokens`: the tanh RNN's and the LSTM's windows of the
language model on token inputs.

Split across the run's threads (where pool.parts says so, as the package's tanh_forward and
lstm_forward), the forward reads stream b's input term at step t from row ids[t, b] of W_xh + b
(no xw array is formed: recurrent._tanh_forward_fm_split, _lstm_forward_split), and the backward
adds each row of da_t into row ids[t, b] of dW_xh while the row is in cache and takes db as
dW_xh's column sums (recurrent._tanh_backward_fm_split, _lstm_backward_split); dW_hh stays one
whole-window product. Otherwise they run the compositions the reference writes out, with this
package's kernels.
"""
from . import pool, recurrent
from .output import input_rows, outer_sum, window_grads
from .recurrent import tanh_backward, tanh_forward


def _parts(ids, W_hh):
    """How many parts a token window of ids (T, B) runs in (1: not split)."""
    return pool.parts(W_hh.shape[0]) if recurrent.feature_major(W_hh.dtype, ids.shape[1]) else 1


def tanh_forward_tokens(ids, W_xh, b, h0, W_hh, act):
    """tanh_forward(input_rows(ids, W_xh, b), h0, W_hh, act); split, xw is never formed."""
    if pool.PARTS > 1 and (parts := _parts(ids, W_hh)) > 1:
        return recurrent._tanh_forward_fm_split(W_xh + b, ids, h0, W_hh, act, parts)
    return tanh_forward(input_rows(ids, W_xh, b), h0, W_hh, act)


def tanh_backward_tokens(ids, V, dh, dh_T, h, W_hh, act, truncate):
    """tanh_backward and window_grads(ids, h, da, da, V): da, dh0, norms, dW_xh, dW_hh, db;
    split (without truncation), dW_xh and db are summed during the walk."""
    T = dh.shape[0]
    if pool.PARTS > 1 and recurrent._whole(truncate, T) and (parts := _parts(ids, W_hh)) > 1:
        da, dh0, norms, dW_xh, db = recurrent._tanh_backward_fm_split(dh, dh_T, h, W_hh, act, parts, ids, V)
        return da, dh0, norms, dW_xh, outer_sum(h[:T], da), db
    da, dh0, norms = tanh_backward(dh, dh_T, h, W_hh, act, truncate)
    dW_xh, dW_hh, db, _ = window_grads(ids, h, da, da, V)
    return da, dh0, norms, dW_xh, dW_hh, db


def lstm_forward_tokens(ids, W_xh, b, h0, c0, W_hh):
    """lstm_forward(input_rows(ids, W_xh, b), h0, c0, W_hh); split, xw is never formed."""
    if pool.PARTS > 1 and (parts := _parts(ids, W_hh)) > 1:
        return recurrent._lstm_forward_split(W_xh + b, ids, h0, c0, W_hh, parts)
    return recurrent.lstm_forward(input_rows(ids, W_xh, b), h0, c0, W_hh)


def lstm_backward_tokens(ids, V, dh, dh_T, dc_T, h, c, gates, W_hh, truncate):
    """lstm_backward and window_grads(ids, h, da, da, V): da, dh0, dc0, norms_h, norms_c,
    dW_xh, dW_hh, db; split (without truncation), dW_xh and db are summed during the walk."""
    T = dh.shape[0]
    if pool.PARTS > 1 and recurrent._whole(truncate, T) and (parts := _parts(ids, W_hh)) > 1:
        da, dh0, dc0, norms_h, norms_c, dW_xh, db = recurrent._lstm_backward_split(
            dh, dh_T, dc_T, c, gates, W_hh, parts, ids, V)
        return da, dh0, dc0, norms_h, norms_c, dW_xh, outer_sum(h[:T], da), db
    da, dh0, dc0, norms_h, norms_c = recurrent.lstm_backward(dh, dh_T, dc_T, h, c, gates, W_hh, truncate)
    dW_xh, dW_hh, db, _ = window_grads(ids, h, da, da, V)
    return da, dh0, dc0, norms_h, norms_c, dW_xh, dW_hh, db
