"""Numba twins of `rnnvanish.reference.recurrent`: the recurrences, their truncated BPTT and
one-token generation loops.

Each public function here has the name, arguments and results of its reference, the private
step helpers share their names (`_tanh_step`, `_tanh_step_back`, `_lstm_step`, ..., `_walks`,
`_add_loss_grad`), and each driver takes the same steps in the same order: read the two files
side by side. What differs is only how the work is done:
  - the helpers write their results into arrays allocated once per call, never per step
    (the reference's return new ones); the per-step products run in place through
    `np.dot(a, b, out)` on contiguous (B, .) slices (BLAS via SciPy);
  - the elementwise parts are plain loops over (b, j), so each step's gates are computed
    in one pass; exp, tanh and sigmoid are written as plain arithmetic (below) so that
    LLVM vectorises those loops (a call to libm's exp or tanh cannot be vectorised);
  - from B = FEATURE_MAJOR_BATCH streams on (and without masks) each driver hands the window
    to its feature-major twin (`_lstm_forward_fm`, ...), which holds the step's state as
    (H, B) and runs the per-step products on W_hh packed once per window, with each tile of
    the product summed in registers (`_tile`, "packed products"): the same steps with the
    indices swapped, in the section "feature-major path" below (the GRU in float32 only,
    unless split);
  - while the run's threads are one pool (`rnnvanish.kernels.pool`), the windows of the LSTM,
    the tanh RNN and the reset-after GRU split their units across those threads ("split across
    threads", below; the package's public names pick them): the LSTM and the GRU in the
    (B, .) layout, on panels of W_hh's columns ("panels of columns"), the tanh RNN
    feature-major.
Legend: T steps, B batch, H hidden, G gates (tanh 1, GRU 3, LSTM 4), V vocabulary.

Recurrent dropout (m, (B, H)) and zoneout (d, (T, B, H)) are the forward and backward
kernels' last arguments, as in the reference (equations in `rnnvanish.reference.masks`).
Omitted, None or empty ((0, 0), (0, 0, 0)) is off; each call decides once and then runs the
unmasked steps, whose loops and products are untouched: with both off every result is the
unmasked one, bit for bit. Their step helpers (`_drop`, `_zoneout`, `_zoneout_back`,
`_lstm_new_c`, `_or_empty`) live here with the rest, not beside the reference's in masks.py.

No jitted function here calls one in another module: Numba's cache checks only the file
of the function it compiled, so such a call could run a stale copy after an edit there.
That is why this one file holds every helper the recurrences use and is longer than the
reference's recurrent.py with its masks.py and activations.py.
"""
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from . import pool

# Every kernel: cached on disk; numpy's error model (a division by zero gives inf, as in the
# reference, and leaves no check in the loop to stop vectorisation); fused multiply-add allowed
# (one rounding instead of two; no other reordering of floating-point operations).
jit = njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})

# A vectorised loop over one row (j) first checks at run time that the arrays it writes do not
# overlap those it reads. LLVM (17 and later) hoists that check out of the loop over rows (b),
# widening it to every row at once, where the gate blocks of one row overlap those of the next:
# the check then always fails and the scalar loop runs, 3-4 times slower at B > 1. Checking
# per row keeps the vector loop. The option holds for every compilation in the process and
# only moves such checks; an LLVM that does not know it ignores it.
llvm.set_option("rnnvanish", "-hoist-runtime-checks=false")

# Activation codes, the same as rnnvanish.reference's (a test holds them equal).
TANH, SIGMOID, RELU = 0, 1, 2


# --------------------------------------------------------------------------- exp, tanh, sigmoid
# exp(x) = 2^n e^r with n = round(x / ln 2) and |r| <= ln(2) / 2; 2^n is written straight into
# the exponent bits and e^r - 1 is its Taylor series: to r^13 in float64 (the next term is
# below 2e-18: rounding, not the series, limits the accuracy, within 2 ulp of libm) and to r^7
# in float32 (next term below 6e-9), so float32 loops run at twice the width. `_sigmoid` and
# `_tanh` pick the precision of their argument.

@intrinsic
def _float_from_bits(typingctx, bits):
    """The float whose IEEE-754 bit pattern is `bits`: float64 from int64, float32 from int32."""
    if bits not in (types.int64, types.int32):
        return None
    wide = bits == types.int64
    result, lltype = (types.float64, ir.DoubleType()) if wide else (types.float32, ir.FloatType())

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], lltype)
    return result(bits), codegen


@intrinsic
def _bits_of_float(typingctx, x):
    """The IEEE-754 bit pattern of `x`: int64 of a float64, int32 of a float32."""
    if x not in (types.float64, types.float32):
        return None
    wide = x == types.float64
    result, lltype = (types.int64, ir.IntType(64)) if wide else (types.int32, ir.IntType(32))

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], lltype)
    return result(x), codegen


_LOG2_E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01       # ln 2 = _LN2_HI + _LN2_LO; n * _LN2_HI is exact (fdlibm)
_LN2_LO = 1.90821492927058770002e-10
_ROUNDER = 6755399441055744.0              # 1.5 * 2^52: x + _ROUNDER rounds x to an integer
_ROUNDER_BITS = 0x4338000000000000         # ... held in the low bits of this bit pattern
_X_MIN, _X_MAX = -708.0, 709.0             # exp stays a normal, finite float64


@jit
def _expm1_parts(x):
    """(q, s) with e^x = s (1 + q): s = 2^n, q = e^r - 1, x = n ln2 + r (x clamped to [-708, 709])."""
    x = _X_MIN if x < _X_MIN else (_X_MAX if x > _X_MAX else x)
    t = x * _LOG2_E + _ROUNDER
    n = t - _ROUNDER                                          # round(x / ln 2), exactly
    r = (x - n * _LN2_HI) - n * _LN2_LO
    q = r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
        1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (
            1.0 / 3628800 + r * (1.0 / 39916800 + r * (1.0 / 479001600 + r * (1.0 / 6227020800.0)))))))))))))
    s = _float_from_bits((_bits_of_float(t) - _ROUNDER_BITS + 1023) << 52)   # 2^n
    return q, s


# The same in float32: ln 2 split for float32, 1.5 * 2^23 as the rounder, x clamped to [-87, 88].
_F = np.float32
_LOG2_E32, _LN2_HI32, _LN2_LO32 = _F(1.442695041), _F(0.693359375), _F(-2.12194440e-4)
_ROUNDER32, _ROUNDER_BITS32, _X_MIN32, _X_MAX32 = _F(12582912.0), 0x4B400000, _F(-87.0), _F(88.0)
_C1, _C2, _C3, _C4, _C5, _C6, _C7 = _F(1), _F(1 / 2), _F(1 / 6), _F(1 / 24), _F(1 / 120), _F(1 / 720), _F(1 / 5040)


@jit
def _expm1_parts32(x):
    """_expm1_parts in float32."""
    x = _X_MIN32 if x < _X_MIN32 else (_X_MAX32 if x > _X_MAX32 else x)
    t = x * _LOG2_E32 + _ROUNDER32
    n = t - _ROUNDER32
    r = (x - n * _LN2_HI32) - n * _LN2_LO32
    q = r * (_C1 + r * (_C2 + r * (_C3 + r * (_C4 + r * (_C5 + r * (_C6 + r * _C7))))))
    s = _float_from_bits(np.int32((_bits_of_float(t) - _ROUNDER_BITS32 + 127) << 23))   # 2^n
    return q, s


@jit
def _exp(x):
    q, s = _expm1_parts(x)
    return s + s * q


@jit
def _sigmoid64(a):
    return 1.0 / (1.0 + _exp(-a))


@jit
def _tanh64(a):
    """tanh|a| = -m / (2 + m) with m = e^(-2|a|) - 1, exact to a few ulp also near 0."""
    q, s = _expm1_parts(-2.0 * abs(a))
    m = s * q + (s - 1.0)
    y = -m / (2.0 + m)
    return y if a >= 0.0 else -y


@jit
def _sigmoid32(a):
    q, s = _expm1_parts32(-a)
    return _C1 / (_C1 + (s + s * q))


@jit
def _tanh32(a):
    q, s = _expm1_parts32(_F(-2) * abs(a))
    m = s * q + (s - _C1)
    y = -m / (_F(2) + m)
    return y if a >= _F(0) else -y


def _sigmoid(a):
    """1 / (1 + e^-a) in the precision of a (jitted code only)."""
    raise NotImplementedError


def _tanh(a):
    """tanh(a) in the precision of a (jitted code only)."""
    raise NotImplementedError


@overload(_sigmoid)
def _sigmoid_typed(a):
    return (lambda a: _sigmoid32(a)) if a == types.float32 else (lambda a: _sigmoid64(a))


@overload(_tanh)
def _tanh_typed(a):
    return (lambda a: _tanh32(a)) if a == types.float32 else (lambda a: _tanh64(a))


@jit
def _add_activate(xw_t, a_t, act):
    """a_t <- f(xw_t + a_t) for f = tanh, sigmoid or relu, in place; (B, H) each."""
    B, H = a_t.shape
    for b in range(B):
        if act == TANH:
            for j in range(H):
                a_t[b, j] = _tanh(xw_t[b, j] + a_t[b, j])
        elif act == SIGMOID:
            for j in range(H):
                a_t[b, j] = _sigmoid(xw_t[b, j] + a_t[b, j])
        else:
            for j in range(H):
                a = xw_t[b, j] + a_t[b, j]
                a_t[b, j] = 0.0 if a < 0.0 else a


@jit
def _times_activate_grad(g_h, y, act, out):
    """out = g_h * f'(a) from y = f(a): tanh 1 - y^2, sigmoid y (1 - y), relu [y > 0]."""
    B, H = y.shape
    for b in range(B):
        if act == TANH:
            for j in range(H):
                out[b, j] = g_h[b, j] * (1.0 - y[b, j] * y[b, j])
        elif act == SIGMOID:
            for j in range(H):
                out[b, j] = g_h[b, j] * (y[b, j] * (1.0 - y[b, j]))
        else:
            for j in range(H):
                out[b, j] = g_h[b, j] if y[b, j] > 0.0 else 0.0


@jit
def _walks(T, truncate):
    """(k, last): each loss reaches back k steps; the walks start at s = T, T-1, ..., last + 1.

    With truncation (1 <= k < T) every loss s walks back on its own, through t = s, ...,
    max(s - k + 1, 1). Without it (k = T) one walk from T serves every loss, each joining as
    the walk passes its step: the gradient carried back holds every later loss at once."""
    k = T if truncate <= 0 or truncate >= T else truncate
    return k, (T - 1 if k == T else 0)


# Small loops instead of NumPy slice assignment (`a[t] = b`, `a[t] += b`): the same work, and
# Numba compiles a loop in a fraction of the time it takes for a broadcasting assignment.

@jit
def _copy_into(dst, src):
    """dst = src for (B, X) arrays."""
    for b in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[b, j] = src[b, j]


@jit
def _add_into(dst, src):
    """dst += src for (B, X) arrays."""
    for b in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[b, j] += src[b, j]


@jit
def _add_loss_grad(dh, dh_T, s, g):
    """g += the outside gradient on h_s from the loss at step s (the final-state one joins step T)."""
    _add_into(g, dh[s - 1])
    if s == dh.shape[0]:
        _add_into(g, dh_T)


@jit
def _sum_squares(x):
    """The sum of x's squared entries (any C-contiguous array) in float64, in 16 interleaved
    partial sums: one running sum is a chain of dependent additions that does not vectorise
    (about 1 ns an entry here, against 0.34 ns)."""
    v = x.reshape(-1)
    n = v.size
    n16 = n - n % 16
    acc = np.zeros(16)
    for k0 in range(0, n16, 16):
        for lane in range(16):
            e = np.float64(v[k0 + lane])
            acc[lane] += e * e
    total = 0.0
    for k in range(n16, n):
        e = np.float64(v[k])
        total += e * e
    for lane in range(16):
        total += acc[lane]
    return total


@jit
def _step_norms(g_h):
    """norms[t] = ||g_h[t]|| over the batch and units, t = 0..T (summed in float64)."""
    norms = np.empty(g_h.shape[0], dtype=g_h.dtype)
    for t in range(g_h.shape[0]):
        norms[t] = np.sqrt(_sum_squares(g_h[t]))
    return norms


# --------------------------------------------------------------------------- masks
# Recurrent dropout and zoneout: see rnnvanish.reference.masks for the equations. Where the
# reference writes `_drop(h[t - 1], m)` (h_{t-1} itself when m is off), the drivers here test
# `dropout` and make the unmasked call as it was: an array passed through a call costs a
# reference count per step, about 2% of a tanh step at B = 1.

def _or_empty(mask, like):
    """`mask`, or an empty array of like's dtype and rank (like[:0]) when it is omitted or None (off)."""
    raise NotImplementedError


@overload(_or_empty)
def _or_empty_typed(mask, like):
    if not isinstance(mask, (types.NoneType, types.Omitted)):
        return lambda mask, like: mask
    return lambda mask, like: like[:0]                      # a view, not an allocation


@jit
def _drop(x, m, out):
    """x * m written into out and returned (the state as W_hh sees it, or the gradient back
    through it); x itself, untouched, when m is off (empty)."""
    if m.shape[0] == 0:
        return x
    for b in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[b, j] = x[b, j] * m[b, j]
    return out


@jit
def _zoneout(h_t, h_prev, d_t):
    """h_t <- d_t * h_{t-1} + (1 - d_t) * h~_t, in place (h_t holds h~_t)."""
    for b in range(h_t.shape[0]):
        for j in range(h_t.shape[1]):
            h_t[b, j] = d_t[b, j] * h_prev[b, j] + (1.0 - d_t[b, j]) * h_t[b, j]


