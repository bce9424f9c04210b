"""NumPy reference of the modReLU recurrence of expRNN and its truncated BPTT, written to be read.

The twin of `rnnvanish.kernels.exprnn` (same names, arguments and results). Legend as in
`recurrent.py`: T steps, B batch, H hidden; time-major, row 0 of h is the initial state.
The orthogonal W_hh = expm(A) is computed by the cell (`rnnvanish.exprnn`) once per window;
here it is a fixed (H, H) matrix, as in `tanh_forward`.

    xw[t-1] = x_t @ W_xh              # (B, H), for all t at once by the caller
    z_t     = xw[t-1] + h_{t-1} @ W_hh
    h_t     = modReLU(z_t) = sign(z_t) relu(|z_t| + b_mod)       (Arjovsky et al. 2016;
                                                                  Lezcano-Casado & Martínez-Rubio 2019)

Where |z_t| + b_mod > 0 (and z_t != 0), h_t = z_t + b_mod sign(z_t): the derivative is 1 and
sign(h_t) = sign(z_t); elsewhere h_t = 0 and the derivative is 0. So |modReLU'| is 0 or 1 and
backward reads it from h_t alone:

    dE/dz_t     = dE/dh_t * [h_t != 0]
    dE/dh_{t-1} = dE/dz_t @ W_hh^T
    dE/db_mod   = sum_t sum_b dE/dz_t * sign(h_t)   (in the cell, from da)

Truncation, the backward arguments and results are those of the other cells (see
`recurrent.py` and its `_walks`). Masks as for the tanh cell (equations in `masks.py`):
m (B, H) recurrent dropout, z_t = xw_t + (h_{t-1} * m) W_hh; d (T, B, H) zoneout, h_t = d_t
h_{t-1} + (1 - d_t) h~_t, with h_new (T, B, H) receiving h~_t = modReLU(z_t) for backward.
"""
import numpy as np

from .masks import _drop, _or_empty, _zoneout, _zoneout_back
from .recurrent import _add_loss_grad, _step_norms, _walks


def _modrelu_step(xw_t, h_in, W_hh, b_mod):
    """h_t = modReLU(xw_t + h_{t-1} W_hh), h_in = h_{t-1} (times m with recurrent dropout)."""
    z_t = xw_t + h_in @ W_hh                                  # (B, H) @ (H, H) -> (B, H)
    return np.sign(z_t) * np.maximum(np.abs(z_t) + b_mod, 0.0)


def modrelu_forward(xw, h0, W_hh, b_mod, m=None, d=None, h_new=None):
    """h_t = modReLU(x_t W_xh + h_{t-1} W_hh, b_mod) for t = 1..T; returns h (T+1, B, H)."""
    T, B, H = xw.shape
    m, d, h_new = _or_empty(m, h0), _or_empty(d, xw), _or_empty(h_new, xw)
    zoneout = d.shape[0] > 0
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    h[0] = h0
    for t in range(1, T + 1):
        h[t] = _modrelu_step(xw[t - 1], _drop(h[t - 1], m), W_hh, b_mod)
        if zoneout:
            h_new[t - 1] = h[t]                               # h~_t, for modReLU' in backward
            h[t] = _zoneout(h[t], h[t - 1], d[t - 1])
    return h


def _modrelu_step_back(g_h, h_t, W_hh_T):
    """One step back through h_t = modReLU(z_t), g_h = dE/dh_t: returns (dz_t, dE/d(h_{t-1} * m))."""
    dz_t = g_h * (h_t != 0.0)                                 # through modReLU: 1 where active, else 0
    dh_prev = dz_t @ W_hh_T                                   # through z_t = ... + h_{t-1} W_hh: (B, H) @ (H, H)
    return dz_t, dh_prev


def modrelu_backward(dh, dh_T, h, W_hh, truncate, m=None, d=None, h_new=None):
    """Truncated BPTT through the modReLU recurrence.

    Returns da (T, B, H) = dE/dz_t, dh0 (B, H), norms (T+1,). The parameter gradients follow
    from da: dW_hh = sum_t (h_{t-1} * m)^T da_t, db_mod = sum_t sum_b da_t * sign(h~_t),
    dW_xh = sum_t x_t^T da_t."""
    T, B, H = dh.shape
    m, d, h_new = _or_empty(m, h[0]), _or_empty(d, dh), _or_empty(h_new, dh)
    zoneout = d.shape[0] > 0
    da = np.zeros_like(dh)
    g_h = np.zeros_like(h)                   # total gradient reaching each h_t (for the norms)
    W_hh_T = W_hh.T
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
            da_t, g = _modrelu_step_back(g, h_new[t - 1] if zoneout else h[t], W_hh_T)
            g = _drop(g, m)                                   # through h_{t-1} * m
            if zoneout:
                g = g + keep                                  # the identity path h_t = d_t h_{t-1} + ...
            da[t - 1] += da_t                                 # a shared weight's gradient accumulates
        g_h[first - 1] += g                                   # reaches h_{s-k}; stops there (or is dh0)
    return da, g_h[0].copy(), _step_norms(g_h)
