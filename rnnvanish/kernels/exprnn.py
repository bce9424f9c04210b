"""Numba twin of `rnnvanish.reference.exprnn`: the modReLU recurrence of expRNN and its truncated BPTT.

Same names, arguments and results as the reference, and the drivers take the same steps in
the same order: read the two files side by side. As in `recurrent.py`, the helpers write into
arrays allocated once per call, the per-step product runs in place through
`np.dot(a, b, out)` (BLAS via SciPy), and the element-wise parts are plain loops over (b, j).

    z_t = xw[t-1] + (h_{t-1} * m) W_hh;   h~_t = sign(z_t) relu(|z_t| + b_mod);
    h_t = d_t h_{t-1} + (1 - d_t) h~_t
Legend: T steps, B batch, H hidden. W_hh = expm(A) is fixed through the window (the cell
computes it). Masks (m recurrent dropout (B, H), d zoneout (T, B, H), h_new the h~_t kept for
backward) are the last arguments; omitted, None or empty is off.

No jitted function here calls one in another module (Numba's cache checks only the file of
the function it compiled): the small helpers below are this file's own.
"""
import numpy as np
from numba import njit, types
from numba.extending import overload

# The options of every kernel of the package (see recurrent.py): cached on disk, numpy's error
# model, fused multiply-add allowed.
jit = njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})


def _or_empty(mask, like):
    """`mask`, or an empty view of `like` (like[:0], same rank and dtype) when it is omitted or None."""
    raise NotImplementedError


@overload(_or_empty)
def _or_empty_typed(mask, like):
    if isinstance(mask, (types.NoneType, types.Omitted)):
        return lambda mask, like: like[:0]
    return lambda mask, like: mask


@jit
def _walks(T, truncate):
    """(k, last) as in the reference: each loss reaches back k steps; walks start at s = T .. last + 1."""
    k = T if truncate <= 0 or truncate >= T else truncate
    return k, (T - 1 if k == T else 0)


@jit
def _copy_into(dst, src):
    """dst = src for (B, H) arrays."""
    for b in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[b, j] = src[b, j]


@jit
def _add_into(dst, src):
    """dst += src for (B, H) arrays."""
    for b in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[b, j] += src[b, j]


@jit
def _times_into(dst, x, m):
    """dst = x * m for (B, H) arrays (dst may be x)."""
    for b in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[b, j] = x[b, j] * m[b, j]


@jit
def _add_loss_grad(dh, dh_T, s, g):
    """g += the outside gradient on h_s from the loss at step s (the final-state one joins step T)."""
    _add_into(g, dh[s - 1])
    if s == dh.shape[0]:
        _add_into(g, dh_T)


@jit
def _step_norms(g_h):
    """norms[t] = ||g_h[t]|| over the batch and units, t = 0..T (summed in float64)."""
    T1, B, H = g_h.shape
    norms = np.empty(T1, dtype=g_h.dtype)
    for t in range(T1):
        total = 0.0
        for b in range(B):
            for j in range(H):
                total += g_h[t, b, j] * g_h[t, b, j]
        norms[t] = np.sqrt(total)
    return norms


@jit
def _zoneout(h_t, h_prev, d_t):
    """h_t <- d_t h_{t-1} + (1 - d_t) h~_t, in place (h_t holds h~_t)."""
    for b in range(h_t.shape[0]):
        for j in range(h_t.shape[1]):
            h_t[b, j] = d_t[b, j] * h_prev[b, j] + (1.0 - d_t[b, j]) * h_t[b, j]


@jit
def _zoneout_back(g, d_t, keep):
    """keep = d_t g (straight to h_{t-1}); g <- (1 - d_t) g (into the cell), in place."""
    for b in range(g.shape[0]):
        for j in range(g.shape[1]):
            keep[b, j] = d_t[b, j] * g[b, j]
            g[b, j] = (1.0 - d_t[b, j]) * g[b, j]


# --------------------------------------------------------------------------- modReLU recurrence