@jit
def _zoneout_back(g, d_t, keep):
    """dE/dh_t split, in place: keep = d_t g (straight to h_{t-1}), g <- (1 - d_t) g (into the cell)."""
    for b in range(g.shape[0]):
        for j in range(g.shape[1]):
            keep[b, j] = d_t[b, j] * g[b, j]
            g[b, j] = (1.0 - d_t[b, j]) * g[b, j]


@jit
def _lstm_new_c(c_prev, gates_t, c_new):
    """c~_t = f c_{t-1} + i g from the kept gates, into c_new, returned (zoneout overwrites c_t)."""
    B, H = c_prev.shape
    for b in range(B):
        for j in range(H):
            c_new[b, j] = gates_t[b, H + j] * c_prev[b, j] + gates_t[b, j] * gates_t[b, 2 * H + j]
    return c_new


# --------------------------------------------------------------------------- tanh RNN

@jit
def _tanh_step(xw_t, h_prev, W_hh, act, h_t):
    """h_t = f(xw_t + h_{t-1} W_hh), written into h_t (B, H)."""
    np.dot(h_prev, W_hh, h_t)                                 # h_{t-1} W_hh  (B, H)
    _add_activate(xw_t, h_t, act)


@jit
def tanh_forward(xw, h0, W_hh, act, m=None, d=None, h_new=None):
    """h_t = f(x_t W_xh + b_h + h_{t-1} W_hh) for t = 1..T; returns h (T+1, B, H)."""
    T, B, H = xw.shape
    m, d, h_new = _or_empty(m, h0), _or_empty(d, xw), _or_empty(h_new, xw)
    dropout, zoneout = m.shape[0] > 0, d.shape[0] > 0
    if _feature_major(xw, dropout, zoneout):
        return _tanh_forward_fm(xw, h0, W_hh, act)
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    h_in = np.empty((B, H), dtype=xw.dtype)                  # h_{t-1} * m
    _copy_into(h[0], h0)
    for t in range(1, T + 1):
        if dropout:
            _tanh_step(xw[t - 1], _drop(h[t - 1], m, h_in), W_hh, act, h[t])
        else:
            _tanh_step(xw[t - 1], h[t - 1], W_hh, act, h[t])
        if zoneout:
            _copy_into(h_new[t - 1], h[t])                    # h~_t, for f' in backward
            _zoneout(h[t], h[t - 1], d[t - 1])
    return h


@jit
def _tanh_step_back(g_h, h_t, W_hh_T, act, da_t):
    """One step back through h_t = f(a_t): da_t, then g_h <- dh_{t-1}, in place."""
    _times_activate_grad(g_h, h_t, act, da_t)                 # through f
    np.dot(da_t, W_hh_T, g_h)                                 # through a_t = ... + h_{t-1} W_hh  (B, H)


@jit
def tanh_backward(dh, dh_T, h, W_hh, act, truncate, m=None, d=None, h_new=None):
    """Truncated BPTT through the tanh (or sigmoid/relu) recurrence.

    Returns da (T, B, H), dh0 (B, H), norms (T+1,)."""
    T, B, H = dh.shape
    m, d, h_new = _or_empty(m, h[0]), _or_empty(d, dh), _or_empty(h_new, dh)
    dropout, zoneout = m.shape[0] > 0, d.shape[0] > 0
    if _feature_major(dh, dropout, zoneout):
        return _tanh_backward_fm(dh, dh_T, h, W_hh, act, truncate)
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
            _tanh_step_back(g, h_new[t - 1] if zoneout else h[t], W_hh_T, act, da_t)
            if dropout:
                _drop(g, m, g)                                # through h_{t-1} * m
            if zoneout:
                _add_into(g, keep)                            # the identity path h_t = d_t h_{t-1} + ...
            _add_into(da[t - 1], da_t)                        # a shared weight's gradient accumulates
        _add_into(g_h[first - 1], g)                          # reaches h_{s-k}; stops there (or is dh0)
    return da, g_h[0].copy(), _step_norms(g_h)


# --------------------------------------------------------------------------- LSTM

@jit
def _lstm_step(xw_t, h_prev, c_prev, W_hh, h_t, c_t, gates_t):
    """One LSTM step into h_t, c_t (B, H) and gates_t (B, 4H) = i, f, g, o after their nonlinearity."""
    B, H = h_t.shape
    np.dot(h_prev, W_hh, gates_t)                             # h_{t-1} W_hh  (B, 4H); gates built in place
    for b in range(B):
        for j in range(H):
            i = _sigmoid(xw_t[b, j] + gates_t[b, j])
            f = _sigmoid(xw_t[b, H + j] + gates_t[b, H + j])
            g = _tanh(xw_t[b, 2 * H + j] + gates_t[b, 2 * H + j])
            o = _sigmoid(xw_t[b, 3 * H + j] + gates_t[b, 3 * H + j])
            c_t[b, j] = f * c_prev[b, j] + i * g
            h_t[b, j] = o * _tanh(c_t[b, j])
            gates_t[b, j], gates_t[b, H + j], gates_t[b, 2 * H + j], gates_t[b, 3 * H + j] = i, f, g, o


@jit
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
    dropout, zoneout = m.shape[0] > 0, d.shape[0] > 0
    if _feature_major(xw, dropout, zoneout):
        return _lstm_forward_fm(xw, h0, c0, W_hh)
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    c = np.empty((T + 1, B, H), dtype=xw.dtype)
    gates = np.empty((T, B, G4), dtype=xw.dtype)
    h_in = np.empty((B, H), dtype=xw.dtype)                  # h_{t-1} * m
    _copy_into(h[0], h0)
    _copy_into(c[0], c0)
    for t in range(1, T + 1):
        if dropout:
            _lstm_step(xw[t - 1], _drop(h[t - 1], m, h_in), c[t - 1], W_hh, h[t], c[t], gates[t - 1])
        else:
            _lstm_step(xw[t - 1], h[t - 1], c[t - 1], W_hh, h[t], c[t], gates[t - 1])
        if zoneout:                                           # one d_t for h and c
            _zoneout(h[t], h[t - 1], d[t - 1])
            _zoneout(c[t], c[t - 1], d[t - 1])
    return h, c, gates


@jit
def _lstm_step_back(g_h, g_c, c_prev, c_t, gates_t, W_hh_T, da_t, g_c_total):
    """One step back through the LSTM cell, in place: da_t, g_c_total = dE/dc_t, then
    g_h <- dh_{t-1} and g_c <- dc_{t-1}."""
    B, H = c_t.shape
    for b in range(B):
        for j in range(H):
            i, f = gates_t[b, j], gates_t[b, H + j]
            g, o = gates_t[b, 2 * H + j], gates_t[b, 3 * H + j]
            tanh_c = _tanh(c_t[b, j])
            do = g_h[b, j] * tanh_c                           # h_t = o * tanh(c_t)
            gc = g_c[b, j] + g_h[b, j] * o * (1.0 - tanh_c * tanh_c)   # backprop into c_t through tanh
            di, dg, df = gc * g, gc * i, gc * c_prev[b, j]    # c_t = f c_{t-1} + i g
            g_c[b, j] = gc * f                                # dc_{t-1}
            g_c_total[b, j] = gc
            da_t[b, j] = di * i * (1.0 - i)                   # through the sigmoids and tanh
            da_t[b, H + j] = df * f * (1.0 - f)
            da_t[b, 2 * H + j] = dg * (1.0 - g * g)
            da_t[b, 3 * H + j] = do * o * (1.0 - o)
    np.dot(da_t, W_hh_T, g_h)                                 # dh_{t-1} = da_t W_hh^T  (B, H)


@jit
def lstm_backward(dh, dh_T, dc_T, h, c, gates, W_hh, truncate, m=None, d=None):
    """Truncated BPTT through the LSTM; the chain runs through both h and c.

    Returns da (T, B, 4H), dh0 (B, H), dc0 (B, H), norms_h (T+1,), norms_c (T+1,)."""
    T, B, H = dh.shape
    m, d = _or_empty(m, h[0]), _or_empty(d, dh)
    dropout, zoneout = m.shape[0] > 0, d.shape[0] > 0
    if _feature_major(dh, dropout, zoneout):
        return _lstm_backward_fm(dh, dh_T, dc_T, h, c, gates, W_hh, truncate)
    da = np.zeros_like(gates)
    g_h = np.zeros_like(h)
    g_c = np.zeros_like(c)
    W_hh_T = W_hh.T
    gh, gc = np.empty((B, H), dtype=dh.dtype), np.empty((B, H), dtype=dh.dtype)
    da_t, gc_total = np.empty((B, 4 * H), dtype=dh.dtype), np.empty((B, H), dtype=dh.dtype)
    keep_h, keep_c = np.empty((B, H), dtype=dh.dtype), np.empty((B, H), dtype=dh.dtype)
    c_new = np.empty((B, H), dtype=dh.dtype)
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        first = max(s - k + 1, 1)
        gh.fill(0.0)
        gc.fill(0.0)
        if s == T:
            _add_into(gc, dc_T)                               # the final cell state's gradient
        for t in range(s, first - 1, -1):
            if t == s or k == T:
                _add_loss_grad(dh, dh_T, t, gh)
            _add_into(g_h[t], gh)
            c_t = c[t]
            if zoneout:
                _zoneout_back(gh, d[t - 1], keep_h)
                _zoneout_back(gc, d[t - 1], keep_c)
                c_t = _lstm_new_c(c[t - 1], gates[t - 1], c_new)   # c~_t, what o tanh(.) read
            _lstm_step_back(gh, gc, c[t - 1], c_t, gates[t - 1], W_hh_T, da_t, gc_total)
            if dropout:
                _drop(gh, m, gh)                              # through h_{t-1} * m
            if zoneout:                                       # the identity paths to h_{t-1}, c_{t-1}
                _add_into(gh, keep_h)
                _add_into(gc, keep_c)
                _add_into(gc_total, keep_c)
            _add_into(g_c[t], gc_total)
            _add_into(da[t - 1], da_t)
        _add_into(g_h[first - 1], gh)
        _add_into(g_c[first - 1], gc)
    return da, g_h[0].copy(), g_c[0].copy(), _step_norms(g_h), _step_norms(g_c)


# --------------------------------------------------------------------------- GRU
# The reset-before form multiplies r into h_{t-1} before the n block's product, so it
# needs W_hh's r, z columns and its n columns apart: copied once per call, not per step.

@jit
def _gru_split(W_hh, reset_after):
    """Contiguous copies of W_hh's r, z columns (H, 2H) and n columns (H, H); empty for reset-after."""
    if reset_after:
        empty = np.empty((0, 0), dtype=W_hh.dtype)
        return empty, empty
    H = W_hh.shape[0]
    return np.ascontiguousarray(W_hh[:, :2 * H]), np.ascontiguousarray(W_hh[:, 2 * H:])


@jit
def _gru_step(xw_t, h_prev, W_hh, W_rz, W_hn, b_hh, reset_after, h_in, h_t, gates_t, hn_t, ah, rh):
    """One GRU step into h_t (B, H), gates_t (B, 3H) = r, z, n, and hn_t (B, H).

    h_in is the state the products read (h_{t-1} * m with recurrent dropout, else h_{t-1}).
    Scratch: ah (B, 3H) holds h_{t-1} W_hh (reset-after) or (B, 2H) its r, z part (reset-before);
    rh (B, H) holds r * h_{t-1} (reset-before)."""
    B, H = h_t.shape
    if reset_after:
        np.dot(h_in, W_hh, ah)                                # h_{t-1} W_hh  (B, 3H)
    else:
        np.dot(h_in, W_rz, ah)                                # h_{t-1} W_hr, h_{t-1} W_hz  (B, 2H)
    for b in range(B):
        for j in range(H):
            gates_t[b, j] = _sigmoid(xw_t[b, j] + (ah[b, j] + b_hh[j]))                 # r
            gates_t[b, H + j] = _sigmoid(xw_t[b, H + j] + (ah[b, H + j] + b_hh[H + j]))  # z
    if reset_after:
        for b in range(B):
            for j in range(H):
                hn_t[b, j] = ah[b, 2 * H + j] + b_hh[2 * H + j]   # h_{t-1} W_hn + b_hn
    else:
        for b in range(B):
            for j in range(H):
                rh[b, j] = gates_t[b, j] * h_in[b, j]
        np.dot(rh, W_hn, hn_t)                                # (r * h_{t-1}) W_hn  (B, H)
        for b in range(B):
            for j in range(H):
                hn_t[b, j] += b_hh[2 * H + j]
    for b in range(B):
        for j in range(H):
            r, z = gates_t[b, j], gates_t[b, H + j]
            if reset_after:
                n = _tanh(xw_t[b, 2 * H + j] + r * hn_t[b, j])
            else:
                n = _tanh(xw_t[b, 2 * H + j] + hn_t[b, j])
            h_t[b, j] = (1.0 - z) * n + z * h_prev[b, j]
            gates_t[b, 2 * H + j] = n


@jit
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
    m, d = _or_empty(m, h0), _or_empty(d, xw)
    dropout, zoneout = m.shape[0] > 0, d.shape[0] > 0
    if _gru_feature_major(xw, dropout, zoneout):
        return _gru_forward_fm(xw, h0, W_hh, b_hh, reset_after)
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    gates = np.empty((T, B, G3), dtype=xw.dtype)
    hn = np.empty((T, B, H), dtype=xw.dtype)
    _copy_into(h[0], h0)
    W_rz, W_hn = _gru_split(W_hh, reset_after)
    ah = np.empty((B, (3 if reset_after else 2) * H), dtype=xw.dtype)
    rh, h_in = np.empty((B, H), dtype=xw.dtype), np.empty((B, H), dtype=xw.dtype)
    for t in range(1, T + 1):
        if dropout:
            _gru_step(xw[t - 1], h[t - 1], W_hh, W_rz, W_hn, b_hh, reset_after, _drop(h[t - 1], m, h_in),
                      h[t], gates[t - 1], hn[t - 1], ah, rh)
        else:
            _gru_step(xw[t - 1], h[t - 1], W_hh, W_rz, W_hn, b_hh, reset_after, h[t - 1],
                      h[t], gates[t - 1], hn[t - 1], ah, rh)
        if zoneout:
            _zoneout(h[t], h[t - 1], d[t - 1])
    return h, gates, hn


