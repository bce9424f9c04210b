"""The run folder every training command writes: what is in it, and writing it safely.

    config.json      every resolved setting, the model, and the objective's description
                     (the corpus and vocabulary of a language model; the task, its criterion
                     and baseline)
    metrics.csv      one row per log interval (columns below)
    checkpoint.npz   the latest state of training (see rnnvanish.training.checkpoint); `--resume` reads it
    best.npz         the same, at the best evaluation so far
    samples.txt      text sampled during training (language models), one block per sample
    result.json      the final held-out scores against the baseline (tasks)
    traces/          gradient lag profiles taken during training (`--trace-every`; tasks also
                     trace before and after training)
    training.png     loss, evaluation and gradient norms against step (task.png for a task)

Whole files are written atomically (`rnnvanish.io`), so a reader, or a run killed mid-write,
never sees half a file. metrics.csv and samples.txt also grow line by line between
checkpoints; on `--resume` both are rewritten to agree with the checkpoint (rows and samples
past its step are dropped).
"""
from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path

import numpy as np

from ..errors import RnnvanishError
from ..io import atomic_write, atomic_write_json, atomic_write_text, read_json  # noqa: F401  (the run folder's writers)

CONFIG, METRICS, CHECKPOINT, BEST, SAMPLES, RESULT, TRACES = (
    "config.json", "metrics.csv", "checkpoint.npz", "best.npz", "samples.txt", "result.json", "traces")
CHARTS = ("training.png", "task.png")
RUN_FILES = (CONFIG, METRICS, CHECKPOINT, BEST, SAMPLES, RESULT, *CHARTS)

# Every run's columns, in this order around the objective's own (see each objective's COLUMNS).
# "interval" means the training steps since the previous row.
COMMON_COLUMNS = {
    "step": "updates so far (skipped ones included); one batch = one update",
    "train_loss": "mean training loss over the interval (skipped steps left out)",
    "grad_norm": "mean global gradient norm over the interval, before clipping",
    "grad_norm_clipped": "mean global gradient norm over the interval, after clipping (what the optimiser saw)",
    "clipped_frac": "share of the interval's steps in which clipping changed the gradient",
    "lr": "learning rate of the last step of the interval",
    "tokens_per_s": "training throughput over the interval (time steps x sequences per second, evaluation excluded)",
    "elapsed": "seconds of training so far, summed over every session of the run, evaluations included",
    "skipped": "steps of the interval dropped because the loss or a gradient was not finite",
}
TIME_COLUMNS = ("tokens_per_s", "elapsed")
INT_COLUMNS = ("step", "tokens", "sequences", "skipped")


def columns_around(progress: str, evaluation) -> tuple:
    """step, the progress count, train_loss, the evaluation's columns, then the rest."""
    rest = [c for c in COMMON_COLUMNS if c not in ("step", "train_loss")]
    return ("step", progress, "train_loss", *evaluation, *rest)


# ----------------------------------------------------------------------------------------------
# metrics.csv
# ----------------------------------------------------------------------------------------------

def _cell(value) -> str:
    """A CSV field: integers as integers, floats in their shortest exact form, missing as empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def metrics_header(columns) -> str:
    return ",".join(columns) + "\n"


def metrics_line(row, columns) -> str:
    """One CSV line for a row (a dict by column name, or a sequence in `columns` order)."""
    values = [row.get(c) for c in columns] if isinstance(row, dict) else list(row)
    return ",".join(_cell(v) for v in values) + "\n"


def metrics_table(rows, columns) -> np.ndarray:
    """Rows as a float64 array (n_rows, len(columns)), NaN where a value is missing."""
    table = np.full((len(rows), len(columns)), np.nan)
    for i, row in enumerate(rows):
        for j, c in enumerate(columns):
            v = row.get(c) if isinstance(row, dict) else row[j]
            if v is not None:
                table[i, j] = float(v)
    return table


def rows_from_table(table, columns) -> list[dict]:
    """metrics_table's inverse: counts back as ints, missing values as NaN."""
    table = np.asarray(table, dtype=np.float64).reshape(-1, len(columns))
    return [{c: (int(v) if c in INT_COLUMNS and v == v else float(v)) for c, v in zip(columns, r)} for r in table]


