"""NumPy reference of the recurrences, their truncated BPTT and one-token generation, written to be read.

Every public function here has a twin of the same name, arguments and results in
`rnnvanish.kernels.recurrent` (jitted with Numba), and the two files share their private
step helpers too: `_tanh_step`, `_tanh_step_back`, `_lstm_step`, ..., `_walks`,
`_add_loss_grad`. Read them side by side: the drivers take the same steps in the same order.
The helpers here return their results; the kernels write them into arrays allocated once.

Legend: T steps, B batch, H hidden, G gates (tanh 1, GRU 3, LSTM 4), V vocabulary.
Time-major; row 0 of a state array is the initial state: h has shape (T+1, B, H).

    xw[t-1] = x_t @ W_xh + b          # (B, G*H), for all t at once by the caller (`input_rows`)
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

Masks, the last arguments (None or empty: off; the equations are in `masks.py`): m (B, H)
recurrent dropout, every product with W_hh reads h_{t-1} * m; d (T, B, H) zoneout, h_t =
d_t h_{t-1} + (1 - d_t) h~_t; h_new (T, B, H, tanh only) receives h~_t = f(a_t) for backward.
"""
import numpy as np

from .activations import ACTIVATIONS, RELU, SIGMOID, TANH, activate, activate_grad, sigmoid  # noqa: F401
from .masks import _drop, _lstm_new_c, _or_empty, _zoneout, _zoneout_back


def _walks(T, truncate):
    """(k, last): each loss reaches back k steps; the walks start at s = T, T-1, ..., last + 1.

    With truncation (1 <= k < T) every loss s walks back on its own, through t = s, ...,
    max(s - k + 1, 1). Without it (k = T) one walk from T serves every loss, each joining as
    the walk passes its step: the gradient carried back holds every later loss at once."""
    k = T if truncate <= 0 or truncate >= T else truncate
    return k, (T - 1 if k == T else 0)


def _add_loss_grad(dh, dh_T, s, g):
    """g + the outside gradient on h_s from the loss at step s (the final-state one joins step T)."""
    g = g + dh[s - 1]
    if s == dh.shape[0]:
        g = g + dh_T
    return g


def _step_norms(g_h):
    """norms[t] = ||g_h[t]|| over the batch and units, t = 0..T."""
    return np.sqrt((g_h * g_h).sum(axis=(1, 2)))


# --------------------------------------------------------------------------- tanh RNN

def _tanh_step(xw_t, h_prev, W_hh, act):
    """h_t = f(xw_t + h_{t-1} W_hh)."""
    a_t = xw_t + h_prev @ W_hh                                # (B, H) @ (H, H) -> (B, H)
    return activate(a_t, act)


def tanh_forward(xw, h0, W_hh, act, m=None, d=None, h_new=None):
    """h_t = f(x_t W_xh + b_h + h_{t-1} W_hh) for t = 1..T; returns h (T+1, B, H)."""
    T, B, H = xw.shape
    m, d, h_new = _or_empty(m, h0), _or_empty(d, xw), _or_empty(h_new, xw)
    zoneout = d.shape[0] > 0
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    h[0] = h0
    for t in range(1, T + 1):
        h[t] = _tanh_step(xw[t - 1], _drop(h[t - 1], m), W_hh, act)
        if zoneout:
            h_new[t - 1] = h[t]                               # h~_t, for f' in backward
            h[t] = _zoneout(h[t], h[t - 1], d[t - 1])
    return h


def _tanh_step_back(g_h, h_t, W_hh_T, act):
    """One step back through h_t = f(a_t), g_h = dE/dh_t: returns (da_t, dh_{t-1})."""
    da_t = g_h * activate_grad(h_t, act)                      # through f
    dh_prev = da_t @ W_hh_T                                   # through a_t = ... + h_{t-1} W_hh: (B, H) @ (H, H)
    return da_t, dh_prev


