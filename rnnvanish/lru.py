"""The Linear Recurrent Unit, LRU (Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De 2023,
"Resurrecting Recurrent Neural Networks for Long Sequences"), as a cell.

Width H (the input u_t and output of the layer), N = H/2 complex state units:

    u_t = x_t W_xh + b_h                                   W_xh (I, H), b_h (H,)  the input term
    lambda = exp(-exp(nu_log) + i exp(theta_log))          nu_log, theta_log (N,)  (eq. 6)
    x_t = lambda ⊙ x_{t-1} + gamma ⊙ (u_t B)               B = B_re + i B_im (H, N), gamma = exp(gamma_log)
    y_t = Re(x_t C) + u_t ⊙ D                              C = C_re + i C_im (N, H), D (H,)
    h_t = y_t ⊙ sigmoid(y_t)                               the position-wise nonlinearity (SiLU)

The input term is the one of every cell (token ids pick rows of W_xh): in the first layer it is
the paper's linear encoder; in a stacked layer an extra position-wise linear map before B.
Initialisation as in the paper's appendix A: the ring initialisation of lambda (|lambda|^2
uniform in [r_min^2, r_max^2], phase uniform in [0, max_phase]; defaults r_min = 0, r_max = 1,
max_phase = 2 pi as in its code, `lru_ring_init`), gamma_log = log sqrt(1 - |lambda|^2) (the
gamma normalisation, section 3.3: white-noise input keeps the state's variance),
B_re, B_im ~ N(0, 1/(2H)), C_re, C_im ~ N(0, 1/N), D ~ N(0, 1).

The paper's block is norm -> LRU -> GLU/MLP -> residual. Here the nonlinearity is SiLU,
y ⊙ sigmoid(y) (a GLU whose gate reads the same projection), inside the cell, and the residual
connection is the stack's: `--cell lru --layers L --residual` builds the paper's deep model
(no normalisation layer); `--cell lru` alone is one such layer without the skip.

The carry is real, as every cell's: s = [Re x | Im x] (B, H), the state's real and imaginary
halves (so H must be even), named "s" (not h: h_t is the layer's output, not its state). A
trace follows the state s: the step Jacobian on (Re x, Im x) is the rotation-scaling
[[Re Λ, -Im Λ], [Im Λ, Re Λ]] of Λ = diag(lambda), the same at every step, and

    ds_T/ds_k = Λ^(T-k) exactly,   ||ds_T/ds_k||_2 = max_j |lambda_j|^(T-k).

The recurrence runs in `lru_forward` / `lru_backward` (rnnvanish.reference.linear and its
Numba twin), by the loop (the default, see `rnnvanish.mincells` for why) or the prefix
scan (`scan="prefix"`); the products with B, C and W_xh are whole-window matrix
products here. No recurrent dropout or zoneout.
"""
import numpy as np

from .cellbase import Cell, truncate_code
from .errors import RnnvanishError
from .reference import linear as ref_linear

DEFAULT_SCAN = {"numba": "loop", "numpy": "loop"}      # as the minGRU's (rnnvanish.mincells)
COMPLEX = {np.dtype(np.float64): np.complex128, np.dtype(np.float32): np.complex64}


def _sigmoid(y):
    return 0.5 * (1.0 + np.tanh(0.5 * y))


