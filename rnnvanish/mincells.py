"""minGRU and minLSTM (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We
Needed?") as cells: gates that read the input only, so the recurrence is linear and diagonal.

    minGRU   [a_z | a_h] = x_t W_xh + b_h                       W_xh (I, 2H), b_h (2H,), gates z, h~
             z_t = sigmoid(a_z),  h~_t = c(a_h)
             h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t
    minLSTM  [a_i | a_f | a_h] = x_t W_xh + b_h                  W_xh (I, 3H), b_h (3H,), gates i, f, h~
             f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)
             h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h~_t

c is the identity (the paper's section 3), or with `positive=True` the paper's g(x) = x + 1/2
(x >= 0), sigmoid(x) (x < 0), which keeps h~ > 0 (the log-space version of its appendix).
There is no W_hh: both cells are h_t = a_t ⊙ h_{t-1} + b_t with a_t, b_t functions of x_t, so

    dh_t/dh_{t-1} = diag(a_t),     dh_T/dh_k = prod_{j=k+1..T} diag(a_j)

(a_t = 1 - z_t, or f'_t), every factor in (0, 1): the signal never grows and decays as fast
as the gates let it, independent of the state.

The recurrence runs in `mingru_forward` / `minlstm_forward` of `rnnvanish.reference.linear`
and its Numba twin, by one of three scans (`scan`): "loop", "prefix" (an associative
Hillis-Steele scan, log2 T vectorised rounds) or "log" (Heinsen's log-space scan; needs
positive=True and an initial state > 0, so a zero carry cannot use it). The default is the
loop on both backends: on one or two cores the scan's extra work (O(T log T) instead of O(T),
and a copy of the window per round) is not paid back. Measured forward of a minGRU window
(T 200, B 32, H 64, one thread, a busy machine): Numba loop 31 ms, prefix 68 ms; NumPy loop
60-130 ms, prefix 230-280 ms; the NumPy prefix scan wins only on tiny windows (B 1, H 16:
0.3 ms against 0.8 ms at T 200; a tie at T 1000). The scans are there to be read and compared.
`scan` and `positive` are library options (constructor arguments), not flags.
The backward pass is the same for every scan. No recurrent dropout or zoneout (the kernels
take no masks); dropout between stacked layers works as for every cell.
"""
import numpy as np

from .cellbase import Cell, is_token_input, truncate_code
from .errors import RnnvanishError
from .reference import linear as ref_linear

DEFAULT_SCAN = {"numba": "loop", "numpy": "loop"}      # measured, see the module docstring


