"""The layer-normalised LSTM, LN-LSTM (Ba, Kiros & Hinton 2016, "Layer Normalization",
section 3.1 and the LSTM equations 20-22 of its supplementary material).

    a_t = LN(x_t W_xh; α_x, β_x) + LN(h_{t-1} W_hh; α_h, β_h) + b_h        (B, 4H), gates i, f, g, o
    i, f, o = σ(a_i, a_f, a_o),  g = tanh(a_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(LN(c_t; α_c, β_c))

    LN(z; α, β) = α ⊙ (z - μ) / sqrt(σ² + ε) + β,   μ, σ² over the units of one sample, ε = 1e-5

Each LN of a gate term normalises the whole 4H vector (the four gate blocks together), as the
paper's equation 20 and its authors' code do; LN(c_t) normalises the H units of the cell
state. Parameters: W_xh (I, 4H), W_hh (H, 4H), b_h (4H,), and the gains α and biases β of
the three norms, alpha_x, beta_x, alpha_h, beta_h (4H,) and alpha_c, beta_c (H,). Gains start
at 1 and the norms' biases at 0 (the paper's choice); b_h starts at zero except its forget block
at `forget_bias` = 1, as the project's LSTM does (the authors' code starts it at zero). β_x,
β_h and b_h enter a_t only through their sum, so their gradients are equal: the paper's
parametrisation, kept as it is.

Why it helps gradient flow: the recurrent term LN(h_{t-1} W_hh) is invariant to the scale of
W_hh (and of h_{t-1}), so the size of the step Jacobian no longer grows or shrinks with ||W_hh||;
the 1/σ of each norm rescales it instead.

Where the input norm lives: LN(x_t W_xh) does not depend on h, so the cell computes it for the
whole window at once, before the recurrence (`layer_norm_forward`, one pass over T·B rows, like
x W_xh itself), and its backward after BPTT from the kernel's da (`layer_norm_backward`); the
recurrent kernel keeps only the two norms inside the loop. Truncation does not reach it: every
loss's gradient on a_t passes into x_t W_xh whatever the horizon.

Masks as for the LSTM (`rnnvanish.reference.masks`): recurrent dropout multiplies h_{t-1} where
it enters h_{t-1} W_hh; zoneout keeps h and c with one d_t, and LN(c) reads the updated c~_t.
"""
import numpy as np

from .cellbase import Cell, truncate_code
from .reference.lnlstm import EPS

LN_PARAMS = ("alpha_x", "beta_x", "alpha_h", "beta_h", "alpha_c", "beta_c")


