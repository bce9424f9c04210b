"""Numba twin of `rnnvanish.reference.lnlstm`: the layer-normalised LSTM (Ba, Kiros & Hinton 2016)
and its truncated BPTT.

Same names, arguments and results as the reference, and the drivers take the same steps in the
same order: read the two files side by side. As in `recurrent.py`, the helpers write into arrays
allocated once per call, the per-step product runs through `np.dot(a, b, out)` on contiguous
(B, .) arrays, and the element-wise parts (the gates, the two layer norms and their backward)
are plain loops over (b, j).

    p_t = h_{t-1} W_hh;  a_t = xn[t-1] + LN(p_t; α_h, β_h);  c_t = f c_{t-1} + i g;
    h_t = o tanh(LN(c_t; α_c, β_c)),   LN(z) = α (z - μ) r + β,  r = 1/sqrt(var(z) + ε)
Legend: T steps, B batch, H hidden, gate order i, f, g, o. Masks (m recurrent dropout (B, H),
d zoneout (T, B, H)) are the last arguments; omitted, None or empty is off.

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
def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


# --------------------------------------------------------------------------- layer norm

@jit
def _layer_norm(z, alpha, beta, eps, y, z_hat, r):
    """y = α ⊙ ẑ + β per row of z (B, D), into y, ẑ (B, D) and r = 1/σ (B,)."""
    B, D = z.shape
    for b in range(B):
        mu = 0.0
        for j in range(D):
            mu += z[b, j]
        mu /= D
        var = 0.0
        for j in range(D):
            var += (z[b, j] - mu) * (z[b, j] - mu)
        r_b = 1.0 / np.sqrt(var / D + eps)
        r[b] = r_b
        for j in range(D):
            z_hat[b, j] = (z[b, j] - mu) * r_b
            y[b, j] = alpha[j] * z_hat[b, j] + beta[j]


@jit
def _layer_norm_back(dy, z_hat, r, alpha, dz):
    """dz = r (dẑ - mean(dẑ) - ẑ mean(dẑ ⊙ ẑ)), dẑ = α ⊙ dy, per row (B, D) (derived in the reference)."""
    B, D = dy.shape
    for b in range(B):
        mean_d = 0.0
        mean_dz = 0.0
        for j in range(D):
            d_hat = alpha[j] * dy[b, j]                       # through y = α ⊙ ẑ + β
            mean_d += d_hat
            mean_dz += d_hat * z_hat[b, j]
        mean_d /= D                                           # the path through μ
        mean_dz /= D                                          # the path through r
        for j in range(D):
            dz[b, j] = r[b] * (alpha[j] * dy[b, j] - mean_d - z_hat[b, j] * mean_dz)


@jit
def layer_norm_forward(z, alpha, beta, eps):
    """LN over the units of every (t, b): z (T, B, D) -> y (T, B, D), ẑ (T, B, D), r (T, B)."""
    T, B, D = z.shape
    y = np.empty_like(z)
    z_hat = np.empty_like(z)
    r = np.empty((T, B), dtype=z.dtype)
    for t in range(T):
        _layer_norm(z[t], alpha, beta, eps, y[t], z_hat[t], r[t])
    return y, z_hat, r


@jit
def layer_norm_backward(dy, z_hat, r, alpha):
    """dz (T, B, D) from dy (T, B, D); the gains' gradients are Σ dy ⊙ ẑ and Σ dy (the caller's)."""
    dz = np.empty_like(dy)
    for t in range(dy.shape[0]):
        _layer_norm_back(dy[t], z_hat[t], r[t], alpha, dz[t])
    return dz


# --------------------------------------------------------------------------- LN-LSTM

@jit
def _lnlstm_step(xn_t, h_prev, c_prev, W_hh, alpha_h, beta_h, alpha_c, beta_c, eps,
                 h_t, c_t, gates_t, zp_t, rp_t, zc_t, rc_t, p_t, ln_t, y_t):
    """One step into h_t, c_t (B, H), gates_t (B, 4H) = i, f, g, o and ẑ_p, r_p, ẑ_c, r_c;
    p_t, ln_t (B, 4H) and y_t (B, H) are scratch."""
    B, H = h_t.shape
    np.dot(h_prev, W_hh, p_t)                                 # p_t = h_{t-1} W_hh  (B, 4H)
    _layer_norm(p_t, alpha_h, beta_h, eps, ln_t, zp_t, rp_t)
    for b in range(B):
        for j in range(H):
            i = _sigmoid(xn_t[b, j] + ln_t[b, j])
            f = _sigmoid(xn_t[b, H + j] + ln_t[b, H + j])
            g = np.tanh(xn_t[b, 2 * H + j] + ln_t[b, 2 * H + j])
            o = _sigmoid(xn_t[b, 3 * H + j] + ln_t[b, 3 * H + j])
            c_t[b, j] = f * c_prev[b, j] + i * g
            gates_t[b, j], gates_t[b, H + j], gates_t[b, 2 * H + j], gates_t[b, 3 * H + j] = i, f, g, o
    _layer_norm(c_t, alpha_c, beta_c, eps, y_t, zc_t, rc_t)
    for b in range(B):
        for j in range(H):
            h_t[b, j] = gates_t[b, 3 * H + j] * np.tanh(y_t[b, j])


@jit
def lnlstm_forward(xn, h0, c0, W_hh, alpha_h, beta_h, alpha_c, beta_c, eps, m=None, d=None):
    """The LN-LSTM recurrence; xn = LN(x W_xh; α_x, β_x) + b_h (T, B, 4H).

    Returns h (T+1, B, H), c (T+1, B, H), gates (T, B, 4H), zp (T, B, 4H), rp (T, B), zc (T, B, H),
    rc (T, B), as the reference."""
    T, B, G4 = xn.shape
    H = G4 // 4
    m, d = _or_empty(m, h0), _or_empty(d, xn)
    dropout, zoneout = m.shape[0] > 0, d.shape[0] > 0
    h_in = np.empty((B, H), dtype=xn.dtype)                  # h_{t-1} * m
    h = np.empty((T + 1, B, H), dtype=xn.dtype)
    c = np.empty((T + 1, B, H), dtype=xn.dtype)
    gates = np.empty((T, B, G4), dtype=xn.dtype)
    zp = np.empty((T, B, G4), dtype=xn.dtype)
    zc = np.empty((T, B, H), dtype=xn.dtype)
    rp = np.empty((T, B), dtype=xn.dtype)
    rc = np.empty((T, B), dtype=xn.dtype)
    p_t = np.empty((B, G4), dtype=xn.dtype)
    ln_t = np.empty((B, G4), dtype=xn.dtype)
    y_t = np.empty((B, H), dtype=xn.dtype)
    h[0] = h0
    c[0] = c0
    for t in range(1, T + 1):
        if dropout:
            _times_into(h_in, h[t - 1], m)
        else:
            h_in[:, :] = h[t - 1]
        _lnlstm_step(xn[t - 1], h_in, c[t - 1], W_hh, alpha_h, beta_h, alpha_c, beta_c, eps,
                     h[t], c[t], gates[t - 1], zp[t - 1], rp[t - 1], zc[t - 1], rc[t - 1], p_t, ln_t, y_t)
        if zoneout:                                           # one d_t for h and c
            _zoneout(h[t], h[t - 1], d[t - 1])
            _zoneout(c[t], c[t - 1], d[t - 1])
    return h, c, gates, zp, rp, zc, rc


@jit
def _lnlstm_step_back(g_h, g_c, c_prev, gates_t, zp_t, rp_t, zc_t, rc_t, W_hh_T, alpha_h, alpha_c, beta_c,
                      da_t, dp_t, dy_t, gc_total):
    """One step back: writes da_t, dp_t (B, 4H), dy_t and the total dE/dc_t (B, H), then
    g_h <- dh_{t-1} and g_c <- dc_{t-1}, in place."""
    B, H = g_h.shape
    for b in range(B):
        for j in range(H):
            tanh_y = np.tanh(alpha_c[j] * zc_t[b, j] + beta_c[j])     # y_t = LN(c_t) rebuilt from ẑ_c
            o = gates_t[b, 3 * H + j]
            da_t[b, 3 * H + j] = g_h[b, j] * tanh_y * o * (1.0 - o)   # h_t = o tanh(y_t), through σ
            dy_t[b, j] = g_h[b, j] * o * (1.0 - tanh_y * tanh_y)      # into y_t through tanh
    _layer_norm_back(dy_t, zc_t, rc_t, alpha_c, gc_total)             # into c_t through y_t = LN(c_t)
    for b in range(B):
        for j in range(H):
            i, f, g = gates_t[b, j], gates_t[b, H + j], gates_t[b, 2 * H + j]
            gc = gc_total[b, j] + g_c[b, j]                           # + from c_{t+1}
            gc_total[b, j] = gc
            da_t[b, j] = gc * g * i * (1.0 - i)                       # c_t = f c_{t-1} + i g, through σ, tanh
            da_t[b, H + j] = gc * c_prev[b, j] * f * (1.0 - f)
            da_t[b, 2 * H + j] = gc * i * (1.0 - g * g)
            g_c[b, j] = gc * f                                        # dc_{t-1}
    _layer_norm_back(da_t, zp_t, rp_t, alpha_h, dp_t)                 # a_t = xn_t + LN(p_t): into p_t
    np.dot(dp_t, W_hh_T, g_h)                                         # p_t = h_{t-1} W_hh  (B, H)


@jit
def lnlstm_backward(dh, dh_T, dc_T, h, c, gates, zp, rp, zc, rc, W_hh, alpha_h, alpha_c, beta_c, truncate,
                    m=None, d=None):
    """Truncated BPTT through the LN-LSTM.

    Returns da (T, B, 4H), dp (T, B, 4H), dy (T, B, H), dh0 (B, H), dc0 (B, H), norms_h (T+1,),
    norms_c (T+1,), as the reference."""
    T, B, H = dh.shape
    G4 = gates.shape[2]
    m, d = _or_empty(m, h[0]), _or_empty(d, dh)
    dropout, zoneout = m.shape[0] > 0, d.shape[0] > 0
    keep_h = np.empty((B, H), dtype=dh.dtype)
    keep_c = np.empty((B, H), dtype=dh.dtype)
    da = np.zeros_like(gates)
    dp = np.zeros_like(gates)
    dy = np.zeros_like(dh)
    g_h = np.zeros_like(h)
    g_c = np.zeros_like(c)
    W_hh_T = np.ascontiguousarray(W_hh.T)
    gh = np.empty((B, H), dtype=dh.dtype)
    gc = np.empty((B, H), dtype=dh.dtype)
    gc_total = np.empty((B, H), dtype=dh.dtype)
    da_t = np.empty((B, G4), dtype=dh.dtype)
    dp_t = np.empty((B, G4), dtype=dh.dtype)
    dy_t = np.empty((B, H), dtype=dh.dtype)
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        # The walk of loss s: t = s, s-1, ..., s-k+1.
        first = max(s - k + 1, 1)
        gh.fill(0.0)
        gc.fill(0.0)
        if s == T:
            _add_into(gc, dc_T)                               # the final cell state's gradient
        for t in range(s, first - 1, -1):
            if t == s or k == T:
                _add_loss_grad(dh, dh_T, t, gh)               # backprop into h_t: local + from h_{t+1}
            _add_into(g_h[t], gh)
            if zoneout:
                _zoneout_back(gh, d[t - 1], keep_h)           # (1 - d_t) g into the cell, d_t g kept
                _zoneout_back(gc, d[t - 1], keep_c)
            _lnlstm_step_back(gh, gc, c[t - 1], gates[t - 1], zp[t - 1], rp[t - 1], zc[t - 1], rc[t - 1], W_hh_T,
                              alpha_h, alpha_c, beta_c, da_t, dp_t, dy_t, gc_total)
            if dropout:
                _times_into(gh, gh, m)                        # through h_{t-1} * m
            if zoneout:                                       # the identity paths to h_{t-1}, c_{t-1}
                _add_into(gh, keep_h)
                _add_into(gc, keep_c)
                _add_into(gc_total, keep_c)
            _add_into(g_c[t], gc_total)
            _add_into(da[t - 1], da_t)                        # shared weights' gradients accumulate
            _add_into(dp[t - 1], dp_t)
            _add_into(dy[t - 1], dy_t)
        _add_into(g_h[first - 1], gh)                         # reaches h_{s-k}, c_{s-k}; stops there
        _add_into(g_c[first - 1], gc)
    return da, dp, dy, g_h[0].copy(), g_c[0].copy(), _step_norms(g_h), _step_norms(g_c)
