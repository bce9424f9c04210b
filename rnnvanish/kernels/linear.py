"""Numba twins of `rnnvanish.reference.linear`: minGRU and minLSTM (Feng et al. 2024) and the
LRU (Orvieto et al. 2023), their truncated BPTT, the prefix scan and the log-space scan.

The equations, gate orders, scan codes and the meaning of every argument are in the
reference's docstring; each public function here has its name, arguments and results and
takes the same steps in the same order, as plain loops over (t, b, j). The private helpers
share the reference's names (`_candidate`, `_candidate_grad`, `_log_candidate`, `_walks`, ...)
but work on one number, or write into arrays allocated once per call.

No jitted function here calls one in another module (Numba's cache checks only the file of
the function it compiled, see recurrent.py): `_walks`, the sigmoid and softplus are written
here again. The sigmoid is 1 / (1 + exp(-x)) with np.exp, as the reference's.
"""
import numpy as np
from numba import njit

# As in recurrent.py: cached on disk, numpy's error model, fused multiply-add allowed.
jit = njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})

LOOP, PREFIX_SCAN, LOG_SCAN = 0, 1, 2


@jit
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@jit
def _softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|)."""
    return max(x, 0.0) + np.log1p(np.exp(-abs(x)))


@jit
def _logaddexp(x, y):
    """log(e^x + e^y)."""
    if x == y:                                                # also both -inf
        return x + np.log(2.0)
    m = max(x, y)
    return m + np.log1p(np.exp(-abs(x - y)))


@jit
def _walks(T, truncate):
    """(k, last) as in the reference (recurrent.py's `_walks`)."""
    k = T if truncate <= 0 or truncate >= T else truncate
    return k, (T - 1 if k == T else 0)


# --------------------------------------------------------------------------- the candidate

@jit
def _candidate(a_h, positive):
    """h~ = a_h, or g(a_h) = a_h + 1/2 (a_h >= 0), sigmoid(a_h) (a_h < 0)."""
    if not positive:
        return a_h
    return a_h + 0.5 if a_h >= 0 else _sigmoid(a_h)


@jit
def _candidate_grad(h_tilde, positive):
    """c'(a_h) from h~ = c(a_h)."""
    if not positive:
        return 1.0
    return 1.0 if h_tilde >= 0.5 else h_tilde * (1.0 - h_tilde)


@jit
def _log_candidate(a_h):
    """log g(a_h)."""
    return np.log(a_h + 0.5) if a_h >= 0 else -_softplus(-a_h)


# --------------------------------------------------------------------------- the scans

@jit
def _loop(a, b, h0):
    """h_t = a_t h_{t-1} + b_t for t = 1..T, one step at a time."""
    T, B, H = a.shape
    h = np.empty((T + 1, B, H), dtype=a.dtype)
    h[0] = h0
    for t in range(1, T + 1):
        for n in range(B):
            for j in range(H):
                h[t, n, j] = a[t - 1, n, j] * h[t - 1, n, j] + b[t - 1, n, j]
    return h


@jit
def linear_scan(a, b, h0):
    """Hillis-Steele's inclusive scan of the affine maps (a_t, b_t), as the reference's:
    round d, entry t >= d: (A_t, B_t) <- (A_t A_{t-d}, A_t B_{t-d} + B_t), from the old arrays."""
    T, B, H = a.shape
    A, Bs = a.copy(), b.copy()
    A_next, B_next = a.copy(), b.copy()
    d = 1
    while d < T:
        for t in range(T):
            for n in range(B):
                for j in range(H):
                    if t >= d:
                        B_next[t, n, j] = A[t, n, j] * Bs[t - d, n, j] + Bs[t, n, j]     # a2 b1 + b2
                        A_next[t, n, j] = A[t, n, j] * A[t - d, n, j]                    # a2 a1
                    else:
                        B_next[t, n, j] = Bs[t, n, j]
                        A_next[t, n, j] = A[t, n, j]
        A, A_next = A_next, A
        Bs, B_next = B_next, Bs
        d *= 2
    h = np.empty((T + 1, B, H), dtype=a.dtype)
    h[0] = h0
    for t in range(T):
        for n in range(B):
            for j in range(H):
                h[t + 1, n, j] = A[t, n, j] * h0[n, j] + Bs[t, n, j]
    return h


@jit
def log_scan(log_a, log_b, log_h0):
    """log h_t = a*_t + logcumsumexp(log h_0, log b_1 - a*_1, ..., log b_t - a*_t), a*_t = sum log a."""
    T, B, H = log_a.shape
    h = np.empty((T + 1, B, H), dtype=log_a.dtype)
    for n in range(B):
        for j in range(H):
            a_star = 0.0
            acc = log_h0[n, j]
            h[0, n, j] = np.exp(acc)
            for t in range(T):
                a_star += log_a[t, n, j]                      # the cumulative sum
                acc = _logaddexp(acc, log_b[t, n, j] - a_star)   # the cumulative log-sum-exp
                h[t + 1, n, j] = np.exp(a_star + acc)
    return h


@jit
def _run(a, b, h0, scan):
    if scan == PREFIX_SCAN:
        return linear_scan(a, b, h0)
    return _loop(a, b, h0)


@jit
def _check_log_scan(h0, positive):
    if not positive:
        raise ValueError("the log-space scan needs positive candidates (positive=True, h~ = g(.))")
    for n in range(h0.shape[0]):
        for j in range(h0.shape[1]):
            if not h0[n, j] > 0:
                raise ValueError("the log-space scan needs a positive initial state h0")


@jit
def _log_of(x):
    out = np.empty_like(x)
    for n in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[n, j] = np.log(x[n, j])
    return out


# --------------------------------------------------------------------------- minGRU

@jit
def mingru_forward(xw, h0, positive, scan):
    """minGRU: z = sigmoid(xw_z), h~ = c(xw_h), h_t = (1 - z) h_{t-1} + z h~: h (T+1, B, H), gates (T, B, 2H)."""
    T, B, G2 = xw.shape
    H = G2 // 2
    gates = np.empty((T, B, G2), dtype=xw.dtype)
    a = np.empty((T, B, H), dtype=xw.dtype)                   # log a and log b for the log scan
    b = np.empty((T, B, H), dtype=xw.dtype)
    log_space = scan == LOG_SCAN
    if log_space:
        _check_log_scan(h0, positive)
    for t in range(T):
        for n in range(B):
            for j in range(H):
                a_z, a_h = xw[t, n, j], xw[t, n, H + j]
                z = _sigmoid(a_z)
                h_tilde = _candidate(a_h, positive)
                gates[t, n, j] = z
                gates[t, n, H + j] = h_tilde
                if log_space:
                    a[t, n, j] = -_softplus(a_z)              # log(1 - z)
                    b[t, n, j] = -_softplus(-a_z) + _log_candidate(a_h)   # log z + log h~
                else:
                    a[t, n, j] = 1.0 - z
                    b[t, n, j] = z * h_tilde
    if log_space:
        h = log_scan(a, b, _log_of(h0))
        h[0] = h0
        return h, gates
    return _run(a, b, h0, scan), gates


@jit
def mingru_backward(dh, dh_T, h, gates, positive, truncate):
    """Truncated BPTT through the minGRU: da (T, B, 2H), dh0 (B, H), norms (T+1,)."""
    T, B, H = dh.shape
    da = np.zeros_like(gates)
    g_h = np.zeros_like(h)
    g = np.empty((B, H), dtype=dh.dtype)
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        first = max(s - k + 1, 1)
        g[:] = 0.0
        for t in range(s, first - 1, -1):
            for n in range(B):
                for j in range(H):
                    g_nj = g[n, j]
                    if t == s or k == T:
                        g_nj += dh[t - 1, n, j]              # backprop into h_t: local + from h_{t+1}
                        if t == T:
                            g_nj += dh_T[n, j]
                    g_h[t, n, j] += g_nj
                    z, h_tilde = gates[t - 1, n, j], gates[t - 1, n, H + j]
                    dz = g_nj * (h_tilde - h[t - 1, n, j])
                    da[t - 1, n, j] += dz * z * (1.0 - z)     # through the sigmoid
                    da[t - 1, n, H + j] += g_nj * z * _candidate_grad(h_tilde, positive)   # through c
                    g[n, j] = g_nj * (1.0 - z)                # the linear path to h_{t-1}
        for n in range(B):
            for j in range(H):
                g_h[first - 1, n, j] += g[n, j]               # reaches h_{s-k}; stops there (or is dh0)
    return da, g_h[0].copy(), _step_norms(g_h)


@jit
def _step_norms(g_h):
    """norms[t] = ||g_h[t]|| over the batch and units."""
    T1, B, H = g_h.shape
    norms = np.empty(T1, dtype=g_h.dtype)
    for t in range(T1):
        total = 0.0
        for n in range(B):
            for j in range(H):
                total += g_h[t, n, j] * g_h[t, n, j]
        norms[t] = np.sqrt(total)
    return norms


# --------------------------------------------------------------------------- minLSTM

@jit
def minlstm_forward(xw, h0, positive, scan):
    """minLSTM: h_t = f' h_{t-1} + i' h~ with f' = f / (f + i), i' = i / (f + i): h (T+1, B, H), gates (T, B, 3H)."""
    T, B, G3 = xw.shape
    H = G3 // 3
    gates = np.empty((T, B, G3), dtype=xw.dtype)
    a = np.empty((T, B, H), dtype=xw.dtype)
    b = np.empty((T, B, H), dtype=xw.dtype)
    log_space = scan == LOG_SCAN
    if log_space:
        _check_log_scan(h0, positive)
    for t in range(T):
        for n in range(B):
            for j in range(H):
                a_i, a_f, a_h = xw[t, n, j], xw[t, n, H + j], xw[t, n, 2 * H + j]
                i, f = _sigmoid(a_i), _sigmoid(a_f)
                h_tilde = _candidate(a_h, positive)
                gates[t, n, j] = i
                gates[t, n, H + j] = f
                gates[t, n, 2 * H + j] = h_tilde
                if log_space:
                    diff = _softplus(-a_f) - _softplus(-a_i)  # log(i / f)
                    a[t, n, j] = -_softplus(diff)             # log f'
                    b[t, n, j] = -_softplus(-diff) + _log_candidate(a_h)   # log i' + log h~
                else:
                    a[t, n, j] = f / (f + i)
                    b[t, n, j] = i / (f + i) * h_tilde
    if log_space:
        h = log_scan(a, b, _log_of(h0))
        h[0] = h0
        return h, gates
    return _run(a, b, h0, scan), gates


@jit
def minlstm_backward(dh, dh_T, h, gates, positive, truncate):
    """Truncated BPTT through the minLSTM: da (T, B, 3H), dh0 (B, H), norms (T+1,)."""
    T, B, H = dh.shape
    da = np.zeros_like(gates)
    g_h = np.zeros_like(h)
    g = np.empty((B, H), dtype=dh.dtype)
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        first = max(s - k + 1, 1)
        g[:] = 0.0
        for t in range(s, first - 1, -1):
            for n in range(B):
                for j in range(H):
                    g_nj = g[n, j]
                    if t == s or k == T:
                        g_nj += dh[t - 1, n, j]              # backprop into h_t: local + from h_{t+1}
                        if t == T:
                            g_nj += dh_T[n, j]
                    g_h[t, n, j] += g_nj
                    i, f, h_tilde = gates[t - 1, n, j], gates[t - 1, n, H + j], gates[t - 1, n, 2 * H + j]
                    f_n, i_n = f / (f + i), i / (f + i)
                    df_n = g_nj * h[t - 1, n, j]              # h_t = f' h_{t-1} + i' h~
                    di_n = g_nj * h_tilde
                    both = f_n * i_n * (di_n - df_n)          # through the normalisation
                    da[t - 1, n, j] += both * (1.0 - i)       # ... and the sigmoids
                    da[t - 1, n, H + j] += -both * (1.0 - f)
                    da[t - 1, n, 2 * H + j] += g_nj * i_n * _candidate_grad(h_tilde, positive)   # through c
                    g[n, j] = g_nj * f_n                      # the linear path to h_{t-1}
        for n in range(B):
            for j in range(H):
                g_h[first - 1, n, j] += g[n, j]
    return da, g_h[0].copy(), _step_norms(g_h)


# --------------------------------------------------------------------------- LRU

@jit
def _lru_lambda(nu_log, theta_log, dtype_of):
    """lambda (N,) = exp(-exp(nu_log) + i exp(theta_log)), in the complex type of `dtype_of`."""
    lam = np.empty(nu_log.shape[0], dtype=dtype_of.dtype)
    for j in range(nu_log.shape[0]):
        lam[j] = np.exp(-np.exp(nu_log[j]) + 1j * np.exp(theta_log[j]))
    return lam


@jit
def lru_forward(bu, x0, nu_log, theta_log, gamma_log, scan):
    """x_t = lambda x_{t-1} + gamma bu_t: x (T+1, B, N) complex."""
    if scan == LOG_SCAN:
        raise ValueError("the LRU runs by the loop or the prefix scan; the log-space scan needs positive values")
    T, B, N = bu.shape
    lam = _lru_lambda(nu_log, theta_log, bu)
    a = np.empty_like(bu)
    b = np.empty_like(bu)
    for t in range(T):
        for n in range(B):
            for j in range(N):
                a[t, n, j] = lam[j]
                b[t, n, j] = np.exp(gamma_log[j]) * bu[t, n, j]   # gamma bu_t
    return _run(a, b, x0, scan)


@jit
def _complex_norms(g_x):
    """norms[t] = sqrt(sum |g|^2) over the batch and units."""
    T1, B, N = g_x.shape
    norms = np.empty(T1, dtype=g_x.real.dtype)
    for t in range(T1):
        total = 0.0
        for n in range(B):
            for j in range(N):
                g = g_x[t, n, j]
                total += g.real * g.real + g.imag * g.imag
        norms[t] = np.sqrt(total)
    return norms


@jit
def lru_backward(dx, dx_T, x, bu, nu_log, theta_log, gamma_log, truncate):
    """Truncated BPTT through the LRU: dbu (T, B, N), dnu_log, dtheta_log, dgamma_log (N,), dx0, norms."""
    T, B, N = dx.shape
    lam = _lru_lambda(nu_log, theta_log, dx)
    db = np.zeros_like(dx)
    dlam = np.zeros(N, dtype=dx.dtype)
    g_x = np.zeros_like(x)
    g = np.empty((B, N), dtype=dx.dtype)
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        first = max(s - k + 1, 1)
        g[:] = 0.0
        for t in range(s, first - 1, -1):
            for n in range(B):
                for j in range(N):
                    g_nj = g[n, j]
                    if t == s or k == T:
                        g_nj += dx[t - 1, n, j]              # backprop into x_t: local + from x_{t+1}
                        if t == T:
                            g_nj += dx_T[n, j]
                    g_x[t, n, j] += g_nj
                    db[t - 1, n, j] += g_nj                  # x_t = lambda x_{t-1} + b_t
                    dlam[j] += np.conj(x[t - 1, n, j]) * g_nj
                    g[n, j] = np.conj(lam[j]) * g_nj         # to x_{t-1}
        for n in range(B):
            for j in range(N):
                g_x[first - 1, n, j] += g[n, j]
    dbu = np.empty_like(db)
    dnu_log, dtheta_log, dgamma_log = np.empty_like(nu_log), np.empty_like(theta_log), np.empty_like(gamma_log)
    for j in range(N):
        gamma = np.exp(gamma_log[j])
        total = 0.0
        for t in range(T):
            for n in range(B):
                dbu[t, n, j] = gamma * db[t, n, j]            # b_t = gamma bu_t
                total += (np.conj(bu[t, n, j]) * db[t, n, j]).real
        dgamma_log[j] = gamma * total
        dmu = np.conj(lam[j]) * dlam[j]                       # lambda = exp(mu)
        dnu_log[j] = -np.exp(nu_log[j]) * dmu.real
        dtheta_log[j] = np.exp(theta_log[j]) * dmu.imag
    return dbu, dnu_log, dtheta_log, dgamma_log, g_x[0].copy(), _complex_norms(g_x)