def tanh_backward(dh, dh_T, h, W_hh, act, truncate, m=None, d=None, h_new=None):
    """Truncated BPTT through the tanh (or sigmoid/relu) recurrence.

    Returns da (T, B, H), dh0 (B, H), norms (T+1,)."""
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
                g, keep = _zoneout_back(g, d[t - 1])
            da_t, g = _tanh_step_back(g, h_new[t - 1] if zoneout else h[t], W_hh_T, act)
            g = _drop(g, m)                                   # through h_{t-1} * m
            if zoneout:
                g = g + keep                                  # the identity path h_t = d_t h_{t-1} + ...
            da[t - 1] += da_t                                 # a shared weight's gradient accumulates
        g_h[first - 1] += g                                   # reaches h_{s-k}; stops there (or is dh0)
    return da, g_h[0].copy(), _step_norms(g_h)


# --------------------------------------------------------------------------- LSTM

def _lstm_step(xw_t, h_prev, c_prev, W_hh):
    """One LSTM step: returns h_t, c_t (B, H) and gates_t (B, 4H) = i, f, g, o after their nonlinearity."""
    H = h_prev.shape[1]
    a_t = xw_t + h_prev @ W_hh                                # (B, H) @ (H, 4H) -> (B, 4H)
    i = sigmoid(a_t[:, :H])
    f = sigmoid(a_t[:, H:2 * H])
    g = np.tanh(a_t[:, 2 * H:3 * H])
    o = sigmoid(a_t[:, 3 * H:])
    c_t = f * c_prev + i * g
    h_t = o * np.tanh(c_t)
    return h_t, c_t, np.concatenate([i, f, g, o], axis=1)


def lstm_forward(xw, h0, c0, W_hh, m=None, d=None):
    """LSTM recurrence, gate order i, f, g, o (PyTorch's).

        a = x W_xh + b_h + h_{t-1} W_hh            (B, 4H)
        i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
        c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)
    Returns h (T+1, B, H), c (T+1, B, H), gates (T, B, 4H) holding i, f, g, o after their nonlinearity.
    """
    T, B, G4 = xw.shape
    H = G4 // 4
    m, d = _or_empty(m, h0), _or_empty(d, xw)
    zoneout = d.shape[0] > 0
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    c = np.empty((T + 1, B, H), dtype=xw.dtype)
    gates = np.empty((T, B, G4), dtype=xw.dtype)
    h[0] = h0
    c[0] = c0
    for t in range(1, T + 1):
        h[t], c[t], gates[t - 1] = _lstm_step(xw[t - 1], _drop(h[t - 1], m), c[t - 1], W_hh)
        if zoneout:                                           # one d_t for h and c
            h[t] = _zoneout(h[t], h[t - 1], d[t - 1])
            c[t] = _zoneout(c[t], c[t - 1], d[t - 1])
    return h, c, gates


def _lstm_step_back(g_h, g_c, c_prev, c_t, gates_t, W_hh_T):
    """One step back through the LSTM cell, g_h = dE/dh_t and g_c = dE/dc_t from c_{t+1}:
    returns (da_t, dh_{t-1}, dc_{t-1}, the total dE/dc_t)."""
    H = c_t.shape[1]
    i, f, g, o = gates_t[:, :H], gates_t[:, H:2 * H], gates_t[:, 2 * H:3 * H], gates_t[:, 3 * H:]
    tanh_c = np.tanh(c_t)
    do = g_h * tanh_c                                         # h_t = o * tanh(c_t)
    gc = g_c + g_h * o * (1.0 - tanh_c * tanh_c)              # backprop into c_t through tanh
    di, dg, df = gc * g, gc * i, gc * c_prev                  # c_t = f c_{t-1} + i g
    dc_prev = gc * f
    da_t = np.concatenate([di * i * (1.0 - i),                # through the sigmoids and tanh
                           df * f * (1.0 - f),
                           dg * (1.0 - g * g),
                           do * o * (1.0 - o)], axis=1)
    dh_prev = da_t @ W_hh_T                                   # dh_{t-1} = da_t W_hh^T: (B, 4H) @ (4H, H)
    return da_t, dh_prev, dc_prev, gc