class _LinearCell(Cell):
    """The shared part of minGRU and minLSTM: h_t = a_t ⊙ h_{t-1} + b_t, gates from x_t alone."""

    default_init_hh = "none (no recurrent weights)"
    recurrent_names = ()

    def __init__(self, input_size, hidden_size, *, positive=False, scan=None, **kw):
        if kw.get("init_hh") is not None or kw.get("radius") is not None:
            raise RnnvanishError(f"the {self.title}'s gates read the input only, it has no recurrent weights; "
                                 "--init-hh and --radius do not apply to it")
        super().__init__(input_size, hidden_size, **kw)
        scan = DEFAULT_SCAN[self.backend] if scan is None else scan
        if scan not in ref_linear.SCANS:
            raise RnnvanishError(f"scan must be one of {', '.join(ref_linear.SCANS)}, got {scan!r}")
        if scan == "log" and not positive:
            raise RnnvanishError("the log-space scan needs positive candidates: give positive=True with scan='log'")
        self.positive, self.scan = bool(positive), scan

    def _init_recurrent(self, rng):
        """No W_hh: the gates read x_t only."""

    @property
    def summary(self):
        return f"{self.title} ({'g(.) > 0' if self.positive else 'linear'} candidate, {self.scan} scan)"

    def describe(self):
        return {"positive": self.positive, "scan": self.scan, "closed_form": self.closed_form}

    # -- the recurrence -----------------------------------------------------------------
    def forward(self, x, state=None, masks=None):
        p, x = self.params, self._prepare_input(x)
        xw = self._input_term(x, p["W_xh"], p["b_h"])                       # x W_xh + b_h: (T, B, G*H)
        T, B = xw.shape[:2]
        (h0,) = self._check_state(state, B)
        masks = self._check_masks(masks, T, B)
        if masks.recurrent is not None or masks.zoneout is not None:
            raise RnnvanishError(f"the {self.title} has no recurrent dropout or zoneout (its state has no recurrent "
                                 "weights to drop); use plain --dropout between layers")
        forward = getattr(self._kernels(), f"{self.name}_forward")
        h, gates = forward(np.ascontiguousarray(xw), h0, self.positive, ref_linear.SCANS[self.scan])
        cache = {"x": x, "T": T, "B": B, "masks": masks, "h": h, "gates": gates}
        return h, (h[-1].copy(),), cache

    def backward(self, dh, cache, dstate=None, truncate=None):
        (dh_T,) = self._check_dstate(dstate, cache["B"])
        backward = getattr(self._kernels(), f"{self.name}_backward")
        da, dh0, norms = backward(self._check_dh(dh, cache), dh_T, cache["h"], cache["gates"], self.positive,
                                  truncate_code(truncate))
        grads = {"W_xh": self._input_grad(cache["x"], da),                  # sum_t x_t^T da_t: (I, G*H)
                 "b_h": da.sum(axis=(0, 1))}
        self._input_back(cache, da, self.params["W_xh"])
        return grads, (dh0,), {"h": norms}

    # -- the tracer -----------------------------------------------------------------------
    def decay(self, gates):
        """a_t (..., H) from the kept gates: the factor of h_{t-1} in h_t."""
        raise NotImplementedError

    def step_chain(self, cache, b):
        """J_t = diag(a_t), t = 1..T, as dense (T, H, H) matrices (the closed form)."""
        from .tracer.jacobians import Chain
        diagonal = self.decay(cache["gates"][:, b].astype(np.float64))      # (T, H)
        H = self.hidden_size
        J = np.zeros((cache["T"], H, H))
        J[:, np.arange(H), np.arange(H)] = diagonal
        return Chain(J)

    def probe_back(self, cache, t, g_h, g_c):
        """One step of the tracer's probe, the reference's step back: dE/dh_{t-1} = a_t ⊙ g_h.
        The step's term of dE/dW_xh is x_t^T da_t, of norm ||x_t|| ||da_t|| (||x_t|| = 1 for a token)."""
        step_back = getattr(ref_linear, f"_{self.name}_step_back")
        da, g_prev = step_back(g_h, cache["h"][t - 1], cache["gates"][t - 1], self.positive)
        size = np.sqrt(np.einsum("bi,bi->b", da, da))
        if not is_token_input(cache["x"]):
            x_t = cache["x"][t - 1]
            size = size * np.sqrt(np.einsum("bi,bi->b", x_t, x_t))
        return size, g_prev, g_c, None


class MinGRU(_LinearCell):
    """h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h~_t, z and h~ from x_t only; see the module docstring."""

    name = "mingru"
    title = "minGRU"
    n_gates = 2
    colour = "tab:olive"
    closed_form = "dh_t/dh_{t-1} = diag(1 - z_t): dh_T/dh_k = prod_{j=k+1..T} diag(1 - z_j)"

    def decay(self, gates):
        return 1.0 - gates[..., :self.hidden_size]                          # a_t = 1 - z_t


class MinLSTM(_LinearCell):
    """h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h~_t, f' = f / (f + i); see the module docstring."""

    name = "minlstm"
    title = "minLSTM"
    n_gates = 3
    colour = "tab:cyan"
    closed_form = "dh_t/dh_{t-1} = diag(f'_t), f' = f / (f + i): dh_T/dh_k = prod_{j=k+1..T} diag(f'_j)"

    def decay(self, gates):
        H = self.hidden_size
        i, f = gates[..., :H], gates[..., H:2 * H]
        return f / (f + i)                                                  # a_t = f'_t
