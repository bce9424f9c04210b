"""The independently recurrent cell, IndRNN (Li, Li, Cook, Zhu & Gao 2018).

    h_t = relu(x_t W_xh + u ⊙ h_{t-1} + b_h)       W_xh (I, H), u (H,), b_h (H,)

Each unit sees only its own past, through one recurrent weight u_i. Away from the kink of
relu the step Jacobian is diagonal, ∂h_t/∂h_{t-1} = diag(relu'(a_t) ⊙ u), so along a path
on which unit i stays active

    ∂h_T[i]/∂h_k[i] = u_i^(T-k),

and a unit whose a_t falls below zero cuts its own path. Section 3.1 of the paper turns this
into a range for u: for the gradient factor u_i^(T-k) to stay between a smallest ε and a
largest γ over T steps (relu' = 1 on the path),

    ε^(1/(T-k)) <= |u_i| <= γ^(1/(T-k)),   so for every lag up to T:  |u_i| <= U_max = γ^(1/T).

The authors' code for the adding problem (IndRNN_Theano_Lasagne, adding/adding.py) keeps
|u_i| <= 2^(1/T) (γ = 2) after every update, starts the first layer's u in [0, U_max] and the
last layer's in [(1/2)^(1/T), U_max], so each unit of the last layer keeps at least half its
signal over the T steps, and draws W_xh from N(0, 0.001^2). Here: `horizon` T (the sequence
length the bound is for; a run fills it in from its task length or window), `gamma` γ (2),
`epsilon` ε (None: u starts in [0, 1]; a stack gives ε to its top layer only, and tasks start
there at ε = 1/2, `--memory-floor`). After each optimiser step `constrain()` clips u to
[-U_max, U_max]; without a horizon nothing is clipped. W_xh starts at N(0, 0.001^2) as in that
code (`default_init_xh`).

Over a long horizon u wants a far smaller learning rate than W_xh: u_i^T moves by a factor
about exp(T Δu_i / u_i) when u_i moves by Δu_i, and Adam moves every weight by about the rate
at each step. At T = 1000 a 2-layer IndRNN (H 128, batch 32) trained at Adam 2e-4 on every
weight stayed at the adding problem's baseline for 7,200 steps; with u at 1/100 of that rate
(`recurrent_names` = ("u",), the training commands' `--recurrent-lr 0.01`) it solved it in
3,600 (the README has the runs).

The recurrence runs in `indrnn_forward` / `indrnn_backward` (rnnvanish.reference.indrnn and
its Numba twin); masks (recurrent dropout, zoneout) as for the tanh cell.
"""
import numpy as np

from .cellbase import Cell, truncate_code

GAMMA = 2.0                  # the largest gradient factor over the horizon (Li et al. 2018, section 4.1)


