"""The twins of `rnnvanish.reference.tokens`: each cell's window of the language model on
token inputs.

Split across the run's threads (where pool.parts says so, as the package's tanh_forward,
gru_forward and lstm_forward), the forward reads stream b's input term at step t from row
ids[t, b] of W_xh + b (no xw array is formed: recurrent._tanh_forward_fm_split,
_gru_forward_split, _lstm_forward_split), and the backward adds each row of da_t into row
ids[t, b] of dW_xh while the row is in cache and takes db as dW_xh's column sums (the split
backward walks of the same names); dW_hh stays one whole-window product. Otherwise they run
the compositions the reference writes out, with this package's kernels.
"""
from . import pool, recurrent
from .output import input_rows, outer_sum, window_grads
from .recurrent import gru_backward, gru_forward, tanh_backward, tanh_forward


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


def gru_forward_tokens(ids, W_xh, b_xh, h0, W_hh, b_hh, reset_after):
    """gru_forward(input_rows(ids, W_xh, b_xh), h0, W_hh, b_hh, reset_after); split (reset
    after), xw is never formed."""
    if pool.PARTS > 1 and reset_after and (parts := _parts(ids, W_hh)) > 1:
        return recurrent._gru_forward_split(W_xh + b_xh, ids, h0, W_hh, b_hh, parts)
    return gru_forward(input_rows(ids, W_xh, b_xh), h0, W_hh, b_hh, reset_after)


def gru_backward_tokens(ids, V, dh, dh_T, h, gates, hn, W_hh, reset_after, truncate):
    """gru_backward and window_grads(ids, h, dax, dah, V): dax, dah, dh0, norms, dW_xh, dW_hh,
    db_x, db_h; split (reset after, without truncation), dW_xh and the biases' sums are taken
    during the walk."""
    T = dh.shape[0]
    if pool.PARTS > 1 and reset_after and recurrent._whole(truncate, T) and (parts := _parts(ids, W_hh)) > 1:
        dax, dah, dh0, norms, dW_xh, db_x, db_h = recurrent._gru_backward_split(
            dh, dh_T, h, gates, hn, W_hh, parts, ids, V)
        return dax, dah, dh0, norms, dW_xh, outer_sum(h[:T], dah), db_x, db_h
    dax, dah, dh0, norms = gru_backward(dh, dh_T, h, gates, hn, W_hh, reset_after, truncate)
    dW_xh, dW_hh, db_x, db_h = window_grads(ids, h, dax, dah, V)
    return dax, dah, dh0, norms, dW_xh, dW_hh, db_x, db_h


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
