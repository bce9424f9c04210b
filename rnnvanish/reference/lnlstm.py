"""NumPy reference of the layer-normalised LSTM and its truncated BPTT (Ba, Kiros & Hinton 2016),
written to be read.

The twin of `rnnvanish.kernels.lnlstm` (same names, arguments and results). Legend as in
`recurrent.py`: T steps, B batch, H hidden, gate order i, f, g, o; time-major, row 0 of h and c
is the initial state. The paper's LN-LSTM (its supplementary material, equations 20-22):

    xn[t-1] = LN(x_t W_xh; α_x, β_x) + b_h     # (B, 4H), for all t at once by the cell
    p_t     = h_{t-1} W_hh                      # (B, H) @ (H, 4H), the recurrent product
    a_t     = xn[t-1] + LN(p_t; α_h, β_h)       # (B, 4H)
    i, f, o = σ(a_i, a_f, a_o);  g = tanh(a_g)
    c_t     = f ⊙ c_{t-1} + i ⊙ g
    y_t     = LN(c_t; α_c, β_c);  h_t = o ⊙ tanh(y_t)

Layer norm over the units of one sample: LN(z; α, β) = α ⊙ ẑ + β, ẑ = (z - μ) r,
μ = mean_j z_j, r = 1 / sqrt(mean_j (z_j - μ)² + ε), ε = EPS = 1e-5 (the authors' code).
As in the paper, LN(p_t) normalises the whole 4H vector of the four gate blocks together.

Its backward (derived in `_layer_norm_back`): with dẑ = α ⊙ dy,
    dz = r (dẑ - mean(dẑ) - ẑ mean(dẑ ⊙ ẑ)),   dα = Σ dy ⊙ ẑ,   dβ = Σ dy.

Truncation, dh, dh_T, dc_T and the norms are those of `lstm_backward` (see `recurrent.py`
and `_walks`); norms_c[t] is the gradient on the node c_t, its path through y_t and h_t
included. Masks, the last arguments, as for the LSTM (equations in `masks.py`): m (B, H)
recurrent dropout, p_t = (h_{t-1} ⊙ m) W_hh; d (T, B, H) zoneout, c_t = d_t c_{t-1} + (1 - d_t) c~_t,
h_t = d_t h_{t-1} + (1 - d_t) o tanh(LN(c~_t)): LN reads c~_t, and zc, rc are those of c~_t.
"""
import numpy as np

from .activations import sigmoid
from .masks import _drop, _or_empty, _zoneout, _zoneout_back
from .recurrent import _add_loss_grad, _step_norms, _walks

EPS = 1e-5


# --------------------------------------------------------------------------- layer norm

def _layer_norm(z, alpha, beta, eps):
    """y = α ⊙ ẑ + β over the last axis; returns y, ẑ and r = 1/σ (one per sample)."""
    mu = z.mean(axis=-1, keepdims=True)
    centred = z - mu
    r = 1.0 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps)
    z_hat = centred * r
    return alpha * z_hat + beta, z_hat, r[..., 0]


def _layer_norm_back(dy, z_hat, r, alpha):
    """dE/dz from dE/dy through y = α ⊙ ẑ + β, ẑ = (z - μ) r, over the last axis (n units).

    ∂ẑ_i/∂z_j = r (δ_ij - 1/n) + (z_i - μ) ∂r/∂z_j, and r = (v + ε)^(-1/2) with
    ∂v/∂z_j = 2 (z_j - μ)/n (the μ term sums to zero), so ∂r/∂z_j = -r³ (z_j - μ)/n = -r² ẑ_j/n:
    ∂ẑ_i/∂z_j = r (δ_ij - 1/n - ẑ_i ẑ_j / n). Summed against dẑ_i = α_i dy_i:
    dz_j = r (dẑ_j - mean(dẑ) - ẑ_j mean(dẑ ⊙ ẑ))."""
    d_hat = alpha * dy                                        # through y = α ⊙ ẑ + β
    mean_d = d_hat.mean(axis=-1, keepdims=True)               # the path through μ
    mean_dz = (d_hat * z_hat).mean(axis=-1, keepdims=True)    # the path through r
    return r[..., None] * (d_hat - mean_d - z_hat * mean_dz)


