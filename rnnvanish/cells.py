"""The recurrent cells: TanhRNN, LSTM, GRU, the IRNN preset, IndRNN, and their registry `CELLS`.

A cell holds its parameters in `cell.params` (a dict of arrays, keys as in DESIGN.md) and
has an explicit carry: `(h,)` for TanhRNN, GRU, IRNN, IndRNN, minGRU and minLSTM, `(h, c)` for LSTM
and LN-LSTM,
`(s,)` for the LRU (its complex state as real and imaginary halves).

    h, state_T, cache = cell.forward(x, state, masks)          # x: ids (T, B) or inputs (T, B, I)
    grads, dstate_0, norms = cell.backward(dh, cache, dstate_T, truncate=k)

`h` has shape (T+1, B, H) with h[0] the initial state. `dh[t-1]` is the gradient of the
loss on h_t, `dstate_T` the gradient on the final carry. `grads` has the keys of
`params`; `dstate_0` is the gradient on the initial carry; `norms["h"][t]` is
||dE/dh_t|| (and `norms["c"]` for the LSTM), t = 0..T, for the gradient tracer. After
backward, `cache["dx"]` holds dE/dx (T, B, I) for dense input (None for token ids), the
gradient a stacked layer sends to the layer below.

`masks` (None or `CellMasks`) regularises inside the recurrence; forward keeps the masks in
the cache and backward uses them:
    recurrent (B, H)    variational dropout (Gal & Ghahramani 2016): every product with W_hh
                        reads h_{t-1} * m, one mask m per sequence, entries 0 or 1/(1-p)
    zoneout (T, B, H)   zoneout (Krueger et al. 2017): h_t = d_t h_{t-1} + (1 - d_t) h~_t,
                        d_t 0/1 in training, p at evaluation (the LSTM zones c with the same d_t)
The equations per cell are in `rnnvanish.reference.masks`. Without masks every result is the
unmasked one, bit for bit, through the same kernel calls as before.

The recurrence runs in a kernel (`rnnvanish.kernels` or `rnnvanish.reference`, chosen by
`backend`); the cell does the whole-window parts: the input term x W_xh + b for all steps
at once, and every weight gradient as one window-sized matrix product, e.g.
dW_hh = sum_t h_{t-1}^T da_t = h[:-1]^T da. That shared machinery is `Cell` in
`rnnvanish.cellbase`; `CELLS` at the end of this module is the registry of every cell by name
(IRNN a preset of the tanh cell, IndRNN in `rnnvanish.indrnn`, minGRU and minLSTM in
`rnnvanish.mincells`, the LRU in `rnnvanish.lru`, the LN-LSTM in `rnnvanish.lnlstm`).
"""
import numpy as np

from .cellbase import DTYPES, Cell, CellMasks, is_token_input, truncate_code  # noqa: F401  (the cells' shared names)
from .choices import BIAS_INITS
from .exprnn import ExpRNN
from .indrnn import IndRNN
from .lnlstm import LNLSTM
from .lru import LRU
from .mincells import MinGRU, MinLSTM
from .reference import ACTIVATIONS


