"""NumPy reference kernels: the recurrences and their truncated BPTT, written to be read.

Every function here has a twin of the same name, arguments and results in
`rnnvanish.kernels` (jitted with Numba); tests hold the two equal. Kernels see arrays
and sizes only. The cell classes in `rnnvanish.cells` do the whole-window work around
them (input term, weight gradients as window-sized matrix products), so a kernel steps
only what must be stepped: the recurrence.

Legend: T steps, B batch, H hidden, G gates (tanh 1, GRU 3, LSTM 4).
Time-major; row 0 of a state array is the initial state: h has shape (T+1, B, H).

    xw[t-1] = x_t @ W_xh + b          # (B, G*H), computed by the caller for all t at once
    a_t     = xw[t-1] + h_{t-1} @ W_hh

Backward arguments, shared by all cells:
    dh[t-1]   gradient of the loss on the output h_t from outside the recurrence (B, H)
    dh_T      gradient on the final state (a loss at step T, e.g. the tracer's)
    truncate  k >= 1: the loss at step s sends its gradient back through at most k steps,
              to h_{s-k}, and no further (Williams & Peng's k2). 0 (or k >= T): no
              truncation inside the window. The gradient that reaches h_0 is returned.
Backward results: the gradient on every pre-activation (for the weight gradients), the
gradient on the initial state, and norms[t] = ||dE/dh_t|| over the batch, t = 0..T (the
sum over every loss whose horizon reaches h_t). The LSTM's norms_c[t] is the gradient on
the node c_t, the path through h_t = o_t tanh(c_t) included (at t = 0 the carried c_0).
"""
import numpy as np

# Activation codes (kernels take ints, not strings). The derivative is written in terms
# of the output y = f(a), which is what forward keeps.
TANH, SIGMOID, RELU = 0, 1, 2
ACTIVATIONS = {"tanh": TANH, "sigmoid": SIGMOID, "relu": RELU}


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def activate(a, act):
    if act == TANH:
        return np.tanh(a)
    if act == SIGMOID:
        return sigmoid(a)
    return np.maximum(a, 0.0)


def activate_grad(y, act):
    """f'(a) from y = f(a): tanh 1 - y^2, sigmoid y (1 - y), relu [y > 0]."""
    if act == TANH:
        return 1.0 - y * y
    if act == SIGMOID:
        return y * (1.0 - y)
    return (y > 0.0).astype(y.dtype)


def _losses_by_step(dh, dh_T):
    """The outside gradient on h_s for each loss step s = 1..T (the final-state one joins step T)."""
    g = dh.copy()
    g[-1] += dh_T
    return g


def _horizons(T, truncate):
    """For each loss step s, the first step its gradient passes through: max(s - k + 1, 1)."""
    k = T if truncate <= 0 or truncate >= T else truncate
    return [max(s - k + 1, 1) for s in range(T + 1)], k


# --------------------------------------------------------------------------- tanh RNN

def tanh_forward(xw, h0, W_hh, act):
    """h_t = f(x_t W_xh + b_h + h_{t-1} W_hh) for t = 1..T; returns h (T+1, B, H)."""
    T, B, H = xw.shape
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    h[0] = h0
    for t in range(1, T + 1):
        a_t = xw[t - 1] + h[t - 1] @ W_hh                     # (B, H)
        h[t] = activate(a_t, act)
    return h


def tanh_step_back(g_h, h_t, W_hh, act):
    """One step back through h_t = f(a_t): returns (da_t, dh_{t-1})."""
    da_t = g_h * activate_grad(h_t, act)                      # through f
    dh_prev = da_t @ W_hh.T                                   # through a_t = ... + h_{t-1} W_hh
    return da_t, dh_prev


