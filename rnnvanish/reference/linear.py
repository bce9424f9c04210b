"""NumPy reference of the linear recurrences minGRU and minLSTM (Feng, Tung, Ahmed, Bengio &
Hajimirsadeghi 2024, "Were RNNs All We Needed?") and the LRU (Orvieto et al. 2023, at the
end of the file), their truncated BPTT and their scans.

The cells that call them are `rnnvanish.mincells` (`--cell mingru`, `--cell minlstm`) and
`rnnvanish.lru` (`--cell lru`); each computes the input term (xw = x W_xh + b, or the LRU's
u B) for the whole window, as the other cells do, and passes it here.

Legend: T steps, B batch, H hidden. Time-major; h has shape (T+1, B, H) with h[0] = h_prev.
Every public function has a Numba twin of the same name, arguments and results in
`rnnvanish.kernels.linear`.

Both cells' gates read the input x_t only, never h_{t-1}, so the recurrence is linear and
diagonal in h:

    h_t = a_t * h_{t-1} + b_t,        a_t, b_t (B, H) functions of xw[t-1] alone

    minGRU   xw = [x W_z + b_z | x W_h + b_h]                   (T, B, 2H), gate order z, h~
             z_t = sigmoid(xw_z),  h~_t = c(xw_h)
             h_t = (1 - z_t) * h_{t-1} + z_t * h~_t              a_t = 1 - z_t, b_t = z_t h~_t
    minLSTM  xw = [x W_i + b_i | x W_f + b_f | x W_h + b_h]    (T, B, 3H), gate order i, f, h~
             i_t = sigmoid(xw_i),  f_t = sigmoid(xw_f),  h~_t = c(xw_h)
             f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)
             h_t = f'_t * h_{t-1} + i'_t * h~_t                  a_t = f'_t, b_t = i'_t h~_t

(the gate orders follow PyTorch's GRU, z before n, and LSTM, i before f before g). The
candidate's function c is, with `positive` False, the identity (the paper's section 3), and
with `positive` True the paper's g (its appendix on the log-space version):

    g(x) = x + 1/2 for x >= 0,  sigmoid(x) for x < 0            (continuous, increasing, > 0)

which keeps h~ > 0, so that the log-space scan can take the logarithm of b_t.

Three ways to run the same recurrence (`scan`, the forward kernels' last argument, a code of SCANS):
    LOOP         the step loop, t = 1..T;
    PREFIX_SCAN  `linear_scan`: an associative (Hillis-Steele) prefix scan over time of the
                 pairs (a_t, b_t), log2(T) vectorised rounds;
    LOG_SCAN     `log_scan`: the same prefix sums in log space (Heinsen 2023, the paper's
                 appendix), h_t = exp(a*_t + logcumsumexp_k(log b_k - a*_k)), a*_t = sum log a;
                 needs b_t > 0 and h_0 > 0, so `positive` True and a positive h0.
Tests hold the three equal. The backward pass is the same for all three.

Backward: dh, dh_T and truncate as in `recurrent.py` (the loss at step s sends its gradient
back at most k2 = truncate steps; 0 = to the window start). The step back through
h_t = a_t h_{t-1} + b_t is dh_{t-1} = a_t * dh_t, so with no loss between k and T

    dh_k = dh_T * prod_{j=k+1..T} a_j           (the closed form of the lag profile, diagonal)

Results: da (the gradient on xw, for the weight gradients), dh0, and norms[t] = ||dE/dh_t||.
"""
import numpy as np

from .activations import sigmoid
from .recurrent import _add_loss_grad, _step_norms, _walks

LOOP, PREFIX_SCAN, LOG_SCAN = 0, 1, 2
SCANS = {"loop": LOOP, "prefix": PREFIX_SCAN, "log": LOG_SCAN}


def _softplus(x):
    """log(1 + e^x), without overflow."""
    return np.logaddexp(0.0, x)


# --------------------------------------------------------------------------- the candidate

def _candidate(a_h, positive):
    """h~ = c(a_h): a_h itself, or g(a_h) = a_h + 1/2 (a_h >= 0), sigmoid(a_h) (a_h < 0)."""
    if not positive:
        return a_h.copy()
    return np.where(a_h >= 0, np.maximum(a_h, 0.0) + 0.5, sigmoid(np.minimum(a_h, 0.0)))


