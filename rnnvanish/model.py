"""The recurrent language model: a cell, an output layer and softmax cross-entropy.

    h, state_T = cell(x_1..x_T, state_0)       # x_t a token id: row x_t of W_xh is the input term
    y_t = h_t W_hy + b_y                        # (B, V) logits
    p_t = softmax(y_t);  E = mean over t and b of -log p_t[target_t]

The loss is reported in nats per token (mean); bits per token = E / ln 2; perplexity = exp(E).
`loss_and_grads` runs one window of truncated BPTT: the state is carried in (and out), the
gradient is not; inside the window each step's loss reaches back at most `truncate` steps.
"""
import math

import numpy as np

from . import init as initializers
from .cells import CELLS, make_cell


def bits_per_token(nats):
    return nats / math.log(2.0)


def perplexity(nats):
    return math.exp(min(nats, 700.0))


class LanguageModel:
    """A cell ('tanh', 'lstm', 'gru') over a vocabulary of `vocab_size` tokens.

    `params` holds every parameter: the cell's (`W_xh`, `W_hh`, `b_h` or `b_xh`/`b_hh`) and the
    output layer's `W_hy` (H, V), `b_y` (V,). They are the same arrays as `cell.params`: an
    optimiser that updates `params` in place updates the cell.
    """

    def __init__(self, cell="tanh", vocab_size=65, hidden_size=128, *, seed=0, dtype=np.float64,
                 backend=None, init_hy="glorot_uniform", **cell_options):
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
        self.cell = make_cell(cell, vocab_size, hidden_size, seed=seed, dtype=dtype, backend=backend, **cell_options)
        self.cell_name, self.vocab_size, self.hidden_size = cell, int(vocab_size), int(hidden_size)
        self.cell_options = dict(cell_options)
        self.seed = seed
        rng = np.random.default_rng([seed, 1])                 # a stream apart from the cell's
        self.params = self.cell.params
        self.params["W_hy"] = initializers.initialize(init_hy, (hidden_size, vocab_size), rng, self.dtype)
        self.params["b_y"] = np.zeros(vocab_size, dtype=self.dtype)

    # -- conveniences ---------------------------------------------------------------------
    @property
    def dtype(self):
        return self.cell.dtype

    @property
    def backend(self):
        return self.cell.backend

    def config(self):
        """Everything needed to rebuild this model (JSON-able)."""
        return {"cell": self.cell_name, "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
                "dtype": self.dtype.name, "seed": self.seed, **self.cell_options}

    def initial_state(self, batch):
        return self.cell.initial_state(batch)

    def n_params(self):
        return sum(p.size for p in self.params.values())

    def set_params(self, values):
        """Copy arrays into the model's parameters in place (same names and shapes required)."""
        copy_params(self.params, values)

    # -- forward / backward -----------------------------------------------------------------
    def forward(self, inputs, state=None):
        """Logits for every step: returns (y (T, B, V), state_T, cache)."""
        h, state_T, cache = self.cell.forward(np.asarray(inputs), state)
        y = h[1:] @ self.params["W_hy"] + self.params["b_y"]  # (T, B, V)
        cache["y"] = y
        return y, state_T, cache

    def loss(self, inputs, targets, state=None):
        """Mean nats per token over the window, and the carried state (no gradients)."""
        y, state_T, _ = self.forward(inputs, state)
        loss, _ = self.cell._kernels().softmax_xent(y, np.asarray(targets))
        return float(loss), state_T

    def loss_and_grads(self, inputs, targets, state=None, truncate=None):
        """One window of truncated BPTT.

        Returns (loss, grads, state_T, info): loss in mean nats per token; grads with the keys of
        `params`; state_T to carry into the next window; info holds `dstate0` (gradient on the
        initial carry) and `norms` (per-step ||dE/dh_t||, t = 0..T)."""
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        if targets.shape != inputs.shape:
            raise ValueError(f"targets shape {targets.shape} differs from inputs shape {inputs.shape}")
        fast = getattr(self.cell._kernels(), "lm_loss_and_grads", None)
        if fast is not None:                                     # numba backend: the whole window in five kernel calls
            return fast(self, inputs, targets, state, truncate)
        y, state_T, cache = self.forward(inputs, state)
        loss, dy = self.cell._kernels().softmax_xent(y, targets)   # dE/dy (T, B, V)
        h = cache["h"]
        T, B, V = dy.shape
        H = self.hidden_size
        dW_hy = h[1:].reshape(T * B, H).T @ dy.reshape(T * B, V)  # (H, V)
        db_y = dy.sum(axis=(0, 1))
        dh = dy @ self.params["W_hy"].T                          # backprop into h_t from y_t: (T, B, H)
        grads, dstate0, norms = self.cell.backward(dh, cache, None, truncate=truncate)
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
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        uniforms = rng.random(length)
        # Feed the prime except its last token; generation starts from that token.
        if prime_ids.size > 1:
            _, state, _ = self.cell.forward(prime_ids[:-1, None], state)
        kernels = self.cell._kernels()
        fast = getattr(kernels, "lm_generate", None)
        if fast is not None:
            return fast(self, int(prime_ids[-1]), state, uniforms, float(temperature))
        return self._sample_loop(int(prime_ids[-1]), state, uniforms, float(temperature))

    def _sample_loop(self, token, state, uniforms, temperature):
        """The reference generation loop: one token at a time."""
        out = np.empty(uniforms.size, dtype=np.int64)
        for n in range(uniforms.size):
            h, state, _ = self.cell.forward(np.array([[token]]), state)
            y = h[-1, 0] @ self.params["W_hy"] + self.params["b_y"]   # (V,)
            token = sample_from_logits(y, temperature, uniforms[n])
            out[n] = token
        return out


def copy_params(params, values, error=ValueError):
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
    """One draw from softmax(y / temperature) by inverse CDF with the uniform u; argmax at 0."""
    if temperature == 0.0:
        return int(np.argmax(y))
    z = (y - y.max()) / temperature
    p = np.exp(z)
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), y.size - 1))