def lstm_backward(dh, dh_T, dc_T, h, c, gates, W_hh, truncate, m=None, d=None):
    """Truncated BPTT through the LSTM; the chain runs through both h and c.

    Returns da (T, B, 4H), dh0 (B, H), dc0 (B, H), norms_h (T+1,), norms_c (T+1,)."""
    T, B, H = dh.shape
    m, d = _or_empty(m, h[0]), _or_empty(d, dh)
    zoneout = d.shape[0] > 0
    da = np.zeros_like(gates)
    g_h = np.zeros_like(h)
    g_c = np.zeros_like(c)
    W_hh_T = W_hh.T
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        first = max(s - k + 1, 1)
        gh = np.zeros((B, H), dtype=dh.dtype)
        gc = np.zeros((B, H), dtype=dh.dtype)
        if s == T:
            gc = gc + dc_T                                    # the final cell state's gradient
        for t in range(s, first - 1, -1):
            if t == s or k == T:
                gh = _add_loss_grad(dh, dh_T, t, gh)
            g_h[t] += gh
            c_t = c[t]
            if zoneout:
                gh, keep_h = _zoneout_back(gh, d[t - 1])
                gc, keep_c = _zoneout_back(gc, d[t - 1])
                c_t = _lstm_new_c(c[t - 1], gates[t - 1])     # c~_t, what o tanh(.) read
            da_t, gh, gc, gc_total = _lstm_step_back(gh, gc, c[t - 1], c_t, gates[t - 1], W_hh_T)
            gh = _drop(gh, m)                                 # through h_{t-1} * m
            if zoneout:                                       # the identity paths to h_{t-1}, c_{t-1}
                gh, gc, gc_total = gh + keep_h, gc + keep_c, gc_total + keep_c
            g_c[t] += gc_total
            da[t - 1] += da_t
        g_h[first - 1] += gh
        g_c[first - 1] += gc
    return da, g_h[0].copy(), g_c[0].copy(), _step_norms(g_h), _step_norms(g_c)


def feature_major(dtype, batch, hidden=0):
    """The reference keeps the readable (T, B, .) layout: never feature-major (see the kernels')."""
    return False


def lstm_forward_fm(xw, h0, c0, W_hh):
    """lstm_forward with the caches feature-major: h (T+1, B, H), c^T (T+1, H, B), gates^T
    (T, 4H, B): the layout the Numba kernels keep from the forward pass to the backward one."""
    h, c, gates = lstm_forward(xw, h0, c0, W_hh)
    return h, c.transpose(0, 2, 1).copy(), gates.transpose(0, 2, 1).copy()


def lstm_backward_fm(dh, dh_T, dc_T, cT, gT, W_hh, truncate):
    """lstm_backward from lstm_forward_fm's caches (its h is read only for its shape, c's)."""
    c = cT.transpose(0, 2, 1)
    return lstm_backward(dh, dh_T, dc_T, c, c, gT.transpose(0, 2, 1), W_hh, truncate)


# --------------------------------------------------------------------------- GRU
# The reset-before form multiplies r into h_{t-1} before the n block's product, so it
# needs W_hh's r, z columns and its n columns apart.

def _gru_split(W_hh, reset_after):
    """W_hh's r, z columns (H, 2H) and n columns (H, H)."""
    H = W_hh.shape[0]
    return W_hh[:, :2 * H], W_hh[:, 2 * H:]


def _gru_step(xw_t, h_prev, W_hh, W_rz, W_hn, b_hh, reset_after, h_in=None):
    """One GRU step: returns h_t (B, H), gates_t (B, 3H) = r, z, n, and hn_t (B, H).

    h_in is the state the products read (h_{t-1} * m with recurrent dropout), default h_{t-1}."""
    H = h_prev.shape[1]
    h_in = h_prev if h_in is None else h_in
    if reset_after:
        ah = h_in @ W_hh                                      # h_{t-1} W_hh: (B, H) @ (H, 3H)
    else:
        ah = h_in @ W_rz                                      # h_{t-1} W_hr, h_{t-1} W_hz: (B, H) @ (H, 2H)
    r = sigmoid(xw_t[:, :H] + (ah[:, :H] + b_hh[:H]))
    z = sigmoid(xw_t[:, H:2 * H] + (ah[:, H:2 * H] + b_hh[H:2 * H]))
    if reset_after:
        hn_t = ah[:, 2 * H:] + b_hh[2 * H:]                   # h_{t-1} W_hn + b_hn
        n = np.tanh(xw_t[:, 2 * H:] + r * hn_t)
    else:
        hn_t = (r * h_in) @ W_hn + b_hh[2 * H:]               # (r * h_{t-1}) W_hn + b_hn: (B, H) @ (H, H)
        n = np.tanh(xw_t[:, 2 * H:] + hn_t)
    h_t = (1.0 - z) * n + z * h_prev
    return h_t, np.concatenate([r, z, n], axis=1), hn_t


