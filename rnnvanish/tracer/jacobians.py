"""Step Jacobians of the recurrence and the norms of their products, for one sequence.

The state s_t is h_t for the tanh RNN and the GRU, and (h_t, c_t) stacked for the LSTM: the
LSTM's h_t depends on c_{t-1} as well as h_{t-1}, so only the full-state map is a chain whose
product is the true derivative. With J_t = ds_t/ds_{t-1} (n x n, J_t[i, j] = ds_t[i]/ds_{t-1}[j]):

    P(k, t) = ds_t/ds_k = J_t J_{t-1} ... J_{k+1}          for 0 <= k < t <= T
    dE/ds_{t-1} = dE/ds_t @ J_t                             (row vector, as in backprop)

Per cell, with primes on gate values meaning the derivative of their nonlinearity and
W_x^T the (H, H) block of W_hh^T for gate x:

    tanh   J = diag(f'(a_t)) W_hh^T
    LSTM   dc/dh = diag(g i') W_i^T + diag(c_{t-1} f') W_f^T + diag(i g') W_g^T
           dh/dh = diag(tanh(c_t) o') W_o^T + diag(o tanh'(c_t)) dc/dh
           J = [[dh/dh, diag(o tanh'(c_t) f)], [dc/dh, diag(f)]]
    GRU    J = diag(z) + diag(h_{t-1} - n) diag(z') W_z^T + diag(1 - z) diag(n') dpre_n/dh
           dpre_n/dh = diag(hn) diag(r') W_r^T + diag(r) W_n^T                (reset after)
           dpre_n/dh = W_n^T (diag(r) + diag(h_{t-1}) diag(r') W_r^T)         (reset before)

The norms of their products are in `rnnvanish.tracer.products`.
"""
import numpy as np

from ..reference import ACTIVATIONS, activate_grad


# --------------------------------------------------------------------------- step Jacobians

def state_size(cell):
    """n: every part of the carry stacked, (h, c) 2H for the LSTM, H for the others."""
    return len(cell.state_names) * cell.hidden_size


def step_jacobians(cell, cache, b=0):
    """J (T, n, n): J[t-1] = ds_t/ds_{t-1} of sequence `b` of a forward cache."""
    return step_chain(cell, cache, b).full()


def step_chain(cell, cache, b=0):
    """The step Jacobians of sequence `b` as a Chain (the LSTM's kept as its blocks).

    Each cell names its own closed form (`cell.step_chain`); those of the three classic
    cells are the functions below."""
    return cell.step_chain(cache, b)


def _blocks_T(W_hh, H, n_gates):
    """The transposed gate blocks W_x^T (H, H): d a_x / d h_{t-1} in column convention."""
    return [W_hh[:, j * H:(j + 1) * H].T.astype(np.float64) for j in range(n_gates)]


def tanh_jacobians(cell, cache, b):
    h_t = cache["h"][1:, b].astype(np.float64)                      # (T, H)
    fprime = activate_grad(h_t, ACTIVATIONS[cell.activation])        # f'(a_t) from h_t = f(a_t)
    return fprime[:, :, None] * cell.params["W_hh"].T.astype(np.float64)[None]   # (T, H, H)


def lstm_jacobian_blocks(cell, cache, b):
    """The dense left block column L = [[dh/dh], [dc/dh]] (T, 2H, H) of the LSTM's J_t, and
    the diagonals d1 = dh_t/dc_{t-1}, d2 = dc_t/dc_{t-1} (T, H) of its right block column."""
    H = cell.hidden_size
    W_iT, W_fT, W_gT, W_oT = _blocks_T(cell.params["W_hh"], H, 4)
    c = cache["c"][:, b].astype(np.float64)
    gates = cache["gates"][:, b].astype(np.float64)
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    c_prev, c_t = c[:-1], c[1:]
    tanh_c = np.tanh(c_t)
    dtanh_c = 1.0 - tanh_c * tanh_c
    col = lambda v: v[:, :, None]                                    # noqa: E731  diag(v) @ M for a batch
    # c_t = f c_{t-1} + i g: each gate's pre-activation depends on h_{t-1} through W_x^T
    dc_dh = col(g * i * (1 - i)) * W_iT + col(c_prev * f * (1 - f)) * W_fT + col(i * (1 - g * g)) * W_gT
    # h_t = o tanh(c_t)
    dh_dh = col(tanh_c * o * (1 - o)) * W_oT + col(o * dtanh_c) * dc_dh
    L = np.concatenate([dh_dh, dc_dh], axis=1)                       # (T, 2H, H)
    # dh_t/dc_{t-1} through c_t, and dc_t/dc_{t-1}: the forget gate
    return L, o * dtanh_c * f, f


def gru_jacobians(cell, cache, b):
    H = cell.hidden_size
    W_rT, W_zT, W_nT = _blocks_T(cell.params["W_hh"], H, 3)
    h_prev = cache["h"][:-1, b].astype(np.float64)
    gates = cache["gates"][:, b].astype(np.float64)
    hn = cache["hn"][:, b].astype(np.float64)
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    col = lambda v: v[:, :, None]                                    # noqa: E731
    dr_dh = col(r * (1 - r)) * W_rT                                  # (T, H, H)
    dz_dh = col(z * (1 - z)) * W_zT
    if cell.reset_after:
        dpre_dh = col(hn) * dr_dh + col(r) * W_nT                    # pre_n = xw_n + r * (h W_n + b_n)
    else:
        inner = col(h_prev) * dr_dh                                  # d(r * h)/dh = diag(r) + diag(h) dr/dh
        inner[:, np.arange(H), np.arange(H)] += r
        dpre_dh = W_nT[None] @ inner                                 # (T, H, H)
    dn_dh = col(1 - n * n) * dpre_dh
    J = col(h_prev - n) * dz_dh + col(1 - z) * dn_dh                 # h_t = (1 - z) n + z h_{t-1}
    J[:, np.arange(H), np.arange(H)] += z
    return J