def tanh_backward(dh, dh_T, h, W_hh, act, truncate):
    """Truncated BPTT through the tanh (or sigmoid/relu) recurrence.

    Returns da (T, B, H), dh0 (B, H), norms (T+1,)."""
    T = dh.shape[0]
    da = np.zeros_like(dh)
    g_h = np.zeros_like(h)                   # total gradient reaching each h_t (for the norms)
    loss_grad = _losses_by_step(dh, dh_T)
    first, k = _horizons(T, truncate)
    if k == T:
        # No truncation: one backward sweep, dh_next carries every later loss at once.
        dh_next = np.zeros_like(dh_T)
        for t in range(T, 0, -1):
            g_h[t] = loss_grad[t - 1] + dh_next              # backprop into h_t: local + from h_{t+1}
            da[t - 1], dh_next = tanh_step_back(g_h[t], h[t], W_hh, act)
        g_h[0] = dh_next
    else:
        # Each loss s walks back k steps on its own: t = s, s-1, ..., s-k+1.
        for s in range(T, 0, -1):
            g = loss_grad[s - 1]
            for t in range(s, first[s] - 1, -1):
                g_h[t] += g
                da_t, g = tanh_step_back(g, h[t], W_hh, act)
                da[t - 1] += da_t                            # a shared weight's gradient accumulates
            g_h[first[s] - 1] += g                           # reaches h_{s-k}; stops there (or is dh0)
    norms = np.sqrt((g_h * g_h).sum(axis=(1, 2)))
    return da, g_h[0].copy(), norms


# --------------------------------------------------------------------------- LSTM

def lstm_forward(xw, h0, c0, W_hh):
    """LSTM recurrence, gate order i, f, g, o (PyTorch's).

        a = x W_xh + b_h + h_{t-1} W_hh            (B, 4H)
        i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
        c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)
    Returns h (T+1, B, H), c (T+1, B, H), gates (T, B, 4H) holding i, f, g, o after their nonlinearity.
    """
    T, B, G4 = xw.shape
    H = G4 // 4
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    c = np.empty((T + 1, B, H), dtype=xw.dtype)
    gates = np.empty((T, B, G4), dtype=xw.dtype)
    h[0], c[0] = h0, c0
    for t in range(1, T + 1):
        a_t = xw[t - 1] + h[t - 1] @ W_hh                     # (B, 4H)
        i, f, g, o = sigmoid(a_t[:, :H]), sigmoid(a_t[:, H:2 * H]), np.tanh(a_t[:, 2 * H:3 * H]), sigmoid(a_t[:, 3 * H:])
        c[t] = f * c[t - 1] + i * g
        h[t] = o * np.tanh(c[t])
        gates[t - 1] = np.concatenate([i, f, g, o], axis=1)
    return h, c, gates


def lstm_step_back(g_h, g_c, c_prev, c_t, gates_t, W_hh):
    """One step back through the LSTM cell: returns (da_t, dh_{t-1}, dc_{t-1}, total dE/dc_t)."""
    H = c_t.shape[1]
    i, f, g, o = gates_t[:, :H], gates_t[:, H:2 * H], gates_t[:, 2 * H:3 * H], gates_t[:, 3 * H:]
    tanh_c = np.tanh(c_t)
    do = g_h * tanh_c                                         # h_t = o * tanh(c_t)
    g_c = g_c + g_h * o * (1.0 - tanh_c * tanh_c)            # backprop into c_t through tanh
    di, dg, df = g_c * g, g_c * i, g_c * c_prev              # c_t = f c_{t-1} + i g
    dc_prev = g_c * f
    da_t = np.concatenate([di * i * (1.0 - i),                # through the sigmoids and tanh
                           df * f * (1.0 - f),
                           dg * (1.0 - g * g),
                           do * o * (1.0 - o)], axis=1)
    dh_prev = da_t @ W_hh.T                                   # (B, H)
    return da_t, dh_prev, dc_prev, g_c


