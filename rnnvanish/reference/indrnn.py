"""NumPy reference of the IndRNN recurrence and its truncated BPTT (Li et al. 2018), written to be read.

The twin of `rnnvanish.kernels.indrnn` (same names, arguments and results). Legend as in
`recurrent.py`: T steps, B batch, H hidden; time-major, row 0 of h is the initial state.

    xw[t-1] = x_t @ W_xh + b_h        # (B, H), for all t at once by the caller
    a_t     = xw[t-1] + u * h_{t-1}    # u (H,): each unit sees only its own past
    h_t     = relu(a_t)

The recurrence is element-wise, so one step back is element-wise too:

    dE/da_t     = dE/dh_t * [a_t > 0]
    dE/dh_{t-1} = dE/da_t * u          (the whole step Jacobian: diag([a_t > 0] u))

Truncation, the backward arguments and results are those of the other cells (see
`recurrent.py` and its `_walks`): dh[t-1] the outside gradient on h_t, dh_T on the final
state, `truncate` k >= 1 lets the loss at step s reach back through at most k steps (0 or
k >= T: no truncation). Masks as for the tanh cell (equations in `masks.py`): m (B, H)
recurrent dropout, a_t = xw_t + u * (h_{t-1} * m); d (T, B, H) zoneout, h_t = d_t h_{t-1} +
(1 - d_t) h~_t, with h_new (T, B, H) receiving h~_t = relu(a_t) for backward.
"""
import numpy as np

from .masks import _drop, _or_empty, _zoneout, _zoneout_back
from .recurrent import _add_loss_grad, _step_norms, _walks


def _indrnn_step(xw_t, h_in, u):
    """h_t = relu(xw_t + u * h_{t-1}), h_in = h_{t-1} (times m with recurrent dropout)."""
    return np.maximum(xw_t + u * h_in, 0.0)                   # (B, H) + (H,) * (B, H)


def indrnn_forward(xw, h0, u, m=None, d=None, h_new=None):
    """h_t = relu(x_t W_xh + b_h + u * h_{t-1}) for t = 1..T; returns h (T+1, B, H)."""
    T, B, H = xw.shape
    m, d, h_new = _or_empty(m, h0), _or_empty(d, xw), _or_empty(h_new, xw)
    zoneout = d.shape[0] > 0
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    h[0] = h0
    for t in range(1, T + 1):
        h[t] = _indrnn_step(xw[t - 1], _drop(h[t - 1], m), u)
        if zoneout:
            h_new[t - 1] = h[t]                               # h~_t, for relu' in backward
            h[t] = _zoneout(h[t], h[t - 1], d[t - 1])
    return h


def _indrnn_step_back(g_h, h_t, u):
    """One step back through h_t = relu(a_t), g_h = dE/dh_t: returns (da_t, dE/d(h_{t-1} * m))."""
    da_t = g_h * (h_t > 0.0)                                  # through relu: relu'(a_t) = [h_t > 0]
    dh_prev = da_t * u                                        # through a_t = ... + u * h_{t-1}
    return da_t, dh_prev


def indrnn_backward(dh, dh_T, h, u, truncate, m=None, d=None, h_new=None):
    """Truncated BPTT through the IndRNN recurrence.

    Returns da (T, B, H), dh0 (B, H), norms (T+1,). The weight gradients follow from da:
    du = sum_t sum_b da_t * (h_{t-1} * m), db_h = sum_t sum_b da_t, dW_xh = sum_t x_t^T da_t."""
    T, B, H = dh.shape
    m, d, h_new = _or_empty(m, h[0]), _or_empty(d, dh), _or_empty(h_new, dh)
    zoneout = d.shape[0] > 0
    da = np.zeros_like(dh)
    g_h = np.zeros_like(h)                   # total gradient reaching each h_t (for the norms)
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        # The walk of loss s: t = s, s-1, ..., s-k+1.
        first = max(s - k + 1, 1)
        g = np.zeros((B, H), dtype=dh.dtype)
        for t in range(s, first - 1, -1):
            if t == s or k == T:
                g = _add_loss_grad(dh, dh_T, t, g)            # backprop into h_t: local + from h_{t+1}
            g_h[t] += g
            if zoneout:
                g, keep = _zoneout_back(g, d[t - 1])          # (1 - d_t) g into the cell, d_t g kept
            da_t, g = _indrnn_step_back(g, h_new[t - 1] if zoneout else h[t], u)
            g = _drop(g, m)                                   # through h_{t-1} * m
            if zoneout:
                g = g + keep                                  # the identity path h_t = d_t h_{t-1} + ...
            da[t - 1] += da_t                                 # a shared weight's gradient accumulates
        g_h[first - 1] += g                                   # reaches h_{s-k}; stops there (or is dh0)
    return da, g_h[0].copy(), _step_norms(g_h)