class LRU(Cell):
    """The LRU layer of the module docstring. Carry `(s,)`, s = [Re x | Im x] (B, H)."""

    name = "lru"
    title = "LRU"
    n_gates = 1
    state_names = ("s",)
    default_init_hh = "ring (Orvieto et al. 2023)"
    recurrent_names = ("nu_log", "theta_log")      # the eigenvalues lambda = exp(-exp(nu) + i exp(theta))
    colour = "tab:pink"

    def __init__(self, input_size, hidden_size, *, r_min=0.0, r_max=1.0, max_phase=2 * np.pi, scan=None, **kw):
        if kw.get("init_hh") is not None or kw.get("radius") is not None:
            raise RnnvanishError("the LRU's recurrence is diagonal, lambda from the ring initialisation "
                                 "(Orvieto et al. 2023); --init-hh and --radius do not apply to it")
        if int(hidden_size) % 2:
            raise RnnvanishError(f"the LRU carries its H/2 complex state units as H real numbers: the hidden size "
                                 f"must be even, got {hidden_size}")
        if not 0.0 <= r_min < r_max <= 1.0:
            raise RnnvanishError(f"the LRU's ring needs 0 <= r_min < r_max <= 1, got r_min={r_min}, r_max={r_max}")
        if not max_phase > 0:
            raise RnnvanishError(f"the LRU's max_phase must be positive, got {max_phase}")
        self.r_min, self.r_max, self.max_phase = float(r_min), float(r_max), float(max_phase)
        super().__init__(input_size, hidden_size, **kw)
        scan = DEFAULT_SCAN[self.backend] if scan is None else scan
        if scan not in ("loop", "prefix"):
            raise RnnvanishError(f"the LRU runs by the loop or the prefix scan, got scan={scan!r}")
        self.scan = scan

    @property
    def N(self):
        return self.hidden_size // 2

    def _init_recurrent(self, rng):
        """lambda on the ring, gamma normalisation, B, C, D as in the paper's appendix A."""
        H, N, dt = self.hidden_size, self.N, self.dtype
        nu_log, theta_log, gamma_log = ref_linear.lru_ring_init(N, rng, self.r_min, self.r_max, self.max_phase)
        p = self.params
        p["B_re"] = (rng.standard_normal((H, N)) / np.sqrt(2 * H)).astype(dt)
        p["B_im"] = (rng.standard_normal((H, N)) / np.sqrt(2 * H)).astype(dt)
        p["nu_log"], p["theta_log"], p["gamma_log"] = (v.astype(dt) for v in (nu_log, theta_log, gamma_log))
        p["C_re"] = (rng.standard_normal((N, H)) / np.sqrt(N)).astype(dt)
        p["C_im"] = (rng.standard_normal((N, H)) / np.sqrt(N)).astype(dt)
        p["D"] = rng.standard_normal(H).astype(dt)

    def lam(self):
        """lambda (N,) complex128."""
        p = self.params
        return np.exp(-np.exp(p["nu_log"].astype(np.float64)) + 1j * np.exp(p["theta_log"].astype(np.float64)))

    @property
    def summary(self):
        return (f"LRU ({self.N} complex units, |lambda| in [{self.r_min:g}, {self.r_max:g}] at init, "
                f"SiLU readout, {self.scan} scan)")

    def describe(self):
        return {"r_min": self.r_min, "r_max": self.r_max, "max_phase": self.max_phase, "scan": self.scan,
                "lambda_abs_max": float(np.max(np.abs(self.lam()))),
                "closed_form": "ds_t/ds_{t-1} = Lambda on s = (Re x, Im x): ds_T/ds_k = Lambda^(T-k) exactly"}

    # -- the carry as complex state -----------------------------------------------------
    def _to_complex(self, s):
        """[Re x | Im x] (..., 2N) -> x (..., N) complex."""
        x = np.empty(s.shape[:-1] + (self.N,), dtype=COMPLEX[self.dtype])
        x.real, x.imag = s[..., :self.N], s[..., self.N:]
        return x

    @staticmethod
    def _to_halves(x):
        return np.concatenate([x.real, x.imag], axis=-1)

    # -- the recurrence -----------------------------------------------------------------
    def forward(self, x, state=None, masks=None):
        p, x = self.params, self._prepare_input(x)
        u = self._input_term(x, p["W_xh"], p["b_h"])                       # u_t = x_t W_xh + b_h: (T, B, H)
        T, B = u.shape[:2]
        (s0,) = self._check_state(state, B)
        masks = self._check_masks(masks, T, B)
        if masks.recurrent is not None or masks.zoneout is not None:
            raise RnnvanishError("the LRU has no recurrent dropout or zoneout; use plain --dropout between layers")
        bu = self._to_complex(np.concatenate([u @ p["B_re"], u @ p["B_im"]], axis=-1))   # u_t B: (T, B, N)
        xs = self._kernels().lru_forward(bu, self._to_complex(s0), p["nu_log"], p["theta_log"], p["gamma_log"],
                                         ref_linear.SCANS[self.scan])          # (T+1, B, N)
        y = xs[1:].real @ p["C_re"] - xs[1:].imag @ p["C_im"] + u * p["D"]  # Re(x_t C) + u_t D: (T, B, H)
        h = np.empty((T + 1, B, self.hidden_size), dtype=self.dtype)
        h[0] = s0                                                          # row 0: the initial carry
        h[1:] = y * _sigmoid(y)                                            # SiLU
        s = self._to_halves(xs)
        cache = {"x": x, "T": T, "B": B, "masks": masks, "h": h, "s": s, "xs": xs, "u": u, "bu": bu, "y": y}
        return h, (s[-1].copy(),), cache

    def backward(self, dh, cache, dstate=None, truncate=None):
        p = self.params
        (ds_T,) = self._check_dstate(dstate, cache["B"])
        dh = self._check_dh(dh, cache)
        u, xs, y = cache["u"], cache["xs"], cache["y"]
        sig = _sigmoid(y)
        dy = dh * (sig + y * sig * (1.0 - sig))                            # through SiLU: (y s)' = s + y s (1 - s)
        # y = Re(x) C_re - Im(x) C_im + u D; complex gradients g = dE/dRe + i dE/dIm
        dx = self._to_complex(np.concatenate([dy @ p["C_re"].T, -(dy @ p["C_im"].T)], axis=-1))   # (T, B, N)
        dbu, dnu_log, dtheta_log, dgamma_log, dx0, norms = self._kernels().lru_backward(
            dx, self._to_complex(ds_T), xs, cache["bu"], p["nu_log"], p["theta_log"], p["gamma_log"],
            truncate_code(truncate))
        # bu = u B_re + i u B_im: dRe bu = Re dbu, dIm bu = Im dbu
        du = dy * p["D"] + dbu.real @ p["B_re"].T + dbu.imag @ p["B_im"].T  # (T, B, H)
        du = np.ascontiguousarray(du, dtype=self.dtype)
        grads = {"W_xh": self._input_grad(cache["x"], du),                 # sum_t x_t^T du_t: (I, H)
                 "b_h": du.sum(axis=(0, 1)),
                 "B_re": self._window_outer(u, dbu.real),                  # sum_t u_t^T Re dbu_t: (H, N)
                 "B_im": self._window_outer(u, dbu.imag),
                 "nu_log": dnu_log, "theta_log": dtheta_log, "gamma_log": dgamma_log,
                 "C_re": self._window_outer(xs[1:].real, dy),              # sum_t Re(x_t)^T dy_t: (N, H)
                 "C_im": -self._window_outer(xs[1:].imag, dy),
                 "D": (dy * u).sum(axis=(0, 1))}
        grads = {name: np.asarray(g, dtype=self.dtype) for name, g in grads.items()}
        self._input_back(cache, du, p["W_xh"])
        return grads, (self._to_halves(dx0).astype(self.dtype),), {"h": np.asarray(norms, dtype=np.float64)}

    # -- the tracer -----------------------------------------------------------------------
    def bound_base(self):
        """max_j |lambda_j|: ||Λ^(t-k)||_2 = max |lambda_j|^(t-k), with equality."""
        return float(np.max(np.abs(self.lam())))

    def step_chain(self, cache, b):
        """J_t = [[Re Λ, -Im Λ], [Im Λ, Re Λ]] on s = (Re x, Im x), the same for t = 1..T."""
        from .tracer.jacobians import Chain
        lam, N = self.lam(), self.N
        j = np.arange(N)
        J = np.zeros((cache["T"], 2 * N, 2 * N))
        J[:, j, j], J[:, j, N + j] = lam.real, -lam.imag
        J[:, N + j, j], J[:, N + j, N + j] = lam.imag, lam.real
        return Chain(J)

    def probe_back(self, cache, t, g_h, g_c):
        """One step of the probe on the state: dE/dx_{t-1} = conj(lambda) dE/dx_t; the step's term
        of dE/dlambda is conj(x_{t-1}) ⊙ dE/dx_t (its norm per sequence)."""
        g = self._to_complex(np.asarray(g_h, dtype=np.float64)).astype(np.complex128)
        term = np.conj(cache["xs"][t - 1]) * g                              # (B, N)
        size = np.sqrt((np.abs(term) ** 2).sum(axis=1))
        return size, self._to_halves(np.conj(self.lam()) * g), g_c, None