@jit
def _gru_step_back(g_h, h_prev, gates_t, hn_t, W_hh_T, W_rz_T, W_hn_T, reset_after, h_in, m, dax_t, dah_t,
                   dh_prev, dan, d_rh, da_rz, d_rhm):
    """One step back through the GRU, in place: dax_t, dah_t (B, 3H), then g_h <- dh_{t-1}.

    dax_t is the gradient on the input-side pre-activations (xw), dah_t on the recurrent-side
    ones (h W_hh + b_hh, for the n block the term the reset gate multiplies or follows).
    With recurrent dropout h_in = h_{t-1} * m is what the products read (else h_{t-1}).
    Scratch (B, H): dh_prev, dan, d_rh, d_rhm; (B, 2H): da_rz."""
    B, H = g_h.shape
    for b in range(B):
        for j in range(H):
            r, z, n = gates_t[b, j], gates_t[b, H + j], gates_t[b, 2 * H + j]
            g = g_h[b, j]
            dn = g * (1.0 - z)                                # h_t = (1 - z) n + z h_{t-1}
            dz = g * (h_prev[b, j] - n)
            dh_prev[b, j] = g * z
            dan[b, j] = dn * (1.0 - n * n)                    # through tanh
            daz = dz * z * (1.0 - z)                          # through the sigmoid
            dax_t[b, H + j] = daz
            dah_t[b, H + j] = daz
            dax_t[b, 2 * H + j] = dan[b, j]
            if reset_after:
                dr = dan[b, j] * hn_t[b, j]                   # n = tanh(xw_n + r * hn)
                dar = dr * r * (1.0 - r)
                dax_t[b, j] = dar
                dah_t[b, j] = dar
                dah_t[b, 2 * H + j] = dan[b, j] * r
            else:
                dah_t[b, 2 * H + j] = dan[b, j]               # n = tanh(xw_n + hn), hn = (r h) W_hn + b_hn
    if reset_after:
        np.dot(dah_t, W_hh_T, g_h)                            # dah_t W_hh^T  (B, H)
    else:
        np.dot(dan, W_hn_T, d_rh)                             # dE/d(r h_{t-1})  (B, H)
        d_in = _drop(d_rh, m, d_rhm)                          # ... back through h_{t-1} * m
        for b in range(B):
            for j in range(H):
                r = gates_t[b, j]
                dr = d_rh[b, j] * h_in[b, j]
                dh_prev[b, j] = dh_prev[b, j] + d_in[b, j] * r
                dar = dr * r * (1.0 - r)
                dax_t[b, j] = dar
                dah_t[b, j] = dar
                da_rz[b, j] = dar
                da_rz[b, H + j] = dah_t[b, H + j]
        np.dot(da_rz, W_rz_T, g_h)                            # [dar, daz] W_hr,z^T  (B, H)
    if m.shape[0] > 0:
        _drop(g_h, m, g_h)                                    # through h_{t-1} * m
    _add_into(g_h, dh_prev)


@jit
def gru_backward(dh, dh_T, h, gates, hn, W_hh, reset_after, truncate, m=None, d=None):
    """Truncated BPTT through the GRU.

    Returns dax (T, B, 3H), dah (T, B, 3H), dh0 (B, H), norms (T+1,)."""
    T, B, H = dh.shape
    m, d = _or_empty(m, h[0]), _or_empty(d, dh)
    dropout, zoneout = m.shape[0] > 0, d.shape[0] > 0
    if _gru_feature_major(dh, dropout, zoneout):
        return _gru_backward_fm(dh, dh_T, h, gates, hn, W_hh, reset_after, truncate)
    dax = np.zeros_like(gates)
    dah = np.zeros_like(gates)
    g_h = np.zeros_like(h)
    W_rz, W_hn = _gru_split(W_hh, reset_after)
    W_hh_T, W_rz_T, W_hn_T = W_hh.T, W_rz.T, W_hn.T
    g = np.empty((B, H), dtype=dh.dtype)
    dax_t, dah_t = np.empty((B, 3 * H), dtype=dh.dtype), np.empty((B, 3 * H), dtype=dh.dtype)
    dh_prev, dan = np.empty((B, H), dtype=dh.dtype), np.empty((B, H), dtype=dh.dtype)
    d_rh, d_rhm = np.empty((B, H), dtype=dh.dtype), np.empty((B, H), dtype=dh.dtype)
    da_rz = np.empty((B, 2 * H), dtype=dh.dtype)
    h_in, keep = np.empty((B, H), dtype=dh.dtype), np.empty((B, H), dtype=dh.dtype)
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        first = max(s - k + 1, 1)
        g.fill(0.0)
        for t in range(s, first - 1, -1):
            if t == s or k == T:
                _add_loss_grad(dh, dh_T, t, g)
            _add_into(g_h[t], g)
            if zoneout:
                _zoneout_back(g, d[t - 1], keep)
            if dropout:
                _gru_step_back(g, h[t - 1], gates[t - 1], hn[t - 1], W_hh_T, W_rz_T, W_hn_T, reset_after,
                               _drop(h[t - 1], m, h_in), m, dax_t, dah_t, dh_prev, dan, d_rh, da_rz, d_rhm)
            else:
                _gru_step_back(g, h[t - 1], gates[t - 1], hn[t - 1], W_hh_T, W_rz_T, W_hn_T, reset_after,
                               h[t - 1], m, dax_t, dah_t, dh_prev, dan, d_rh, da_rz, d_rhm)
            if zoneout:
                _add_into(g, keep)                            # the identity path h_t = d_t h_{t-1} + ...
            _add_into(dax[t - 1], dax_t)
            _add_into(dah[t - 1], dah_t)
        _add_into(g_h[first - 1], g)
    return dax, dah, g_h[0].copy(), _step_norms(g_h)


# --------------------------------------------------------------------------- feature-major path
# At B >= FEATURE_MAJOR_BATCH (and without masks) the recurrences run feature-major: the state
# and gates of a step are held as (H, B) and (G*H, B) arrays, so the per-step product is
# W_hh^T (G*H, H) @ h_{t-1}^T (H, B) forward and W_hh (H, G*H) @ da_t^T (G*H, B) backward,
# with W_hh packed once per window ("packed products", below; in BLAS's hands this orientation
# already ran the 25 products of a window 1.4-1.8x faster than (B, H) @ (H, G*H) at B = 32,
# H 256-512, in float32, and the packed ones run 1.2x faster again). The elementwise loops
# then run over each gate block as one flat run of H*B entries (a (G*H, B) array is G blocks
# of H*B entries; a loop over one row's B entries is too short to vectorise well): the same
# steps as above, entry k of a block standing for [b, j].
# The arrays the kernels take and return keep their (T, B, .) layout: each step's slices are
# transposed in and out in 8 x 8 blocks, and at B = 32 that gives back much of the products'
# gain for the tanh RNN and the GRU (README, "Speed"). The LSTM's pair lstm_forward_fm /
# lstm_backward_fm keeps its caches (c^T, gates^T) feature-major from one pass to the other,
# so only x W_xh and h go through transposes forward and dh and da backward (10 H B entries a
# step instead of 20); without truncation its backward takes each step's gradient norm as it
# passes instead of storing the gradients. The cells call that pair where `feature_major` says
# so. Same results as the (B, H) steps up to the order of the products' sums.

# Both float dtypes since the per-step products run on packed W_hh ("packed products", below):
# in float64 too they then beat BLAS's (B, H) orientation, by up to 1.3x for the LSTM at B 32,
# H 64-128. The GRU's unsplit float64 window is the exception: its per-step transposes of gates
# and hn (twice the bytes of float32) cost more than the product gains (0.85x at H 128, one
# thread), so it keeps the (B, H) steps unless the window is split across threads (where it
# gains 1.2x at H 128): `_gru_feature_major`, GRU_UNSPLIT_DTYPES.
FEATURE_MAJOR_BATCH = 8
FEATURE_MAJOR_DTYPES = ("float32", "float64")
GRU_UNSPLIT_DTYPES = ("float32",)


def _feature_major(x, dropout, zoneout):
    """Whether a call on the (T, B, .) array x runs feature-major (jitted code only): a dtype of
    FEATURE_MAJOR_DTYPES, a batch of FEATURE_MAJOR_BATCH or more, no masks."""
    raise NotImplementedError


def feature_major(dtype, batch, hidden=0):
    """Whether a window of `batch` streams of `dtype` and `hidden` units without masks runs
    feature-major here (the rule of `_feature_major`, for Python callers): the cells then call
    the LSTM's lstm_forward_fm / lstm_backward_fm pair, which keep the caches in that layout
    between the two passes. A window the run's threads split (pool.parts(hidden) > 1) runs in
    the (B, .) layout instead ("split across threads"): the cells then call lstm_forward and
    lstm_backward, or the token pair."""
    return np.dtype(dtype).name in FEATURE_MAJOR_DTYPES and batch >= FEATURE_MAJOR_BATCH and pool.parts(hidden) == 1


def _split_parts(x, hidden, masks):
    """How many parts a window of x (T, B, .) runs in: 1 unless it would run feature-major
    without masks (the recurrent dropout and zoneout arguments, None or empty: off), else
    pool.parts(hidden) (1 unless the pool is shared and the units are enough)."""
    if any(m is not None and m.size for m in masks[:2]) or not feature_major(x.dtype, x.shape[1]):
        return 1
    return pool.parts(hidden)


def _whole(truncate, T):
    return truncate <= 0 or truncate >= T


@overload(_feature_major)
def _feature_major_typed(x, dropout, zoneout):
    if str(x.dtype) not in FEATURE_MAJOR_DTYPES:
        return lambda x, dropout, zoneout: False
    return lambda x, dropout, zoneout: x.shape[1] >= FEATURE_MAJOR_BATCH and not dropout and not zoneout


def _gru_feature_major(x, dropout, zoneout):
    """_feature_major for the GRU's unsplit drivers: only in GRU_UNSPLIT_DTYPES (jitted code only)."""
    raise NotImplementedError


@overload(_gru_feature_major)
def _gru_feature_major_typed(x, dropout, zoneout):
    if str(x.dtype) not in GRU_UNSPLIT_DTYPES:
        return lambda x, dropout, zoneout: False
    return lambda x, dropout, zoneout: _feature_major(x, dropout, zoneout)


@jit
def _transpose_into(dst, src):
    """dst (n, m) = src (m, n)^T, in 8 x 8 blocks (fixed trip counts: LLVM turns them into shuffles)."""
    m, n = src.shape
    m8, n8 = m - m % 8, n - n % 8
    for i0 in range(0, m8, 8):
        for j0 in range(0, n8, 8):
            for j in range(8):
                for i in range(8):
                    dst[j0 + j, i0 + i] = src[i0 + i, j0 + j]
        for j in range(n8, n):
            for i in range(i0, i0 + 8):
                dst[j, i] = src[i, j]
    for i in range(m8, m):
        for j in range(n):
            dst[j, i] = src[i, j]


@jit
def _add_transposed(dst, src):
    """dst (n, m) += src (m, n)^T, in 8 x 8 blocks."""
    m, n = src.shape
    m8, n8 = m - m % 8, n - n % 8
    for i0 in range(0, m8, 8):
        for j0 in range(0, n8, 8):
            for j in range(8):
                for i in range(8):
                    dst[j0 + j, i0 + i] += src[i0 + i, j0 + j]
        for j in range(n8, n):
            for i in range(i0, i0 + 8):
                dst[j, i] += src[i, j]
    for i in range(m8, m):
        for j in range(n):
            dst[j, i] += src[i, j]


@jit
def _add_loss_grad_fm(dh, dh_T, s, gT):
    """_add_loss_grad into a feature-major gT (H, B)."""
    _add_transposed(gT, dh[s - 1])
    if s == dh.shape[0]:
        _add_transposed(gT, dh_T)


@jit
def _flat(x):
    """A C-contiguous (m, n) array as a (1, m n) view: the (B, .) helpers' loops run along it."""
    return x.reshape(1, x.shape[0] * x.shape[1])


@jit
def _rows(x, r0, r1):
    """Rows r0 <= r < r1 of a C-contiguous (R, B) array as one flat run: a gate block of a
    (G H, B) array (rows g H .. g H + H), or a part's entries of one (its units j0 <= j < j1
    of block g are rows g H + j0 .. g H + j1)."""
    return x[r0:r1].reshape(-1)


@jit
def _add_row_bias(a, b):
    """a[j, :] += b[j] for a (rows, B) feature-major array."""
    for j in range(a.shape[0]):
        for k in range(a.shape[1]):
            a[j, k] += b[j]


@jit
def _transposed(x):
    """x (m, n)^T as a new C-contiguous (n, m) array."""
    out = np.empty((x.shape[1], x.shape[0]), dtype=x.dtype)
    _transpose_into(out, x)
    return out