def _candidate_grad(h_tilde, positive):
    """c'(a_h) from h~ = c(a_h): 1, or for g: 1 where h~ >= 1/2 (a_h >= 0), h~ (1 - h~) below."""
    if not positive:
        return np.ones_like(h_tilde)
    return np.where(h_tilde >= 0.5, 1.0, h_tilde * (1.0 - h_tilde))


def _log_candidate(a_h):
    """log g(a_h): log(a_h + 1/2) for a_h >= 0, log sigmoid(a_h) = -softplus(-a_h) below."""
    return np.where(a_h >= 0, np.log(np.maximum(a_h, 0.0) + 0.5), -_softplus(-np.minimum(a_h, 0.0)))


# --------------------------------------------------------------------------- the scans

def _linear_step(a_t, b_t, h_prev):
    """h_t = a_t * h_{t-1} + b_t."""
    return a_t * h_prev + b_t


def _loop(a, b, h0):
    """h_t = a_t h_{t-1} + b_t for t = 1..T, one step at a time; returns h (T+1, B, H)."""
    T = a.shape[0]
    h = np.empty((T + 1,) + h0.shape, dtype=a.dtype)
    h[0] = h0
    for t in range(1, T + 1):
        h[t] = _linear_step(a[t - 1], b[t - 1], h[t - 1])
    return h


def linear_scan(a, b, h0):
    """h_t = a_t h_{t-1} + b_t for t = 1..T by an associative prefix scan; returns h (T+1, B, H).

    Step t is the affine map h -> a_t h + b_t. Maps compose associatively, the later one
    outside:  (a2, b2) o (a1, b1) = (a2 a1, a2 b1 + b2). After round r of Hillis and Steele's
    inclusive scan (d = 2^r), entry t holds the composition of steps max(t - 2d + 1, 0)..t
    (0-based), so after ceil(log2 T) rounds it holds steps 0..t: (A_t, B_t) with
    h_{t+1} = A_t h_0 + B_t. Every round is one vectorised operation over all t at once."""
    T = a.shape[0]
    A, Bs = a.copy(), b.copy()
    d = 1
    while d < T:
        # Entry t takes in the prefix ending at t - d (the right side reads the old arrays).
        A_next, B_next = A.copy(), Bs.copy()
        B_next[d:] = A[d:] * Bs[:-d] + Bs[d:]                 # a2 b1 + b2
        A_next[d:] = A[d:] * A[:-d]                           # a2 a1
        A, Bs = A_next, B_next
        d *= 2
    h = np.empty((T + 1,) + h0.shape, dtype=a.dtype)
    h[0] = h0
    h[1:] = A * h0 + Bs
    return h


def log_scan(log_a, log_b, log_h0):
    """h_t = a_t h_{t-1} + b_t from log a, log b (T, B, H) and log h_0 (B, H), in log space;
    returns h (T+1, B, H). Needs b_t > 0 and h_0 > 0 (their logs are given).

    With a*_t = sum_{j<=t} log a_j (a* at 0 is 0) the recurrence unrolls to
        h_t = exp(a*_t) (h_0 + sum_{k=1..t} b_k exp(-a*_k))
        log h_t = a*_t + logcumsumexp(log h_0, log b_1 - a*_1, ..., log b_t - a*_t)
    (Heinsen 2023): two prefix scans, a cumulative sum and a cumulative log-sum-exp, whose
    terms stay finite where the products prod a_j underflow."""
    T = log_a.shape[0]
    a_star = np.cumsum(log_a, axis=0)                          # (T, B, H)
    terms = np.concatenate([log_h0[None], log_b - a_star], axis=0)
    acc = np.logaddexp.accumulate(terms, axis=0)               # (T+1, B, H)
    h = np.empty(terms.shape, dtype=log_a.dtype)
    h[0] = np.exp(log_h0)
    h[1:] = np.exp(a_star + acc[1:T + 1])
    return h


