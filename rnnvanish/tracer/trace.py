"""`trace(model, inputs)` and the `Trace` it returns: the measurements as data, saved and loaded.

A Trace holds, for one model and one batch of input sequences (T steps, B sequences):

    grad_h          (B, T+1)  ||dE_T/dh_{T-l}|| per sequence, by lag l (the lag profile)
    grad_c          (B, T+1)  ||dE_T/dc_{T-l}|| (LSTM only, else None)
    contribution    (B, T)    ||h_{k-1}^T da_k||_F, k = T - l: each step's term of dE_T/dW_hh
    jacobian_log10  (T, T)    [t-1, k] = log10 ||ds_t/ds_k||_2 for sequence `meta["sequence"]`
    sv_lags, sv_log10         log10 of the leading singular values of ds_T/ds_{T-l} at log-spaced lags
    meta                      what was traced and how (cell, sizes, init, bound, fitted decay, method, time)

E_T is a random unit-direction loss at the last step (see `rnnvanish.tracer.signal`), so
grad_h[:, 0] = 1 and grad_h[:, l] is the fraction of the signal left after l steps back. The
batch is summarised by the median and the 10-90 % band over sequences.

Files: `Trace.save("run/trace.npz")` writes the arrays and a JSON `meta` entry to the .npz and
a tidy table beside it (`trace.csv`), one row per measured value:

    quantity,lag,k,t,value,q10,q90
    grad_h,3,97,100,0.41,0.33,0.52          median and band over sequences
    jacobian,3,40,43,1.2,,                  one pair (k, t); lag = t - k
    bound,3,97,100,0.97,,                   (gamma sigma_max(W_hh))^lag, tanh-family only
"""
from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import RnnvanishError
from ..io import atomic_write, load_npz_with_meta
from . import jacobians as jac
from . import products
from .signal import backprop_signal, band, bound_base, fit_decay, unit_directions

FORMAT, VERSION = "rnnvanish-trace", 1
CSV_COLUMNS = ("quantity", "lag", "k", "t", "value", "q10", "q90")