# -- packed products
# The per-step product of a feature-major window is out (M, B) = A (M, K) @ x (K, B) with the
# same A at every step (W_hh^T forward, W_hh backward) and B small. BLAS packs A again at each
# call; here A is packed once per window into panels of MR = 6 rows, each stored k-major
# (panel p holds A[6p + r, k] at k * 6 + r), and a tile of 6 rows x 16 columns (float32; 8 in
# float64) of `out` is summed in twelve vector registers over k: per k, two vector loads of x's
# row k, six broadcasts of the panel's column k, twelve fused multiply-adds. LLVM cannot be led
# to keep such a tile in registers from loops written in Python (it spills the accumulators each
# k), so `_tile` writes the loop in LLVM's IR itself. Timed alone on one thread at B = 32 in
# float32, (1020, 512) and (510, 2048) ran at 98-100 GFLOP/s against OpenBLAS's 79-81 (and its
# 92-95 on a 1024^3 product); float64 45 against 34-35. Sums run over k in order, one rounding
# per term (fused), so the results differ from BLAS's only by rounding.
MR = 6                                     # rows of a panel and of a tile
ROWS, PANEL_VECTORS = 4, 3                 # panels of columns (below): rows of a tile, vectors of a panel


def _make_tile(vectors, panel_columns=False):
    """An intrinsic computing a tile of a product in registers (see above): for rows r < rows
    and the `vectors` SIMD vectors of columns from the tile's first,
        out[r, j] = sum_k panel[k MR + r] x[k, j]       (x's rows `ld` apart), or with panel_columns
        out[r, j] = sum_k A[r, k] panel[k NR + j]       (A's rows `ld` apart, read as they are; ROWS
                                                         rows, and panels of NR columns, "panels of columns"),
    over k < depth."""
    mr = ROWS if panel_columns else MR

    @intrinsic
    def tile(typingctx, S, s0, V, v0, ld, out, o0, ldo, depth, rows):
        if S.dtype not in (types.float32, types.float64):
            return None
        sig = types.void(S, types.intp, V, types.intp, types.intp, out, types.intp, types.intp, types.intp,
                         types.intp)

        def codegen(context, builder, signature, args):
            S_a, s0, V_a, v0, ld, out_a, o0, ldo, depth, rows = args
            fty = context.get_value_type(signature.args[0].dtype)
            width = 8 if signature.args[0].dtype == types.float32 else 4      # one 256-bit vector
            vty = ir.VectorType(fty, width)
            idx = s0.type

            def const(n):
                return ir.Constant(idx, n)

            def data(i, a, offset):
                return builder.gep(context.make_array(signature.args[i])(context, builder, a).data, [offset])

            def vector_at(ptr, offset):
                return builder.bitcast(builder.gep(ptr, [offset]), vty.as_pointer())

            Sp, Vp, O = data(0, S_a, s0), data(2, V_a, v0), data(5, out_a, o0)
            if panel_columns:             # A's row r (rows past `rows` read row 0; their sums are not stored)
                starts = [builder.gep(Sp, [builder.mul(builder.select(builder.icmp_signed("<", const(r), rows),
                                                                      const(r), const(0)), ld)])
                          for r in range(mr)]
            zero = ir.Constant(vty, [ir.Constant(fty, 0.0)] * width)
            acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(vectors)] for _ in range(mr)]
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                                 f"llvm.fma.v{width}{'f32' if width == 8 else 'f64'}")
            undef = ir.Constant(vty, ir.Undefined)
            splat = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
            with cgutils.for_range(builder, depth) as loop:        # the accumulators become registers
                k = loop.index
                row_k = builder.mul(k, const(PANEL_VECTORS * width) if panel_columns else ld)
                xs = [builder.load(vector_at(Vp, builder.add(row_k, const(v * width))), align=1)
                      for v in range(vectors)]
                col = None if panel_columns else builder.mul(k, const(MR))
                for r in range(mr):
                    a = builder.load(builder.gep(starts[r], [k]) if panel_columns
                                     else builder.gep(Sp, [builder.add(col, const(r))]))
                    a = builder.shuffle_vector(builder.insert_element(undef, a, ir.Constant(ir.IntType(32), 0)),
                                               undef, splat)
                    for v in range(vectors):
                        builder.store(builder.call(fma, [a, xs[v], builder.load(acc[r][v])]), acc[r][v])
            for r in range(mr):
                with builder.if_then(builder.icmp_signed("<", const(r), rows)):
                    row = builder.mul(const(r), ldo)
                    for v in range(vectors):
                        builder.store(builder.load(acc[r][v]),
                                      vector_at(O, builder.add(row, const(v * width))), align=1)
            return context.get_dummy_value()
        return sig, codegen
    return tile


_tile2, _tile1 = _make_tile(2), _make_tile(1)
_row_tile3, _row_tile2, _row_tile1 = _make_tile(3, True), _make_tile(2, True), _make_tile(1, True)


@jit
def _packed_size(M, K):
    """Entries of A (M, K) packed: whole panels of MR rows (the last one padded with zeros)."""
    return (M + MR - 1) // MR * MR * K