def _run(a, b, h0, scan):
    """The recurrence by the loop or the prefix scan."""
    return linear_scan(a, b, h0) if scan == PREFIX_SCAN else _loop(a, b, h0)


def _check_log_scan(h0, positive):
    if not positive:
        raise ValueError("the log-space scan needs positive candidates (positive=True, h~ = g(.))")
    if not np.all(h0 > 0):
        raise ValueError("the log-space scan needs a positive initial state h0")


# --------------------------------------------------------------------------- minGRU

def mingru_forward(xw, h0, positive, scan):
    """minGRU: z_t = sigmoid(xw_z), h~_t = c(xw_h), h_t = (1 - z_t) h_{t-1} + z_t h~_t.

    xw (T, B, 2H) = [x W_z + b_z | x W_h + b_h]; returns h (T+1, B, H) and gates (T, B, 2H)
    holding z and h~. scan: LOOP, PREFIX_SCAN or LOG_SCAN (see the module's docstring)."""
    T, B, G2 = xw.shape
    H = G2 // 2
    a_z, a_h = xw[:, :, :H], xw[:, :, H:]
    z = sigmoid(a_z)
    h_tilde = _candidate(a_h, positive)
    gates = np.concatenate([z, h_tilde], axis=2)
    if scan == LOG_SCAN:
        _check_log_scan(h0, positive)
        log_a = -_softplus(a_z)                                # log(1 - z) = log sigmoid(-a_z)
        log_b = -_softplus(-a_z) + _log_candidate(a_h)         # log z + log h~
        h = log_scan(log_a, log_b, np.log(h0))
        h[0] = h0
        return h, gates
    return _run(1.0 - z, z * h_tilde, h0, scan), gates


def _mingru_step_back(g_h, h_prev, gates_t, positive):
    """One step back through h_t = (1 - z) h_{t-1} + z h~, g_h = dE/dh_t: (da_t, dh_{t-1})."""
    H = g_h.shape[1]
    z, h_tilde = gates_t[:, :H], gates_t[:, H:]
    dz = g_h * (h_tilde - h_prev)                              # d/dz of (1 - z) h_{t-1} + z h~
    dh_tilde = g_h * z
    dh_prev = g_h * (1.0 - z)                                  # the linear path to h_{t-1}: a_t = 1 - z
    da_t = np.concatenate([dz * z * (1.0 - z),                 # through the sigmoid
                           dh_tilde * _candidate_grad(h_tilde, positive)], axis=1)   # through c
    return da_t, dh_prev


def mingru_backward(dh, dh_T, h, gates, positive, truncate):
    """Truncated BPTT through the minGRU. Returns da (T, B, 2H), dh0 (B, H), norms (T+1,)."""
    T, B, H = dh.shape
    da = np.zeros_like(gates)
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
            da_t, g = _mingru_step_back(g, h[t - 1], gates[t - 1], positive)
            da[t - 1] += da_t                                 # a shared weight's gradient accumulates
        g_h[first - 1] += g                                   # reaches h_{s-k}; stops there (or is dh0)
    return da, g_h[0].copy(), _step_norms(g_h)


# --------------------------------------------------------------------------- minLSTM

def minlstm_forward(xw, h0, positive, scan):
    """minLSTM: i_t, f_t = sigmoid(xw_i, xw_f), h~_t = c(xw_h), f' = f / (f + i), i' = i / (f + i),
    h_t = f'_t h_{t-1} + i'_t h~_t.

    xw (T, B, 3H) = [x W_i + b_i | x W_f + b_f | x W_h + b_h]; returns h (T+1, B, H) and
    gates (T, B, 3H) holding i, f (before the normalisation) and h~."""
    T, B, G3 = xw.shape
    H = G3 // 3
    a_i, a_f, a_h = xw[:, :, :H], xw[:, :, H:2 * H], xw[:, :, 2 * H:]
    i, f = sigmoid(a_i), sigmoid(a_f)
    h_tilde = _candidate(a_h, positive)
    gates = np.concatenate([i, f, h_tilde], axis=2)
    if scan == LOG_SCAN:
        _check_log_scan(h0, positive)
        diff = _softplus(-a_f) - _softplus(-a_i)               # log(1/f) - log(1/i) = log(i / f)
        log_a = -_softplus(diff)                               # log f' = -log(1 + i / f)
        log_b = -_softplus(-diff) + _log_candidate(a_h)        # log i' + log h~
        h = log_scan(log_a, log_b, np.log(h0))
        h[0] = h0
        return h, gates
    f_n, i_n = f / (f + i), i / (f + i)
    return _run(f_n, i_n * h_tilde, h0, scan), gates