def layer_norm_forward(z, alpha, beta, eps):
    """LN over the units of every (t, b): z (T, B, D) -> y (T, B, D), ẑ (T, B, D), r (T, B)."""
    return _layer_norm(z, alpha, beta, eps)


def layer_norm_backward(dy, z_hat, r, alpha):
    """dz (T, B, D) from dy (T, B, D); the gains' gradients are Σ dy ⊙ ẑ and Σ dy (the caller's)."""
    return _layer_norm_back(dy, z_hat, r, alpha)


# --------------------------------------------------------------------------- LN-LSTM

def _lnlstm_step(xn_t, h_prev, c_prev, W_hh, alpha_h, beta_h, alpha_c, beta_c, eps):
    """One step: returns h_t, c_t (B, H), gates_t (B, 4H) = i, f, g, o, and what backward needs:
    ẑ_p (B, 4H), r_p (B,) of LN(p_t), ẑ_c (B, H), r_c (B,) of LN(c_t)."""
    H = h_prev.shape[1]
    p_t = h_prev @ W_hh                                       # (B, H) @ (H, 4H) -> (B, 4H)
    ln_p, zp_t, rp_t = _layer_norm(p_t, alpha_h, beta_h, eps)
    a_t = xn_t + ln_p
    i = sigmoid(a_t[:, :H])
    f = sigmoid(a_t[:, H:2 * H])
    g = np.tanh(a_t[:, 2 * H:3 * H])
    o = sigmoid(a_t[:, 3 * H:])
    c_t = f * c_prev + i * g
    y_t, zc_t, rc_t = _layer_norm(c_t, alpha_c, beta_c, eps)
    h_t = o * np.tanh(y_t)
    return h_t, c_t, np.concatenate([i, f, g, o], axis=1), zp_t, rp_t, zc_t, rc_t


def lnlstm_forward(xn, h0, c0, W_hh, alpha_h, beta_h, alpha_c, beta_c, eps, m=None, d=None):
    """The LN-LSTM recurrence (module docstring); xn = LN(x W_xh; α_x, β_x) + b_h (T, B, 4H).

    Returns h (T+1, B, H), c (T+1, B, H), gates (T, B, 4H) holding i, f, g, o after their
    nonlinearity, zp (T, B, 4H) and rp (T, B): ẑ and 1/σ of LN(h_{t-1} W_hh), zc (T, B, H)
    and rc (T, B): ẑ and 1/σ of LN(c_t)."""
    T, B, G4 = xn.shape
    H = G4 // 4
    m, d = _or_empty(m, h0), _or_empty(d, xn)
    zoneout = d.shape[0] > 0
    h = np.empty((T + 1, B, H), dtype=xn.dtype)
    c = np.empty((T + 1, B, H), dtype=xn.dtype)
    gates = np.empty((T, B, G4), dtype=xn.dtype)
    zp = np.empty((T, B, G4), dtype=xn.dtype)
    zc = np.empty((T, B, H), dtype=xn.dtype)
    rp = np.empty((T, B), dtype=xn.dtype)
    rc = np.empty((T, B), dtype=xn.dtype)
    h[0] = h0
    c[0] = c0
    for t in range(1, T + 1):
        h[t], c[t], gates[t - 1], zp[t - 1], rp[t - 1], zc[t - 1], rc[t - 1] = _lnlstm_step(
            xn[t - 1], _drop(h[t - 1], m), c[t - 1], W_hh, alpha_h, beta_h, alpha_c, beta_c, eps)
        if zoneout:                                           # one d_t for h and c
            h[t] = _zoneout(h[t], h[t - 1], d[t - 1])
            c[t] = _zoneout(c[t], c[t - 1], d[t - 1])
    return h, c, gates, zp, rp, zc, rc


