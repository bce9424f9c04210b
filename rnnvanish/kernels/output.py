"""Numba twins of the language-model pieces of `rnnvanish.reference`, and the whole output
layer of the language model in one call.

    y_t = h_t W_hy + b_y                  # (B, V) logits
    E = mean over t, b of -log softmax(y_t)[target]
Legend: T steps, B batch, H hidden, V vocabulary, GH = G*H the gate width.
Token ids index arrays here, and Numba does not check bounds: every id is checked first.
"""
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

# Cached on disk; numpy's error model (a division by zero gives inf, as in the reference);
# fused multiply-add allowed. The same options as recurrent.py's kernels.
jit = njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
pjit = njit(cache=True, nogil=True, parallel=True, error_model="numpy", fastmath={"contract"})


# --------------------------------------------------------------------------- exp
# The softmax's exp as plain arithmetic, so its loops vectorise: the method and constants of
# recurrent.py's `_expm1_parts`, repeated here because a jitted function must not call into
# another module (see the package docstring). A test holds the two equal bit for bit.

@intrinsic
def _float_from_bits(typingctx, bits):
    """The float64 whose IEEE-754 bit pattern is the int64 `bits`."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def _bits_of_float(typingctx, x):
    """The IEEE-754 bit pattern of the float64 `x`, as an int64."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


_LOG2_E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_ROUNDER = 6755399441055744.0
_ROUNDER_BITS = 0x4338000000000000
_X_MIN, _X_MAX = -708.0, 709.0


@jit
def _exp(x):
    """e^x = 2^n (1 + q), x = n ln2 + r, q = e^r - 1 by its Taylor series to r^13 (x clamped to [-708, 709])."""
    x = _X_MIN if x < _X_MIN else (_X_MAX if x > _X_MAX else x)
    t = x * _LOG2_E + _ROUNDER
    n = t - _ROUNDER
    r = (x - n * _LN2_HI) - n * _LN2_LO
    q = r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (
        1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (
            1.0 / 3628800 + r * (1.0 / 39916800 + r * (1.0 / 479001600 + r * (1.0 / 6227020800.0)))))))))))))
    s = _float_from_bits((_bits_of_float(t) - _ROUNDER_BITS + 1023) << 52)
    return s + s * q


# --------------------------------------------------------------------------- softmax cross-entropy

@jit
def _check_ids(ids, V):
    """Raise IndexError unless every id of ids (T, B) lies in [0, V)."""
    for t in range(ids.shape[0]):
        for b in range(ids.shape[1]):
            if ids[t, b] < 0 or ids[t, b] >= V:
                raise IndexError("token id out of range of the vocabulary")


@jit
def _scale(a, factor):
    """a *= factor for a (R, V) array."""
    for r in range(a.shape[0]):
        for v in range(a.shape[1]):
            a[r, v] *= factor


@jit
def _xent_row(y, target):
    """-log softmax(y)[target] for one row y (V,) of logits, which becomes dE/dy = softmax(y) -
    onehot(target) in place. One array read and written at the same index: the exp loop, alone
    in its loop, vectorises (with a second array that may be the same, LLVM's overlap check
    fails and it runs scalar)."""
    m = y[0]                                                  # shift by the largest logit for a stable exp
    for v in range(1, y.shape[0]):
        m = max(m, y[v])
    z_target = y[target] - m
    for v in range(y.shape[0]):
        y[v] = _exp(y[v] - m)
    total = 0.0
    for v in range(y.shape[0]):
        total += y[v]
    loss = np.log(total) - z_target                           # -log p[target] = log sum exp z - z[target]
    scale = 1.0 / total
    for v in range(y.shape[0]):
        y[v] *= scale                                         # p
    y[target] -= 1.0                                          # dE/dy = p - onehot
    return loss


@jit
def softmax_xent(y, targets):
    """Mean softmax cross-entropy over all T*B positions and its gradient on the logits.

    y (T, B, V) logits, targets (T, B) ints. Returns (loss in nats per token, dy (T, B, V))."""
    T, B, V = y.shape
    _check_ids(targets, V)
    dy = y.copy()                                             # the logits, turned into dE/dy in place
    loss = 0.0
    for t in range(T):
        for b in range(B):
            loss += _xent_row(dy[t, b], targets[t, b])
    _scale(dy.reshape(T * B, V), 1.0 / (T * B))              # the mean over T B positions
    return loss / (T * B), dy


# Passes over many entries split across the threads: rows of logits in chunks of ROWS, columns of
# gradients in chunks of COLUMNS. Each chunk's arithmetic is the same whether the chunks run on
# one thread or several, so are the results. Below PARALLEL_MIN entries a pass stays on the
# calling thread: there a parallel loop's start (some microseconds) costs more than it saves.
ROWS, COLUMNS, PARALLEL_MIN = 64, 256, 1 << 15