@dataclass
class Trace:
    """The measured gradient flow of one model on one batch (fields in the module doc)."""

    meta: dict
    grad_h: np.ndarray
    contribution: np.ndarray
    grad_c: np.ndarray | None = None
    jacobian_log10: np.ndarray | None = None
    sv_lags: np.ndarray | None = None
    sv_log10: np.ndarray | None = None
    path: Path | None = field(default=None, compare=False)

    # -- shape and labels -------------------------------------------------------------------
    @property
    def T(self) -> int:
        return self.grad_h.shape[1] - 1

    @property
    def B(self) -> int:
        return self.grad_h.shape[0]

    @property
    def label(self) -> str:
        return str(self.meta.get("label") or self.meta.get("cell", "trace"))

    @property
    def lags(self) -> np.ndarray:
        """0..T, the lags of grad_h and grad_c (contribution uses the first T)."""
        return np.arange(self.T + 1)

    # -- summaries ---------------------------------------------------------------------------
    def profile(self, quantity="h"):
        """(median, q10, q90) over sequences by lag, for "h", "c" or "contribution"."""
        data = {"h": self.grad_h, "c": self.grad_c, "contribution": self.contribution}.get(quantity)
        if data is None:
            raise RnnvanishError(f"this trace has no {quantity!r} profile"
                                 + (" (only the LSTM has a cell state c)" if quantity == "c" else ""))
        return band(data)

    def signal_at(self, lag, quantity="h") -> float:
        """Median ||dE_T/dh_{T-lag}||, the fraction of the signal left after `lag` steps (NaN past T)."""
        median = self.profile(quantity)[0]
        return float(median[lag]) if 0 <= lag < median.size else float("nan")

    @property
    def bound_base(self) -> float:
        return float(self.meta.get("bound_base", float("nan")))

    @property
    def bound(self) -> np.ndarray | None:
        """(gamma sigma_max(W_hh))^l for l = 0..T (tanh-family RNN), else None."""
        base = self.bound_base
        if not np.isfinite(base):
            return None
        with np.errstate(over="ignore", divide="ignore"):
            return np.power(base, self.lags.astype(np.float64))

    @property
    def decay_per_step(self) -> float:
        return float(self.meta.get("decay_per_step", float("nan")))

    def jacobian_at_lag(self, lag) -> float:
        """Median over t of log10 ||ds_t/ds_{t-lag}||_2 (NaN without Jacobians or past T)."""
        if self.jacobian_log10 is None or not 1 <= lag <= self.T:
            return float("nan")
        diagonal = np.diagonal(self.jacobian_log10, offset=-(lag - 1))   # entries [t-1, t-lag]
        return float(np.nanmedian(diagonal)) if np.isfinite(diagonal).any() else float("nan")

    # -- files ---------------------------------------------------------------------------------
    def save(self, path, csv=True):
        """Write `<path>.npz` (and `<stem>.csv` when `csv`) atomically; returns the paths written."""

        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays = {"meta": np.array(json.dumps({**self.meta, "format": FORMAT, "version": VERSION}))}
        for name in ("grad_h", "contribution", "grad_c", "jacobian_log10", "sv_lags", "sv_log10"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = np.asarray(value)
        atomic_write(path, lambda f: np.savez(f, **arrays))
        written = [path]
        if csv:
            csv_path = path.with_suffix(".csv")
            atomic_write(csv_path, lambda f: f.write(self.to_csv().encode("utf-8")))
            written.append(csv_path)
        return tuple(written)

    @classmethod
    def load(cls, path) -> "Trace":
        """Read a trace written by `save`; a missing, corrupt or foreign file raises RnnvanishError."""
        path = Path(path)
        meta, arrays = load_npz_with_meta(path, "trace file", FORMAT, VERSION)
        if "grad_h" not in arrays or "contribution" not in arrays:
            raise RnnvanishError(f"trace {path} lacks its lag profile")
        return cls(meta=meta, path=path, **arrays)

    def rows(self):
        """The tidy rows of the CSV: (quantity, lag, k, t, value, q10, q90); None for an empty field."""
        T = self.T
        for quantity, data in (("grad_h", self.grad_h), ("grad_c", self.grad_c), ("contribution", self.contribution)):
            if data is None:
                continue
            median, low, high = band(data)
            for lag in range(median.size):
                yield quantity, lag, T - lag, T, median[lag], low[lag], high[lag]
        bound = self.bound
        if bound is not None:
            for lag in range(T + 1):
                yield "bound", lag, T - lag, T, bound[lag], None, None
        if self.jacobian_log10 is not None:
            t_idx, k_idx = np.nonzero(~np.isnan(self.jacobian_log10))
            with np.errstate(over="ignore"):
                values = np.power(10.0, self.jacobian_log10[t_idx, k_idx])
            for t0, k, v in zip(t_idx, k_idx, values):
                yield "jacobian", int(t0 + 1 - k), int(k), int(t0 + 1), v, None, None
        if self.sv_log10 is not None:
            with np.errstate(over="ignore"):
                sv = np.power(10.0, self.sv_log10)
            for i in range(sv.shape[1]):
                for lag, v in zip(self.sv_lags, sv[:, i]):
                    yield f"singular_value_{i + 1}", int(lag), int(T - lag), T, v, None, None

    def to_csv(self) -> str:
        out = io.StringIO()
        out.write(",".join(CSV_COLUMNS) + "\n")
        for row in self.rows():
            out.write(",".join(_csv_field(v) for v in row) + "\n")
        return out.getvalue()

    def __repr__(self):
        return f"Trace({self.label!r}, T={self.T}, B={self.B}, decay/step={self.decay_per_step:.3g})"


def _csv_field(v):
    if v is None:
        return ""
    return f"{v:.6g}" if isinstance(v, (float, np.floating)) else str(v)


# --------------------------------------------------------------------------- measuring

def _cell_of(model):
    cell = getattr(model, "cell", model)
    if not hasattr(cell, "forward") or not hasattr(cell, "params"):
        raise RnnvanishError(f"cannot trace a {type(model).__name__}: "
                             "give a cell (TanhRNN, LSTM, GRU) or a LanguageModel")
    return cell


def describe_cell(cell) -> dict:
    """The settings of a cell that shape its gradient flow (JSON-able)."""
    d = {"cell": cell.name, "hidden_size": cell.hidden_size, "input_size": cell.input_size,
         "init_xh": str(cell.init_xh), "init_hh": str(cell.init_hh), "radius": cell.radius,
         "dtype": cell.dtype.name, "backend": cell.backend}
    d.update(cell.describe())                          # the cell's own settings (activation, forget bias, ...)
    return d


def trace(model, inputs, *, state=None, label=None, seed=0, jacobians=True, method="auto", rank=8, sweeps=2,
          sequence=0, n_singular=4, fit_lags=(1, None), info=None) -> Trace:
    """Trace the gradient flow of `model` on `inputs`.

    model     a cell (TanhRNN, LSTM, GRU) or a LanguageModel (its cell is traced)
    inputs    token ids (T, B) or dense inputs (T, B, I); state: the initial carry (default zeros)
    seed      draws the unit directions of the probe loss (and the sketch's random blocks)
    jacobians also measure ||ds_t/ds_k||_2 for every pair on sequence `sequence`, with the
              `method` of `rnnvanish.tracer.products` ("auto", "exact", "sketch"; rank, sweeps)
    fit_lags  (first, last) lags of the fitted decay per step (last None: T)
    info      extra JSON-able facts to keep in meta (e.g. the initialiser spec, the input source)
    """
    cell = _cell_of(model)
    start = time.perf_counter()
    inputs = np.asarray(inputs)
    if inputs.ndim < 2 or inputs.shape[0] < 1 or inputs.shape[1] < 1:
        raise RnnvanishError("inputs must be (T, B) token ids or (T, B, I) values with T, B >= 1, "
                             f"got shape {inputs.shape}")
    try:
        _, _, cache = cell.forward(inputs, state)
    except ValueError as err:
        raise RnnvanishError(f"cannot run the model on these inputs: {err}") from None
    T, B = cache["T"], cache["B"]
    if not 0 <= sequence < B:
        raise RnnvanishError(f"sequence {sequence} is not in the batch of {B}")

    grad_h, grad_c, contribution = backprop_signal(cell, cache, unit_directions(B, cell.hidden_size, seed))
    first, last = fit_lags
    last = T if last is None else min(last, T)
    meta = {"label": label or cell.name, **describe_cell(cell), "T": T, "B": B, "seed": seed,
            "loss": "random unit direction at step T", "bound_base": bound_base(cell),
            "decay_per_step": fit_decay(band(grad_h)[0], first=first, last=last), "fit_lags": [first, last],
            **(info or {})}

    arrays = {}
    if jacobians:
        J = jac.step_chain(cell, cache, sequence)
        arrays["jacobian_log10"], used = products.jacobian_log_norms(J, method, rank=rank, sweeps=sweeps, seed=seed)
        arrays["sv_lags"] = products.log_spaced_lags(T)
        arrays["sv_log10"] = products.singular_values_to_end(J, arrays["sv_lags"], n_singular)
        meta.update(jacobian_method=used, sequence=sequence, state_size=int(J.n),
                    jacobian_state=_state_label(cell))
        if used == "sketch":
            meta.update(rank=rank, sweeps=sweeps)
            _check_sketch_against_exact(arrays, T, meta)
    meta["seconds"] = time.perf_counter() - start
    return Trace(meta=meta, grad_h=grad_h, contribution=contribution, grad_c=grad_c, **arrays)


def _state_label(cell):
    """"h", or "(h, c)" for a carry of several parts."""
    names = cell.state_names
    return names[0] if len(names) == 1 else f"({', '.join(names)})"


def _check_sketch_against_exact(arrays, T, meta):
    """The exact top singular values at the lags ending at T measure how far the sketch fell
    short there (kept in meta); those exact values then replace the sketch's in the heatmap."""
    lags, exact = arrays["sv_lags"], arrays["sv_log10"][:, 0]
    rows, cols = np.full(lags.size, T - 1), T - lags
    sketch = arrays["jacobian_log10"][rows, cols]
    ok = np.isfinite(exact) & np.isfinite(sketch)
    meta["sketch_shortfall_max"] = float(np.max(1 - 10.0 ** (sketch[ok] - exact[ok]))) if ok.any() else float("nan")
    arrays["jacobian_log10"][rows, cols] = exact