def gru_forward(xw, h0, W_hh, b_hh, reset_after, m=None, d=None):
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
    m, d = _or_empty(m, h0), _or_empty(d, xw)
    zoneout = d.shape[0] > 0
    h[0] = h0
    W_rz, W_hn = _gru_split(W_hh, reset_after)
    for t in range(1, T + 1):
        h[t], gates[t - 1], hn[t - 1] = _gru_step(xw[t - 1], h[t - 1], W_hh, W_rz, W_hn, b_hh, reset_after,
                                                  _drop(h[t - 1], m))
        if zoneout:
            h[t] = _zoneout(h[t], h[t - 1], d[t - 1])
    return h, gates, hn


def _gru_step_back(g_h, h_prev, gates_t, hn_t, W_hh_T, W_rz_T, W_hn_T, reset_after, h_in=None, m=None):
    """One step back through the GRU, g_h = dE/dh_t: returns (dax_t, dah_t, dh_{t-1}).

    dax_t is the gradient on the input-side pre-activations (xw), dah_t on the recurrent-side
    ones (h W_hh + b_hh, for the n block the term the reset gate multiplies or follows).
    With recurrent dropout h_in = h_{t-1} * m is what the products read (default h_{t-1})."""
    H = g_h.shape[1]
    h_in = h_prev if h_in is None else h_in
    r, z, n = gates_t[:, :H], gates_t[:, H:2 * H], gates_t[:, 2 * H:]
    dn = g_h * (1.0 - z)                                      # h_t = (1 - z) n + z h_{t-1}
    dz = g_h * (h_prev - n)
    dh_prev = g_h * z
    dan = dn * (1.0 - n * n)                                  # through tanh
    daz = dz * z * (1.0 - z)                                  # through the sigmoid
    if reset_after:
        dr = dan * hn_t                                       # n = tanh(xw_n + r * hn)
        dah_n = dan * r
    else:
        dah_n = dan                                           # n = tanh(xw_n + hn), hn = (r h) W_hn + b_hn
        d_rh = dan @ W_hn_T                                   # dE/d(r * h_{t-1}): (B, H) @ (H, H)
        dr = d_rh * h_in
        dh_prev = dh_prev + _drop(d_rh, m) * r
    dar = dr * r * (1.0 - r)                                  # through the sigmoid
    dax_t = np.concatenate([dar, daz, dan], axis=1)
    dah_t = np.concatenate([dar, daz, dah_n], axis=1)
    if reset_after:
        dh_prev = dh_prev + _drop(dah_t @ W_hh_T, m)          # dah_t W_hh^T: (B, 3H) @ (3H, H)
    else:
        dh_prev = dh_prev + _drop(dah_t[:, :2 * H] @ W_rz_T, m)   # [dar, daz] W_hr,z^T: (B, 2H) @ (2H, H)
    return dax_t, dah_t, dh_prev


