"""The LSTM's window of the language model on token inputs, as two kernels: the recurrence with
the input side around it.

    lstm_forward_tokens(ids, W_xh, b, h0, c0, W_hh)
        = lstm_forward(input_rows(ids, W_xh, b), h0, c0, W_hh)
    lstm_backward_tokens(ids, V, dh, dh_T, dc_T, h, c, gates, W_hh, truncate)
        = lstm_backward(...) and window_grads(ids, h, da, da, V)

Here they are the compositions themselves. The Numba kernels of the same names, split across
a run's threads, read x_t W_xh + b from the rows of W_xh as the steps go and add each row of
da_t into dW_xh while it is in cache, so that the window's input term and its gradient are
never separate passes over (T, B, 4H) arrays.
"""
from .output import input_rows, window_grads
from .recurrent import lstm_backward, lstm_forward


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