class TanhRNN(Cell):
    """Elman RNN: h_t = f(x_t W_xh + h_{t-1} W_hh + b_h), f = tanh (default), sigmoid or relu.

    Takes x_t and h_{t-1}, returns h_t. Carry `(h,)`. Parameters: W_xh (I, H), W_hh (H, H), b_h (H,).
    `gamma` is the bound on |f'| (tanh 1, sigmoid 1/4, relu 1) used by the vanishing-gradient bound
    ||dh_t/dh_k|| <= (gamma * sigma_max(W_hh))^(t-k) (Pascanu et al. 2013).
    """

    name = "tanh"
    colour = "tab:red"
    title = "{activation} RNN"
    n_gates = 1
    torch_layer = "RNN"
    GAMMA = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0}

    def __init__(self, input_size, hidden_size, *, activation="tanh", init_b="zeros", **kw):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.init_b = check_bias_init(init_b)
        super().__init__(input_size, hidden_size, **kw)

    def _init_biases(self, rng):
        self.params["b_h"] = start_biases(self.init_b, 1, self.hidden_size, rng, self.dtype)

    @property
    def gamma(self):
        return self.GAMMA[self.activation]

    @property
    def summary(self):
        return f"tanh RNN ({self.activation}{BIAS_SUMMARY[self.init_b]})"

    def describe(self):
        W_hh = np.asarray(self.params["W_hh"], dtype=np.float64)
        return {"activation": self.activation, "gamma": self.gamma, "sigma_max": float(np.linalg.norm(W_hh, 2)),
                "spectral_radius": float(np.max(np.abs(np.linalg.eigvals(W_hh))))}

    def bound_base(self):
        """gamma * sigma_max(W_hh) (Pascanu et al. 2013)."""
        return float(self.gamma * np.linalg.norm(np.asarray(self.params["W_hh"], dtype=np.float64), 2))

    def step_chain(self, cache, b):
        from .tracer import jacobians
        return jacobians.Chain(jacobians.tanh_jacobians(self, cache, b))

    def probe_back(self, cache, t, g_h, g_c):
        from .tracer import signal
        return signal.tanh_probe_back(self, cache, t, g_h, g_c)

    def lm_window(self, kernels, p, ids, targets, state0, k):
        """One window of the language model in three kernel calls, the input side inside the
        recurrence's (rnnvanish.kernels.tokens; see rnnvanish.model)."""
        act = ACTIVATIONS[self.activation]
        h = kernels.tanh_forward_tokens(ids, p["W_xh"], p["b_h"], state0[0], p["W_hh"], act)
        loss, dh, dW_hy, db_y = kernels.output_layer(h, targets, p["W_hy"], p["b_y"])
        da, dh0, norms, dW_xh, dW_hh, db_h = kernels.tanh_backward_tokens(
            ids, self.input_size, dh, np.zeros_like(state0[0]), h, p["W_hh"], act, k)
        grads = {"W_xh": dW_xh, "W_hh": dW_hh, "b_h": db_h, "W_hy": dW_hy, "b_y": db_y}
        return loss, grads, (h[-1].copy(),), (dh0,), {"h": norms}

    def lm_generate(self, kernels, p, token, state, uniforms, temperature):
        return kernels.tanh_generate(token, state[0], p["W_xh"], p["b_h"], p["W_hh"], p["W_hy"], p["b_y"],
                                     ACTIVATIONS[self.activation], uniforms, temperature)

    def forward(self, x, state=None, masks=None):
        p, x = self.params, self._prepare_input(x)
        xw = self._input_term(x, p["W_xh"], p["b_h"])
        T, B = xw.shape[:2]
        (h0,) = self._check_state(state, B)
        cache = {"x": x, "T": T, "B": B, "masks": self._check_masks(masks, T, B)}
        # With zoneout the kernel also keeps h~_t = f(a_t), the new state before zoneout.
        extra = (np.empty((T, B, self.hidden_size), self.dtype),) if cache["masks"].zoneout is not None else ()
        h = self._kernels().tanh_forward(np.ascontiguousarray(xw), h0, p["W_hh"], ACTIVATIONS[self.activation],
                                         *self._mask_args(cache), *extra)
        cache.update(h=h, h_new=extra[0] if extra else None)
        return h, (h[-1].copy(),), cache

    def backward(self, dh, cache, dstate=None, truncate=None):
        (dh_T,) = self._check_dstate(dstate, cache["B"])
        h = cache["h"]
        extra = () if cache["h_new"] is None else (cache["h_new"],)
        da, dh0, norms = self._kernels().tanh_backward(
            self._check_dh(dh, cache), dh_T, h, self.params["W_hh"], ACTIVATIONS[self.activation], truncate_code(truncate),
            *self._mask_args(cache), *extra)
        grads = {"W_xh": self._input_grad(cache["x"], da),
                 "W_hh": self._window_outer(self._dropped(h[:-1], cache), da),
                 "b_h": da.sum(axis=(0, 1))}
        self._input_back(cache, da, self.params["W_xh"])
        return grads, (dh0,), {"h": norms}