class IndRNN(Cell):
    """h_t = relu(x_t W_xh + u ⊙ h_{t-1} + b_h); see the module docstring. Carry `(h,)`."""

    name = "indrnn"
    title = "IndRNN"
    n_gates = 1
    default_init_hh = "uniform [0, 1] (Li et al. 2018)"
    # N(0, 0.001^2), the input weights of Li et al.'s code for the adding problem: with
    # glorot_uniform a 2-layer IndRNN's gradients reached 300-400 (clipped to 10) and it never
    # left the baseline at T = 200 in 1,500 steps; with these it solved it in 1,000.
    default_init_xh = "normal:0.001"
    recurrent_names = ("u",)
    colour = "tab:purple"

    def __init__(self, input_size, hidden_size, *, horizon=None, gamma=GAMMA, epsilon=None, **kw):
        if kw.get("init_hh") is not None or kw.get("radius") is not None:
            raise ValueError("the IndRNN's recurrent weights are one vector u, drawn from U[0, 1] (Li et al. 2018); "
                             "--init-hh and --radius do not apply to it")
        if horizon is not None and (int(horizon) != horizon or horizon < 1):
            raise ValueError(f"the IndRNN's horizon is a sequence length, a positive whole number; got {horizon!r}")
        if not (np.isfinite(gamma) and gamma > 0):
            raise ValueError(f"the IndRNN's gamma is a positive number, got {gamma!r}")
        if epsilon is not None and not 0 < epsilon < 1:
            raise ValueError(f"the IndRNN's epsilon is a fraction in (0, 1), got {epsilon!r}")
        if epsilon is not None and horizon is None:
            raise ValueError("the IndRNN's epsilon bounds u from below over a horizon: give the horizon too")
        self.horizon = None if horizon is None else int(horizon)
        self.gamma, self.epsilon = float(gamma), epsilon
        super().__init__(input_size, hidden_size, **kw)

    @property
    def u_max(self):
        """U_max = gamma^(1/T), the bound on |u_i| (None without a horizon)."""
        return None if self.horizon is None else self.gamma ** (1.0 / self.horizon)

    def _init_recurrent(self, rng):
        """u ~ U[0, 1], or U[epsilon^(1/T), U_max] for long memory (Li et al. 2018, sections 4.1, 4.2)."""
        H = self.hidden_size
        low, high = (0.0, 1.0) if self.epsilon is None else (self.epsilon ** (1.0 / self.horizon), self.u_max)
        self.params["u"] = rng.uniform(low, high, size=H).astype(self.dtype)
        self.constrain()

    def constrain(self):
        """u <- clip(u, -U_max, U_max), in place (the optimiser's arrays stay the same)."""
        if self.horizon is not None:
            np.clip(self.params["u"], -self.u_max, self.u_max, out=self.params["u"])

    @property
    def summary(self):
        bound = "unbounded" if self.u_max is None else f"|u| <= {self.gamma:g}^(1/{self.horizon}) = {self.u_max:.4g}"
        return f"IndRNN (relu, {bound})"

    def describe(self):
        return {"horizon": self.horizon, "gamma": self.gamma, "u_max": self.u_max,
                "u_abs_max": float(np.max(np.abs(self.params["u"]))),
                "closed_form": "dh_t/dh_{t-1} = diag(relu'(a_t) u): dh_T[i]/dh_k[i] = u_i^(T-k) on an active path"}

    # -- the recurrence -----------------------------------------------------------------
    def forward(self, x, state=None, masks=None):
        p, x = self.params, self._prepare_input(x)
        xw = self._input_term(x, p["W_xh"], p["b_h"])                       # x W_xh + b_h: (T, B, H)
        T, B = xw.shape[:2]
        (h0,) = self._check_state(state, B)
        cache = {"x": x, "T": T, "B": B, "masks": self._check_masks(masks, T, B)}
        # With zoneout the kernel also keeps h~_t = relu(a_t), the new state before zoneout.
        extra = (np.empty((T, B, self.hidden_size), self.dtype),) if cache["masks"].zoneout is not None else ()
        h = self._kernels().indrnn_forward(np.ascontiguousarray(xw), h0, p["u"], *self._mask_args(cache), *extra)
        cache.update(h=h, h_new=extra[0] if extra else None)
        return h, (h[-1].copy(),), cache

    def backward(self, dh, cache, dstate=None, truncate=None):
        (dh_T,) = self._check_dstate(dstate, cache["B"])
        h = cache["h"]
        extra = () if cache["h_new"] is None else (cache["h_new"],)
        da, dh0, norms = self._kernels().indrnn_backward(
            self._check_dh(dh, cache), dh_T, h, self.params["u"], truncate_code(truncate), *self._mask_args(cache),
            *extra)
        grads = {"W_xh": self._input_grad(cache["x"], da),
                 "u": (da * self._dropped(h[:-1], cache)).sum(axis=(0, 1)),   # du = sum_t sum_b da_t ⊙ h_{t-1}
                 "b_h": da.sum(axis=(0, 1))}
        self._input_back(cache, da, self.params["W_xh"])
        return grads, (dh0,), {"h": norms}

    # -- the tracer -----------------------------------------------------------------------
    def bound_base(self):
        """max_i |u_i|: with relu' in {0, 1}, ||diag(relu'(a_t) u)||_2 <= max |u_i| at every step."""
        return float(np.max(np.abs(np.asarray(self.params["u"], dtype=np.float64))))

    def active(self, cache, b):
        """[a_t > 0] (T, H) of sequence b: relu'(a_t), read from h~_t = relu(a_t)."""
        h_new = cache["h"][1:] if cache.get("h_new") is None else cache["h_new"]
        return (h_new[:, b] > 0.0).astype(np.float64)

    def step_chain(self, cache, b):
        """J_t = diag(relu'(a_t) ⊙ u), t = 1..T, as dense (T, H, H) matrices (the closed form)."""
        from .tracer.jacobians import Chain
        diagonal = self.active(cache, b) * np.asarray(self.params["u"], dtype=np.float64)   # (T, H)
        H = self.hidden_size
        J = np.zeros((cache["T"], H, H))
        J[:, np.arange(H), np.arange(H)] = diagonal
        return Chain(J)

    def probe_back(self, cache, t, g_h, g_c):
        """One step of the tracer's probe: da_t = g_h relu'(a_t), dE/dh_{t-1} = da_t u; the
        step's term of dE/du is h_{t-1} ⊙ da_t (its norm per sequence)."""
        h = cache["h"]
        da = g_h * (h[t] > 0.0)                                              # through relu
        term = h[t - 1] * da                                                 # (B, H)
        return np.sqrt(np.einsum("bi,bi->b", term, term)), da * self.params["u"], g_c, None