@jit
def _pack_rows(P, q0, A, r0, m):
    """Packed rows q0 .. q0 + m of P (of K = A.shape[1] columns) = rows r0 .. r0 + m of A."""
    K = A.shape[1]
    for q in range(q0 // MR * MR, q0 + m, MR):               # panel by panel, P in order
        lo, hi = max(q, q0), min(q + MR, q0 + m)
        Q, r = P[q * K:(q + MR) * K], r0 + q - q0
        if hi - lo == MR:                                     # a whole panel: fixed trip counts
            for k in range(K):
                for i in range(MR):
                    Q[k * MR + i] = A[r + i, k]
        else:
            for k in range(K):
                for i in range(lo - q, hi - q):
                    Q[k * MR + i] = A[r + i, k]


@jit
def _pack_columns(P, q0, A, c0, m):
    """Packed rows q0 .. q0 + m of P (of K = A.shape[0] columns) = columns c0 .. c0 + m of A:
    the rows of A^T (a view; the same loops read A by columns)."""
    _pack_rows(P, q0, A.T, c0, m)


@jit
def _packed_rows(A, r0, r1):
    """Rows r0 .. r1 of A, packed (a new array)."""
    P = np.zeros(_packed_size(r1 - r0, A.shape[1]), dtype=A.dtype)
    _pack_rows(P, 0, A, r0, r1 - r0)
    return P


@jit
def _packed_columns(A, c0, c1):
    """Columns c0 .. c1 of A as the rows of a packed operand (a new array)."""
    P = np.zeros(_packed_size(c1 - c0, A.shape[0]), dtype=A.dtype)
    _pack_columns(P, 0, A, c0, c1 - c0)
    return P


@jit
def _pack_gate_columns(P, W, G, j0, j1):
    """Packed rows g m + i of P (m = j1 - j0; g < G, i < m) = column g H + j0 + i of W (K, G H):
    units j0 .. j1's rows of W^T, gate block by gate block."""
    H, m = W.shape[1] // G, j1 - j0
    for g in range(G):
        _pack_columns(P, g * m, W, g * H + j0, m)


@jit
def _packed_dot(P, M, x, out):
    """out (M, N) = A x for A (M, K) packed in P and C-contiguous x (K, N), out (M, N)."""
    K, N = x.shape
    xf, of = x.reshape(-1), out.reshape(-1)
    width = 64 // P.itemsize                                  # two vectors' columns
    for p0 in range(0, M, MR):
        rows = min(MR, M - p0)
        base = p0 * K
        j = 0
        while j + width <= N:
            _tile2(P, base, xf, j, N, of, p0 * N + j, N, K, rows)
            j += width
        if j + width // 2 <= N:
            _tile1(P, base, xf, j, N, of, p0 * N + j, N, K, rows)
            j += width // 2
        for r in range(rows):                                 # the last columns, fewer than a vector
            for jj in range(j, N):
                s = 0.0
                for k in range(K):
                    s += P[base + k * MR + r] * xf[k * N + jj]
                of[(p0 + r) * N + jj] = s


# -- panels of columns
# The (B, .) twin of the packed products, for the LSTM's windows split across threads (below):
# a step's product out (B, N) = A (B, K) @ W (K, N), A the step's h_{t-1} or da_{t+1} as the
# (T, B, .) arrays hold it and W the same all window, packed once into panels of NR = 3
# vectors' columns (24 in float32, 12 in float64), each stored k-major (panel q holds
# W[k, q NR + j] at k NR + j). A tile of ROWS = 4 rows of A by one panel is summed in twelve
# vector registers: per k, three vector loads of the panel, four broadcasts of A's column k
# (A is read as it is: a step's B rows are few and already in cache), twelve fused
# multiply-adds. Timed alone on one thread at B = 32 in float32, (512, 1024) and (2048, 256)
# panels ran at 98-100 GFLOP/s, as fast as the packed tiles above; a window in this layout
# reads and writes the (T, B, .) arrays as they are, with no per-step transposes.

def _panel_width(P):
    """NR: the columns of a panel of P's dtype, a constant of the compiled code (jitted code only)."""
    raise NotImplementedError


@overload(_panel_width)
def _panel_width_typed(P):
    NR = PANEL_VECTORS * 256 // P.dtype.bitwidth
    return lambda P: NR


@jit
def _panels_size(N, K, W):
    """Entries of W (K, N) packed in panels of columns (the last one padded with zeros)."""
    NR = _panel_width(W)
    return (N + NR - 1) // NR * NR * K


@jit
def _pack_panels(P, A, c0, n):
    """P (zeros, _panels_size(n, K)) = columns c0 .. c0 + n of A (K, .), in panels of columns,
    written panel by panel in order. A C-contiguous A is read a run of NR per row (whole panels
    copy runs of the constant NR, which LLVM turns into vector moves); a transposed view in
    8 x 8 blocks."""
    K = A.shape[0]
    NR = _panel_width(P)
    whole = n - n % NR
    if A.strides[1] == A.itemsize:
        for q in range(0, whole, NR):
            for k in range(K):
                for j in range(NR):
                    P[q * K + k * NR + j] = A[k, c0 + q + j]
        for k in range(K):
            for j in range(whole, n):
                P[whole * K + k * NR + j - whole] = A[k, c0 + j]
    else:
        K8 = K - K % 8
        for q in range(0, n, NR):
            w = min(NR, n - q)
            for j0 in range(0, w - w % 8, 8):                 # 8 x 8 blocks: LLVM's shuffles
                for k0 in range(0, K8, 8):
                    for kk in range(8):
                        for jj in range(8):
                            P[q * K + (k0 + kk) * NR + j0 + jj] = A[k0 + kk, c0 + q + j0 + jj]
                for k in range(K8, K):
                    for jj in range(8):
                        P[q * K + k * NR + j0 + jj] = A[k, c0 + q + j0 + jj]
            for j in range(w - w % 8, w):
                for k in range(K):
                    P[q * K + k * NR + j] = A[k, c0 + q + j]


@jit
def _panel_dot(A, P, N, out, o0, ldo):
    """out[o0 + r ldo + j] = (A W)[r, j] for C-contiguous A (M, K) and W (K, N) packed in P by
    _pack_panels; out is flat (a (., ldo) array's entries)."""
    M, K = A.shape
    af = A.reshape(-1)
    NR = _panel_width(P)
    width = NR // PANEL_VECTORS
    for q in range(0, N, NR):
        w = min(NR, N - q)
        vectors = w // width
        base = q * K
        for r0 in range(0, M, ROWS):
            rows = min(ROWS, M - r0)
            o = o0 + r0 * ldo + q
            if vectors == 3:
                _row_tile3(af, r0 * K, P, base, K, out, o, ldo, K, rows)
            elif vectors == 2:
                _row_tile2(af, r0 * K, P, base, K, out, o, ldo, K, rows)
            elif vectors == 1:
                _row_tile1(af, r0 * K, P, base, K, out, o, ldo, K, rows)
            for r in range(rows):                             # the last columns, fewer than a vector
                for j in range(vectors * width, w):
                    s = 0.0
                    for k in range(K):
                        s += af[(r0 + r) * K + k] * P[base + k * NR + j]
                    out[o + r * ldo + j] = s


# -- tanh RNN

@jit
def _tanh_step_fm(xwT_t, hT_prev, W_hhT, act, hT_t):
    """_tanh_step feature-major: hT_t = f(xw_t^T + W_hh^T h_{t-1}^T), (H, B); W_hhT packed."""
    _packed_dot(W_hhT, hT_t.shape[0], hT_prev, hT_t)         # W_hh^T h_{t-1}^T  (H, B)
    _add_activate(_flat(xwT_t), _flat(hT_t), act)


@jit
def _tanh_forward_fm(xw, h0, W_hh, act):
    T, B, H = xw.shape
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    W_hhT = _packed_columns(W_hh, 0, H)                       # packed once per window
    scratch = np.empty((3, H, B), dtype=xw.dtype)
    xwT, hT, hT_prev = scratch[0], scratch[1], scratch[2]
    _copy_into(h[0], h0)
    _transpose_into(hT_prev, h0)
    for t in range(1, T + 1):
        _transpose_into(xwT, xw[t - 1])
        _tanh_step_fm(xwT, hT_prev, W_hhT, act, hT)
        _transpose_into(h[t], hT)
        hT, hT_prev = hT_prev, hT
    return h


@jit
def _tanh_step_back_fm(gT, hT_t, W_hh, act, daT):
    """_tanh_step_back feature-major: daT, then gT <- dh_{t-1}^T, (H, B); W_hh packed."""
    _times_activate_grad(_flat(gT), _flat(hT_t), act, _flat(daT))   # through f
    _packed_dot(W_hh, gT.shape[0], daT, gT)                  # dh_{t-1}^T = W_hh da_t^T  (H, B)


@jit
def _tanh_backward_fm(dh, dh_T, h, W_hh, act, truncate):
    T, B, H = dh.shape
    da = np.zeros_like(dh)
    g_hT = np.zeros((T + 1, H, B), dtype=dh.dtype)          # the norms do not care about the layout
    scratch = np.empty((3, H, B), dtype=dh.dtype)
    gT, daT, hT_t = scratch[0], scratch[1], scratch[2]
    W_packed = _packed_rows(W_hh, 0, H)                       # packed once per window
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        first = max(s - k + 1, 1)
        gT.fill(0.0)
        for t in range(s, first - 1, -1):
            if t == s or k == T:
                _add_loss_grad_fm(dh, dh_T, t, gT)
            _add_into(g_hT[t], gT)
            _transpose_into(hT_t, h[t])
            _tanh_step_back_fm(gT, hT_t, W_packed, act, daT)
            _add_transposed(da[t - 1], daT)
        _add_into(g_hT[first - 1], gT)
    return da, _transposed(g_hT[0]), _step_norms(g_hT)


# -- LSTM

@jit
def _lstm_cell_run(x_i, x_f, x_g, x_o, a_i, a_f, a_g, a_o, c_prev, c, h, g_i, g_f, g_g, g_o):
    """The LSTM's gates at one step over a run of q entries of each gate block (a whole window's
    H B, or one row's m units of a part): x_*, a_* the blocks of x W_xh and h W_hh; c_prev, c,
    h, and the gates g_i, g_f, g_g, g_o, q entries each. Every block its own array: with the
    blocks as offsets into one array the loop ran 1.25-1.55x longer (LLVM's checks that the
    writes miss the reads grow with the offsets it cannot see)."""
    for k in range(c.size):
        i = _sigmoid(x_i[k] + a_i[k])
        f = _sigmoid(x_f[k] + a_f[k])
        g = _tanh(x_g[k] + a_g[k])
        o = _sigmoid(x_o[k] + a_o[k])
        c[k] = f * c_prev[k] + i * g
        h[k] = o * _tanh(c[k])
        g_i[k], g_f[k], g_g[k], g_o[k] = i, f, g, o


@jit
def _lstm_step_fm(xwT_t, hT_prev, cT_prev, W_hhT, hT_t, cT_t, gT_t, aT):
    """_lstm_step feature-major: hT_t, cT_t (H, B), gT_t (4H, B) = i, f, g, o; W_hhT is W_hh^T
    packed, aT (4H, B) scratch for the product."""
    H = hT_t.shape[0]
    _packed_dot(W_hhT, aT.shape[0], hT_prev, aT)             # W_hh^T h_{t-1}^T  (4H, B)
    _lstm_cell_run(_rows(xwT_t, 0, H), _rows(xwT_t, H, 2 * H), _rows(xwT_t, 2 * H, 3 * H), _rows(xwT_t, 3 * H, 4 * H),
                   _rows(aT, 0, H), _rows(aT, H, 2 * H), _rows(aT, 2 * H, 3 * H), _rows(aT, 3 * H, 4 * H),
                   cT_prev.reshape(-1), cT_t.reshape(-1), hT_t.reshape(-1),
                   _rows(gT_t, 0, H), _rows(gT_t, H, 2 * H), _rows(gT_t, 2 * H, 3 * H), _rows(gT_t, 3 * H, 4 * H))


@jit
def lstm_forward_fm(xw, h0, c0, W_hh):
    """lstm_forward keeping its caches feature-major: h (T+1, B, H) as there, c^T (T+1, H, B)
    and gates^T (T, 4H, B), which lstm_backward_fm reads as they are (no per-step transposes of
    the caches on either pass)."""
    T, B, G4 = xw.shape
    H = G4 // 4
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    cT = np.empty((T + 1, H, B), dtype=xw.dtype)
    gT = np.empty((T, G4, B), dtype=xw.dtype)
    W_hhT = _packed_columns(W_hh, 0, G4)                      # packed once per window
    scratch = np.empty((2, G4, B), dtype=xw.dtype)
    xwT, aT = scratch[0], scratch[1]
    scratch = np.empty((2, H, B), dtype=xw.dtype)
    hT, hT_prev = scratch[0], scratch[1]
    _copy_into(h[0], h0)
    _transpose_into(hT_prev, h0)
    _transpose_into(cT[0], c0)
    for t in range(1, T + 1):
        _transpose_into(xwT, xw[t - 1])
        _lstm_step_fm(xwT, hT_prev, cT[t - 1], W_hhT, hT, cT[t], gT[t - 1], aT)
        _transpose_into(h[t], hT)
        hT, hT_prev = hT_prev, hT
    return h, cT, gT


@jit
def _swap_last_two(x):
    """x (N, m, n) as a new (N, n, m) array, slice by slice."""
    out = np.empty((x.shape[0], x.shape[2], x.shape[1]), dtype=x.dtype)
    for t in range(x.shape[0]):
        _transpose_into(out[t], x[t])
    return out


@jit
def _lstm_forward_fm(xw, h0, c0, W_hh):
    """lstm_forward's feature-major run with its caches in the (T, B, .) layout of the API."""
    h, cT, gT = lstm_forward_fm(xw, h0, c0, W_hh)
    return h, _swap_last_two(cT), _swap_last_two(gT)


@jit
def _lstm_cell_back_run(g_h, g_c, g_c_total, c_prev, c_t, g_i, g_f, g_g, g_o, da_i, da_f, da_g, da_o):
    """_lstm_step_back's gate arithmetic over q entries of each block (a whole window's H B, or
    one part's m B): from g_h, g_c (dc_t in, dc_{t-1} out), the caches and gates, into
    g_c_total and the four blocks of da."""
    for k in range(g_h.size):
        i, f, g, o = g_i[k], g_f[k], g_g[k], g_o[k]
        tanh_c = _tanh(c_t[k])
        do = g_h[k] * tanh_c                                  # h_t = o * tanh(c_t)
        gc = g_c[k] + g_h[k] * o * (1.0 - tanh_c * tanh_c)    # backprop into c_t through tanh
        di, dg, df = gc * g, gc * i, gc * c_prev[k]           # c_t = f c_{t-1} + i g
        g_c[k] = gc * f                                       # dc_{t-1}
        g_c_total[k] = gc
        da_i[k] = di * i * (1.0 - i)                          # through the sigmoids and tanh
        da_f[k] = df * f * (1.0 - f)
        da_g[k] = dg * (1.0 - g * g)
        da_o[k] = do * o * (1.0 - o)


@jit
def _lstm_step_back_fm(gT_h, gT_c, cT_prev, cT_t, gT_t, W_hh, daT, gT_c_total):
    """_lstm_step_back feature-major: daT (4H, B), gT_c_total, then gT_h <- dh_{t-1}^T, gT_c <- dc_{t-1}^T;
    W_hh packed."""
    H = gT_h.shape[0]
    _lstm_cell_back_run(gT_h.reshape(-1), gT_c.reshape(-1), gT_c_total.reshape(-1), cT_prev.reshape(-1),
                       cT_t.reshape(-1), _rows(gT_t, 0, H), _rows(gT_t, H, 2 * H), _rows(gT_t, 2 * H, 3 * H),
                       _rows(gT_t, 3 * H, 4 * H), _rows(daT, 0, H), _rows(daT, H, 2 * H), _rows(daT, 2 * H, 3 * H),
                       _rows(daT, 3 * H, 4 * H))
    _packed_dot(W_hh, H, daT, gT_h)                           # dh_{t-1}^T = W_hh da_t^T  (H, B)


@jit
def lstm_backward_fm(dh, dh_T, dc_T, cT, gT, W_hh, truncate):
    """lstm_backward from lstm_forward_fm's caches c^T (T+1, H, B) and gates^T (T, 4H, B); the
    same results in the same layouts as lstm_backward. Without truncation each step's gradients
    are final when the one walk passes them, so their norms are taken there and the gradients
    are not stored; truncated walks add into the same steps and keep them."""
    T, B, H = dh.shape
    k, last = _walks(T, truncate)
    whole = k == T
    da = np.empty((T, B, 4 * H), dtype=dh.dtype) if whole else np.zeros((T, B, 4 * H), dtype=dh.dtype)
    kept = 0 if whole else T + 1
    g_hT = np.zeros((kept, H, B), dtype=dh.dtype)
    g_cT = np.zeros((kept, H, B), dtype=dh.dtype)
    sq_h, sq_c = np.zeros(T + 1), np.zeros(T + 1)            # without truncation: squared norms
    scratch = np.empty((3, H, B), dtype=dh.dtype)
    ghT, gcT, gcT_total = scratch[0], scratch[1], scratch[2]
    daT = np.empty((4 * H, B), dtype=dh.dtype)
    W_packed = _packed_rows(W_hh, 0, H)                       # packed once per window
    for s in range(T, last, -1):
        first = max(s - k + 1, 1)
        ghT.fill(0.0)
        gcT.fill(0.0)
        if s == T:
            _add_transposed(gcT, dc_T)                        # the final cell state's gradient
        for t in range(s, first - 1, -1):
            if t == s or whole:
                _add_loss_grad_fm(dh, dh_T, t, ghT)
            if whole:
                sq_h[t] = _sum_squares(ghT)
            else:
                _add_into(g_hT[t], ghT)
            _lstm_step_back_fm(ghT, gcT, cT[t - 1], cT[t], gT[t - 1], W_packed, daT, gcT_total)
            if whole:
                sq_c[t] = _sum_squares(gcT_total)
                _transpose_into(da[t - 1], daT)
            else:
                _add_into(g_cT[t], gcT_total)
                _add_transposed(da[t - 1], daT)
        if whole:
            sq_h[0], sq_c[0] = _sum_squares(ghT), _sum_squares(gcT)
        else:
            _add_into(g_hT[first - 1], ghT)
            _add_into(g_cT[first - 1], gcT)
    if whole:
        return da, _transposed(ghT), _transposed(gcT), np.sqrt(sq_h).astype(dh.dtype), np.sqrt(sq_c).astype(dh.dtype)
    return da, _transposed(g_hT[0]), _transposed(g_cT[0]), _step_norms(g_hT), _step_norms(g_cT)


@jit
def _lstm_backward_fm(dh, dh_T, dc_T, h, c, gates, W_hh, truncate):
    """lstm_backward's feature-major run from caches in the (T, B, .) layout of the API."""
    return lstm_backward_fm(dh, dh_T, dc_T, _swap_last_two(c), _swap_last_two(gates), W_hh, truncate)


# -- split across threads
# When the run's threads are one pool (rnnvanish.kernels.pool: SciPy's OpenBLAS runs its jobs on
# Numba's threads), a window without masks splits its H units into `parts` runs, one per
# thread: part p owns units j0 <= j < j1. Each step is one parallel loop whose end is the
# step's barrier: step t reads every unit of h_{t-1} (forward) or of step t+1's gradient
# (backward), which every part wrote the step before. Each part's share of the product runs
# on its share of W_hh, packed once per window, never in BLAS (whose jobs, from inside a
# parallel loop, would find no thread free): the gate loops and norms run on every thread,
# not on one. The same steps as the unsplit kernels, in the same order within each unit, and
# the same sums (each product's entry is one sum over k in order, split or not).
# The tanh RNN splits its feature-major twin: part p owns the rows j of its units, computes
# its rows of W_hh^T h_{t-1}^T (its rows of W_hh^T packed into one (m, H) block, "packed
# products"), and transposes its rows in and out of the (T, B, .) arrays; backward it takes
# its rows of dh_t^T = W_hh da_{t+1}^T (da^T kept in two buffers, so that step t writes one
# while no part still reads the other). The LSTM and the reset-after GRU split in the (B, .)
# layout instead, with no transposes (below). Truncated walks keep the unsplit backward; the
# reset-before GRU, whose step has a second product that reads every unit's r h_{t-1}, keeps
# the unsplit kernels.

pjit = njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath={"contract"})


@jit
def _part(H, parts, p):
    """(j0, j1): the units of part p of `parts`."""
    return p * H // parts, (p + 1) * H // parts


@pjit
def _packed_parts(W_hh, G, parts, transposed):
    """Each part's rows of W_hh (H, G H), packed once per window, (parts, .): of W_hh^T with
    `transposed` (the forward's G m rows of part p, gate block by gate block), else of W_hh
    (the backward's m rows); the parts pack on their own threads."""
    H = W_hh.shape[0]
    most = (H + parts - 1) // parts                          # the largest part's units
    size = _packed_size(G * most, H) if transposed else _packed_size(most, G * H)
    W_parts = np.zeros((parts, size), dtype=W_hh.dtype)
    for p in prange(parts):
        j0, j1 = _part(H, parts, p)
        if transposed:
            _pack_gate_columns(W_parts[p], W_hh, G, j0, j1)
        else:
            _pack_rows(W_parts[p], 0, W_hh, j0, j1 - j0)
    return W_parts


@jit
def _put(dst, r, c, v, add):
    """dst[r, c] = v, or += v with `add` (a loop-invariant choice: LLVM takes it outside the loops)."""
    if add:
        dst[r, c] += v
    else:
        dst[r, c] = v


@jit
def _transpose_columns(dst, dc, src, sc, k, add, rows=None):
    """dst[j, dc + i] = src[i, sc + j] (+= with `add`) for every row i of src and j < k: a run of
    k of src's columns, transposed into a run of dst's columns, in 8 x 8 blocks. It takes the
    parent arrays, not views of the runs, so that LLVM knows the strides and turns the blocks
    into shuffles: dst (m, n) = src[:, c0:c0 + m]^T is (dst, 0, src, c0, m, .), and
    dst[:, c0:c0 + m] = src (m, n)^T is (dst, c0, src, 0, n, .). Given `rows` (n,), row i is
    src[rows[i]] (a gather: the input term of token ids from the rows of W_xh + b)."""
    n = src.shape[0] if rows is None else rows.shape[0]
    n8, k8 = n - n % 8, k - k % 8
    for i0 in range(0, n8, 8):
        for j0 in range(0, k8, 8):
            for j in range(8):
                for i in range(8):
                    _put(dst, j0 + j, dc + i0 + i, src[_row(rows, i0 + i), sc + j0 + j], add)
        for j in range(k8, k):
            for i in range(i0, i0 + 8):
                _put(dst, j, dc + i, src[_row(rows, i), sc + j], add)
    for i in range(n8, n):
        for j in range(k):
            _put(dst, j, dc + i, src[_row(rows, i), sc + j], add)