class LSTM(Cell):
    """Long short-term memory, gate order i, f, g, o (PyTorch's).

        a_t = x_t W_xh + h_{t-1} W_hh + b_h                       (B, 4H)
        i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
        c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)
    Takes x_t and (h_{t-1}, c_{t-1}), returns (h_t, c_t). Carry `(h, c)`. The forget-gate bias
    starts at `forget_bias` (1.0), so early in training the cell keeps its memory (Gers et al.
    2000; Jozefowicz et al. 2015): what the long-range tasks need (they start at 3.0). The
    language model of `rnnvanish train` starts at 0.0 instead, PyTorch's effective default:
    on tiny-shakespeare (H 256, B 32, window 64, Adam 2e-3, clipping 5, float32) PyTorch's
    initialisation reached validation 2.11 nats/char at step 400 against 2.28 from this cell's,
    PyTorch trained from this cell's weights followed this cell's curve (2.28), and of the parts
    of PyTorch's initialisation put in one at a time only its biases helped, the forget bias
    most (bias 0 alone: 2.18; W_xh, W_hh or the readout alone: 2.46, 2.33 at step 200, 2.29).
    It also draws its biases as PyTorch does (`init_b="pytorch"`: the one bias is the sum of
    PyTorch's two, each U(-1/sqrt(H), 1/sqrt(H)); the forget bias adds to it), the rest of this
    cell's initialisation kept. Validation nats/char at steps 200 / 400 / 600 / 1,000 / 2,000 /
    3,000, same settings, same batches (benchmarks/torch_lm.py):
        PyTorch, its own initialisation, seed 0      2.340 2.118 2.011 1.853 1.702 1.632
        PyTorch, its own initialisation, seed 1      2.333 2.109 2.011 1.853 1.701 1.630
        this cell, forget bias 0, zero biases        2.260 2.180 2.091 1.956 1.711 1.632
        this cell, forget bias 0, PyTorch's biases   2.268 2.066 1.967 1.830 1.708 1.639
    With PyTorch's biases it is ahead of PyTorch up to step 1,400 and from 1,600 on within 0.008
    of the nearer PyTorch seed, less than the two seeds differ from each other (up to 0.018);
    with zero biases it trailed by up to 0.10 at steps 600 to 1,000.
    """

    name = "lstm"
    colour = "tab:blue"
    title = "LSTM"
    n_gates = 4
    state_names = ("h", "c")
    torch_layer = "LSTM"

    def __init__(self, input_size, hidden_size, *, forget_bias=1.0, chrono=None, init_b="zeros", **kw):
        self.forget_bias = float(forget_bias)
        self.chrono = check_chrono(chrono)
        self.init_b = check_bias_init(init_b)
        super().__init__(input_size, hidden_size, **kw)

    def _init_biases(self, rng):
        H = self.hidden_size
        b = start_biases(self.init_b, 4, H, rng, self.dtype)
        if self.chrono is None:
            b[H:2 * H] += self.forget_bias
        else:
            b_f = chrono_biases(self.chrono, H, rng)
            b[H:2 * H] = b_f                                  # forget gate: b_f = log u
            b[:H] = -b_f                                      # input gate: b_i = -b_f
        self.params["b_h"] = b

    @property
    def summary(self):
        if self.chrono is not None:
            return f"LSTM (chrono T_max {self.chrono:g}{BIAS_SUMMARY[self.init_b]})"
        return f"LSTM (forget bias {self.forget_bias:g}{BIAS_SUMMARY[self.init_b]})"

    def describe(self):
        return {"forget_bias": self.forget_bias, **({} if self.chrono is None else {"chrono": self.chrono}),
                **({} if self.init_b == "zeros" else {"init_b": self.init_b})}

    def step_chain(self, cache, b):
        from .tracer import jacobians
        return jacobians.Chain.lstm(*jacobians.lstm_jacobian_blocks(self, cache, b))

    def probe_back(self, cache, t, g_h, g_c):
        from .tracer import signal
        return signal.lstm_probe_back(self, cache, t, g_h, g_c)

    def lm_window(self, kernels, p, ids, targets, state0, k):
        """One window of the language model in five kernel calls (see rnnvanish.model); in the
        (B, .) layout, three, the input side inside the recurrence's (rnnvanish.kernels.tokens)."""
        zeros = np.zeros_like(state0[0])
        if kernels.feature_major(p["W_hh"].dtype, ids.shape[1], self.hidden_size):   # caches c^T, gates^T
            xw = kernels.input_rows(ids, p["W_xh"], p["b_h"])
            h, cT, gT = kernels.lstm_forward_fm(xw, state0[0], state0[1], p["W_hh"])
            loss, dh, dW_hy, db_y = kernels.output_layer(h, targets, p["W_hy"], p["b_y"])
            da, dh0, dc0, norms_h, norms_c = kernels.lstm_backward_fm(dh, zeros, zeros, cT, gT, p["W_hh"], k)
            dW_xh, dW_hh, db_h, _ = kernels.window_grads(ids, h, da, da, self.input_size)
            c_T = cT[-1].T.copy()
        else:
            h, c, gates = kernels.lstm_forward_tokens(ids, p["W_xh"], p["b_h"], state0[0], state0[1], p["W_hh"])
            loss, dh, dW_hy, db_y = kernels.output_layer(h, targets, p["W_hy"], p["b_y"])
            da, dh0, dc0, norms_h, norms_c, dW_xh, dW_hh, db_h = kernels.lstm_backward_tokens(
                ids, self.input_size, dh, zeros, zeros, h, c, gates, p["W_hh"], k)
            c_T = c[-1].copy()
        grads = {"W_xh": dW_xh, "W_hh": dW_hh, "b_h": db_h, "W_hy": dW_hy, "b_y": db_y}
        return loss, grads, (h[-1].copy(), c_T), (dh0, dc0), {"h": norms_h, "c": norms_c}

    def lm_generate(self, kernels, p, token, state, uniforms, temperature):
        return kernels.lstm_generate(token, state[0], state[1], p["W_xh"], p["b_h"], p["W_hh"], p["W_hy"], p["b_y"],
                                     uniforms, temperature)

    def forward(self, x, state=None, masks=None):
        p, x = self.params, self._prepare_input(x)
        xw = self._input_term(x, p["W_xh"], p["b_h"])
        T, B = xw.shape[:2]
        h0, c0 = self._check_state(state, B)
        cache = {"x": x, "T": T, "B": B, "masks": self._check_masks(masks, T, B)}
        kernels, mask_args = self._kernels(), self._mask_args(cache)
        if not mask_args and kernels.feature_major(xw.dtype, B, self.hidden_size):
            h, cT, gT = kernels.lstm_forward_fm(np.ascontiguousarray(xw), h0, c0, p["W_hh"])
            # the backward pass reads the feature-major caches; the tracer reads the views
            cache.update(h=h, c=cT.transpose(0, 2, 1), gates=gT.transpose(0, 2, 1), fm=(cT, gT))
        else:
            h, c, gates = kernels.lstm_forward(np.ascontiguousarray(xw), h0, c0, p["W_hh"], *mask_args)
            cache.update(h=h, c=c, gates=gates)
        return h, (h[-1].copy(), cache["c"][-1].copy()), cache

    def backward(self, dh, cache, dstate=None, truncate=None):
        dh_T, dc_T = self._check_dstate(dstate, cache["B"])
        h = cache["h"]
        if "fm" in cache:
            da, dh0, dc0, norms_h, norms_c = self._kernels().lstm_backward_fm(
                self._check_dh(dh, cache), dh_T, dc_T, *cache["fm"], self.params["W_hh"], truncate_code(truncate))
        else:
            da, dh0, dc0, norms_h, norms_c = self._kernels().lstm_backward(
                self._check_dh(dh, cache), dh_T, dc_T, h, cache["c"], cache["gates"], self.params["W_hh"],
                truncate_code(truncate), *self._mask_args(cache))
        grads = {"W_xh": self._input_grad(cache["x"], da),
                 "W_hh": self._window_outer(self._dropped(h[:-1], cache), da),
                 "b_h": da.sum(axis=(0, 1))}
        self._input_back(cache, da, self.params["W_xh"])
        return grads, (dh0, dc0), {"h": norms_h, "c": norms_c}