def lstm_backward(dh, dh_T, dc_T, h, c, gates, W_hh, truncate):
    """Truncated BPTT through the LSTM; the chain runs through both h and c.

    Returns da (T, B, 4H), dh0 (B, H), dc0 (B, H), norms_h (T+1,), norms_c (T+1,)."""
    T = dh.shape[0]
    da = np.zeros_like(gates)
    g_h = np.zeros_like(h)
    g_c = np.zeros_like(c)
    loss_grad = _losses_by_step(dh, dh_T)
    first, k = _horizons(T, truncate)
    if k == T:
        dh_next, dc_next = np.zeros_like(dh_T), dc_T.copy()
        for t in range(T, 0, -1):
            g_h[t] = loss_grad[t - 1] + dh_next
            da[t - 1], dh_next, dc_next, g_c[t] = lstm_step_back(g_h[t], dc_next, c[t - 1], c[t], gates[t - 1], W_hh)
        g_h[0], g_c[0] = dh_next, dc_next
    else:
        for s in range(T, 0, -1):
            gh, gc = loss_grad[s - 1], (dc_T if s == T else np.zeros_like(dc_T))
            for t in range(s, first[s] - 1, -1):
                g_h[t] += gh
                da_t, gh, gc, gc_total = lstm_step_back(gh, gc, c[t - 1], c[t], gates[t - 1], W_hh)
                g_c[t] += gc_total
                da[t - 1] += da_t
            g_h[first[s] - 1] += gh
            g_c[first[s] - 1] += gc
    norms_h = np.sqrt((g_h * g_h).sum(axis=(1, 2)))
    norms_c = np.sqrt((g_c * g_c).sum(axis=(1, 2)))
    return da, g_h[0].copy(), g_c[0].copy(), norms_h, norms_c


# --------------------------------------------------------------------------- GRU

def gru_forward(xw, h0, W_hh, b_hh, reset_after):
    """GRU recurrence, gate order r, z, n (PyTorch's).

        xw = x W_xh + b_xh;  r = sigmoid(xw_r + h W_hr + b_hr);  z = sigmoid(xw_z + h W_hz + b_hz)
        reset_after (PyTorch): n = tanh(xw_n + r * (h_{t-1} W_hn + b_hn))
        reset_before (Cho et al. 2014): n = tanh(xw_n + (r * h_{t-1}) W_hn + b_hn)
        h_t = (1 - z) * n + z * h_{t-1}
    Returns h (T+1, B, H), gates (T, B, 3H) holding r, z, n, and hn (T, B, H): the recurrent
    term of n before the reset gate is applied (after) or after it (before).
    """
    T, B, G3 = xw.shape
    H = G3 // 3
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    gates = np.empty((T, B, G3), dtype=xw.dtype)
    hn = np.empty((T, B, H), dtype=xw.dtype)
    h[0] = h0
    for t in range(1, T + 1):
        h_prev = h[t - 1]
        ah_rz = h_prev @ W_hh[:, :2 * H] + b_hh[:2 * H]      # (B, 2H)
        r = sigmoid(xw[t - 1, :, :H] + ah_rz[:, :H])
        z = sigmoid(xw[t - 1, :, H:2 * H] + ah_rz[:, H:])
        if reset_after:
            hn[t - 1] = h_prev @ W_hh[:, 2 * H:] + b_hh[2 * H:]
            n = np.tanh(xw[t - 1, :, 2 * H:] + r * hn[t - 1])
        else:
            hn[t - 1] = (r * h_prev) @ W_hh[:, 2 * H:] + b_hh[2 * H:]
            n = np.tanh(xw[t - 1, :, 2 * H:] + hn[t - 1])
        h[t] = (1.0 - z) * n + z * h_prev
        gates[t - 1] = np.concatenate([r, z, n], axis=1)
    return h, gates, hn


