"""The recurrent language model: a cell, an output layer and softmax cross-entropy.

    h, state_T = cell(x_1..x_T, state_0)       # x_t a token id: row x_t of W_xh is the input term
    y_t = h_t W_hy + b_y                        # (B, V) logits
    p_t = softmax(y_t);  E = mean over t and b of -log p_t[target_t]

The loss is reported in nats per token (mean); bits per token = E / ln 2; perplexity = exp(E).
`loss_and_grads` runs one window of truncated BPTT: the state is carried in (and out), the
gradient is not; inside the window each step's loss reaches back at most `truncate` steps.

A window is a few kernel calls, whatever T is, the same on both backends (`kernels` is
`rnnvanish.kernels` or `rnnvanish.reference`, see `rnnvanish.backend`). Written out, five:

    xw = input_rows(ids, W_xh, b)                      x_t W_xh + b: rows of W_xh, no one-hot product
    h, ... = <cell>_forward(xw, state_0, ...)           the recurrence
    E, dh, dW_hy, db_y = output_layer(h, targets, ...)  logits, softmax cross-entropy, and back to dh
    da, dstate_0, norms = <cell>_backward(dh, 0, ...)   truncated BPTT
    dW_xh, dW_hh, db = window_grads(ids, h, da, ...)    whole-window products: dW_hh = h[:-1]^T da
The cells call three: `<cell>_forward_tokens` in place of the first two, output_layer,
`<cell>_backward_tokens` in place of the last two (split across threads, these form neither
xw nor a separate pass for dW_xh; the LSTM's feature-major windows keep the five). Generation
is one call of the cell's loop, `<cell>_generate`. Each cell unpacks the parameters for those
calls itself (`cell.lm_window`, `cell.lm_generate`); a cell without them (and every stack)
runs the same window through `Stack.forward`/`backward` and generates one token at a time.
"""
import math

import numpy as np

from . import init as initializers
from .cells import CELLS, truncate_code
from .errors import RnnvanishError
from .stack import Stack
from .reference.recurrent import _draw_token


def bits_per_token(nats):
    return nats / math.log(2.0)


def perplexity(nats):
    return math.exp(min(nats, 700.0))


class CellModel:
    """A recurrent cell and a readout y_t = h_t W_hy + b_y, W_hy (H, O), b_y (O,): what the
    language model and the task model share.

    `params` holds every parameter: the cell's (`W_xh`, `W_hh`, `b_h` or `b_xh`/`b_hh`) and the
    readout's. They are the same arrays as `cell.params`: an optimiser that updates `params` in
    place updates the cell. The readout is drawn from a stream apart from the cell's (seed, 1).
    """

    def __init__(self, cell, input_size, hidden_size, output_size, *, seed=0, dtype=np.float64, backend=None,
                 init_hy="glorot_uniform", layers=1, dropout=0.0, variational=False, zoneout=0.0, residual=False,
                 **cell_options):
        if cell not in CELLS:
            raise RnnvanishError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
        self.stack = Stack(cell, input_size, hidden_size, layers, dropout=dropout, variational=variational,
                           zoneout=zoneout, residual=residual, seed=seed, dtype=dtype, backend=backend, **cell_options)
        self.cell = self.stack.cells[0]                        # the first layer (the only one by default)
        self.cell_name, self.hidden_size, self.output_size = cell, int(hidden_size), int(output_size)
        self.cell_options, self.seed = dict(cell_options), seed
        rng = np.random.default_rng([seed, 1])
        self.params = self.stack.params
        self.params["W_hy"] = initializers.initialize(init_hy, (self.hidden_size, self.output_size), rng, self.dtype)
        self.params["b_y"] = np.zeros(self.output_size, dtype=self.dtype)

    @property
    def dtype(self):
        return self.cell.dtype

    @property
    def backend(self):
        return self.cell.backend

    @property
    def layers(self):
        return self.stack.layers

    @property
    def recurrent_keys(self):
        """The recurrent parameters' names in `params` (W_hh, W_hh_l1, ...; the IndRNN's u, ...)."""
        return self.stack.recurrent_keys

    def initial_state(self, batch):
        return self.stack.initial_state(batch)

    def draw_masks(self, T, B, rng):
        """Training masks for a (T, B) batch (None when the model drops nothing); see rnnvanish.stack."""
        return self.stack.draw_masks(T, B, rng)

    def n_params(self):
        return sum(p.size for p in self.params.values())

    def set_params(self, values):
        """Copy arrays into the model's parameters in place (same names and shapes required)."""
        copy_params(self.params, values)

    def constrain(self):
        """Every layer's parameter constraint (`Cell.constrain`), in place: after each update."""
        self.stack.constrain()