class LNLSTM(Cell):
    """The LN-LSTM; see the module docstring. Carry `(h, c)`."""

    name = "lnlstm"
    colour = "tab:brown"
    title = "LN-LSTM"
    n_gates = 4
    state_names = ("h", "c")

    def __init__(self, input_size, hidden_size, *, forget_bias=1.0, eps=EPS, **kw):
        if not (np.isfinite(forget_bias)):
            raise ValueError(f"the LN-LSTM's forget bias must be finite, got {forget_bias!r}")
        if not (np.isfinite(eps) and eps > 0):
            raise ValueError(f"the layer norm's epsilon must be positive, got {eps!r}")
        self.forget_bias, self.eps = float(forget_bias), float(eps)
        super().__init__(input_size, hidden_size, **kw)

    def _init_biases(self, rng):
        """b_h: zeros, forget block `forget_bias`; the norms' gains 1 and biases 0."""
        H, dt = self.hidden_size, self.dtype
        b = np.zeros(4 * H, dtype=dt)
        b[H:2 * H] = self.forget_bias
        self.params["b_h"] = b
        for part, size in (("x", 4 * H), ("h", 4 * H), ("c", H)):
            self.params[f"alpha_{part}"] = np.ones(size, dtype=dt)
            self.params[f"beta_{part}"] = np.zeros(size, dtype=dt)

    @property
    def summary(self):
        return f"LN-LSTM (forget bias {self.forget_bias:g}, eps {self.eps:g})"

    def describe(self):
        return {"forget_bias": self.forget_bias, "eps": self.eps,
                "closed_form": "J_t from the LN Jacobian diag(α) r (I - 11^T/n - ẑẑ^T/n) of each norm"}

    # -- the recurrence -----------------------------------------------------------------
    def forward(self, x, state=None, masks=None):
        p, x = self.params, self._prepare_input(x)
        kernels = self._kernels()
        zero = np.zeros_like(p["b_h"])
        xw = np.ascontiguousarray(self._input_term(x, p["W_xh"], zero))     # x W_xh: (T, B, 4H)
        T, B = xw.shape[:2]
        h0, c0 = self._check_state(state, B)
        cache = {"x": x, "T": T, "B": B, "masks": self._check_masks(masks, T, B)}
        ln_x, zx, rx = kernels.layer_norm_forward(xw, p["alpha_x"], p["beta_x"], self.eps)
        xn = ln_x + p["b_h"]                                                # LN(x W_xh) + b_h: (T, B, 4H)
        h, c, gates, zp, rp, zc, rc = kernels.lnlstm_forward(
            xn, np.ascontiguousarray(h0), np.ascontiguousarray(c0), p["W_hh"], p["alpha_h"], p["beta_h"],
            p["alpha_c"], p["beta_c"], self.eps, *self._mask_args(cache))
        cache.update(h=h, c=c, gates=gates, zx=zx, rx=rx, zp=zp, rp=rp, zc=zc, rc=rc)
        return h, (h[-1].copy(), c[-1].copy()), cache

    def backward(self, dh, cache, dstate=None, truncate=None):
        dh_T, dc_T = self._check_dstate(dstate, cache["B"])
        p, h, kernels = self.params, cache["h"], self._kernels()
        da, dp, dy, dh0, dc0, norms_h, norms_c = kernels.lnlstm_backward(
            self._check_dh(dh, cache), np.ascontiguousarray(dh_T), np.ascontiguousarray(dc_T), h, cache["c"],
            cache["gates"], cache["zp"], cache["rp"], cache["zc"], cache["rc"], p["W_hh"], p["alpha_h"],
            p["alpha_c"], p["beta_c"], truncate_code(truncate), *self._mask_args(cache))
        dxw = kernels.layer_norm_backward(da, cache["zx"], cache["rx"], p["alpha_x"])   # into x W_xh: (T, B, 4H)
        db = da.sum(axis=(0, 1))                                            # a_t = ... + β_x + β_h + b_h
        grads = {"W_xh": self._input_grad(cache["x"], dxw),
                 "W_hh": self._window_outer(self._dropped(h[:-1], cache), dp),   # Σ_t (h_{t-1} m)^T dp_t: (H, 4H)
                 "b_h": db,
                 "alpha_x": (da * cache["zx"]).sum(axis=(0, 1)), "beta_x": db.copy(),
                 "alpha_h": (da * cache["zp"]).sum(axis=(0, 1)), "beta_h": db.copy(),
                 "alpha_c": (dy * cache["zc"]).sum(axis=(0, 1)), "beta_c": dy.sum(axis=(0, 1))}
        self._input_back(cache, dxw, p["W_xh"])
        return grads, (dh0, dc0), {"h": norms_h, "c": norms_c}

    # -- the tracer -----------------------------------------------------------------------
    def step_chain(self, cache, b):
        """J_t = ds_t/ds_{t-1}, s = (h, c), t = 1..T, as dense (T, 2H, 2H) matrices (closed form).

        With J_LN(ẑ, r, α) = diag(α) r (I - 11^T/n - ẑẑ^T/n) (the derivative of LN, n units)
        and A = J_LN(ẑ_p) W_hh^T (4H, H) = da_t/dh_{t-1}, blocks A_i, A_f, A_g, A_o:
            dc/dh = diag(g i') A_i + diag(c_{t-1} f') A_f + diag(i g') A_g,   dc/dc = diag(f)
            D = diag(o tanh'(y_t)) J_LN(ẑ_c)  = dh_t/dc_t
            dh/dh = diag(tanh(y_t) o') A_o + D dc/dh,   dh/dc = D diag(f)
        dh_t/dc_{t-1} is dense (LN(c_t) mixes the units), so the LSTM's block form does not apply."""
        from .tracer.jacobians import Chain
        H, p = self.hidden_size, self.params
        f64 = lambda name: np.asarray(cache[name][:, b], dtype=np.float64)      # noqa: E731
        gates, zp, zc, c_prev = f64("gates"), f64("zp"), f64("zc"), f64("c")[:-1]
        rp, rc = f64("rp"), f64("rc")
        i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
        alpha_h, alpha_c, beta_c = (np.asarray(p[n], dtype=np.float64) for n in ("alpha_h", "alpha_c", "beta_c"))
        A = layer_norm_jacobian(zp, rp, alpha_h) @ np.asarray(p["W_hh"], dtype=np.float64).T[None]  # (T, 4H, H)
        A_i, A_f, A_g, A_o = (A[:, j * H:(j + 1) * H] for j in range(4))
        col = lambda v: v[:, :, None]                                           # noqa: E731  diag(v) @ M
        dc_dh = col(g * i * (1 - i)) * A_i + col(c_prev * f * (1 - f)) * A_f + col(i * (1 - g * g)) * A_g
        tanh_y = np.tanh(alpha_c * zc + beta_c)
        D = col(o * (1 - tanh_y * tanh_y)) * layer_norm_jacobian(zc, rc, alpha_c)   # (T, H, H)
        dh_dh = col(tanh_y * o * (1 - o)) * A_o + D @ dc_dh
        dh_dc = D * f[:, None, :]                                               # D diag(f)
        dc_dc = np.zeros_like(D)
        dc_dc[:, np.arange(H), np.arange(H)] = f
        J = np.concatenate([np.concatenate([dh_dh, dh_dc], axis=2), np.concatenate([dc_dh, dc_dc], axis=2)], axis=1)
        return Chain(J)

    def probe_back(self, cache, t, g_h, g_c):
        """One step of the tracer's probe through the reference's step back; the step's term of
        dE/dW_hh is h_{t-1}^T dp_t (dp_t on the recurrent product), its norm ||h_{t-1}|| ||dp_t||."""
        from .reference.lnlstm import _lnlstm_step_back
        p, h = self.params, cache["h"]
        _, dp, _, g_h, g_c, g_c_total = _lnlstm_step_back(
            g_h, g_c, cache["c"][t - 1], cache["gates"][t - 1], cache["zp"][t - 1], cache["rp"][t - 1],
            cache["zc"][t - 1], cache["rc"][t - 1], p["W_hh"].T, p["alpha_h"], p["alpha_c"], p["beta_c"])
        size = np.sqrt(np.einsum("bi,bi->b", h[t - 1], h[t - 1]) * np.einsum("bi,bi->b", dp, dp))
        return size, g_h, g_c, g_c_total


def layer_norm_jacobian(z_hat, r, alpha):
    """dy/dz = diag(α) r (I - 11^T/n - ẑẑ^T/n) for each leading index: ẑ (T, n), r (T,) -> (T, n, n)."""
    n = z_hat.shape[-1]
    inner = np.eye(n)[None] - 1.0 / n - z_hat[:, :, None] * z_hat[:, None, :] / n
    return alpha[None, :, None] * r[:, None, None] * inner
