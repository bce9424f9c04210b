"""The run folder of `rnnvanish task`: what is in it, and writing it safely.

    config.json      every resolved setting, the task's criterion and baseline, the model size
    metrics.csv      one row per held-out evaluation (columns below)
    checkpoint.npz   parameters, optimizer state, step and config at the end of training
    result.json      the final scores against the baseline, why training stopped, the time taken
    task.png         loss and success rate against step (and time), baseline drawn
    traces/          gradient lag profiles at the start and end of training, and their chart

Whole files are written atomically with `rnnvanish.runfolder.atomic_write` (a temporary file
beside the target, renamed over it), so a reader, or a run killed mid-write, never sees half a
file. metrics.csv grows one line per evaluation.
"""
import csv
import json
import math
import os
from pathlib import Path

import numpy as np

from .errors import RnnvanishError
from .training.runfolder import atomic_write, atomic_write_text, remove_run_files

CONFIG, METRICS, CHECKPOINT, RESULT, CHART, TRACES = (
    "config.json", "metrics.csv", "checkpoint.npz", "result.json", "task.png", "traces")
RUN_FILES = (CONFIG, METRICS, CHECKPOINT, RESULT, CHART)

METRIC_COLUMNS = {
    "step": "updates made so far (one batch of fresh sequences each)",
    "sequences": "training sequences seen so far (step * batch)",
    "elapsed": "wall-clock seconds since training started, evaluations included",
    "train_loss": "mean training loss over the updates since the previous row",
    "grad_norm": "mean global gradient norm over those updates, before clipping",
    "grad_norm_clipped": "the same after clipping (what the optimiser saw)",
    "clipped_frac": "share of those updates in which clipping changed the gradient",
    "eval_loss": "loss on the held-out set (the task's loss: squared error or nats)",
    "eval_solved": "fraction of held-out sequences solved by the task's published criterion",
    "eval_<score>": "every other held-out score the task reports, e.g. eval_accuracy (classification), "
                    "eval_recall_accuracy (copy), eval_mean_abs_error (adding)",
}
COLUMNS = tuple(name for name in METRIC_COLUMNS if "<" not in name)     # the columns every task has


# ----------------------------------------------------------------------------- JSON

def write_json(path, obj):
    """`obj` as indented JSON, atomically; numpy scalars and arrays become numbers and lists."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n"
    atomic_write_text(path, text)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# ----------------------------------------------------------------------------- the folder

def prepare_folder(folder, overwrite=False):
    """Create `folder` for a new run; refuse one that holds files unless `overwrite`.

    With `overwrite`, only the run's own files (and traces/) are removed; the check that the
    folder can be written comes first, so a refusal deletes nothing.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RnnvanishError(f"the run folder {folder} exists and is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise RnnvanishError(f"the run folder {folder} is not empty; pass --overwrite to replace the run in it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        if overwrite:
            remove_run_files(folder, RUN_FILES, TRACES)
    except OSError as err:
        raise RnnvanishError(f"cannot write to the run folder {folder}: {err.strerror or err}") from None
    return folder


def traces_folder(folder):
    path = Path(folder) / TRACES
    path.mkdir(exist_ok=True)
    return path


# ----------------------------------------------------------------------------- metrics.csv

def _field(value):
    """Integers as integers, floats in their shortest exact form, missing (None, NaN) as empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(float(value))


class MetricsFile:
    """metrics.csv, written one row per evaluation.

    The header is written with the first row: COLUMNS, then the row's other `eval_` scores
    in their order (they depend on the task).
    """

    def __init__(self, path):
        self.path = Path(path)
        self.columns = None

    def append(self, row):
        if self.columns is None:
            self.columns = COLUMNS + tuple(k for k in row if k.startswith("eval_") and k not in COLUMNS)
            with open(self.path, "w", encoding="utf-8") as f:
                f.write(",".join(self.columns) + "\n")
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(",".join(_field(row.get(c)) for c in self.columns) + "\n")


def read_metrics(path):
    """metrics.csv as {column: float64 array}, NaN for empty fields; a torn last line is skipped."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise RnnvanishError(f"{path} does not exist") from None
    if not rows or "step" not in rows[0]:
        raise RnnvanishError(f"{path} is not a metrics table (no 'step' column in its header)")
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    try:
        values = [[float(x) if x else math.nan for x in r] for r in body]
    except ValueError:
        raise RnnvanishError(f"{path} holds a value that is not a number") from None
    table = np.array(values, dtype=np.float64).reshape(len(body), len(header))
    return {name: table[:, j] for j, name in enumerate(header)}


# ----------------------------------------------------------------------------- checkpoint.npz

def save_checkpoint(path, model, optimizer, step, config):
    """Parameters as `param/NAME`, optimizer state as `optim/KEY`, plus `step` and `config` (JSON)."""
    arrays = {f"param/{name}": p for name, p in model.params.items()}
    arrays.update({f"optim/{key}": a for key, a in optimizer.state_dict().items()})
    arrays["step"] = np.array(step, dtype=np.int64)
    arrays["config"] = np.array(json.dumps(config, default=_json_default))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path):
    """(params, optimizer_state, step, config) from `save_checkpoint`'s file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise RnnvanishError(f"{path} does not exist") from None
    except (OSError, ValueError) as err:
        raise RnnvanishError(f"cannot read the checkpoint {path}: {err}") from None
    if "config" not in data or "step" not in data:
        raise RnnvanishError(f"{path} is not a task checkpoint (no config or step in it)")
    params = {k.split("/", 1)[1]: v for k, v in data.items() if k.startswith("param/")}
    optim = {k.split("/", 1)[1]: v for k, v in data.items() if k.startswith("optim/")}
    return params, optim, int(data["step"]), json.loads(str(data["config"]))
