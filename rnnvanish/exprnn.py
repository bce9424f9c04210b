"""The orthogonal RNN expRNN (Lezcano-Casado & Martínez-Rubio 2019, "Cheap orthogonal constraints
in neural networks: a simple parametrization of the orthogonal and unitary group", ICML).

    W_hh = expm(A),   A skew-symmetric (A^T = -A), so W_hh^T W_hh = expm(-A) expm(A) = I
    h_t  = σ(x_t W_xh + h_{t-1} W_hh + b)      W_xh (I, H), A (H, H)

σ is modReLU (the paper's default), modReLU(z) = sign(z) relu(|z| + b_mod) with a learned
b_mod (H,) per unit, started in U(-0.01, 0.01) as in the authors' code, whose input map has
no bias of its own: with modReLU the cell's bias is b_mod alone. With σ = tanh the bias is
b_h (H,), zero at the start.

Storage: `params["A"]` is A itself, the full skew-symmetric (H, H) matrix. The forward pass
reads its skew part S(A) = (A - A^T) / 2, which is A on the constraint set, so a finite
difference on any single entry measures the true partial derivative:

    E(A) = E(W_hh),  W_hh = expm(S(A)):
    dE/dA = S(G),  G = L_exp(S(A), ·)^*(dW_hh) = L_exp(S(A)^T, dW_hh) = L_exp(-A, dW_hh)

where L_exp(A, E) is the Fréchet derivative of expm at A in direction E
(`scipy.linalg.expm_frechet`) and its adjoint under <X, Y> = tr(X^T Y) is L_exp(A^T, ·)
(expm's power series has real coefficients; `tests/test_exprnn.py` checks the identity), and
S is self-adjoint. dA = (G - G^T) / 2 is skew itself, so an element-wise optimiser (SGD, Adam:
its second moment is symmetric, its first skew) keeps A skew; `constrain()` projects A back
onto the skew matrices after every update anyway. W_hh is computed once per window, in
float64 for either dtype, and the recurrence is then the tanh recurrence (`tanh_forward`,
`tanh_backward`) or its modReLU twin (`modrelu_forward`, `modrelu_backward`,
`rnnvanish.reference.exprnn` and the Numba kernel of the same name) with a fixed W_hh.

Initialisation of A (the two of the paper's experiments and the authors' code, after Henaff et
al. 2016): block-diagonal with 2 x 2 blocks [[0, s_i], [-s_i, 0]], so expm(A) is a rotation by
s_i in each plane:
    henaff   s_i ~ U[-π, π]                                           (the default)
    cayley   s_i = -sqrt((1 - cos t_i) / (1 + cos t_i)), t_i ~ U[0, π/2]
An odd H leaves the last unit's row and column zero (W_hh keeps it at 1).

Where b_mod > 0, modReLU jumps by 2 b_mod at z = 0 (sign(0) = 0 there); the derivative used is
that of either side, exact away from the jump (finite differences step over it only if
some |z_t| is within eps of 0).

The step Jacobian is J_t = diag(σ'(a_t)) W_hh^T. W_hh's singular values are all 1; with
|σ'| <= 1 (tanh: 1 - h_t^2 in (0, 1]; modReLU: 0 or 1, 1 where |z| + b_mod > 0) every
product of step Jacobians has its singular values in [0, 1]: the signal cannot explode,
and it fades only where σ' < 1 (tanh's saturation, modReLU's dead units).
"""
import numpy as np
from scipy.linalg import expm, expm_frechet

from .cellbase import Cell, truncate_code
from .reference import TANH

NONLINEARITIES = ("modrelu", "tanh")         # rnnvanish.choices.NONLINEARITIES names the same
SKEW_INITS = ("henaff", "cayley")


def skew(A):
    """S(A) = (A - A^T) / 2, the skew-symmetric part (A itself when A is skew)."""
    return 0.5 * (A - A.T)