def _row(rows, i):
    """Row i of a gather: rows[i], or i itself when rows is None (jitted code only)."""
    raise NotImplementedError


@overload(_row)
def _row_typed(rows, i):
    if isinstance(rows, types.NoneType):
        return lambda rows, i: i
    return lambda rows, i: rows[i]


@jit
def _part_dh(t, dh, dh_T, W_part, j0, j1, daT_next, g):
    """g (m, B) = units j0 <= j < j1's rows of dh_t^T: W_hh da_{t+1}^T (W_part: their rows of
    W_hh, packed; none at t = T) plus the loss's gradient dh[t-1] (and dh_T at t = T).
    Returns their squared norm."""
    T = dh.shape[0]
    if t < T:
        _packed_dot(W_part, j1 - j0, daT_next, g)            # dh_t^T = W_hh da_{t+1}^T, the part's rows
    _transpose_columns(g, 0, dh[t - 1], j0, j1 - j0, True)
    if t == T:
        _transpose_columns(g, 0, dh_T, j0, j1 - j0, True)
    return _sum_squares(g)


@jit
def _columns_into(g, src, j0, add):
    """g (B, m) = columns j0 .. j0 + m of the C-contiguous src (B, .), or += with `add` (src's
    rows indexed directly: a view of its columns would hide their unit stride from LLVM)."""
    for b in range(g.shape[0]):
        for k in range(g.shape[1]):
            if add:
                g[b, k] += src[b, j0 + k]
            else:
                g[b, k] = src[b, j0 + k]


@jit
def _into_columns(dst, j0, g):
    """Columns j0 .. j0 + m of dst (B, .) = g (B, m)."""
    for b in range(g.shape[0]):
        for k in range(g.shape[1]):
            dst[b, j0 + k] = g[b, k]


@jit
def _part_dh_rows(t, dh, dh_T, da, W_part, j0, j1, g):
    """g (B, m) = units j0 <= j < j1's columns of dh_t: da_{t+1} W_hh^T (W_part: their rows of
    W_hh, in panels; none at t = T) plus the loss's gradient dh[t-1] (and dh_T at t = T).
    Returns their squared norm."""
    T = dh.shape[0]
    if t < T:
        _panel_dot(da[t], W_part, j1 - j0, g.reshape(-1), 0, j1 - j0)   # dh_t = da_{t+1} W_hh^T
        _columns_into(g, dh[t - 1], j0, True)
    else:
        _columns_into(g, dh[t - 1], j0, False)
        _columns_into(g, dh_T, j0, True)
    return _sum_squares(g)


# The LSTM's windows split in the (B, .) layout ("panels of columns"): forward, part p
# computes its units' columns of each gate block of h_{t-1} W_hh (its columns of W_hh, packed
# once per window), their gates, c_t and h_t, straight into the (T, B, .) arrays lstm_forward
# returns; backward, its columns of dh_t = da_{t+1} W_hh^T (its rows of W_hh, packed), then its
# units' columns of da_t and dc_{t-1}. No step transposes anything, so the caches stay in the
# layout of the API (the feature-major pair is not used while the window splits; `feature_major`
# says so). Whole training steps against the feature-major split it replaced (LSTM, B 32, two
# threads, the input side's savings below included): 1-3 % faster at H 512 float32, 5 % on the
# flagship run (H 256, T 64), 4-9 % at H 64-128. The tanh RNN's split measured no faster this
# way at H 512 and 7 % slower at H 64 (its per-row loops are too short), so it keeps its
# feature-major split. The GRU's (below) was 3 % faster at H 512 float32 and 15 % at H 64
# float32 and H 128 float64 (whole training steps, B 32, two threads).
# The input term x_t W_xh + b of stream b at step t is row ids[t, b] of a table X: the rows of
# xw (T B, 4H) in order, or, for token inputs, the rows of W_xh + b themselves (input_rows is
# then never run). With token inputs the backward adds each row of da_t into row ids[t, b] of
# dW_xh while the row is in cache (embed_backward's sum, its own units' columns on each thread).

@pjit
def _panel_parts(W_hh, G, parts, forward):
    """Each part's share of W_hh (H, G H) in panels of columns, (W_parts (parts, .), block):
    forward, units j0 .. j1's columns of gate block g at g block; backward, their rows (the
    columns of W_hh^T). The parts pack on their own threads."""
    H = W_hh.shape[0]
    most = (H + parts - 1) // parts                          # the largest part's units
    block = _panels_size(most, H if forward else G * H, W_hh)
    W_parts = np.zeros((parts, G * block if forward else block), dtype=W_hh.dtype)
    for p in prange(parts):
        j0, j1 = _part(H, parts, p)
        if forward:
            for g in range(G):
                _pack_panels(W_parts[p, g * block:(g + 1) * block], W_hh, g * H + j0, j1 - j0)
        else:
            _pack_panels(W_parts[p], W_hh.T, j0, j1 - j0)
    return W_parts, block


@jit
def _check_rows(ids, n):
    """Raise IndexError unless every id of ids (T, B) lies in [0, n)."""
    for t in range(ids.shape[0]):
        for b in range(ids.shape[1]):
            if ids[t, b] < 0 or ids[t, b] >= n:
                raise IndexError("token id out of range of the vocabulary")


@jit
def _lstm_step_rows(X, ids_t, h_prev, c_prev, W_part, block, a, j0, j1, h_t, c_t, gates_t):
    """_lstm_step for units j0 <= j < j1, (B, .) layout, stream b's input term row ids_t[b] of
    X: their columns of c_t, h_t and of each gate block of gates_t; `a` (B 4 m entries) the
    scratch for their columns of the product."""
    B, H = h_t.shape
    m = j1 - j0
    for g in range(4):                                        # h_{t-1} W_hh: the part's columns of block g
        _panel_dot(h_prev, W_part[g * block:(g + 1) * block], m, a, g * m, 4 * m)
    for b in range(B):
        x, ab, gb = X[ids_t[b]], a[b * 4 * m:(b + 1) * 4 * m], gates_t[b]
        _lstm_cell_run(x[j0:j1], x[H + j0:H + j1], x[2 * H + j0:2 * H + j1], x[3 * H + j0:3 * H + j1], ab[:m],
                       ab[m:2 * m], ab[2 * m:3 * m], ab[3 * m:], c_prev[b, j0:j1], c_t[b, j0:j1], h_t[b, j0:j1],
                       gb[j0:j1], gb[H + j0:H + j1], gb[2 * H + j0:2 * H + j1], gb[3 * H + j0:3 * H + j1])


@pjit
def _lstm_forward_split(X, ids, h0, c0, W_hh, parts):
    """lstm_forward without masks, stream b's input term at step t row ids[t, b] of X (., 4H),
    the units split into `parts` runs, one per thread, in the (B, .) layout (see above)."""
    T, B = ids.shape
    H = W_hh.shape[0]
    _check_rows(ids, X.shape[0])
    h = np.empty((T + 1, B, H), dtype=X.dtype)
    c = np.empty((T + 1, B, H), dtype=X.dtype)
    gates = np.empty((T, B, 4 * H), dtype=X.dtype)
    most = (H + parts - 1) // parts
    W_parts, block = _panel_parts(W_hh, 4, parts, True)
    a_parts = np.empty((parts, B * 4 * most), dtype=X.dtype)
    _copy_into(h[0], h0)
    _copy_into(c[0], c0)
    for t in range(1, T + 1):
        for p in prange(parts):
            j0, j1 = _part(H, parts, p)
            _lstm_step_rows(X, ids[t - 1], h[t - 1], c[t - 1], W_parts[p], block, a_parts[p], j0, j1, h[t], c[t],
                            gates[t - 1])
    return h, c, gates


@jit
def _lstm_step_back_rows(t, dh, dh_T, dc_T, c, gates, W_part, j0, j1, gh, gc, gc_total, da, sq_h, sq_c, ids, dW_x):
    """Step t of the backward walk for units j0 <= j < j1, (B, .) layout: gh (B, m) their
    columns of dh_t (da_{t+1} W_hh^T, none at t = T, plus the loss's gradient), then their
    columns of each gate block of da[t-1] (each row added into row ids[t-1, b] of dW_x, if
    dW_x has rows), gc (B, m) dc_t -> dc_{t-1} (dc_T's columns at t = T), gc_total; the
    squared norms of their share of dh_t and dc_t into sq_h[t], sq_c[t]."""
    T, B, H = dh.shape
    sq_h[t] = _part_dh_rows(t, dh, dh_T, da, W_part, j0, j1, gh)
    if t == T:
        _columns_into(gc, dc_T, j0, False)                   # the final cell state's gradient
    gates_t, da_t = gates[t - 1], da[t - 1]
    for b in range(B):
        gb, db = gates_t[b], da_t[b]
        _lstm_cell_back_run(gh[b], gc[b], gc_total[b], c[t - 1, b, j0:j1], c[t, b, j0:j1], gb[j0:j1],
                            gb[H + j0:H + j1], gb[2 * H + j0:2 * H + j1], gb[3 * H + j0:3 * H + j1], db[j0:j1],
                            db[H + j0:H + j1], db[2 * H + j0:2 * H + j1], db[3 * H + j0:3 * H + j1])
    if dW_x.shape[0] > 0:
        for b in range(B):
            for g in range(4):
                _add_run(dW_x, ids[t - 1, b], da_t, b, g * H + j0, j1 - j0)
    sq_c[t] = _sum_squares(gc_total)


@jit
def _token_bias(dW_x):
    """db for token inputs: the sum of dW_xh's V rows, in row order (every row of da went into
    one of them); empty for V = 0 (no token inputs)."""
    V, GH = dW_x.shape
    db = np.zeros(GH if V > 0 else 0, dtype=dW_x.dtype)
    for v in range(V):
        for j in range(GH):
            db[j] += dW_x[v, j]
    return db


@jit
def _add_run(dst, r, src, s, c0, n):
    """dst[r, c0:c0 + n] += src[s, c0:c0 + n], indexing the parent arrays: the same sum through
    row views inside the step's loop ran 1.7x to 1.8x longer (the LSTM's fused add into dW_xh
    at H 256, T 64: 1.8 ms a window, against 1.0 ms this way)."""
    for k in range(c0, c0 + n):
        dst[r, k] += src[s, k]


@pjit
def _lstm_backward_split(dh, dh_T, dc_T, c, gates, W_hh, parts, ids, V):
    """lstm_backward without truncation or masks, the units split into `parts` runs, one per
    thread, in the (B, .) layout (see above). Returns its five results and, for token inputs
    ids (T, B) of V > 0 rows, dW_xh = embed_backward(ids, da, V) and db, da's sum over t and b
    (taken as dW_xh's column sums); with V = 0, empty ones."""
    T, B, H = dh.shape
    da = np.empty((T, B, 4 * H), dtype=dh.dtype)
    if V > 0:
        _check_rows(ids, V)
    dW_x = np.zeros((V, 4 * H), dtype=dh.dtype)
    most = (H + parts - 1) // parts
    state = np.empty((parts, 3, B * most), dtype=dh.dtype)  # each part's gh, gc, gc_total
    sq_h, sq_c = np.zeros((parts, T + 1)), np.zeros((parts, T + 1))
    W_parts = _panel_parts(W_hh, 4, parts, False)[0]
    for t in range(T, 0, -1):
        for p in prange(parts):
            j0, j1 = _part(H, parts, p)
            n = B * (j1 - j0)
            _lstm_step_back_rows(t, dh, dh_T, dc_T, c, gates, W_parts[p], j0, j1,
                                 state[p, 0, :n].reshape(B, j1 - j0), state[p, 1, :n].reshape(B, j1 - j0),
                                 state[p, 2, :n].reshape(B, j1 - j0), da, sq_h[p], sq_c[p], ids, dW_x)
    dh0 = np.empty((B, H), dtype=dh.dtype)
    dc0 = np.empty((B, H), dtype=dh.dtype)
    for p in prange(parts):                                   # dh_0 from da_1
        j0, j1 = _part(H, parts, p)
        n = B * (j1 - j0)
        gh, gc = state[p, 0, :n].reshape(B, j1 - j0), state[p, 1, :n].reshape(B, j1 - j0)
        _panel_dot(da[0], W_parts[p], j1 - j0, gh.reshape(-1), 0, j1 - j0)
        sq_h[p, 0], sq_c[p, 0] = _sum_squares(gh), _sum_squares(gc)
        _into_columns(dh0, j0, gh)
        _into_columns(dc0, j0, gc)
    db = _token_bias(dW_x)
    norms_h = np.sqrt(sq_h.sum(axis=0)).astype(dh.dtype)
    norms_c = np.sqrt(sq_c.sum(axis=0)).astype(dh.dtype)
    return da, dh0, dc0, norms_h, norms_c, dW_x, db


@jit
def _tanh_step_part(X, ids_t, hT_prev, W_part, act, j0, j1, xwT, hT_t, h_t):
    """_tanh_step_fm for units j0 <= j < j1 (W_part: their rows of W_hh^T, packed), stream b's
    input term row ids_t[b] of X: their rows of hT_t (and their columns of h[t])."""
    B = hT_t.shape[1]
    _transpose_columns(xwT[j0:j1], 0, X, j0, j1 - j0, False, ids_t)
    _packed_dot(W_part, j1 - j0, hT_prev, hT_t[j0:j1])       # the part's rows of W_hh^T h_{t-1}^T
    _add_activate(_flat(xwT[j0:j1]), _flat(hT_t[j0:j1]), act)
    _transpose_columns(h_t, j0, hT_t[j0:j1], 0, B, False)