class GRU(Cell):
    """Gated recurrent unit, gate order r, z, n (PyTorch's); two biases b_xh, b_hh (3H,) each.

        r = sigmoid(x W_xr + b_xr + h_{t-1} W_hr + b_hr)
        z = sigmoid(x W_xz + b_xz + h_{t-1} W_hz + b_hz)
        n = tanh(x W_xn + b_xn + r * (h_{t-1} W_hn + b_hn))     reset_after=True (PyTorch, default)
        n = tanh(x W_xn + b_xn + (r * h_{t-1}) W_hn + b_hn)     reset_after=False (Cho et al. 2014)
        h_t = (1 - z) * n + z * h_{t-1}
    Takes x_t and h_{t-1}, returns h_t. Carry `(h,)`.
    """

    name = "gru"
    colour = "tab:green"
    title = "GRU"
    n_gates = 3
    bias_names = ("b_xh", "b_hh")
    torch_layer = "GRU"

    def __init__(self, input_size, hidden_size, *, reset_after=True, chrono=None, init_b="zeros", **kw):
        self.reset_after = bool(reset_after)
        self.chrono = check_chrono(chrono)
        self.init_b = check_bias_init(init_b)
        super().__init__(input_size, hidden_size, **kw)

    def _init_biases(self, rng):
        """Zeros; with `chrono` the z part of b_xh is log u, u ~ U[1, chrono - 1].

        In h_t = (1 - z) n + z h_{t-1} the update gate z is what keeps the state, the role of
        the LSTM's forget gate (Tallec & Ollivier 2018, section 4). z reads b_xz + b_hz, so
        either bias would do; the chrono part goes into b_xh because it is the bias every
        GRU form has (the single-bias GRU of Cho et al. 2014 has only it), so the
        initialisation carries over to those forms unchanged; b_hh stays zero. `init_b="pytorch"`
        draws both biases as PyTorch does (chrono still sets its part of b_xh)."""
        H = self.hidden_size
        self.params["b_xh"] = start_biases(self.init_b, 3, H, rng, self.dtype, draws=1)
        self.params["b_hh"] = start_biases(self.init_b, 3, H, rng, self.dtype, draws=1)
        if self.chrono is not None:
            self.params["b_xh"][H:2 * H] = chrono_biases(self.chrono, H, rng)

    @property
    def summary(self):
        form = "reset after" if self.reset_after else "reset before"
        return (f"GRU ({form}" + ("" if self.chrono is None else f", chrono T_max {self.chrono:g}")
                + BIAS_SUMMARY[self.init_b] + ")")

    def describe(self):
        return {"reset_after": self.reset_after, **({} if self.chrono is None else {"chrono": self.chrono}),
                **({} if self.init_b == "zeros" else {"init_b": self.init_b})}

    def step_chain(self, cache, b):
        from .tracer import jacobians
        return jacobians.Chain(jacobians.gru_jacobians(self, cache, b))

    def probe_back(self, cache, t, g_h, g_c):
        from .tracer import signal
        return signal.gru_probe_back(self, cache, t, g_h, g_c)

    def lm_window(self, kernels, p, ids, targets, state0, k):
        """One window of the language model in three kernel calls, the input side inside the
        recurrence's (rnnvanish.kernels.tokens; see rnnvanish.model)."""
        h, gates, hn = kernels.gru_forward_tokens(ids, p["W_xh"], p["b_xh"], state0[0], p["W_hh"], p["b_hh"],
                                                  self.reset_after)
        loss, dh, dW_hy, db_y = kernels.output_layer(h, targets, p["W_hy"], p["b_y"])
        dax, dah, dh0, norms, dW_xh, dW_hh, db_xh, db_hh = kernels.gru_backward_tokens(
            ids, self.input_size, dh, np.zeros_like(state0[0]), h, gates, hn, p["W_hh"], self.reset_after, k)
        if not self.reset_after:
            # The n block's recurrent input is r * h_{t-1}, not h_{t-1}.
            H = self.hidden_size
            rh = (gates[:, :, :H] * h[:-1]).reshape(-1, H)
            dW_hh[:, 2 * H:] = rh.T @ dah[:, :, 2 * H:].reshape(-1, H)          # (H, T B) @ (T B, H)
        grads = {"W_xh": dW_xh, "W_hh": dW_hh, "b_xh": db_xh, "b_hh": db_hh, "W_hy": dW_hy, "b_y": db_y}
        return loss, grads, (h[-1].copy(),), (dh0,), {"h": norms}

    def lm_generate(self, kernels, p, token, state, uniforms, temperature):
        return kernels.gru_generate(token, state[0], p["W_xh"], p["b_xh"], p["W_hh"], p["b_hh"], self.reset_after,
                                    p["W_hy"], p["b_y"], uniforms, temperature)

    def forward(self, x, state=None, masks=None):
        p, x = self.params, self._prepare_input(x)
        xw = self._input_term(x, p["W_xh"], p["b_xh"])
        T, B = xw.shape[:2]
        (h0,) = self._check_state(state, B)
        cache = {"x": x, "T": T, "B": B, "masks": self._check_masks(masks, T, B)}
        h, gates, hn = self._kernels().gru_forward(np.ascontiguousarray(xw), h0, p["W_hh"], p["b_hh"], self.reset_after,
                                                   *self._mask_args(cache))
        cache.update(h=h, gates=gates, hn=hn)
        return h, (h[-1].copy(),), cache

    def backward(self, dh, cache, dstate=None, truncate=None):
        (dh_T,) = self._check_dstate(dstate, cache["B"])
        h, gates, H = cache["h"], cache["gates"], self.hidden_size
        dax, dah, dh0, norms = self._kernels().gru_backward(
            self._check_dh(dh, cache), dh_T, h, gates, cache["hn"], self.params["W_hh"], self.reset_after,
            truncate_code(truncate), *self._mask_args(cache))
        h_in = self._dropped(h[:-1], cache)                  # h_{t-1} * m with recurrent dropout
        if self.reset_after:
            dW_hh = self._window_outer(h_in, dah)
        else:
            # The n block's recurrent input is r * h_{t-1}, the r and z blocks' is h_{t-1}.
            dW_hh = np.concatenate([self._window_outer(h_in, dah[:, :, :2 * H]),
                                    self._window_outer(gates[:, :, :H] * h_in, dah[:, :, 2 * H:])], axis=1)
        grads = {"W_xh": self._input_grad(cache["x"], dax),
                 "W_hh": dW_hh,
                 "b_xh": dax.sum(axis=(0, 1)),
                 "b_hh": dah.sum(axis=(0, 1))}
        self._input_back(cache, dax, self.params["W_xh"])
        return grads, (dh0,), {"h": norms}


