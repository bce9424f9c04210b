"""Lag profiles taken during training, one file per traced step, and reading them back.

The train command calls `record_training_trace(model, inputs, state, step, folder)` every N
steps with the window it is about to train on. Each call writes `folder/lag_<step>.npz` (the
step zero-padded to 8 digits, written atomically) holding a Trace without Jacobians: the lag
profile and the contributions by lag, from the same probe directions at every step (seed 0),
so the profiles differ only because the weights (and the window) changed.

`load_training_traces(folder)` gathers them into steps x lags arrays for the charts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RnnvanishError
from .signal import band
from .trace import Trace, trace

FILE_PATTERN = re.compile(r"^lag_(\d+)\.npz$")


def trace_path(folder, step) -> Path:
    return Path(folder) / f"lag_{int(step):08d}.npz"


def record_training_trace(model, inputs, state, step, folder, seed=0) -> Path:
    """Trace `model` on the (T, B) window `inputs` from the carried `state`; write lag_<step>.npz
    (a stack of layers, or a model with zoneout: depth_<step>.npz, the signal by lag and layer).

    Costs about one extra backward pass of the window (no Jacobians are measured)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stack = getattr(model, "stack", None)
    if stack is not None and not stack.plain:
        from .depth import trace_depth
        tr = trace_depth(model, inputs, state=state, seed=seed, label=f"step {int(step)}", info={"step": int(step)})
        return tr.save(Path(folder) / f"depth_{int(step):08d}.npz")[0]
    tr = trace(model, inputs, state=state, seed=seed, jacobians=False, label=f"step {int(step)}",
               info={"step": int(step)})
    return tr.save(trace_path(folder, step), csv=False)[0]


@dataclass
class TrainingTraces:
    """Lag profiles over training: row i is training step steps[i], column l is lag l.

    grad_h, grad_h_q10, grad_h_q90   (S, L+1) median and 10-90 % band of ||dE_T/dh_{T-l}||
    grad_c                            (S, L+1) median for the LSTM, else None
    contribution                      (S, L) median term of dE_T/dW_hh by lag
    decay_per_step                    (S,) fitted per-step factor of each profile
    Windows of different lengths leave NaN past their own T."""

    steps: np.ndarray
    lags: np.ndarray
    grad_h: np.ndarray
    grad_h_q10: np.ndarray
    grad_h_q90: np.ndarray
    contribution: np.ndarray
    decay_per_step: np.ndarray
    grad_c: np.ndarray | None = None
    meta: dict | None = None

    def __len__(self):
        return int(self.steps.size)


def _traces_dir(folder) -> Path:
    """A traces folder itself, or the traces/ folder of a run folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RnnvanishError(f"there is no folder {folder}")
    if not any(FILE_PATTERN.match(p.name) for p in folder.iterdir()) and (folder / "traces").is_dir():
        return folder / "traces"
    return folder


def _padded(rows, width):
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        if r is not None:
            out[i, :r.size] = r
    return out


def load_training_traces(folder) -> TrainingTraces:
    """Read every lag_<step>.npz of a traces folder (or of a run folder's traces/), by step."""
    folder = _traces_dir(folder)
    files = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := FILE_PATTERN.match(p.name)))
    if not files:
        raise RnnvanishError(f"{folder} holds no training traces (lag_<step>.npz); train with --trace-every N")
    traces = [Trace.load(p) for _, p in files]
    width = max(tr.T for tr in traces) + 1
    h = [band(tr.grad_h) for tr in traces]
    c = [band(tr.grad_c)[0] if tr.grad_c is not None else None for tr in traces]
    contribution = [band(tr.contribution)[0] for tr in traces]
    return TrainingTraces(
        steps=np.array([s for s, _ in files], dtype=np.int64), lags=np.arange(width),
        grad_h=_padded([m for m, _, _ in h], width), grad_h_q10=_padded([lo for _, lo, _ in h], width),
        grad_h_q90=_padded([hi for _, _, hi in h], width),
        contribution=_padded(contribution, width - 1),
        decay_per_step=np.array([tr.decay_per_step for tr in traces]),
        grad_c=_padded(c, width) if any(x is not None for x in c) else None,
        meta=traces[-1].meta)