@pjit
def _tanh_forward_fm_split(X, ids, h0, W_hh, act, parts):
    """_tanh_forward_fm with the units split into `parts` runs, one per thread (see above); the
    input term of stream b at step t is row ids[t, b] of X (the rows of xw (T B, H) in order,
    or of W_xh + b for token inputs, as the LSTM's split forward reads them)."""
    T, B = ids.shape
    H = W_hh.shape[0]
    _check_rows(ids, X.shape[0])
    h = np.empty((T + 1, B, H), dtype=X.dtype)
    W_parts = _packed_parts(W_hh, 1, parts, True)
    xwT = np.empty((H, B), dtype=X.dtype)
    hT = np.empty((2, H, B), dtype=X.dtype)
    _copy_into(h[0], h0)
    _transpose_into(hT[0], h0)
    for t in range(1, T + 1):
        for p in prange(parts):
            j0, j1 = _part(H, parts, p)
            _tanh_step_part(X, ids[t - 1], hT[(t - 1) % 2], W_parts[p], act, j0, j1, xwT, hT[t % 2], h[t])
    return h


@jit
def _tanh_step_back_part(t, dh, dh_T, h, W_part, act, j0, j1, gT, hT_t, daT_next, daT, da, sq, ids, dW_x):
    """Step t of the tanh RNN's backward walk for units j0 <= j < j1: their rows of dh_t^T (from
    step t+1's da) and of da_t (into daT and da[t-1], each row of which is added into row
    ids[t-1, b] of dW_x, if dW_x has rows); the squared norm of their share of dh_t into sq[t]."""
    B = dh.shape[1]
    g = gT[j0:j1]
    sq[t] = _part_dh(t, dh, dh_T, W_part, j0, j1, daT_next, g)
    _transpose_columns(hT_t[j0:j1], 0, h[t], j0, j1 - j0, False)
    _times_activate_grad(_flat(g), _flat(hT_t[j0:j1]), act, _flat(daT[j0:j1]))   # through f
    _transpose_columns(da[t - 1], j0, daT[j0:j1], 0, B, False)
    if dW_x.shape[0] > 0:
        for b in range(B):
            _add_run(dW_x, ids[t - 1, b], da[t - 1], b, j0, j1 - j0)


@pjit
def _tanh_backward_fm_split(dh, dh_T, h, W_hh, act, parts, ids, V):
    """_tanh_backward_fm without truncation, the units split into `parts` runs (see above).
    Returns its three results and, for token inputs ids (T, B) of V > 0 rows, dW_xh =
    embed_backward(ids, da, V) and db, da's sum over t and b (taken as dW_xh's column sums);
    with V = 0, empty ones."""
    T, B, H = dh.shape
    if V > 0:
        _check_rows(ids, V)
    dW_x = np.zeros((V, H), dtype=dh.dtype)
    da = np.empty_like(dh)
    gT = np.zeros((H, B), dtype=dh.dtype)
    hT_t = np.empty((H, B), dtype=dh.dtype)
    daT = np.empty((2, H, B), dtype=dh.dtype)               # step t writes daT[t % 2], reads daT[(t + 1) % 2]
    sq = np.zeros((parts, T + 1))
    W_parts = _packed_parts(W_hh, 1, parts, False)
    for t in range(T, 0, -1):
        for p in prange(parts):
            j0, j1 = _part(H, parts, p)
            _tanh_step_back_part(t, dh, dh_T, h, W_parts[p], act, j0, j1, gT, hT_t, daT[(t + 1) % 2], daT[t % 2],
                                 da, sq[p], ids, dW_x)
    for p in prange(parts):                                   # dh_0 from da_1
        j0, j1 = _part(H, parts, p)
        _packed_dot(W_parts[p], j1 - j0, daT[1], gT[j0:j1])
        sq[p, 0] = _sum_squares(gT[j0:j1])
    db = _token_bias(dW_x)
    return da, _transposed(gT), np.sqrt(sq.sum(axis=0)).astype(dh.dtype), dW_x, db


# -- GRU

@jit
def _gru_step_fm(xwT_t, hT_prev, W_hhT, W_rzT, W_hnT, b_hh, reset_after, hT_t, gT_t, hnT_t, ahT, rhT):
    """_gru_step feature-major: hT_t (H, B), gT_t (3H, B) = r, z, n, hnT_t (H, B); scratch ahT, rhT.
    W_hhT (reset after) or W_rzT and W_hnT (before) packed."""
    H = hT_t.shape[0]
    if reset_after:
        _packed_dot(W_hhT, 3 * H, hT_prev, ahT)              # W_hh^T h_{t-1}^T  (3H, B)
    else:
        _packed_dot(W_rzT, 2 * H, hT_prev, ahT)              # W_hr,z^T h_{t-1}^T  (2H, B)
    _add_row_bias(ahT, b_hh)                                  # + b_hr, b_hz (and b_hn after)
    n = hT_t.size                                             # H B entries per gate block
    xw, ah, gates, h_prev = xwT_t.reshape(-1), ahT.reshape(-1), gT_t.reshape(-1), hT_prev.reshape(-1)
    hn, rh, h = hnT_t.reshape(-1), rhT.reshape(-1), hT_t.reshape(-1)
    for k in range(n):
        gates[k] = _sigmoid(xw[k] + ah[k])                    # r
        gates[n + k] = _sigmoid(xw[n + k] + ah[n + k])        # z
    if reset_after:
        for k in range(n):
            hn[k] = ah[2 * n + k]                             # h_{t-1} W_hn + b_hn
    else:
        for k in range(n):
            rh[k] = gates[k] * h_prev[k]
        _packed_dot(W_hnT, H, rhT, hnT_t)                    # W_hn^T (r * h_{t-1})^T  (H, B)
        _add_row_bias(hnT_t, b_hh[2 * H:])
    for k in range(n):
        r, z = gates[k], gates[n + k]
        if reset_after:
            n_k = _tanh(xw[2 * n + k] + r * hn[k])
        else:
            n_k = _tanh(xw[2 * n + k] + hn[k])
        h[k] = (1.0 - z) * n_k + z * h_prev[k]
        gates[2 * n + k] = n_k


@jit
def _gru_forward_fm(xw, h0, W_hh, b_hh, reset_after):
    T, B, G3 = xw.shape
    H = G3 // 3
    h = np.empty((T + 1, B, H), dtype=xw.dtype)
    gates = np.empty((T, B, G3), dtype=xw.dtype)
    hn = np.empty((T, B, H), dtype=xw.dtype)
    if reset_after:                                           # packed once per window
        W_hhT, W_rzT, W_hnT = _packed_columns(W_hh, 0, G3), W_hh[0, :0], W_hh[0, :0]
    else:
        W_hhT, W_rzT, W_hnT = W_hh[0, :0], _packed_columns(W_hh, 0, 2 * H), _packed_columns(W_hh, 2 * H, G3)
    scratch = np.empty((2, G3, B), dtype=xw.dtype)
    xwT, gT = scratch[0], scratch[1]
    ahT = np.empty(((3 if reset_after else 2) * H, B), dtype=xw.dtype)
    scratch = np.empty((4, H, B), dtype=xw.dtype)
    hT, hT_prev, hnT, rhT = scratch[0], scratch[1], scratch[2], scratch[3]
    _copy_into(h[0], h0)
    _transpose_into(hT_prev, h0)
    for t in range(1, T + 1):
        _transpose_into(xwT, xw[t - 1])
        _gru_step_fm(xwT, hT_prev, W_hhT, W_rzT, W_hnT, b_hh, reset_after, hT, gT, hnT, ahT, rhT)
        _transpose_into(h[t], hT)
        _transpose_into(gates[t - 1], gT)
        _transpose_into(hn[t - 1], hnT)
        hT, hT_prev = hT_prev, hT
    return h, gates, hn


@jit
def _gru_step_back_fm(gT_h, hT_prev, gT_t, hnT_t, W_hh, W_rz, W_hn, reset_after, daxT, dahT,
                      dhT_prev, danT, d_rhT, da_rzT):
    """_gru_step_back feature-major (no recurrent dropout): daxT, dahT (3H, B), then gT_h <- dh_{t-1}^T.
    W_hh (reset after) or W_rz and W_hn (before) packed."""
    n = gT_h.size                                             # H B entries per gate block
    gates, h_prev, hn = gT_t.reshape(-1), hT_prev.reshape(-1), hnT_t.reshape(-1)
    g_h, dax, dah, dh_prev = gT_h.reshape(-1), daxT.reshape(-1), dahT.reshape(-1), dhT_prev.reshape(-1)
    dan, d_rh, da_rz = danT.reshape(-1), d_rhT.reshape(-1), da_rzT.reshape(-1)
    for k in range(n):
        r, z, n_k = gates[k], gates[n + k], gates[2 * n + k]
        g = g_h[k]
        dn = g * (1.0 - z)                                    # h_t = (1 - z) n + z h_{t-1}
        dz = g * (h_prev[k] - n_k)
        dh_prev[k] = g * z
        dan[k] = dn * (1.0 - n_k * n_k)                       # through tanh
        daz = dz * z * (1.0 - z)                              # through the sigmoid
        dax[n + k] = daz
        dah[n + k] = daz
        dax[2 * n + k] = dan[k]
        if reset_after:
            dr = dan[k] * hn[k]                               # n = tanh(xw_n + r * hn)
            dar = dr * r * (1.0 - r)
            dax[k] = dar
            dah[k] = dar
            dah[2 * n + k] = dan[k] * r
        else:
            dah[2 * n + k] = dan[k]                           # n = tanh(xw_n + hn), hn = (r h) W_hn + b_hn
    H = gT_h.shape[0]
    if reset_after:
        _packed_dot(W_hh, H, dahT, gT_h)                      # W_hh dah_t^T  (H, B)
    else:
        _packed_dot(W_hn, H, danT, d_rhT)                     # dE/d(r h_{t-1})^T  (H, B)
        for k in range(n):
            r = gates[k]
            dr = d_rh[k] * h_prev[k]
            dh_prev[k] = dh_prev[k] + d_rh[k] * r
            dar = dr * r * (1.0 - r)
            dax[k] = dar
            dah[k] = dar
            da_rz[k] = dar
            da_rz[n + k] = dah[n + k]
        _packed_dot(W_rz, H, da_rzT, gT_h)                    # W_hr,z [dar, daz]^T  (H, B)
    _add_into(gT_h, dhT_prev)


@jit
def _gru_backward_fm(dh, dh_T, h, gates, hn, W_hh, reset_after, truncate):
    T, B, H = dh.shape
    dax = np.zeros_like(gates)
    dah = np.zeros_like(gates)
    g_hT = np.zeros((T + 1, H, B), dtype=dh.dtype)
    W_rz, W_hn = _gru_split(W_hh, reset_after)
    if reset_after:                                           # packed once per window
        P_hh, P_rz, P_hn = _packed_rows(W_hh, 0, H), W_hh[0, :0], W_hh[0, :0]
    else:
        P_hh, P_rz, P_hn = W_hh[0, :0], _packed_rows(W_rz, 0, H), _packed_rows(W_hn, 0, H)
    scratch = np.empty((6, H, B), dtype=dh.dtype)
    gT, hT_prev, hnT, dhT_prev, danT, d_rhT = scratch[0], scratch[1], scratch[2], scratch[3], scratch[4], scratch[5]
    scratch = np.empty((3, 3 * H, B), dtype=dh.dtype)
    gatesT, daxT, dahT = scratch[0], scratch[1], scratch[2]
    da_rzT = np.empty((2 * H, B), dtype=dh.dtype)
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        first = max(s - k + 1, 1)
        gT.fill(0.0)
        for t in range(s, first - 1, -1):
            if t == s or k == T:
                _add_loss_grad_fm(dh, dh_T, t, gT)
            _add_into(g_hT[t], gT)
            _transpose_into(hT_prev, h[t - 1])
            _transpose_into(gatesT, gates[t - 1])
            _transpose_into(hnT, hn[t - 1])
            _gru_step_back_fm(gT, hT_prev, gatesT, hnT, P_hh, P_rz, P_hn, reset_after, daxT, dahT,
                              dhT_prev, danT, d_rhT, da_rzT)
            _add_transposed(dax[t - 1], daxT)
            _add_transposed(dah[t - 1], dahT)
        _add_into(g_hT[first - 1], gT)
    return dax, dah, _transposed(g_hT[0]), _step_norms(g_hT)


@jit
def _gru_back_part(g_h, h_prev, hn, g_r, g_z, g_n, dah_r, dah_z, dah_n, dan, dh_prev):
    """The reset-after GRU's backward gate arithmetic over one row's m units of a part, each
    argument its m entries: dah_r, dah_z (= dax's r and z blocks), dah_n = dan * r, dan (dax's
    n block), dh_prev = g z."""
    for k in range(g_h.size):
        r, z, n_k = g_r[k], g_z[k], g_n[k]
        g = g_h[k]
        dn = g * (1.0 - z)                                    # h_t = (1 - z) n + z h_{t-1}
        dz = g * (h_prev[k] - n_k)
        dh_prev[k] = g * z
        a_n = dn * (1.0 - n_k * n_k)                          # through tanh
        dan[k] = a_n
        dah_z[k] = dz * z * (1.0 - z)                         # through the sigmoid
        dr = a_n * hn[k]                                      # n = tanh(xw_n + r * hn)
        dah_r[k] = dr * r * (1.0 - r)
        dah_n[k] = a_n * r