def gru_step_back(g_h, h_prev, gates_t, hn_t, W_hh, reset_after):
    """One step back through the GRU: returns (dax_t, dah_t, dh_{t-1}).

    dax_t is the gradient on the input-side pre-activations (xw), dah_t on the recurrent-side
    ones (h W_hh + b_hh, for the n block the term the reset gate multiplies or follows)."""
    H = h_prev.shape[1]
    r, z, n = gates_t[:, :H], gates_t[:, H:2 * H], gates_t[:, 2 * H:]
    dn = g_h * (1.0 - z)                                      # h_t = (1 - z) n + z h_{t-1}
    dz = g_h * (h_prev - n)
    dh_prev = g_h * z
    dan = dn * (1.0 - n * n)                                  # through tanh
    if reset_after:
        dr = dan * hn_t                                       # n = tanh(xw_n + r * hn)
        dah_n = dan * r
    else:
        dah_n = dan                                           # n = tanh(xw_n + hn), hn = (r h) W_hn + b_hn
        d_rh = dan @ W_hh[:, 2 * H:].T                        # (B, H)
        dr = d_rh * h_prev
        dh_prev = dh_prev + d_rh * r
    dar = dr * r * (1.0 - r)                                  # through the sigmoids
    daz = dz * z * (1.0 - z)
    dax_t = np.concatenate([dar, daz, dan], axis=1)
    dah_t = np.concatenate([dar, daz, dah_n], axis=1)
    if reset_after:
        dh_prev = dh_prev + dah_t @ W_hh.T                    # (B, H)
    else:
        dh_prev = dh_prev + dah_t[:, :2 * H] @ W_hh[:, :2 * H].T
    return dax_t, dah_t, dh_prev


def gru_backward(dh, dh_T, h, gates, hn, W_hh, reset_after, truncate):
    """Truncated BPTT through the GRU.

    Returns dax (T, B, 3H), dah (T, B, 3H), dh0 (B, H), norms (T+1,)."""
    T = dh.shape[0]
    dax = np.zeros_like(gates)
    dah = np.zeros_like(gates)
    g_h = np.zeros_like(h)
    loss_grad = _losses_by_step(dh, dh_T)
    first, k = _horizons(T, truncate)
    if k == T:
        dh_next = np.zeros_like(dh_T)
        for t in range(T, 0, -1):
            g_h[t] = loss_grad[t - 1] + dh_next
            dax[t - 1], dah[t - 1], dh_next = gru_step_back(g_h[t], h[t - 1], gates[t - 1], hn[t - 1], W_hh, reset_after)
        g_h[0] = dh_next
    else:
        for s in range(T, 0, -1):
            g = loss_grad[s - 1]
            for t in range(s, first[s] - 1, -1):
                g_h[t] += g
                dax_t, dah_t, g = gru_step_back(g, h[t - 1], gates[t - 1], hn[t - 1], W_hh, reset_after)
                dax[t - 1] += dax_t
                dah[t - 1] += dah_t
            g_h[first[s] - 1] += g
    norms = np.sqrt((g_h * g_h).sum(axis=(1, 2)))
    return dax, dah, g_h[0].copy(), norms


# --------------------------------------------------------------------------- language model pieces

def softmax_xent(y, targets):
    """Mean softmax cross-entropy over all T*B positions and its gradient on the logits.

    y (T, B, V) logits, targets (T, B) ints. Returns (loss in nats per token, dy (T, B, V))."""
    T, B, V = y.shape
    z = y - y.max(axis=2, keepdims=True)                      # shift for a stable exp
    log_p = z - np.log(np.exp(z).sum(axis=2, keepdims=True))
    tt, bb = np.meshgrid(np.arange(T), np.arange(B), indexing="ij")
    loss = -log_p[tt, bb, targets].mean()
    dy = np.exp(log_p)                                        # dE/dy = (p - onehot) / (T B)
    dy[tt, bb, targets] -= 1.0
    dy /= T * B
    return loss, dy


def embed_backward(ids, da, V):
    """dW_xh for token inputs: row ids[t, b] of W_xh receives da[t, b] (rows repeat: accumulate)."""
    dW = np.zeros((V, da.shape[2]), dtype=da.dtype)
    np.add.at(dW, ids.reshape(-1), da.reshape(-1, da.shape[2]))
    return dW