def write_metrics(path, table, columns) -> None:
    """Write a whole metrics table atomically."""
    lines = [metrics_header(columns)] + [metrics_line(r, columns) for r in np.asarray(table, dtype=np.float64)]
    atomic_write_text(path, "".join(lines))


def append_metrics(path, row, columns) -> None:
    """Append one row (writing the header first if the file is new). Not atomic: see the module docstring."""
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8") as f:
        if new:
            f.write(metrics_header(columns))
        f.write(metrics_line(row, columns))


def read_metrics(path) -> dict[str, np.ndarray]:
    """metrics.csv as {column: float64 array}, NaN for empty fields. Unknown columns are kept too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RnnvanishError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RnnvanishError(f"cannot read {path}: {err}") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or "step" not in header:
        raise RnnvanishError(f"{path} is not a metrics table (no 'step' column in its header)")
    columns = {name: [] for name in header}
    for line_no, fields in enumerate(reader, start=2):
        if len(fields) != len(header):
            continue                                   # a torn last line of a killed run
        try:
            values = [float(x) if x else math.nan for x in fields]
        except ValueError:
            raise RnnvanishError(f"{path} line {line_no} holds a value that is not a number") from None
        for name, v in zip(header, values):
            columns[name].append(v)
    return {name: np.array(v, dtype=np.float64) for name, v in columns.items()}


# ----------------------------------------------------------------------------------------------
# samples.txt
# ----------------------------------------------------------------------------------------------

_SAMPLE_HEADER = re.compile(r"^=== step (\d+)\b.*===$", re.MULTILINE)


def sample_block(step: int, temperature: float, text: str) -> str:
    return f"=== step {step} | temperature {temperature:g} ===\n{text}\n\n"


def append_sample(path, block: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(block)


def truncate_samples(path, last_step: int) -> None:
    """Drop the sample blocks written after `last_step` (atomically); a missing file is left missing."""
    path = Path(path)
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    for m in _SAMPLE_HEADER.finditer(text):
        if int(m.group(1)) > last_step:
            atomic_write_text(path, text[:m.start()])
            return


# ----------------------------------------------------------------------------------------------
# The folder itself
# ----------------------------------------------------------------------------------------------

def _describe_os_error(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "permission denied"
    return err.strerror or str(err)


def check_writable(folder: Path) -> None:
    """Create `folder` if needed and prove a file can be written in it (the probe is removed)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise RnnvanishError(f"cannot write to the run folder {folder}: {_describe_os_error(err)}") from None


def existing_run_files(folder: Path) -> list[str]:
    """The run files (and a non-empty traces/) that already exist in `folder`."""
    if not folder.is_dir():
        return []
    found = [name for name in RUN_FILES if (folder / name).exists()]
    traces = folder / TRACES
    if traces.is_dir() and any(traces.iterdir()):
        found.append(TRACES + "/")
    return found


def remove_run_files(folder, names, traces=TRACES):
    """Delete a run's own files (`names`) and the files in its traces folder; nothing else."""
    for name in names:
        (folder / name).unlink(missing_ok=True)
    if (folder / traces).is_dir():
        for f in (folder / traces).iterdir():
            if f.is_file():
                f.unlink()


def prepare_new(folder, overwrite: bool = False) -> Path:
    """Make `folder` ready for a new run.

    A folder that holds a run (or any other files) is refused unless `overwrite`; with it, only
    the run's own files are deleted (anything else in the folder is left alone). The check for
    writability comes first, so a refusal deletes nothing.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RnnvanishError(f"the run folder {folder} exists and is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        what = existing_run_files(folder)
        held = f"a run ({', '.join(what)})" if what else "other files"
        raise RnnvanishError(f"the run folder {folder} already holds {held}; "
                             f"continue it with --resume {folder}, or pass --overwrite to start again")
    check_writable(folder)
    if overwrite:
        try:
            remove_run_files(folder, RUN_FILES)
        except OSError as err:
            raise RnnvanishError(f"cannot clear the old run in {folder}: {_describe_os_error(err)}") from None
    return folder


def traces_folder(folder) -> Path:
    path = Path(folder) / TRACES
    path.mkdir(exist_ok=True)
    return path