def _lnlstm_step_back(g_h, g_c, c_prev, gates_t, zp_t, rp_t, zc_t, rc_t, W_hh_T, alpha_h, alpha_c, beta_c):
    """One step back, g_h = dE/dh_t and g_c = dE/dc_t from c_{t+1}: returns (da_t, dp_t, dy_t,
    dh_{t-1}, dc_{t-1}, the total dE/dc_t)."""
    H = c_prev.shape[1]
    i, f, g, o = gates_t[:, :H], gates_t[:, H:2 * H], gates_t[:, 2 * H:3 * H], gates_t[:, 3 * H:]
    tanh_y = np.tanh(alpha_c * zc_t + beta_c)                 # y_t = LN(c_t) rebuilt from ẑ_c
    do = g_h * tanh_y                                         # h_t = o tanh(y_t)
    dy = g_h * o * (1.0 - tanh_y * tanh_y)                    # backprop into y_t through tanh
    gc = g_c + _layer_norm_back(dy, zc_t, rc_t, alpha_c)      # into c_t through y_t = LN(c_t), + from c_{t+1}
    di, dg, df = gc * g, gc * i, gc * c_prev                  # c_t = f c_{t-1} + i g
    dc_prev = gc * f
    da_t = np.concatenate([di * i * (1.0 - i),                # through the sigmoids and tanh
                           df * f * (1.0 - f),
                           dg * (1.0 - g * g),
                           do * o * (1.0 - o)], axis=1)
    dp_t = _layer_norm_back(da_t, zp_t, rp_t, alpha_h)        # a_t = xn_t + LN(p_t): into p_t
    dh_prev = dp_t @ W_hh_T                                   # p_t = h_{t-1} W_hh: (B, 4H) @ (4H, H)
    return da_t, dp_t, dy, dh_prev, dc_prev, gc


def lnlstm_backward(dh, dh_T, dc_T, h, c, gates, zp, rp, zc, rc, W_hh, alpha_h, alpha_c, beta_c, truncate,
                    m=None, d=None):
    """Truncated BPTT through the LN-LSTM; the chain runs through both h and c.

    Returns da (T, B, 4H) on a_t, dp (T, B, 4H) on p_t = h_{t-1} W_hh, dy (T, B, H) on
    y_t = LN(c_t), dh0 (B, H), dc0 (B, H), norms_h (T+1,), norms_c (T+1,). The parameter
    gradients follow: dW_hh = Σ_t h_{t-1}^T dp_t, dα_h = Σ da ⊙ ẑ_p, dβ_h = db_h = dβ_x = Σ da,
    dα_c = Σ dy ⊙ ẑ_c, dβ_c = Σ dy, and LN(x W_xh)'s backward takes da (with recurrent dropout
    dW_hh = Σ_t (h_{t-1} ⊙ m)^T dp_t)."""
    T, B, H = dh.shape
    m, d = _or_empty(m, h[0]), _or_empty(d, dh)
    zoneout = d.shape[0] > 0
    da = np.zeros_like(gates)
    dp = np.zeros_like(gates)
    dy = np.zeros_like(dh)
    g_h = np.zeros_like(h)
    g_c = np.zeros_like(c)
    W_hh_T = W_hh.T
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        # The walk of loss s: t = s, s-1, ..., s-k+1.
        first = max(s - k + 1, 1)
        gh = np.zeros((B, H), dtype=dh.dtype)
        gc = np.zeros((B, H), dtype=dh.dtype)
        if s == T:
            gc = gc + dc_T                                    # the final cell state's gradient
        for t in range(s, first - 1, -1):
            if t == s or k == T:
                gh = _add_loss_grad(dh, dh_T, t, gh)          # backprop into h_t: local + from h_{t+1}
            g_h[t] += gh
            if zoneout:
                gh, keep_h = _zoneout_back(gh, d[t - 1])      # (1 - d_t) g into the cell, d_t g kept
                gc, keep_c = _zoneout_back(gc, d[t - 1])
            da_t, dp_t, dy_t, gh, gc, gc_total = _lnlstm_step_back(
                gh, gc, c[t - 1], gates[t - 1], zp[t - 1], rp[t - 1], zc[t - 1], rc[t - 1], W_hh_T,
                alpha_h, alpha_c, beta_c)
            gh = _drop(gh, m)                                 # through h_{t-1} ⊙ m
            if zoneout:                                       # the identity paths to h_{t-1}, c_{t-1}
                gh, gc, gc_total = gh + keep_h, gc + keep_c, gc_total + keep_c
            g_c[t] += gc_total
            da[t - 1] += da_t                                 # shared weights' gradients accumulate
            dp[t - 1] += dp_t
            dy[t - 1] += dy_t
        g_h[first - 1] += gh                                  # reaches h_{s-k}, c_{s-k}; stops there
        g_c[first - 1] += gc
    return da, dp, dy, g_h[0].copy(), g_c[0].copy(), _step_norms(g_h), _step_norms(g_c)