def skew_init(kind, H, rng):
    """A (H, H) block-diagonal skew-symmetric: 2 x 2 blocks [[0, s], [-s, 0]] (see the module docstring)."""
    if kind == "henaff":
        s = rng.uniform(-np.pi, np.pi, size=H // 2)
    elif kind == "cayley":
        t = rng.uniform(0.0, np.pi / 2, size=H // 2)
        s = -np.sqrt((1.0 - np.cos(t)) / (1.0 + np.cos(t)))
    else:
        raise ValueError(f"the expRNN's skew init must be one of {', '.join(SKEW_INITS)}, got {kind!r}")
    A = np.zeros((H, H))
    i = 2 * np.arange(H // 2)
    A[i, i + 1] = s                                           # the superdiagonal of each block
    return A - A.T


def expm_grad(A, dW):
    """dE/dA for E(expm(S(A))) given dW = dE/dW_hh: S(L_exp(S(A)^T, dW)), all in float64 (H, H)."""
    S = skew(np.asarray(A, dtype=np.float64))
    G = expm_frechet(S.T, np.asarray(dW, dtype=np.float64), compute_expm=False)   # the adjoint of L_exp(S, .)
    return skew(G)


class ExpRNN(Cell):
    """h_t = σ(x_t W_xh + h_{t-1} expm(A) + b), A skew-symmetric; see the module docstring. Carry `(h,)`."""

    name = "exprnn"
    title = "expRNN"
    n_gates = 1
    default_init_hh = "henaff (block rotations, Lezcano-Casado & Martínez-Rubio 2019)"
    recurrent_names = ("A",)                       # W_hh = expm(A)
    colour = "black"

    def __init__(self, input_size, hidden_size, *, nonlinearity="modrelu", skew_init="henaff", **kw):
        if kw.get("init_hh") is not None or kw.get("radius") is not None:
            raise ValueError("the expRNN's W_hh = expm(A) is orthogonal, A starts as block rotations (Henaff or "
                             "Cayley); --init-hh and --radius do not apply to it")
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"the expRNN's nonlinearity must be one of {', '.join(NONLINEARITIES)}, "
                             f"got {nonlinearity!r}")
        if skew_init not in SKEW_INITS:
            raise ValueError(f"the expRNN's skew init must be one of {', '.join(SKEW_INITS)}, got {skew_init!r}")
        self.nonlinearity, self.skew_init = nonlinearity, skew_init
        self.bias_names = ("b_mod",) if nonlinearity == "modrelu" else ("b_h",)
        super().__init__(input_size, hidden_size, **kw)

    def _init_recurrent(self, rng):
        self.params["A"] = skew_init(self.skew_init, self.hidden_size, rng).astype(self.dtype)

    def _init_biases(self, rng):
        H = self.hidden_size
        if self.nonlinearity == "modrelu":
            self.params["b_mod"] = rng.uniform(-0.01, 0.01, size=H).astype(self.dtype)
        else:
            self.params["b_h"] = np.zeros(H, dtype=self.dtype)

    def constrain(self):
        """A <- (A - A^T) / 2, in place (a no-op, bit for bit, on a skew A)."""
        A = self.params["A"]
        A[...] = skew(A)

    @property
    def W_hh(self):
        """expm(S(A)) (H, H), computed in float64, in the cell's dtype."""
        return expm(skew(np.asarray(self.params["A"], dtype=np.float64))).astype(self.dtype)

    @property
    def summary(self):
        return f"expRNN ({'modReLU' if self.nonlinearity == 'modrelu' else 'tanh'}, W_hh = expm(A) orthogonal)"

    def describe(self):
        W = expm(skew(np.asarray(self.params["A"], dtype=np.float64)))
        sv = np.linalg.svd(W, compute_uv=False)
        bound = ("|tanh'| = 1 - h_t^2 <= 1" if self.nonlinearity == "tanh"
                 else "|modReLU'| is 0 or 1 (1 where |z| + b_mod > 0)")
        return {"nonlinearity": self.nonlinearity, "skew_init": self.skew_init,
                "orthogonality_error": float(np.max(np.abs(W.T @ W - np.eye(self.hidden_size)))),
                "sigma_min": float(sv.min()), "sigma_max": float(sv.max()),
                "closed_form": f"J_t = diag(σ'(a_t)) W_hh^T: W_hh = expm(A) orthogonal, all its singular values 1; "
                               f"{bound}, so every singular value of a product of step Jacobians is <= 1"}

    # -- the recurrence -----------------------------------------------------------------
    def _bias(self):
        """The bias of the input term: b_h (tanh), zeros (modReLU: its bias b_mod is inside σ)."""
        p = self.params
        return p["b_h"] if self.nonlinearity == "tanh" else np.zeros(self.hidden_size, dtype=self.dtype)

    def forward(self, x, state=None, masks=None):
        p, x = self.params, self._prepare_input(x)
        W_hh = np.ascontiguousarray(self.W_hh)                                # expm(A): once per window
        xw = np.ascontiguousarray(self._input_term(x, p["W_xh"], self._bias()))   # x W_xh (+ b_h): (T, B, H)
        T, B = xw.shape[:2]
        (h0,) = self._check_state(state, B)
        cache = {"x": x, "T": T, "B": B, "masks": self._check_masks(masks, T, B), "W_hh": W_hh}
        # With zoneout the kernel also keeps h~_t = σ(a_t), the new state before zoneout.
        extra = (np.empty((T, B, self.hidden_size), self.dtype),) if cache["masks"].zoneout is not None else ()
        k = self._kernels()
        if self.nonlinearity == "tanh":
            h = k.tanh_forward(xw, h0, W_hh, TANH, *self._mask_args(cache), *extra)
        else:
            h = k.modrelu_forward(xw, h0, W_hh, p["b_mod"], *self._mask_args(cache), *extra)
        cache.update(h=h, h_new=extra[0] if extra else None)
        return h, (h[-1].copy(),), cache

    def backward(self, dh, cache, dstate=None, truncate=None):
        (dh_T,) = self._check_dstate(dstate, cache["B"])
        h, W_hh, k = cache["h"], cache["W_hh"], self._kernels()
        extra = () if cache["h_new"] is None else (cache["h_new"],)
        dh = self._check_dh(dh, cache)
        if self.nonlinearity == "tanh":
            da, dh0, norms = k.tanh_backward(dh, dh_T, h, W_hh, TANH, truncate_code(truncate),
                                             *self._mask_args(cache), *extra)
        else:
            da, dh0, norms = k.modrelu_backward(dh, dh_T, h, W_hh, truncate_code(truncate),
                                                *self._mask_args(cache), *extra)
        dW_hh = self._window_outer(self._dropped(h[:-1], cache), da)           # sum_t h_{t-1}^T da_t: (H, H)
        grads = {"W_xh": self._input_grad(cache["x"], da),
                 "A": expm_grad(self.params["A"], dW_hh).astype(self.dtype)}   # through W_hh = expm(S(A))
        if self.nonlinearity == "tanh":
            grads["b_h"] = da.sum(axis=(0, 1))
        else:
            h_new = h[1:] if cache["h_new"] is None else cache["h_new"]
            grads["b_mod"] = (da * np.sign(h_new)).sum(axis=(0, 1))            # d modReLU/d b_mod = sign(z_t)
        self._input_back(cache, da, self.params["W_xh"])
        return grads, (dh0,), {"h": norms}

    # -- the tracer -----------------------------------------------------------------------
    def bound_base(self):
        """gamma sigma_max(W_hh) = 1: |σ'| <= 1 and W_hh is orthogonal."""
        return 1.0

    def activation_grad(self, cache, b):
        """σ'(a_t) (T, H) of sequence b, from h~_t = σ(a_t): tanh 1 - h^2, modReLU [h != 0]."""
        h_new = (cache["h"][1:] if cache.get("h_new") is None else cache["h_new"])[:, b].astype(np.float64)
        return 1.0 - h_new * h_new if self.nonlinearity == "tanh" else (h_new != 0.0).astype(np.float64)

    def step_chain(self, cache, b):
        """J_t = diag(σ'(a_t)) W_hh^T, t = 1..T, as dense (T, H, H) matrices."""
        from .tracer.jacobians import Chain
        W_T = cache["W_hh"].T.astype(np.float64)
        return Chain(self.activation_grad(cache, b)[:, :, None] * W_T[None])   # (T, H, H)

    def probe_back(self, cache, t, g_h, g_c):
        """One step of the tracer's probe: da_t = g_h σ'(a_t), dE/dh_{t-1} = da_t W_hh^T; the
        step's term of dE/dW_hh is h_{t-1}^T da_t (its norm per sequence: ||h_{t-1}|| ||da_t||)."""
        h, W_hh = cache["h"], cache["W_hh"]
        fprime = 1.0 - h[t] * h[t] if self.nonlinearity == "tanh" else (h[t] != 0.0)
        da = g_h * fprime                                                    # through σ
        size = np.linalg.norm(h[t - 1], axis=1) * np.linalg.norm(da, axis=1)
        return size, da @ W_hh.T, g_c, None                                  # (B, H) @ (H, H)