def _minlstm_step_back(g_h, h_prev, gates_t, positive):
    """One step back through h_t = f' h_{t-1} + i' h~, g_h = dE/dh_t: (da_t, dh_{t-1}).

    With s = f + i: df'/df = i / s^2 = -di'/df and di'/di = f / s^2 = -df'/di, so through
    the sigmoids da_f = (df' - di') f' i' (1 - f) and da_i = (di' - df') f' i' (1 - i)."""
    H = g_h.shape[1]
    i, f, h_tilde = gates_t[:, :H], gates_t[:, H:2 * H], gates_t[:, 2 * H:]
    f_n, i_n = f / (f + i), i / (f + i)
    df_n = g_h * h_prev                                        # h_t = f' h_{t-1} + i' h~
    di_n = g_h * h_tilde
    dh_tilde = g_h * i_n
    dh_prev = g_h * f_n                                        # the linear path to h_{t-1}: a_t = f'
    both = f_n * i_n * (di_n - df_n)                           # through the normalisation
    da_t = np.concatenate([both * (1.0 - i),                   # ... and the sigmoids
                           -both * (1.0 - f),
                           dh_tilde * _candidate_grad(h_tilde, positive)], axis=1)   # through c
    return da_t, dh_prev


def minlstm_backward(dh, dh_T, h, gates, positive, truncate):
    """Truncated BPTT through the minLSTM. Returns da (T, B, 3H), dh0 (B, H), norms (T+1,)."""
    T, B, H = dh.shape
    da = np.zeros_like(gates)
    g_h = np.zeros_like(h)
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        first = max(s - k + 1, 1)
        g = np.zeros((B, H), dtype=dh.dtype)
        for t in range(s, first - 1, -1):
            if t == s or k == T:
                g = _add_loss_grad(dh, dh_T, t, g)            # backprop into h_t: local + from h_{t+1}
            g_h[t] += g
            da_t, g = _minlstm_step_back(g, h[t - 1], gates[t - 1], positive)
            da[t - 1] += da_t
        g_h[first - 1] += g                                   # reaches h_{s-k}; stops there (or is dh0)
    return da, g_h[0].copy(), _step_norms(g_h)


# --------------------------------------------------------------------------- LRU
# The Linear Recurrent Unit (Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De 2023,
# "Resurrecting Recurrent Neural Networks for Long Sequences"): a complex diagonal linear
# recurrence on a state x (N units), its eigenvalues in exponential form, real parameters:
#
#     lambda = exp(-exp(nu_log) + i exp(theta_log))      |lambda| = exp(-exp(nu_log)) < 1
#     gamma  = exp(gamma_log)                            (ring init: sqrt(1 - |lambda|^2))
#     x_t    = lambda * x_{t-1} + gamma * bu_t,   bu_t = u_t (B_re + i B_im)   (B, N) complex
#
# bu (T, B, N) comes from outside, like the other cells' xw; so do the readout
# y_t = Re(x_t C) + u_t D and the position-wise nonlinearity of the paper's block. As the paper's
# code does, gamma_log is a parameter of its own, set by the ring initialisation to
# log sqrt(1 - |lambda|^2) so that a white-noise input keeps the state's variance.
# Complex gradients are written g = dE/dRe z + i dE/dIm z (E real): through z' = a z it is
# dz = conj(a) dz', so with no loss between k and T, dx_k = conj(lambda)^(T-k) dx_T, the
# conjugate of the closed form dx_T/dx_k = Lambda^(T-k).