@jit
def _embed_columns(ids, da, dW, j0, j1):
    """Columns j0 .. j1 of embed_backward: dW[ids[t, b], j] += da[t, b, j] in the order (t, b)."""
    T, B = ids.shape
    for t in range(T):
        for b in range(B):
            row = ids[t, b]
            for j in range(j0, j1):
                dW[row, j] += da[t, b, j]


@pjit
def _embed_split(ids, da, dW):
    GH = da.shape[2]
    for c in prange((GH + COLUMNS - 1) // COLUMNS):
        _embed_columns(ids, da, dW, c * COLUMNS, min((c + 1) * COLUMNS, GH))


@jit
def embed_backward(ids, da, V):
    """dW_xh for token inputs: row ids[t, b] of W_xh receives da[t, b] (rows repeat: accumulate)."""
    T, B, GH = da.shape
    _check_ids(ids, V)
    dW = np.zeros((V, GH), dtype=da.dtype)
    if da.size >= PARALLEL_MIN:
        _embed_split(ids, da, dW)
    else:
        _embed_columns(ids, da, dW, 0, GH)
    return dW


@jit
def _logits_rows(y, targets, b_y, r0, r1, sums):
    """Rows r0 .. r1 of _logits_back: their summed loss; their dy rows added into sums (V,)."""
    R, V = y.shape
    B = targets.shape[1]
    scale = 1.0 / R
    loss = 0.0
    for r in range(r0, r1):
        row = y[r]
        for v in range(V):                                    # the logits
            row[v] += b_y[v]
        loss += _xent_row(row, targets[r // B, r % B])
        for v in range(V):
            row[v] *= scale                                   # the mean over T B positions
            sums[v] += row[v]
    return loss


@pjit
def _logits_split(y, targets, b_y, losses, sums):
    R = y.shape[0]
    for c in prange(losses.shape[0]):
        losses[c] = _logits_rows(y, targets, b_y, c * ROWS, min((c + 1) * ROWS, R), sums[c])


@jit
def _logits_back(y, targets, b_y):
    """y (T B, V) = h W_hy, row t B + b for targets[t, b]: adds b_y, then turns each row into
    dE/dy = (softmax - onehot) / (T B) in place. Returns (the summed loss, db_y): each chunk of
    ROWS rows sums its own, and the chunks' sums are added in order."""
    R, V = y.shape
    chunks = (R + ROWS - 1) // ROWS
    losses = np.zeros(chunks)
    sums = np.zeros((chunks, V), dtype=y.dtype)
    if y.size >= PARALLEL_MIN:
        _logits_split(y, targets, b_y, losses, sums)
    else:
        for c in range(chunks):
            losses[c] = _logits_rows(y, targets, b_y, c * ROWS, min((c + 1) * ROWS, R), sums[c])
    db_y = np.zeros(V, dtype=y.dtype)
    loss = 0.0
    for c in range(chunks):
        loss += losses[c]
        for v in range(V):
            db_y[v] += sums[c, v]
    return loss, db_y


@jit
def output_layer(h, targets, W_hy, b_y):
    """The output layer and its loss, forward and backward, in one call.

    h (T+1, B, H) as a cell returns it (h[0], the carried-in state, has no loss), targets (T, B).
    Returns (loss, dh (T, B, H), dW_hy (H, V), db_y (V,)): dh is the gradient on h_1..h_T that
    the recurrence's backward takes."""
    T1, B, H = h.shape
    T, V = T1 - 1, W_hy.shape[1]
    _check_ids(targets, V)
    h_flat = h[1:].reshape(T * B, H)                          # rows h_t[b], t = 1..T
    y = np.empty((T * B, V), dtype=h.dtype)
    np.dot(h_flat, W_hy, y)                                   # (T B, V)
    loss, db_y = _logits_back(y, targets, b_y)                # y becomes dy in place
    dy = y
    dW_hy = np.empty((H, V), dtype=h.dtype)
    np.dot(h_flat.T, dy, dW_hy)                               # sum_t h_t^T dy_t  (H, V)
    dh = np.empty((T * B, H), dtype=h.dtype)
    np.dot(dy, W_hy.T, dh)                                    # backprop into h_t from y_t  (T B, H)
    return loss / (T * B), dh.reshape(T, B, H), dW_hy, db_y


# --------------------------------------------------------------------------- the window's input side

@jit
def _gather_rows(ids, W_xh, b, xw, t0, t1):
    """Steps t0 .. t1 of input_rows."""
    for t in range(t0, t1):
        for b_ in range(ids.shape[1]):
            row = ids[t, b_]
            for j in range(W_xh.shape[1]):
                xw[t, b_, j] = W_xh[row, j] + b[j]


@pjit
def _gather_split(ids, W_xh, b, xw):
    for t in prange(ids.shape[0]):
        _gather_rows(ids, W_xh, b, xw, t, t + 1)


@jit
def input_rows(ids, W_xh, b):
    """xw[t, b] = W_xh[ids[t, b]] + b: the input term of token ids (T, B), as (T, B, GH)."""
    T, B = ids.shape
    V, GH = W_xh.shape
    _check_ids(ids, V)
    xw = np.empty((T, B, GH), dtype=W_xh.dtype)
    if xw.size >= PARALLEL_MIN:
        _gather_split(ids, W_xh, b, xw)
    else:
        _gather_rows(ids, W_xh, b, xw, 0, T)
    return xw


@jit
def window_grads(ids, h, da_x, da_h, V):
    """The weight gradients of one window as whole-window products.

        dW_xh = sum_t onehot(x_t)^T da_x[t]     a scatter-add into rows (embed_backward)
        dW_hh = sum_t h_{t-1}^T da_h[t]         one (H, T B) x (T B, GH) product
        db_x = sum_t,b da_x[t, b];  db_h = sum_t,b da_h[t, b]
    da_x is the gradient on the input-side pre-activations, da_h on the recurrent-side ones
    (the same array except for the GRU). Returns (dW_xh (V, GH), dW_hh (H, GH), db_x, db_h).

    Every row of da_x went into one row of dW_xh, so db_x is the sum of dW_xh's V rows where
    they are fewer than da_x's T B rows; where da_h is da_x (the same memory), db_h is db_x."""
    T, B, GH = da_h.shape
    H = h.shape[2]
    dW_xh = embed_backward(ids, da_x, V)
    dW_hh = np.empty((H, GH), dtype=da_h.dtype)
    np.dot(h[:T].reshape(T * B, H).T, da_h.reshape(T * B, GH), dW_hh)   # (H, GH)
    db_x = _row_sums(dW_xh) if V < T * B else _column_sums(da_x)
    same = da_x.ctypes.data == da_h.ctypes.data and da_x.shape == da_h.shape and da_x.strides == da_h.strides
    db_h = db_x.copy() if same else _column_sums(da_h)
    return dW_xh, dW_hh, db_x, db_h


@jit
def _row_sums(A):
    """The sum of the rows of A (R, N), in row order."""
    s = np.zeros(A.shape[1], dtype=A.dtype)
    for r in range(A.shape[0]):
        for j in range(A.shape[1]):
            s[j] += A[r, j]
    return s


@jit
def _sum_columns(da, db, j0, j1):
    """Columns j0 .. j1 of db: the sums over t and b of da[t, b]."""
    T, B = da.shape[0], da.shape[1]
    for t in range(T):
        for b in range(B):
            for j in range(j0, j1):
                db[j] += da[t, b, j]


@pjit
def _sum_split(da, db):
    GH = da.shape[2]
    for c in prange((GH + COLUMNS - 1) // COLUMNS):
        _sum_columns(da, db, c * COLUMNS, min((c + 1) * COLUMNS, GH))


@jit
def _column_sums(da):
    """The sum over t and b of da[t, b]."""
    GH = da.shape[2]
    db = np.zeros(GH, dtype=da.dtype)
    if da.size >= PARALLEL_MIN:
        _sum_split(da, db)
    else:
        _sum_columns(da, db, 0, GH)
    return db


# --------------------------------------------------------------------------- dense inputs
# The twins of the reference's whole-window products for dense rows, in the BLAS the kernels
# call (SciPy's), so that they run on the threads the run gives the kernels. The arrays must be
# C-contiguous (the cells pass them so).

@jit
def dense_rows(x, W, b):
    """xw[t, b] = x[t, b] W + b: the input term of dense inputs x (T, B, I), as (T, B, GH)."""
    T, B, I = x.shape
    GH = W.shape[1]
    xw = np.empty((T * B, GH), dtype=W.dtype)
    np.dot(x.reshape(T * B, I), W, xw)                        # (T B, I) @ (I, GH)
    for r in range(T * B):
        for j in range(GH):
            xw[r, j] += b[j]
    return xw.reshape(T, B, GH)


@jit
def outer_sum(a, da):
    """sum over t and b of a[t, b]^T da[t, b]: a weight's gradient over a window, (K, GH)."""
    T, B, K = a.shape
    GH = da.shape[2]
    out = np.empty((K, GH), dtype=da.dtype)
    np.dot(a.reshape(T * B, K).T, da.reshape(T * B, GH), out)   # (K, T B) @ (T B, GH)
    return out


@jit
def back_rows(da, W):
    """da[t, b] W^T: the gradient on the rows x[t, b] that xw = x W read, (T, B, K)."""
    T, B, GH = da.shape
    K = W.shape[0]
    out = np.empty((T * B, K), dtype=da.dtype)
    np.dot(da.reshape(T * B, GH), W.T, out)                   # (T B, GH) @ (GH, K)
    return out.reshape(T, B, K)