@jit
def _modrelu_step(xw_t, h_in, W_hh, b_mod, h_t):
    """h_t = modReLU(xw_t + h_{t-1} W_hh), written into h_t (B, H); h_in = h_{t-1} (times m)."""
    np.dot(h_in, W_hh, h_t)                                   # h_{t-1} W_hh  (B, H)
    B, H = h_t.shape
    for b in range(B):
        for j in range(H):
            z = xw_t[b, j] + h_t[b, j]
            r = (z if z >= 0.0 else -z) + b_mod[j]            # |z_t| + b_mod
            if r <= 0.0 or z == 0.0:
                h_t[b, j] = 0.0
            else:
                h_t[b, j] = r if z > 0.0 else -r              # sign(z_t) relu(|z_t| + b_mod)


@jit
def modrelu_forward(xw, h0, W_hh, b_mod, m=None, d=None, h_new=None):
    """h_t = modReLU(x_t W_xh + h_{t-1} W_hh, b_mod) for t = 1..T; returns h (T+1, B, H)."""
    T, B, H = xw.shape
    m, d, h_new = _or_empty(m, h0), _or_empty(d, xw), _or_empty(h_new, xw)
    dropout, zoneout = m.shape[0] > 0, d.shape[0] > 0
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    h_in = np.empty((B, H), dtype=xw.dtype)                  # h_{t-1} * m
    _copy_into(h[0], h0)
    for t in range(1, T + 1):
        if dropout:
            _times_into(h_in, h[t - 1], m)
            _modrelu_step(xw[t - 1], h_in, W_hh, b_mod, h[t])
        else:
            _modrelu_step(xw[t - 1], h[t - 1], W_hh, b_mod, h[t])
        if zoneout:
            _copy_into(h_new[t - 1], h[t])                    # h~_t, for modReLU' in backward
            _zoneout(h[t], h[t - 1], d[t - 1])
    return h


@jit
def _modrelu_step_back(g_h, h_t, W_hh_T, da_t):
    """One step back through h_t = modReLU(z_t): da_t = g_h [h_t != 0], then g_h <- da_t W_hh^T, in place."""
    B, H = g_h.shape
    for b in range(B):
        for j in range(H):
            da_t[b, j] = g_h[b, j] if h_t[b, j] != 0.0 else 0.0   # through modReLU
    np.dot(da_t, W_hh_T, g_h)                                 # through z_t = ... + h_{t-1} W_hh  (B, H)


@jit
def modrelu_backward(dh, dh_T, h, W_hh, truncate, m=None, d=None, h_new=None):
    """Truncated BPTT through the modReLU recurrence.

    Returns da (T, B, H) = dE/dz_t, dh0 (B, H), norms (T+1,)."""
    T, B, H = dh.shape
    m, d, h_new = _or_empty(m, h[0]), _or_empty(d, dh), _or_empty(h_new, dh)
    dropout, zoneout = m.shape[0] > 0, d.shape[0] > 0
    da = np.zeros_like(dh)
    g_h = np.zeros_like(h)                   # total gradient reaching each h_t (for the norms)
    W_hh_T = W_hh.T
    g, da_t = np.empty((B, H), dtype=dh.dtype), np.empty((B, H), dtype=dh.dtype)
    keep = np.empty((B, H), dtype=dh.dtype)
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        # The walk of loss s: t = s, s-1, ..., s-k+1.
        first = max(s - k + 1, 1)
        g.fill(0.0)
        for t in range(s, first - 1, -1):
            if t == s or k == T:
                _add_loss_grad(dh, dh_T, t, g)                # backprop into h_t: local + from h_{t+1}
            _add_into(g_h[t], g)
            if zoneout:
                _zoneout_back(g, d[t - 1], keep)
            _modrelu_step_back(g, h_new[t - 1] if zoneout else h[t], W_hh_T, da_t)
            if dropout:
                _times_into(g, g, m)                          # through h_{t-1} * m
            if zoneout:
                _add_into(g, keep)                            # the identity path h_t = d_t h_{t-1} + ...
            _add_into(da[t - 1], da_t)                        # a shared weight's gradient accumulates
        _add_into(g_h[first - 1], g)                          # reaches h_{s-k}; stops there (or is dh0)
    return da, g_h[0].copy(), _step_norms(g_h)
