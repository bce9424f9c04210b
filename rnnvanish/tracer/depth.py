"""The error signal across time and depth at once, in a stack of recurrent layers.

From one probe loss at the top layer's last step, E_T = u . out_T (u a random unit vector per
sequence, `signal.unit_directions`), the stack's backward pass gives for every layer l and
every step k

    grad[b, l, lag] = ||dE_T/dh_k^(l)||       lag = T - k = 0..T,  l = 0 (bottom) .. L-1 (top)

the share of the signal that survives `lag` steps back in time and L-1-l layers down. A plain
stack multiplies one Jacobian per step and one per layer; residual connections add an identity
path down the layers and zoneout one back through time, and the chart shows what each does.
Each sequence is traced on its own (B passes of one sequence) so the median over sequences and
its 10-90 % band are per-sequence quantities, as in the lag profile of `rnnvanish.tracer.trace`.
Evaluation mode: no dropout; zoneout at its expectation.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import atomic_write, load_npz_with_meta
from .signal import band, unit_directions

FORMAT, VERSION = "rnnvanish-depth-trace", 1


@dataclass
class DepthTrace:
    """grad (B, L, T+1): ||dE_T/dh^(l)_{T-lag}|| per sequence, layer and lag; meta: what was traced."""
    grad: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def layers(self) -> int:
        return self.grad.shape[1]

    @property
    def T(self) -> int:
        return self.grad.shape[2] - 1

    @property
    def label(self) -> str:
        return self.meta.get("label", "")

    def median(self):
        """(L, T+1): the median over sequences, layer by layer and lag by lag."""
        return band(self.grad)[0]

    def bottom(self):
        """(median, q10, q90) of the signal reaching the bottom layer, by lag."""
        return band(self.grad[:, 0, :])

    def save(self, path):
        """`<path>.npz` and `<stem>.csv` (layer, lag, median, q10, q90), atomically; returns the paths."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        meta = json.dumps({**self.meta, "format": FORMAT, "version": VERSION})
        atomic_write(path, lambda f: np.savez(f, meta=np.array(meta), grad=self.grad))
        med, q10, q90 = band(self.grad)
        lines = ["layer,lag,median,q10,q90"] + [
            f"{l + 1},{lag},{med[l, lag]!r},{q10[l, lag]!r},{q90[l, lag]!r}"
            for l in range(self.layers) for lag in range(self.T + 1)]
        csv_path = path.with_suffix(".csv")
        atomic_write(csv_path, lambda f: f.write(("\n".join(lines) + "\n").encode("utf-8")))
        return path, csv_path

    @classmethod
    def load(cls, path) -> "DepthTrace":
        meta, arrays = load_npz_with_meta(path, "depth trace", FORMAT, VERSION)
        return cls(grad=arrays["grad"], meta=meta)


def trace_depth(model, inputs, state=None, seed=0, label=None, info=None) -> DepthTrace:
    """Trace a Stack, or a model holding one (`model.stack`), on inputs (T, B) ids or (T, B, I)."""
    stack = getattr(model, "stack", model)
    x = np.asarray(inputs)
    if not np.issubdtype(x.dtype, np.integer):
        x = x.astype(stack.dtype)
    T, B = x.shape[0], x.shape[1]
    u = unit_directions(B, stack.hidden_size, seed).astype(stack.dtype)
    grad = np.zeros((B, stack.layers, T + 1))
    carries = None if state is None else [np.asarray(s) for s in state]
    for b in range(B):
        state_b = None if carries is None else tuple(s[b:b + 1] for s in carries)
        _, _, cache = stack.forward(x[:, b:b + 1], state_b)
        dh = np.zeros((T, 1, stack.hidden_size), dtype=stack.dtype)
        dh[-1, 0] = u[b]                                         # the probe loss at the top's last step
        with np.errstate(over="ignore", invalid="ignore"):
            _, _, norms = stack.backward(dh, cache)
        for l, layer_norms in enumerate(norms["layers"]):
            grad[b, l] = np.asarray(layer_norms["h"])[::-1]      # by lag: T - k
    meta = {"label": label or f"{stack.layers}-layer {stack.name}", "cell": stack.name, "layers": stack.layers,
            "hidden_size": stack.hidden_size, "T": T, "B": B, "seed": seed, **stack.config(),
            "loss": "random unit direction on the top layer's output at step T", **(info or {})}
    return DepthTrace(grad=grad, meta=meta)
