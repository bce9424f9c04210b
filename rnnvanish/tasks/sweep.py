"""A sweep: the same task at several lengths, for several cells and seeds, run in parallel.

The classic experiment of the vanishing-gradient literature: the share of held-out
sequences a trained network solves, against the distance it must bridge. Each run is
independent, so the sweep is a map of one pure function over a grid:

    specs   = grid(base_config, lengths, cells, seeds)     # plain dicts (JSON-able, picklable)
    results = run_sweep(specs, executor)                   # run_one(spec) -> result dict, for each
    summary = summarize(results)                           # mean / min / max over seeds

`executor` is anything with the `concurrent.futures.Executor` interface (`submit` returning
futures): the default is a process pool over every core (spawn start method, so it behaves
the same on every platform), `InlineExecutor` runs in this process (tests, one worker), and a
distributed executor (`cluster.dask_executor`, a Dask cluster's) can be passed in unchanged
because a spec is plain data and `run_one` is a module-level function. A run whose worker
died comes back as a failed result (`failed_result`), the others as they were.
"""
import concurrent.futures
import contextlib
import csv
import io
import math
import multiprocessing
import os
from pathlib import Path

import numpy as np

from ..choices import CELL_SPECIFIC
from ..errors import RnnvanishError, TrainingStopped
from ..io import atomic_write_json, atomic_write_text
from ..training.console import format_duration
from . import make_task
from .cluster import lost_worker_errors
from .objective import TaskConfig, build, train_task

RUN_COLUMNS = ("task", "length", "cell", "seed", "solved", "loss", "accuracy", "best_solved", "baseline_solved",
               "baseline_loss", "steps", "elapsed", "stopped", "reached_step", "reached_time")
SUMMARY_COLUMNS = ("task", "cell", "length", "runs", "mean", "std", "min", "max", "mean_loss",
                   "baseline_solved", "baseline_loss", "reached", "mean_elapsed")
# Each worker gets one thread of BLAS / Numba: N workers on N cores must not compete.
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                     "NUMBA_NUM_THREADS")}


def grid(base, lengths, cells, seeds, cell_settings=None):
    """One spec per (cell, length, seed): `base` (a TaskConfig) with those three replaced.

    `seeds` is a count n (seeds 0..n-1) or a list of seeds. Specs are plain dicts. An option
    of one kind of cell (the LSTM's forget bias, the tanh RNN's activation) is kept for that
    cell's runs and left out of the others'. `cell_settings` {cell: {setting: value}} replaces
    settings of one cell's runs (e.g. {"indrnn": {"lr": 5e-5}}).
    """
    cell_settings = cell_settings or {}
    seeds = range(seeds) if isinstance(seeds, int) else seeds
    base = base.to_dict()
    for name, (owners, _) in CELL_SPECIFIC.items():
        if base.get(name) is not None and not set(owners) & set(cells):
            raise RnnvanishError(f"{name.replace('_', '-')} applies to the {' and '.join(owners)} cell only, "
                                 f"and the sweep has no {' or '.join(owners)} runs")

    def for_cell(cell):
        return {**base, **{name: None for name, (owners, _) in CELL_SPECIFIC.items() if cell not in owners and name in base}}

    return [{**for_cell(cell), **cell_settings.get(cell, {}), "cell": cell, "length": int(length), "seed": int(seed)}
            for cell in cells for length in lengths for seed in seeds]


def check_specs(specs):
    """Build every distinct model once, so a bad setting fails here, not in a worker."""
    if not specs:
        raise RnnvanishError("the sweep is empty: give at least one length, cell and seed")
    seen = set()
    for spec in specs:
        key = (spec["cell"], spec["length"])
        if key not in seen:
            seen.add(key)
            build(TaskConfig.from_dict({**spec, "eval_size": 1}))


def run_one(spec):
    """Train one configuration (a TaskConfig as a dict) and return its result dict.

    A run whose loss or gradient stops being finite is a result too (stopped = "diverged",
    solved = 0), not an error: in a sweep over lengths some settings are expected to blow up.
    Ctrl-C ends the sweep, not only this run.
    """
    config = TaskConfig.from_dict(spec)
    try:
        result = train_task(config)
    except TrainingStopped as err:
        return _unfinished(config, "diverged", str(err))
    return result


def _unfinished(config, stopped, error):
    """The result of a run that did not finish: diverged (solved 0) or failed (solved None)."""
    task = make_task(config.task, **config.task_options)
    baseline = task.baseline(config.length)
    solved = 0.0 if stopped == "diverged" else None
    return {"task": config.task, "length": config.length, "cell": config.cell, "seed": config.seed,
            "hidden": config.hidden, "steps": None, "elapsed": None, "stopped": stopped,
            "solved": solved, "loss": math.nan, "accuracy": None, "best_solved": solved,
            "baseline_solved": baseline["solved"], "baseline_loss": baseline["loss"],
            "stop_at": config.stop_at, "reached_step": None, "reached_time": None, "scores": {},
            "error": error}


def failed_result(spec, err):
    """The result of a run whose worker died under it (see cluster.py): stopped = "failed",
    solved None. It is kept in runs.csv and sweep.json and left out of the summary, which is
    over the runs that finished: a lost machine says nothing about the cell."""
    try:
        reason = f"{type(err).__name__}: {err}"
    except Exception:                         # a message that cannot be built must not end the sweep
        reason = type(err).__name__
    return _unfinished(TaskConfig.from_dict(spec), "failed", f"worker lost: {reason}")