def gru_backward(dh, dh_T, h, gates, hn, W_hh, reset_after, truncate, m=None, d=None):
    """Truncated BPTT through the GRU.

    Returns dax (T, B, 3H), dah (T, B, 3H), dh0 (B, H), norms (T+1,)."""
    T, B, H = dh.shape
    m, d = _or_empty(m, h[0]), _or_empty(d, dh)
    zoneout = d.shape[0] > 0
    dax = np.zeros_like(gates)
    dah = np.zeros_like(gates)
    g_h = np.zeros_like(h)
    W_rz, W_hn = _gru_split(W_hh, reset_after)
    W_hh_T, W_rz_T, W_hn_T = W_hh.T, W_rz.T, W_hn.T
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        first = max(s - k + 1, 1)
        g = np.zeros((B, H), dtype=dh.dtype)
        for t in range(s, first - 1, -1):
            if t == s or k == T:
                g = _add_loss_grad(dh, dh_T, t, g)
            g_h[t] += g
            if zoneout:
                g, keep = _zoneout_back(g, d[t - 1])
            dax_t, dah_t, g = _gru_step_back(g, h[t - 1], gates[t - 1], hn[t - 1], W_hh_T, W_rz_T, W_hn_T,
                                             reset_after, _drop(h[t - 1], m), m)
            if zoneout:
                g = g + keep                                  # the identity path h_t = d_t h_{t-1} + ...
            dax[t - 1] += dax_t
            dah[t - 1] += dah_t
        g_h[first - 1] += g
    return dax, dah, g_h[0].copy(), _step_norms(g_h)


# --------------------------------------------------------------------------- generation
# One token at a time with B = 1: the cell's step, the logits y = h_t W_hy + b_y, one draw.
# The uniforms come in as an array, so the kernels' draws equal these for the same uniforms.

def _draw_token(y, temperature, u):
    """One draw from softmax(y / temperature) by inverse CDF with the uniform u; argmax at 0.

    z = (y - max y) / T, cdf = cumsum(exp z): the first index whose cdf exceeds u * cdf[-1]."""
    if temperature == 0.0:
        return int(np.argmax(y))                              # the first largest logit
    z = (y - y.max()) / temperature
    cdf = np.cumsum(np.exp(z))
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), y.size - 1))


def _logits(h_t, W_hy, b_y):
    """y = h_t W_hy + b_y: (1, H) @ (H, V) -> (1, V)."""
    return h_t @ W_hy + b_y


def _input_row(W_xh, b, token):
    """xw_t = W_xh[token] + b as (1, GH): the input term of one token (a row of W_xh, no one-hot product)."""
    return (W_xh[token] + b)[None, :]


def tanh_generate(token, h0, W_xh, b_h, W_hh, W_hy, b_y, act, uniforms, temperature):
    """Feed `token` from state h0 (1, H), draw the next token, feed it, ...: one draw per uniform.

    Returns the drawn ids (N,)."""
    out = np.empty(uniforms.shape[0], dtype=np.int64)
    h_prev = h0
    for n in range(uniforms.shape[0]):
        xw_t = _input_row(W_xh, b_h, token)
        h_t = _tanh_step(xw_t, h_prev, W_hh, act)
        y = _logits(h_t, W_hy, b_y)
        token = _draw_token(y[0], temperature, uniforms[n])
        out[n] = token
        h_prev = h_t
    return out


def lstm_generate(token, h0, c0, W_xh, b_h, W_hh, W_hy, b_y, uniforms, temperature):
    """tanh_generate for the LSTM: state (h0, c0), each (1, H)."""
    out = np.empty(uniforms.shape[0], dtype=np.int64)
    h_prev, c_prev = h0, c0
    for n in range(uniforms.shape[0]):
        xw_t = _input_row(W_xh, b_h, token)
        h_t, c_t, _ = _lstm_step(xw_t, h_prev, c_prev, W_hh)
        y = _logits(h_t, W_hy, b_y)
        token = _draw_token(y[0], temperature, uniforms[n])
        out[n] = token
        h_prev, c_prev = h_t, c_t
    return out


def gru_generate(token, h0, W_xh, b_xh, W_hh, b_hh, reset_after, W_hy, b_y, uniforms, temperature):
    """tanh_generate for the GRU."""
    W_rz, W_hn = _gru_split(W_hh, reset_after)
    out = np.empty(uniforms.shape[0], dtype=np.int64)
    h_prev = h0
    for n in range(uniforms.shape[0]):
        xw_t = _input_row(W_xh, b_xh, token)
        h_t, _, _ = _gru_step(xw_t, h_prev, W_hh, W_rz, W_hn, b_hh, reset_after, h_prev)
        y = _logits(h_t, W_hy, b_y)
        token = _draw_token(y[0], temperature, uniforms[n])
        out[n] = token
        h_prev = h_t
    return out
