"""The windows of the language model on token inputs, as two kernels per cell: the recurrence
with the input side around it.

    tanh_forward_tokens(ids, W_xh, b, h0, W_hh, act)
        = tanh_forward(input_rows(ids, W_xh, b), h0, W_hh, act)
    tanh_backward_tokens(ids, V, dh, dh_T, h, W_hh, act, truncate)
        = tanh_backward(...) and window_grads(ids, h, da, da, V)
    gru_forward_tokens(ids, W_xh, b_xh, h0, W_hh, b_hh, reset_after)
        = gru_forward(input_rows(ids, W_xh, b_xh), h0, W_hh, b_hh, reset_after)
    gru_backward_tokens(ids, V, dh, dh_T, h, gates, hn, W_hh, reset_after, truncate)
        = gru_backward(...) and window_grads(ids, h, dax, dah, V)
    lstm_forward_tokens(ids, W_xh, b, h0, c0, W_hh)
        = lstm_forward(input_rows(ids, W_xh, b), h0, c0, W_hh)
    lstm_backward_tokens(ids, V, dh, dh_T, dc_T, h, c, gates, W_hh, truncate)
        = lstm_backward(...) and window_grads(ids, h, da, da, V)

Here they are the compositions themselves. The Numba kernels of the same names, split across
a run's threads, read x_t W_xh + b from the rows of W_xh as the steps go and add each row of
da_t into dW_xh while it is in cache, so that the window's input term and its gradient are
never separate passes over (T, B, G H) arrays.
"""
from .output import input_rows, window_grads
from .recurrent import gru_backward, gru_forward, lstm_backward, lstm_forward, tanh_backward, tanh_forward


def gru_forward_tokens(ids, W_xh, b_xh, h0, W_hh, b_hh, reset_after):
    """The GRU's forward pass over token ids (T, B): returns h, gates, hn as gru_forward."""
    return gru_forward(input_rows(ids, W_xh, b_xh), h0, W_hh, b_hh, reset_after)


def gru_backward_tokens(ids, V, dh, dh_T, h, gates, hn, W_hh, reset_after, truncate):
    """The GRU's backward pass with the window's weight gradients: returns dax, dah, dh0, norms
    as gru_backward, then dW_xh (V, 3H), dW_hh (H, 3H) = h^T dah, db_x and db_h as
    window_grads (the reset-before GRU's n block of dW_hh is its cell's to take: its
    recurrent input is r * h_{t-1})."""
    dax, dah, dh0, norms = gru_backward(dh, dh_T, h, gates, hn, W_hh, reset_after, truncate)
    dW_xh, dW_hh, db_x, db_h = window_grads(ids, h, dax, dah, V)
    return dax, dah, dh0, norms, dW_xh, dW_hh, db_x, db_h


def tanh_forward_tokens(ids, W_xh, b, h0, W_hh, act):
    """The tanh RNN's forward pass over token ids (T, B): returns h as tanh_forward."""
    return tanh_forward(input_rows(ids, W_xh, b), h0, W_hh, act)


def tanh_backward_tokens(ids, V, dh, dh_T, h, W_hh, act, truncate):
    """The tanh RNN's backward pass with the window's weight gradients: returns da, dh0, norms
    as tanh_backward, then dW_xh (V, H), dW_hh (H, H) and db (H,) as window_grads."""
    da, dh0, norms = tanh_backward(dh, dh_T, h, W_hh, act, truncate)
    dW_xh, dW_hh, db, _ = window_grads(ids, h, da, da, V)
    return da, dh0, norms, dW_xh, dW_hh, db


def lstm_forward_tokens(ids, W_xh, b, h0, c0, W_hh):
    """The LSTM's forward pass over token ids (T, B): returns h, c, gates as lstm_forward."""
    return lstm_forward(input_rows(ids, W_xh, b), h0, c0, W_hh)


def lstm_backward_tokens(ids, V, dh, dh_T, dc_T, h, c, gates, W_hh, truncate):
    """The LSTM's backward pass with the window's weight gradients: returns da, dh0, dc0,
    norms_h, norms_c as lstm_backward, then dW_xh (V, 4H), dW_hh (H, 4H) and db (4H,) as
    window_grads."""
    da, dh0, dc0, norms_h, norms_c = lstm_backward(dh, dh_T, dc_T, h, c, gates, W_hh, truncate)
    dW_xh, dW_hh, db, _ = window_grads(ids, h, da, da, V)
    return da, dh0, dc0, norms_h, norms_c, dW_xh, dW_hh, db