class InlineExecutor(concurrent.futures.Executor):
    """Runs each submitted call at once, in this process; the future it returns is already done."""

    def submit(self, fn, /, *args, **kwargs):
        future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:          # the future carries it, as a pool's would
            future.set_exception(err)
        return future


@contextlib.contextmanager
def _environment(values):
    """Set environment variables for the block (spawned workers inherit them), then restore."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def default_workers():
    return max(1, os.cpu_count() or 1)


def run_sweep(specs, executor=None, workers=None, on_result=None):
    """run_one over every spec; returns the results in the order of `specs`.

    executor: a concurrent.futures.Executor (None: a spawn process pool of `workers`
    processes, default one per core; one worker runs inline). on_result(index, result) is
    called as each run finishes, in completion order.
    """
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise RnnvanishError(f"workers must be at least 1, got {workers}")
    if executor is not None:
        return _collect(executor, specs, on_result)
    if workers == 1 or len(specs) == 1:
        return _collect(InlineExecutor(), specs, on_result)
    with _environment(ONE_THREAD):
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(specs)), mp_context=context) as pool:
            try:
                return _collect(pool, specs, on_result)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise


def _collect(executor, specs, on_result):
    """Submit every spec; a future that comes back already done (an inline executor) is
    handled before the next submission, so its progress shows as it happens. A run whose
    worker died is a failed result; any other exception of a run ends the sweep."""
    results = [None] * len(specs)
    lost = lost_worker_errors()

    def finish(i, future):
        try:
            results[i] = future.result()
        except lost as err:                   # the worker died, not the run: record it, go on
            results[i] = failed_result(specs[i], err)
        if on_result is not None:
            on_result(i, results[i])

    pending = {}
    for i, spec in enumerate(specs):
        future = executor.submit(run_one, spec)
        if future.done():
            finish(i, future)
        else:
            pending[future] = i
    for future in concurrent.futures.as_completed(pending):
        finish(pending[future], future)
    return results


# ----------------------------------------------------------------------------- summaries

def summarize(results):
    """One row per (cell, length), in first-seen cell order and increasing length.

    mean/std/min/max of the held-out success rate over seeds (std with ddof 0), mean loss
    over the runs that stayed finite, how many runs reached the stop-at bar, mean time.
    Failed runs (a lost worker: `failed_result`) are left out.
    """
    groups = {}
    for r in results:
        if r.get("stopped") == "failed":
            continue
        groups.setdefault((r["cell"], r["length"]), []).append(r)
    cells = list(dict.fromkeys(c for c, _ in groups))
    rows = []
    for cell in cells:
        for length in sorted(L for c, L in groups if c == cell):
            runs = groups[(cell, length)]
            solved = np.array([r["solved"] for r in runs], dtype=float)
            losses = np.array([r["loss"] for r in runs], dtype=float)
            times = np.array([np.nan if r["elapsed"] is None else r["elapsed"] for r in runs], dtype=float)
            finite = losses[np.isfinite(losses)]
            rows.append({"task": runs[0]["task"], "cell": cell, "length": length, "runs": len(runs),
                         "mean": float(solved.mean()), "std": float(solved.std()),
                         "min": float(solved.min()), "max": float(solved.max()),
                         "mean_loss": float(finite.mean()) if finite.size else math.nan,
                         "baseline_solved": runs[0]["baseline_solved"], "baseline_loss": runs[0]["baseline_loss"],
                         "reached": sum(r["reached_step"] is not None for r in runs),
                         "mean_elapsed": float(np.nanmean(times)) if np.isfinite(times).any() else math.nan,
                         "values": solved.tolist()})
    return rows


def baselines(results):
    """{length: baseline success rate} from the results."""
    return {r["length"]: r["baseline_solved"] for r in results}


def table_csv(rows, columns):
    """Rows as CSV text with the given columns; None and NaN as empty fields."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None or (isinstance(r.get(c), float) and math.isnan(r[c]))
                         else r[c] for c in columns])
    return out.getvalue()


# ----------------------------------------------------------------------------- the sweep folder

RUNS, SUMMARY, RECORD, CHART = "runs.csv", "summary.csv", "sweep.json", "sweep.png"


def write_sweep(folder, settings, results, chart=True):
    """runs.csv (one row per finished run), summary.csv, sweep.json (settings, runs, summary)
    and, with `chart`, sweep.png. Runs still missing (None) are left out, so this can be called
    after every finished run."""
    folder = Path(folder)
    done = [r for r in results if r is not None]
    summary = summarize(done)
    atomic_write_text(folder / RUNS, table_csv(done, RUN_COLUMNS))
    atomic_write_text(folder / SUMMARY, table_csv(summary, SUMMARY_COLUMNS))
    failed = sum(r.get("stopped") == "failed" for r in done)
    atomic_write_json(folder / RECORD, {"settings": settings, "runs": done, "failed": failed, "summary": summary})
    if chart and summary:
        from ..plots import save_figure
        from ..plots.tasks import plot_sweep
        fig = plot_sweep(summary, baselines(done), title=chart_title(settings))
        save_figure(fig, folder / CHART)
    return summary


def chart_title(settings):
    budget = [f"{settings['steps']:,} steps"]
    if settings.get("max_time") is not None:
        budget.insert(0, format_duration(settings["max_time"]))
    rates = "".join(f" ({cell} {lr:g})" for cell, lr in (settings.get("cell_lr") or {}).items())
    return (f"{settings['task']}: held-out success against length\n"
            f"H = {settings['hidden']}, batch {settings['batch']}, {settings['optimizer']} lr {settings['lr']:g}{rates}, "
            f"at most {' or '.join(budget)} per run")