# --------------------------------------------------------------------------- multiplying along the chain

class Chain:
    """Row blocks times step Jacobians: Z @ J_t or Z @ J_t^T, in a chosen dtype.

    The LSTM's J_t = [[A, diag(d1)], [C, diag(d2)]] (blocks H x H) has only its left block
    column L = [[A], [C]] (2H x H) dense, so it is applied as one product with L and two
    scalings instead of one 2H x 2H product: half the work.

        Z @ J   = [Z @ L,  Z_h d1 + Z_c d2]
        Z @ J^T = Z_h @ L^T + [Z_c d1, Z_c d2]

    `J` may be another Chain (its blocks are converted, not found again); `Chain.lstm(L, d1,
    d2)` builds one from the blocks."""

    @classmethod
    def lstm(cls, L, d1, d2, dtype=np.float64):
        chain = cls.__new__(cls)
        chain._set_blocks(L, d1, d2, dtype)
        return chain

    def __init__(self, J, dtype=np.float64):
        if isinstance(J, Chain):
            if J.H is None:
                self._set_dense(J.J, dtype)
            else:
                self._set_blocks(J.L, J.d1, J.d2, dtype)
            return
        J = np.asarray(J)
        H = _lstm_split(J)
        if H is None:
            self._set_dense(J, dtype)
        else:
            diag = np.arange(H)
            self._set_blocks(J[:, :, :H], J[:, diag, H + diag], J[:, H + diag, H + diag], dtype)

    def _set_dense(self, J, dtype):
        self.T, self.n, self.H = J.shape[0], J.shape[1], None
        self.J = np.asarray(J, dtype=dtype)
        self._scratch = None

    def _set_blocks(self, L, d1, d2, dtype):
        self.T, self.H = L.shape[0], L.shape[2]
        self.n = 2 * self.H
        self.L = np.ascontiguousarray(L, dtype=dtype)
        self.d1, self.d2 = (np.ascontiguousarray(d, dtype=dtype) for d in (d1, d2))
        self._scratch = None

    def full(self):
        """Every J_t as one (T, n, n) array."""
        if self.H is None:
            return self.J
        H, diag = self.H, np.arange(self.H)
        out = np.zeros((self.T, self.n, self.n), dtype=self.L.dtype)
        out[:, :, :H] = self.L
        out[:, diag, H + diag] = self.d1
        out[:, H + diag, H + diag] = self.d2
        return out

    def times(self, t, Z, out, transpose=False):
        """out = Z @ J[t] (or Z @ J[t]^T); Z (m, n), out (m, n), no aliasing."""
        if self.H is None:
            return np.matmul(Z, self.J[t].T if transpose else self.J[t], out=out)
        H = self.H
        Z_h, Z_c = Z[:, :H], Z[:, H:]
        scratch = self._scratch_rows(Z.shape[0])
        if transpose:
            np.matmul(Z_h, self.L[t].T, out=out)
            out[:, :H] += np.multiply(Z_c, self.d1[t], out=scratch)
            out[:, H:] += np.multiply(Z_c, self.d2[t], out=scratch)
        else:
            np.matmul(Z, self.L[t], out=out[:, :H])
            np.multiply(Z_h, self.d1[t], out=out[:, H:])
            out[:, H:] += np.multiply(Z_c, self.d2[t], out=scratch)
        return out

    @property
    def dtype(self):
        return (self.J if self.H is None else self.L).dtype

    def stack_times(self, Z, transpose=False):
        """Z[t] @ J_t (or Z[t] @ J_t^T) for every t at once: Z (T, m, n) -> (T, m, n)."""
        if self.H is None:
            return Z @ (self.J.transpose(0, 2, 1) if transpose else self.J)
        H = self.H
        Z_h, Z_c = Z[:, :, :H], Z[:, :, H:]
        d1, d2 = self.d1[:, None, :], self.d2[:, None, :]
        if transpose:
            out = Z_h @ self.L.transpose(0, 2, 1)
            out[:, :, :H] += Z_c * d1
            out[:, :, H:] += Z_c * d2
            return out
        return np.concatenate([Z @ self.L, Z_h * d1 + Z_c * d2], axis=2)

    def _scratch_rows(self, m):
        if self._scratch is None or self._scratch.shape[0] < m:
            self._scratch = np.empty((m, self.H), dtype=self.L.dtype)
        return self._scratch[:m]


def _lstm_split(J):
    """H when the right half of every J_t is made of two diagonal blocks (the LSTM's c columns)."""
    T, n, _ = J.shape
    if n % 2 or n < 2:
        return None
    H = n // 2
    diag = np.arange(H)
    on_diagonals = np.count_nonzero(J[:, diag, H + diag]) + np.count_nonzero(J[:, H + diag, H + diag])
    return H if np.count_nonzero(J[:, :, H:]) == on_diagonals else None