# The reset-after GRU's windows split in the (B, .) layout, as the LSTM's (above):
# forward, part p computes its units' columns of each gate block of h_{t-1} W_hh (its columns
# of W_hh, packed once per window), then r, z, hn, n and h_t straight into the (T, B, .) arrays
# gru_forward returns; backward, its columns of dh_t = dah_{t+1} W_hh^T (its rows of W_hh,
# packed) plus z_{t+1} dh_{t+1} carried from the step after, then its columns of dax_t and
# dah_t. No step transposes anything.

@jit
def _gru_cell_run(x_r, x_z, x_n, a_r, a_z, a_n, b_r, b_z, b_n, h_prev, h, hn, g_r, g_z, g_n):
    """The reset-after GRU's gates at one step over one row's m units of a part, each block its
    own array: x_* and a_* the blocks of x W_xh + b_xh and h_{t-1} W_hh, b_* those of b_hh;
    h_prev, h, hn (h_{t-1} W_hn + b_hn) and the gates r, z, n."""
    for k in range(h.size):
        r = _sigmoid(x_r[k] + (a_r[k] + b_r[k]))
        z = _sigmoid(x_z[k] + (a_z[k] + b_z[k]))
        hn_k = a_n[k] + b_n[k]
        n_k = _tanh(x_n[k] + r * hn_k)
        h[k] = (1.0 - z) * n_k + z * h_prev[k]
        hn[k] = hn_k
        g_r[k], g_z[k], g_n[k] = r, z, n_k


@jit
def _gru_step_rows(X, ids_t, h_prev, W_part, block, b_hh, a, j0, j1, h_t, gates_t, hn_t):
    """_gru_step (reset after) for units j0 <= j < j1, (B, .) layout, stream b's input term row
    ids_t[b] of X: their columns of h_t, hn_t and each gate block of gates_t; `a` (B 3 m
    entries) the scratch for their columns of the product."""
    B, H = h_t.shape
    m = j1 - j0
    for g in range(3):                                        # h_{t-1} W_hh: the part's columns of block g
        _panel_dot(h_prev, W_part[g * block:(g + 1) * block], m, a, g * m, 3 * m)
    for b in range(B):
        x, ab, gb = X[ids_t[b]], a[b * 3 * m:(b + 1) * 3 * m], gates_t[b]
        _gru_cell_run(x[j0:j1], x[H + j0:H + j1], x[2 * H + j0:2 * H + j1], ab[:m], ab[m:2 * m], ab[2 * m:],
                      b_hh[j0:j1], b_hh[H + j0:H + j1], b_hh[2 * H + j0:2 * H + j1], h_prev[b, j0:j1],
                      h_t[b, j0:j1], hn_t[b, j0:j1], gb[j0:j1], gb[H + j0:H + j1], gb[2 * H + j0:2 * H + j1])


@pjit
def _gru_forward_split(X, ids, h0, W_hh, b_hh, parts):
    """gru_forward (reset after, no masks), stream b's input term at step t row ids[t, b] of X
    (., 3H), the units split into `parts` runs, one per thread, in the (B, .) layout (above)."""
    T, B = ids.shape
    H = W_hh.shape[0]
    _check_rows(ids, X.shape[0])
    h = np.empty((T + 1, B, H), dtype=X.dtype)
    gates = np.empty((T, B, 3 * H), dtype=X.dtype)
    hn = np.empty((T, B, H), dtype=X.dtype)
    most = (H + parts - 1) // parts
    W_parts, block = _panel_parts(W_hh, 3, parts, True)
    a_parts = np.empty((parts, B * 3 * most), dtype=X.dtype)
    _copy_into(h[0], h0)
    for t in range(1, T + 1):
        for p in prange(parts):
            j0, j1 = _part(H, parts, p)
            _gru_step_rows(X, ids[t - 1], h[t - 1], W_parts[p], block, b_hh, a_parts[p], j0, j1, h[t],
                           gates[t - 1], hn[t - 1])
    return h, gates, hn


@jit
def _gru_step_back_rows(t, dh, dh_T, h, gates, hn, W_part, j0, j1, gh, carry, dax, dah, sq, ids, dW_x, db_n):
    """Step t of the reset-after GRU's backward walk for units j0 <= j < j1, (B, .) layout: gh
    (B, m) their columns of dh_t (dah_{t+1} W_hh^T and carry, z_{t+1} dh_{t+1}, none at t = T,
    plus the loss's gradient), then their columns of each gate block of dax[t-1] and dah[t-1]
    (each row of dax added into row ids[t-1, b] of dW_x and dah's n block into db_n, if dW_x
    has rows), carry <- z_t dh_t; the squared norm of their share of dh_t into sq[t]."""
    T, B, H = dh.shape
    m = j1 - j0
    _part_dh_rows(t, dh, dh_T, dah, W_part, j0, j1, gh)
    if t < T:
        _add_into(gh, carry)
    sq[t] = _sum_squares(gh)
    gates_t, dax_t, dah_t = gates[t - 1], dax[t - 1], dah[t - 1]
    for b in range(B):
        gb, xb, hb = gates_t[b], dax_t[b], dah_t[b]
        _gru_back_part(gh[b], h[t - 1, b, j0:j1], hn[t - 1, b, j0:j1], gb[j0:j1], gb[H + j0:H + j1],
                       gb[2 * H + j0:2 * H + j1], hb[j0:j1], hb[H + j0:H + j1], hb[2 * H + j0:2 * H + j1],
                       xb[2 * H + j0:2 * H + j1], carry[b])
        for j in range(j0, j1):                               # dax's r and z blocks are dah's
            xb[j] = hb[j]
            xb[H + j] = hb[H + j]
        if dW_x.shape[0] > 0:
            for g in range(3):
                _add_run(dW_x, ids[t - 1, b], dax_t, b, g * H + j0, m)
            for j in range(j0, j1):
                db_n[j] += hb[2 * H + j]


@pjit
def _gru_backward_split(dh, dh_T, h, gates, hn, W_hh, parts, ids, V):
    """gru_backward (reset after) without truncation or masks, the units split into `parts`
    runs, one per thread, in the (B, .) layout (above). Returns dax, dah, dh0, norms and, for
    token inputs ids (T, B) of V > 0 rows, dW_xh = embed_backward(ids, dax, V), db_x (taken as
    dW_xh's column sums) and db_h (db_x's r and z blocks, its n block summed during the walk);
    with V = 0, empty ones."""
    T, B, H = dh.shape
    if V > 0:
        _check_rows(ids, V)
    dW_x = np.zeros((V, 3 * H), dtype=dh.dtype)
    db_n = np.zeros(H, dtype=dh.dtype)
    dax = np.empty((T, B, 3 * H), dtype=dh.dtype)
    dah = np.empty((T, B, 3 * H), dtype=dh.dtype)
    most = (H + parts - 1) // parts
    state = np.empty((parts, 2, B * most), dtype=dh.dtype)  # each part's gh, carry
    sq = np.zeros((parts, T + 1))
    W_parts = _panel_parts(W_hh, 3, parts, False)[0]
    for t in range(T, 0, -1):
        for p in prange(parts):
            j0, j1 = _part(H, parts, p)
            n = B * (j1 - j0)
            _gru_step_back_rows(t, dh, dh_T, h, gates, hn, W_parts[p], j0, j1, state[p, 0, :n].reshape(B, j1 - j0),
                                state[p, 1, :n].reshape(B, j1 - j0), dax, dah, sq[p], ids, dW_x, db_n)
    dh0 = np.empty((B, H), dtype=dh.dtype)
    for p in prange(parts):                                   # dh_0 from dah_1 and z_1 dh_1
        j0, j1 = _part(H, parts, p)
        n = B * (j1 - j0)
        gh, carry = state[p, 0, :n].reshape(B, j1 - j0), state[p, 1, :n].reshape(B, j1 - j0)
        _panel_dot(dah[0], W_parts[p], j1 - j0, gh.reshape(-1), 0, j1 - j0)
        _add_into(gh, carry)
        sq[p, 0] = _sum_squares(gh)
        _into_columns(dh0, j0, gh)
    db_x = _token_bias(dW_x)
    db_h = db_x.copy()
    if V > 0:
        db_h[2 * H:] = db_n
    return dax, dah, dh0, np.sqrt(sq.sum(axis=0)).astype(dh.dtype), dW_x, db_x, db_h


# --------------------------------------------------------------------------- generation
# One token at a time with B = 1: the cell's step, the logits y = h_t W_hy + b_y, one draw.
# The uniforms come in as an array, so a draw here equals the reference's draw from the same uniform.

@jit
def _draw_token(y, temperature, u, cdf):
    """One draw from softmax(y / temperature) by inverse CDF with the uniform u; argmax at 0.

    The reference's steps: z = (y - max y) / T, cdf = cumsum(exp z), the first index whose
    cdf exceeds u * cdf[-1]. cdf (V,) is scratch. The exponentials are taken in one vectorised
    loop (`_exp`, float64) before the running sum: a libm exp per entry inside the sum was a
    quarter of the time of a token at H = 128."""
    V = y.shape[0]
    best = 0                                                  # the first largest logit
    for v in range(1, V):
        if y[v] > y[best]:
            best = v
    if temperature == 0.0:
        return best
    m = y[best]
    for v in range(V):
        cdf[v] = _exp(np.float64((y[v] - m) / temperature))
    for v in range(1, V):
        cdf[v] += cdf[v - 1]
    threshold = u * cdf[V - 1]
    for v in range(V):
        if cdf[v] > threshold:
            return v
    return V - 1


@jit
def _logits(h_t, W_hy, b_y, y):
    """y = h_t W_hy + b_y, written into y (1, V)."""
    np.dot(h_t, W_hy, y)                                      # (1, V)
    for v in range(y.shape[1]):
        y[0, v] += b_y[v]


@jit
def _input_row(W_xh, b, token, xw_t):
    """xw_t = W_xh[token] + b: the input term of one token (row `token` of W_xh, no one-hot product)."""
    for j in range(xw_t.shape[1]):
        xw_t[0, j] = W_xh[token, j] + b[j]


@jit
def tanh_generate(token, h0, W_xh, b_h, W_hh, W_hy, b_y, act, uniforms, temperature):
    """Feed `token` from state h0 (1, H), draw the next token, feed it, ...: one draw per uniform.

    Returns the drawn ids (N,). `temperature` has the dtype of the weights."""
    H, V, N = W_hh.shape[0], W_hy.shape[1], uniforms.shape[0]
    xw_t = np.empty((1, H), dtype=W_hh.dtype)
    h_prev, h_t = h0.copy(), np.empty((1, H), dtype=W_hh.dtype)
    y, cdf = np.empty((1, V), dtype=W_hh.dtype), np.empty(V, dtype=W_hh.dtype)
    out = np.empty(N, dtype=np.int64)
    for n in range(N):
        _input_row(W_xh, b_h, token, xw_t)
        _tanh_step(xw_t, h_prev, W_hh, act, h_t)
        _logits(h_t, W_hy, b_y, y)
        token = _draw_token(y[0], temperature, uniforms[n], cdf)
        out[n] = token
        h_prev, h_t = h_t, h_prev
    return out


@jit
def lstm_generate(token, h0, c0, W_xh, b_h, W_hh, W_hy, b_y, uniforms, temperature):
    """tanh_generate for the LSTM: state (h0, c0), each (1, H)."""
    H, V, N = W_hh.shape[0], W_hy.shape[1], uniforms.shape[0]
    xw_t, gates_t = np.empty((1, 4 * H), dtype=W_hh.dtype), np.empty((1, 4 * H), dtype=W_hh.dtype)
    h_prev, h_t = h0.copy(), np.empty((1, H), dtype=W_hh.dtype)
    c_prev, c_t = c0.copy(), np.empty((1, H), dtype=W_hh.dtype)
    y, cdf = np.empty((1, V), dtype=W_hh.dtype), np.empty(V, dtype=W_hh.dtype)
    out = np.empty(N, dtype=np.int64)
    for n in range(N):
        _input_row(W_xh, b_h, token, xw_t)
        _lstm_step(xw_t, h_prev, c_prev, W_hh, h_t, c_t, gates_t)
        _logits(h_t, W_hy, b_y, y)
        token = _draw_token(y[0], temperature, uniforms[n], cdf)
        out[n] = token
        h_prev, h_t = h_t, h_prev
        c_prev, c_t = c_t, c_prev
    return out


@jit
def gru_generate(token, h0, W_xh, b_xh, W_hh, b_hh, reset_after, W_hy, b_y, uniforms, temperature):
    """tanh_generate for the GRU."""
    H, V, N = W_hh.shape[0], W_hy.shape[1], uniforms.shape[0]
    W_rz, W_hn = _gru_split(W_hh, reset_after)
    xw_t, gates_t = np.empty((1, 3 * H), dtype=W_hh.dtype), np.empty((1, 3 * H), dtype=W_hh.dtype)
    hn_t, rh = np.empty((1, H), dtype=W_hh.dtype), np.empty((1, H), dtype=W_hh.dtype)
    ah = np.empty((1, (3 if reset_after else 2) * H), dtype=W_hh.dtype)
    h_prev, h_t = h0.copy(), np.empty((1, H), dtype=W_hh.dtype)
    y, cdf = np.empty((1, V), dtype=W_hh.dtype), np.empty(V, dtype=W_hh.dtype)
    out = np.empty(N, dtype=np.int64)
    for n in range(N):
        _input_row(W_xh, b_xh, token, xw_t)
        _gru_step(xw_t, h_prev, W_hh, W_rz, W_hn, b_hh, reset_after, h_prev, h_t, gates_t, hn_t, ah, rh)
        _logits(h_t, W_hy, b_y, y)
        token = _draw_token(y[0], temperature, uniforms[n], cdf)
        out[n] = token
        h_prev, h_t = h_t, h_prev
    return out