class IRNN(TanhRNN):
    """IRNN (Le, Jaitly & Hinton 2015): the Elman RNN with ReLU, W_hh = I and b_h = 0 at the start.

        h_t = relu(x_t W_xh + h_{t-1} W_hh + b_h),   W_hh = I (or s I with --init-hh identity:s)
    A preset of TanhRNN: at the start a unit whose input is zero keeps its value, so the error
    signal passes back unchanged along every active unit."""

    name = "irnn"
    colour = "tab:orange"
    title = "IRNN"
    default_init_hh = "identity"

    def __init__(self, input_size, hidden_size, **kw):
        super().__init__(input_size, hidden_size, activation="relu", **kw)

    @property
    def summary(self):
        return f"IRNN (relu, W_hh {self.init_hh})"


# --------------------------------------------------------------------------- bias and chrono initialisation

# How the biases start: zeros, or as PyTorch's nn.RNN/LSTM/GRU draw theirs (BIAS_INITS, named in
# rnnvanish.choices).
BIAS_SUMMARY = {"zeros": "", "pytorch": ", biases drawn as PyTorch's"}


def check_bias_init(init_b):
    if init_b not in BIAS_INITS:
        raise ValueError(f"init_b must be one of {', '.join(BIAS_INITS)}, got {init_b!r}")
    return init_b