def lru_ring_init(N, rng, r_min=0.0, r_max=1.0, max_phase=2 * np.pi):
    """The paper's ring initialisation: |lambda| uniform on the ring r_min <= |lambda| <= r_max
    (|lambda|^2 uniform in [r_min^2, r_max^2]), phase uniform in [0, max_phase].
    Returns nu_log, theta_log, gamma_log (N,). A NumPy helper, no kernel (no Numba twin)."""
    u1, u2 = rng.uniform(size=N), rng.uniform(size=N)
    modulus_sq = u1 * (r_max ** 2 - r_min ** 2) + r_min ** 2
    nu_log = np.log(-0.5 * np.log(modulus_sq))                # exp(-exp(nu_log)) = |lambda|
    theta_log = np.log(max_phase * u2)
    gamma_log = 0.5 * np.log(1.0 - modulus_sq)                # log sqrt(1 - |lambda|^2)
    return nu_log, theta_log, gamma_log


def _lru_lambda(nu_log, theta_log):
    """lambda (N,) = exp(-exp(nu_log) + i exp(theta_log))."""
    return np.exp(-np.exp(nu_log) + 1j * np.exp(theta_log))


def lru_forward(bu, x0, nu_log, theta_log, gamma_log, scan):
    """x_t = lambda x_{t-1} + gamma bu_t for t = 1..T; bu (T, B, N), x0 (B, N) complex.

    Returns x (T+1, B, N). scan: LOOP or PREFIX_SCAN (the log-space scan is for positive reals)."""
    if scan == LOG_SCAN:
        raise ValueError("the LRU runs by the loop or the prefix scan; the log-space scan needs positive values")
    lam = _lru_lambda(nu_log, theta_log).astype(bu.dtype)
    b = np.exp(gamma_log) * bu                                 # gamma bu_t (T, B, N)
    a = np.broadcast_to(lam, bu.shape)
    return _run(a, b, x0, scan)


def _complex_norms(g_x):
    """norms[t] = ||g_x[t]|| = sqrt(sum |g|^2) over the batch and units, t = 0..T."""
    return np.sqrt((g_x.real ** 2 + g_x.imag ** 2).sum(axis=(1, 2)))


def lru_backward(dx, dx_T, x, bu, nu_log, theta_log, gamma_log, truncate):
    """Truncated BPTT through the LRU; dx (T, B, N), dx_T (B, N) the outside gradients on x_t.

    Returns dbu (T, B, N), dnu_log, dtheta_log, dgamma_log (N,), dx0 (B, N), norms (T+1,)."""
    T, B, N = dx.shape
    lam = _lru_lambda(nu_log, theta_log).astype(dx.dtype)
    db = np.zeros_like(dx)                   # the gradient on b_t = gamma bu_t
    dlam = np.zeros(N, dtype=dx.dtype)
    g_x = np.zeros_like(x)
    k, last = _walks(T, truncate)
    for s in range(T, last, -1):
        first = max(s - k + 1, 1)
        g = np.zeros((B, N), dtype=dx.dtype)
        for t in range(s, first - 1, -1):
            if t == s or k == T:
                g = _add_loss_grad(dx, dx_T, t, g)            # backprop into x_t: local + from x_{t+1}
            g_x[t] += g
            db[t - 1] += g                                    # x_t = lambda x_{t-1} + b_t
            dlam += (np.conj(x[t - 1]) * g).sum(axis=0)       # ... the same lambda at every step
            g = np.conj(lam) * g                              # to x_{t-1}: conj(lambda) g
        g_x[first - 1] += g                                   # reaches x_{s-k}; stops there (or is dx0)
    gamma = np.exp(gamma_log)
    dbu = gamma * db                                          # b_t = gamma bu_t
    dgamma_log = gamma * (np.conj(bu) * db).real.sum(axis=(0, 1))   # dE/dgamma = Re sum conj(bu) db
    dmu = np.conj(lam) * dlam                                 # lambda = exp(mu)
    dnu_log = -np.exp(nu_log) * dmu.real                      # Re mu = -exp(nu_log)
    dtheta_log = np.exp(theta_log) * dmu.imag                 # Im mu = exp(theta_log)
    return dbu, dnu_log, dtheta_log, dgamma_log, g_x[0].copy(), _complex_norms(g_x)