class LanguageModel(CellModel):
    """A cell ('tanh', 'lstm', 'gru') over a vocabulary of `vocab_size` tokens: the readout
    W_hy (H, V), b_y (V,) gives the logits of the next token."""

    def __init__(self, cell="tanh", vocab_size=65, hidden_size=128, *, seed=0, dtype=np.float64,
                 backend=None, init_hy="glorot_uniform", **cell_options):
        super().__init__(cell, vocab_size, hidden_size, vocab_size, seed=seed, dtype=dtype, backend=backend,
                         init_hy=init_hy, **cell_options)
        self.vocab_size = int(vocab_size)

    def config(self):
        """Everything needed to rebuild this model (JSON-able)."""
        return {"cell": self.cell_name, "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
                "dtype": self.dtype.name, "seed": self.seed, **self.cell_options, **self.stack.config()}

    # -- forward / backward -----------------------------------------------------------------
    def forward(self, inputs, state=None, masks=None):
        """Logits for every step: returns (y (T, B, V), state_T, cache)."""
        h, state_T, cache = self.stack.forward(np.asarray(inputs), state, masks)
        y = h[1:] @ self.params["W_hy"] + self.params["b_y"]  # (T, B, V)
        cache["y"] = y
        return y, state_T, cache

    def loss(self, inputs, targets, state=None):
        """Mean nats per token over the window, and the carried state (no gradients)."""
        y, state_T, _ = self.forward(inputs, state)
        loss, _ = self.cell._kernels().softmax_xent(y, np.asarray(targets))
        return float(loss), state_T

    def loss_and_grads(self, inputs, targets, state=None, truncate=None, masks=None):
        """One window of truncated BPTT.

        Returns (loss, grads, state_T, info): loss in mean nats per token; grads with the keys of
        `params`; state_T to carry into the next window; info holds `dstate0` (gradient on the
        initial carry) and `norms` (per-step ||dE/dh_t||, t = 0..T; "layers" per layer for a
        stack). `masks` (from `draw_masks`) are the training masks; None is evaluation."""
        ids, targets = _token_ids(inputs, "inputs"), _token_ids(targets, "targets")
        if targets.shape != ids.shape:
            raise ValueError(f"targets shape {targets.shape} differs from inputs shape {ids.shape}")
        if not self.stack.plain or self.cell.lm_window is None:
            return self._stack_window(ids, targets, state, truncate, masks)
        state0 = _contiguous_state(self.cell, state, ids.shape[1])
        loss, grads, state_T, dstate0, norms = self.cell.lm_window(
            self.cell._kernels(), self.params, ids, targets, state0, truncate_code(truncate))
        return float(loss), grads, state_T, {"dstate0": dstate0, "norms": norms}

    def _stack_window(self, ids, targets, state, truncate, masks):
        """The window of a stack: the layers' forward, the output layer, the layers' backward."""
        top, state_T, cache = self.stack.forward(ids, state, masks)
        loss, dh, dW_hy, db_y = self.cell._kernels().output_layer(np.ascontiguousarray(top), targets,
                                                                  self.params["W_hy"], self.params["b_y"])
        grads, dstate0, norms = self.stack.backward(dh, cache, None, truncate=truncate)
        grads["W_hy"], grads["b_y"] = dW_hy, db_y
        return float(loss), grads, state_T, {"dstate0": dstate0, "norms": norms}

    # -- generation ------------------------------------------------------------------------
    def sample(self, prime_ids, length, temperature=1.0, rng=None, state=None):
        """Generate `length` token ids after feeding `prime_ids` (at least one id).

        Temperature T > 0 samples from softmax(y / T); T == 0 is greedy (argmax). Samples are
        drawn by inverse CDF from `length` uniforms taken from `rng` up front, so every backend
        produces the same text for the same seed."""
        prime_ids = np.asarray(prime_ids, dtype=np.int64).reshape(-1)
        if prime_ids.size == 0:
            raise ValueError("sampling needs a prime of at least one token")
        if temperature < 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be zero or positive, got {temperature}")
        token = int(prime_ids[-1])
        if not 0 <= token < self.vocab_size:
            raise ValueError(f"token id {token} is out of range of the vocabulary (size {self.vocab_size})")
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        uniforms = rng.random(length)
        # Feed the prime except its last token; generation starts from that token.
        if prime_ids.size > 1:
            _, state, _ = self.stack.forward(prime_ids[:-1, None], state)
        if not self.stack.plain or self.cell.lm_generate is None:
            return self._stack_generate(token, state, uniforms, temperature)
        return self.cell.lm_generate(self.cell._kernels(), self.params, token, _contiguous_state(self.cell, state, 1),
                                     uniforms, self.dtype.type(temperature))


    def _stack_generate(self, token, state, uniforms, temperature):
        """One token at a time through every layer (the generation kernels step one cell)."""
        out = np.empty(uniforms.size, dtype=np.int64)
        for n, u in enumerate(uniforms):
            y, state, _ = self.forward(np.array([[token]]), state)
            token = out[n] = sample_from_logits(y[-1, 0], temperature, u)
        return out


def copy_params(params, values, error=RnnvanishError):
    """Copy `values` into the arrays of `params` in place; names and shapes must match."""
    differ = set(params) ^ set(values)
    if differ:
        raise error(f"parameter names differ: {', '.join(sorted(differ))}")
    for name, p in params.items():
        v = np.asarray(values[name])
        if v.shape != p.shape:
            raise error(f"parameter {name} has shape {p.shape}, got {v.shape}")
        p[...] = v


def sample_from_logits(y, temperature, u):
    """One draw from softmax(y / temperature) by inverse CDF with the uniform u; argmax at 0.

    The draw of the generation loops (`<cell>_generate`)."""
    return _draw_token(np.asarray(y), temperature, u)


def _token_ids(a, what):
    """a as a C-contiguous (T, B) int64 array (one compiled signature for every caller)."""
    a = np.asarray(a)
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{what} must be token ids of shape (T, B), got {a.dtype} of shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _contiguous_state(cell, state, batch):
    """The carry checked against the cell (None: zeros), each part C-contiguous (B, H)."""
    return tuple(np.ascontiguousarray(s) for s in cell._check_state(state, batch))