def start_biases(init_b, gates, H, rng, dtype, draws=2):
    """The (gates * H,) start of a bias: zeros, or for "pytorch" the sum of `draws` draws of
    U(-1/sqrt(H), 1/sqrt(H)) per entry. PyTorch's nn.RNN and nn.LSTM have two biases, b_ih + b_hh,
    where the tanh cell and the LSTM have one b_h (so 2 draws); the GRU has both (1 draw each).
    The draws come after the weights' from the cell's stream, so the weights do not change."""
    if init_b == "zeros":
        return np.zeros(gates * H, dtype=dtype)
    bound = 1.0 / np.sqrt(H)
    return sum(rng.uniform(-bound, bound, gates * H) for _ in range(draws)).astype(dtype)


def check_chrono(chrono):
    """None, or T_max > 2 as a float (the time scales are drawn from [1, T_max - 1])."""
    if chrono is None:
        return None
    chrono = float(chrono)
    if not (np.isfinite(chrono) and chrono > 2.0):
        raise ValueError(f"chrono T_MAX must be above 2 (time scales are drawn from U[1, T_MAX - 1]), got {chrono:g}")
    return chrono


def chrono_biases(T_max, H, rng):
    """b = log u, u ~ U[1, T_max - 1] per unit (H,): chrono initialisation, b ~ log(U([1, T_max - 1]))
    (Tallec & Ollivier 2018, equation 16).

    A gate sigmoid(b) with zero input keeps a fraction f = u / (1 + u) of the state per step,
    a forgetting time 1 / (1 - f) = 1 + u steps: the units' time scales u are uniform over the
    range of dependencies expected, up to T_max (so b itself is the log of a uniform variable,
    not uniform)."""
    return np.log(rng.uniform(1.0, T_max - 1.0, size=H))


# The registry: every cell by name (rnnvanish.choices.CELLS names the same, without importing numpy).
CELLS = {"tanh": TanhRNN, "lstm": LSTM, "gru": GRU, "irnn": IRNN, "indrnn": IndRNN,
         "mingru": MinGRU, "minlstm": MinLSTM, "lru": LRU, "exprnn": ExpRNN,
         "lnlstm": LNLSTM}


def make_cell(name, input_size, hidden_size, **options):
    """Build a cell by name (a key of CELLS); options go to its constructor."""
    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r}; choose one of {', '.join(CELLS)}")
    return CELLS[name](input_size, hidden_size, **options)
