"""What every recurrent cell shares: the `Cell` base class (the contract, the whole-window
products, masks and state checks) and the small helpers around it.

The cells themselves and their registry are in `rnnvanish.cells` (which re-exports every name
here); a new cell subclasses `Cell` in a module of its own (see `rnnvanish.indrnn`) and is
named in `rnnvanish.cells.CELLS`.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import init as initializers
from .backend import get_kernels, resolve_backend

DTYPES = {"float64": np.float64, "float32": np.float32}


def _as_dtype(dtype):
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        return np.dtype(DTYPES[dtype])
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got {dtype}")
    return dtype


def truncate_code(truncate):
    """None -> 0 (no truncation inside the window); a positive int stays."""
    if truncate is None:
        return 0
    if isinstance(truncate, (bool, np.bool_)) or int(truncate) != truncate or truncate < 1:
        raise ValueError(f"truncate must be None or a positive whole number of steps, got {truncate!r}")
    return int(truncate)


def is_token_input(x):
    return np.issubdtype(np.asarray(x).dtype, np.integer)


@dataclass
class CellMasks:
    """Masks held fixed through a window, drawn by the caller (from the run's RNG).

    recurrent  (B, H) or None: recurrent dropout, 0 or 1/(1-p) per unit and sequence
    zoneout    (T, B, H) or None: 1 keeps a unit's previous value, 0 updates it; p at evaluation
    """
    recurrent: Optional[np.ndarray] = None
    zoneout: Optional[np.ndarray] = None


class Cell:
    """Common machinery; subclasses set `n_gates`, `state_names` and the kernel calls.

    A cell class is the registry entry of its cell (`CELLS` below holds one per name): its
    parameter layout (`n_gates`, `bias_names`, `_init_recurrent`, `_init_biases`), its carry
    (`state_names`), its default initialisers, its kernels (called in `forward`/`backward`),
    and for the other parts of the package:

        title, summary, colour  the name on charts (`title`, formatted with the activation)
                                and the console's one-line description
        torch_layer             torch.nn.RNN / LSTM / GRU whose weights map one to one (or None)
        lm_window, lm_generate  the language model's fused one-layer window and generation loop
                                (None: the model runs forward/backward and steps one token)
        constrain()             a projection applied to the parameters after every update
        recurrent_names         the parameters of the recurrence (W_hh; the IndRNN's u, ...),
                                whose learning rate `--recurrent-lr` sets apart
        describe(), bound_base()  what the tracer records about the cell, and the base of
                                its geometric bound on ||dh_t/dh_k|| (NaN when it has none)
        step_chain(), probe_back()  the tracer's step Jacobians and one step of its probe
    Adding a cell means writing one such class (and its kernels) and naming it in `CELLS`
    and `rnnvanish.choices.CELLS`.
    """

    name = "cell"
    title = "cell"
    # the parameters of the recurrence itself, the ones `--recurrent-lr` scales (W_hh here)
    recurrent_names = ("W_hh",)
    n_gates = 1
    state_names = ("h",)
    bias_names = ("b_h",)
    torch_layer = None
    colour = None
    default_init_xh = "glorot_uniform"
    default_init_hh = "orthogonal"
    lm_window = None
    lm_generate = None

    def __init__(self, input_size, hidden_size, *, init_xh=None, init_hh=None, radius=None,
                 seed=0, dtype=np.float64, backend=None):
        if int(input_size) < 1 or int(hidden_size) < 1:
            raise ValueError(f"input_size and hidden_size must be positive, got {input_size}, {hidden_size}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.dtype = _as_dtype(dtype)
        self.backend = resolve_backend(backend)
        self.init_xh = init_xh or self.default_init_xh
        self.init_hh = init_hh or self.default_init_hh
        self.radius = radius
        self.seed = seed
        rng = np.random.default_rng(seed)
        I, H, G = self.input_size, self.hidden_size, self.n_gates
        # One block per gate, each initialised as its own (fan_in, H) matrix.
        W_xh = np.concatenate([initializers.initialize(self.init_xh, (I, H), rng, self.dtype) for _ in range(G)], axis=1)
        self.params = {"W_xh": W_xh}
        self._init_recurrent(rng)
        self._init_biases(rng)

    def _init_recurrent(self, rng):
        """W_hh (H, G*H): one (H, H) block per gate, each rescaled to `radius` when given."""
        H, G = self.hidden_size, self.n_gates
        blocks = [initializers.initialize(self.init_hh, (H, H), rng, self.dtype) for _ in range(G)]
        if self.radius is not None:
            blocks = [initializers.scale_to_radius(W, self.radius).astype(self.dtype) for W in blocks]
        self.params["W_hh"] = np.concatenate(blocks, axis=1)

    def _init_biases(self, rng):
        self.params["b_h"] = np.zeros(self.n_gates * self.hidden_size, dtype=self.dtype)

    # -- what the rest of the package asks of a cell ------------------------------------
    @property
    def summary(self):
        """The console's description of the cell."""
        return self.title

    def constrain(self):
        """Project the parameters back onto their allowed set after an update (none here)."""

    def describe(self):
        """The cell's own settings that shape its gradient flow (JSON-able, for a trace's meta)."""
        return {}

    def bound_base(self):
        """b with ||dh_t/dh_k|| <= b^(t-k); NaN when the cell has no such bound."""
        return float("nan")

    def step_chain(self, cache, b):
        raise ValueError(f"no step Jacobian for cell {self.name!r}")

    def probe_back(self, cache, t, g_h, g_c):
        raise ValueError(f"the tracer cannot step back through cell {self.name!r}")

    # -- state --------------------------------------------------------------------------
    def initial_state(self, batch):
        """Zeros for every part of the carry, each (B, H)."""
        return tuple(np.zeros((batch, self.hidden_size), dtype=self.dtype) for _ in self.state_names)

    def _check_state(self, state, batch):
        if state is None:
            return self.initial_state(batch)
        state = tuple(np.asarray(s, dtype=self.dtype) for s in state)
        want = (batch, self.hidden_size)
        if len(state) != len(self.state_names) or any(s.shape != want for s in state):
            raise ValueError(f"{self.name} state must be {len(self.state_names)} array(s) of shape {want}, "
                             f"got {[s.shape for s in state]}")
        return state

    # -- the whole-window parts ---------------------------------------------------------
    def _kernels(self):
        return get_kernels(self.backend)

    def _prepare_input(self, x):
        """Token ids stay ints; dense inputs take the cell's dtype."""
        x = np.asarray(x)
        return x if is_token_input(x) else x.astype(self.dtype, copy=False)

    def _input_term(self, x, W, b):
        """x_t W + b for every t at once: (T, B, G*H). Token ids pick rows (no one-hot matmul)."""
        if is_token_input(x):
            if x.ndim != 2:
                raise ValueError(f"token input must have shape (T, B), got {x.shape}")
            if x.size and (x.min() < 0 or x.max() >= self.input_size):
                raise ValueError(f"token ids must lie in [0, {self.input_size}), got [{x.min()}, {x.max()}]")
            return W[x] + b
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"dense input must have shape (T, B, {self.input_size}), got {x.shape}")
        return self._kernels().dense_rows(np.ascontiguousarray(x), W, b)   # x W + b: (T, B, G*H)

    def _input_grad(self, x, da):
        """dW for the input term: sum_t x_t^T da_t (token ids: scatter-add into rows)."""
        if is_token_input(x):
            return self._kernels().embed_backward(x, np.ascontiguousarray(da), self.input_size)
        return self._window_outer(x, da)                                 # sum_t x_t^T da_t: (I, G*H)

    def _window_outer(self, h_prev, da):
        """sum_t h_{t-1}^T da_t as one product: (H, G*H), in the backend's BLAS."""
        return self._kernels().outer_sum(np.ascontiguousarray(h_prev), np.ascontiguousarray(da))

    def _check_dh(self, dh, cache):
        T, B = cache["T"], cache["B"]
        dh = np.zeros((T, B, self.hidden_size), self.dtype) if dh is None else np.asarray(dh, dtype=self.dtype)
        if dh.shape != (T, B, self.hidden_size):
            raise ValueError(f"dh must have shape {(T, B, self.hidden_size)}, got {dh.shape}")
        return np.ascontiguousarray(dh)

    def _check_dstate(self, dstate, B):
        if dstate is None:
            return self.initial_state(B)
        return self._check_state(dstate, B)

    # -- masks --------------------------------------------------------------------------
    def _check_masks(self, masks, T, B):
        """CellMasks with each mask in the cell's dtype, C-contiguous and checked, or None."""
        if masks is None:
            return CellMasks()
        if not isinstance(masks, CellMasks):
            raise TypeError(f"masks must be None or a CellMasks, got {type(masks).__name__}")
        H = self.hidden_size
        checked = []
        for name, mask, shape in (("recurrent", masks.recurrent, (B, H)), ("zoneout", masks.zoneout, (T, B, H))):
            if mask is not None:
                mask = np.ascontiguousarray(mask, dtype=self.dtype)
                if mask.shape != shape:
                    raise ValueError(f"the {name} mask must have shape {shape}, got {mask.shape}")
                if not np.all(np.isfinite(mask)) or mask.min(initial=0.0) < 0.0:
                    raise ValueError(f"the {name} mask must hold finite values >= 0")
                if name == "zoneout" and mask.max(initial=0.0) > 1.0:
                    raise ValueError("the zoneout mask must hold values in [0, 1]")
            checked.append(mask)
        return CellMasks(*checked)

    def _mask_args(self, cache):
        """The kernels' last arguments: () without masks (today's call), else (m, d), an empty
        array standing for the one that is off."""
        m, d = cache["masks"].recurrent, cache["masks"].zoneout
        if m is None and d is None:
            return ()
        return (np.empty((0, 0), self.dtype) if m is None else m, np.empty((0, 0, 0), self.dtype) if d is None else d)

    def _dropped(self, h_prev, cache):
        """h_{t-1} as the recurrent products read it: h[:-1] * m with recurrent dropout."""
        m = cache["masks"].recurrent
        return h_prev if m is None else h_prev * m

    def _input_back(self, cache, da_x, W_xh):
        """cache["dx"] = da_x W_xh^T (T, B, I) for dense input, None for token ids."""
        cache["dx"] = (None if is_token_input(cache["x"])
                       else self._kernels().back_rows(np.ascontiguousarray(da_x), W_xh))   # da_x W_xh^T: (T, B, I)

    def __repr__(self):
        return (f"{type(self).__name__}(input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"dtype={self.dtype.name}, backend={self.backend!r})")
