"""The error signal from one loss at the last step, sequence by sequence.

The probe loss is E_T = sum_b u_b . h_T^b with u_b a random unit vector per sequence b (a seeded
draw, the same for every configuration traced with the same seed). Then ||dE_T/dh_T^b|| = 1,
so ||dE_T/dh_k^b|| is the fraction of the signal that survives T - k steps back, and
E_u ||u P||^2 = ||P||_F^2 / H: a random direction weighs every direction of the state alike
(the language-model loss at T would weigh them by W_hy and by the softmax instead).

Per sequence and per lag l = T - k this module returns

    grad_h[b, l]        = ||dE_T/dh_k^b||              l = 0..T
    grad_c[b, l]        = ||dE_T/dc_k^b||              (LSTM; the total gradient on c_k)
    contribution[b, l]  = ||h_{k-1}^T da_k||_F        l = 0..T-1, k = T - l
                        = ||h_{k-1}|| ||da_k||         (one sequence: an outer product)

where dE_T/dW_hh = sum_{k=1..T} h_{k-1}^T da_k is the BPTT sum for this one loss and da_k its
gradient on the recurrent pre-activations (GRU reset-before: the n block's recurrent input is
r_k * h_{k-1}, so that block uses ||r_k * h_{k-1}||). The backward pass is the one of
`rnnvanish.reference`, one step at a time for the whole batch, keeping per-sequence norms.

For the tanh-family RNN, J_t = diag(f'(a_t)) W_hh^T with |f'| <= gamma, so every step shrinks a
row vector by at most gamma * sigma_max(W_hh) (Pascanu et al. 2013):

    ||dE_T/dh_k|| <= (gamma sigma_max(W_hh))^(T-k) ||dE_T/dh_T||.
"""
import warnings

import numpy as np

from ..reference import recurrent as ref
from ..reference import ACTIVATIONS


def unit_directions(batch, hidden, seed=0):
    """u (B, H): one random unit vector per sequence (Gaussian draw, normalised)."""
    u = np.random.default_rng([seed, 7]).standard_normal((batch, hidden))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def _norm(x):
    """Per-sequence Euclidean norm of a (B, n) array."""
    return np.sqrt(np.einsum("bi,bi->b", x, x))


def backprop_signal(cell, cache, u):
    """Per-sequence norms of the signal from E_T = sum_b u_b . h_T^b (see module doc).

    Each step back is the cell's own (`cell.probe_back`, the functions below for the classic
    cells). Returns (grad_h (B, T+1), grad_c (B, T+1) or None, contribution (B, T)), all
    indexed by lag."""
    h, T, B = cache["h"], cache["T"], cache["B"]
    g_h = np.asarray(u, dtype=h.dtype)                                # dE_T/dh_T
    grad_h = np.zeros((B, T + 1))
    contribution = np.zeros((B, T))
    grad_h[:, 0] = _norm(g_h)
    has_c = "c" in cell.state_names
    grad_c = np.zeros((B, T + 1)) if has_c else None
    g_c = np.zeros_like(g_h)                                          # no loss on c_T itself
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T, 0, -1):
            lag = T - t
            size, g_h, g_c, g_c_total = cell.probe_back(cache, t, g_h, g_c)
            if has_c:
                grad_c[:, lag] = _norm(g_c_total)                     # total dE_T/dc_t
            contribution[:, lag] = size
            grad_h[:, lag + 1] = _norm(g_h)
        if has_c:
            grad_c[:, T] = _norm(g_c)                                 # c_0 is reached through c_1 only
    return grad_h, grad_c, contribution


# One step back of the probe per cell, g_h = dE_T/dh_t (and g_c = dE_T/dc_t from c_{t+1}):
# each returns (||the step's term of dE_T/dW_hh|| per sequence, dE_T/dh_{t-1}, dE_T/dc_{t-1}
# or g_c untouched, the total dE_T/dc_t or None).

def tanh_probe_back(cell, cache, t, g_h, g_c):
    h, W_hh = cache["h"], cell.params["W_hh"]
    da, g_h = ref._tanh_step_back(g_h, h[t], W_hh.T, ACTIVATIONS[cell.activation])
    return _norm(h[t - 1]) * _norm(da), g_h, g_c, None


def lstm_probe_back(cell, cache, t, g_h, g_c):
    h, W_hh = cache["h"], cell.params["W_hh"]
    da, g_h, g_c, g_c_total = ref._lstm_step_back(g_h, g_c, cache["c"][t - 1], cache["c"][t], cache["gates"][t - 1],
                                                  W_hh.T)
    return _norm(h[t - 1]) * _norm(da), g_h, g_c, g_c_total


def gru_probe_back(cell, cache, t, g_h, g_c):
    h, W_hh, H = cache["h"], cell.params["W_hh"], cell.hidden_size
    h_prev = h[t - 1]
    _, dah, g_h = ref._gru_step_back(g_h, h_prev, cache["gates"][t - 1], cache["hn"][t - 1], W_hh.T,
                                     W_hh[:, :2 * H].T, W_hh[:, 2 * H:].T, cell.reset_after)
    if cell.reset_after:
        size = _norm(h_prev) * _norm(dah)
    else:
        rh = cache["gates"][t - 1][:, :H] * h_prev                    # the n block's recurrent input
        size = np.hypot(_norm(h_prev) * _norm(dah[:, :2 * H]), _norm(rh) * _norm(dah[:, 2 * H:]))
    return size, g_h, g_c, None


def bound_base(cell):
    """gamma * sigma_max(W_hh) for the tanh-family RNN, the cell's own bound where it has one
    (`cell.bound_base`), NaN for the gated cells (no such bound)."""
    return cell.bound_base()


def fit_decay(values, lags=None, first=1, last=None):
    """Per-step factor exp(slope) of the least-squares line through (lag, ln value).

    Only positive, finite values at lags first..last count; NaN when fewer than two remain.
    A factor 0.9 means the signal loses 10 % per step on average; above 1 it grows."""
    values = np.asarray(values, dtype=np.float64)
    lags = np.arange(values.size) if lags is None else np.asarray(lags)
    last = lags.max() if last is None else last
    with np.errstate(divide="ignore", invalid="ignore"):
        logv = np.log(values)
    keep = (lags >= first) & (lags <= last) & np.isfinite(logv)
    if keep.sum() < 2:
        return float("nan")
    slope = np.polyfit(lags[keep].astype(np.float64), logv[keep], 1)[0]
    return float(np.exp(slope))


def band(per_sequence, low=10, high=90):
    """(median, low percentile, high percentile) over sequences (axis 0), NaN-safe."""
    x = np.asarray(per_sequence, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)               # an all-NaN lag gives NaN, quietly
        q = np.nanpercentile(x, [50, low, high], axis=0) if x.size else np.full((3,) + x.shape[1:], np.nan)
    return q[0], q[1], q[2]
