"""Recurrent dropout and zoneout inside the recurrence: the math, and the reference's step helpers.

Two masks, drawn by the caller and held fixed through a window (so the gradient is exact):

    m (B, H)      recurrent (variational) dropout, Gal & Ghahramani (2016): one mask per
                  sequence, entries 0 or 1/(1-p) (inverted dropout). It multiplies the state
                  where the state enters a recurrent product:
                      a_t = x_t W_xh + b + (h_{t-1} * m) W_hh
    d (T, B, H)   zoneout, Krueger et al. (2017): d_t = 1 keeps a unit's previous value, 0 lets
                  it update; at evaluation d_t = p everywhere, the expectation of the update:
                      h_t = d_t * h_{t-1} + (1 - d_t) * h~_t,   h~_t the cell's usual new state

Per cell (xw_t = x_t W_xh + b, computed before the recurrence, is never masked here):

    tanh   h~_t = f(xw_t + (h_{t-1} * m) W_hh)
    lstm   a_t = xw_t + (h_{t-1} * m) W_hh: only h is masked, c never enters a product;
           c~_t = f c_{t-1} + i g,  h~_t = o tanh(c~_t)
           c_t = d_t c_{t-1} + (1 - d_t) c~_t,  h_t = d_t h_{t-1} + (1 - d_t) h~_t
           (one d_t for c and h; h~_t reads c~_t, so d_t = p gives the expectation).
    gru    every product with W_hh reads h_{t-1} * m; the interpolation reads h_{t-1}:
           r = sigmoid(xw_r + (h_{t-1} * m) W_hr + b_hr),  z likewise
           reset-after:  n = tanh(xw_n + r * ((h_{t-1} * m) W_hn + b_hn))
           reset-before: n = tanh(xw_n + (r * (h_{t-1} * m)) W_hn + b_hn)
           h~_t = (1 - z) n + z h_{t-1}
       The reset-before form uses the one mask m of the other two products (Gal & Ghahramani's
       tied mask, as Keras applies it): the same units of h_{t-1} are dropped in all three
       products of both GRU forms, and the reset gate multiplies the dropped state, so
       dW_hn = sum_t (r * h_{t-1} * m)^T dah_n and the reset gate's gradient reads h_{t-1} * m.
       z * h_{t-1} is the path that carries memory: masking it would zero units of the carry
       itself (a forced reset, the opposite of zoneout), so it is left alone.

Backward, one step (truncation counts the step as one, the identity path included):
    through h_{t-1} * m:  dE/dh_{t-1} = m * (dE/d(h_{t-1} * m)), e.g. m * (da_t W_hh^T)
    through zoneout:      dE/dh~_t = (1 - d_t) dE/dh_t into the cell,
                          + d_t dE/dh_t straight to h_{t-1} (and to c_{t-1} for the LSTM)
The weight gradients read the masked state: dW_hh = sum_t (h_{t-1} * m)^T da_t (in the cell).
The LSTM's norms_c[t] is the gradient on c_t with h_t = d_t h_{t-1} + (1 - d_t) o tanh(c_t):
for 0/1 masks exactly the gradient on the node c_t (an updated unit has c_t = c~_t, a kept one
has h_t = h_{t-1}), and without zoneout the same as before.

A mask that is off is None or an empty array (the kernels take empty arrays, (0, 0) and
(0, 0, 0), and decide once per call): with both off, every result is the unmasked one, bit
for bit. The helpers below have twins of the same names in `rnnvanish.kernels.recurrent`.
"""
import numpy as np


def _or_empty(mask, like):
    """`mask`, or an empty array of like's dtype and rank when it is None (off)."""
    return np.empty((0,) * like.ndim, dtype=like.dtype) if mask is None else mask


def _drop(x, m):
    """x * m (the state as W_hh sees it, or the gradient back through it); x itself when m is off."""
    return x if m is None or m.shape[0] == 0 else x * m


def _zoneout(h_new, h_prev, d_t):
    """h_t = d_t * h_{t-1} + (1 - d_t) * h~_t."""
    return d_t * h_prev + (1.0 - d_t) * h_new


def _zoneout_back(g, d_t):
    """dE/dh_t split: ((1 - d_t) g into the cell's own update, d_t g straight to h_{t-1})."""
    return (1.0 - d_t) * g, d_t * g


def _lstm_new_c(c_prev, gates_t):
    """c~_t = f c_{t-1} + i g from the kept gates (zoneout overwrites c_t where a unit is kept)."""
    H = c_prev.shape[1]
    return gates_t[:, H:2 * H] * c_prev + gates_t[:, :H] * gates_t[:, 2 * H:3 * H]
