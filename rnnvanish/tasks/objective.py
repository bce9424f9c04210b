"""Training a task model on fresh sequences, judged on a fixed held-out set.

Every update draws a new batch from the task's generator (the published experiments never
reuse a sequence), takes full-BPTT gradients, clips them and steps the optimiser:

    batch_s  ~ task.generate(B, T)                      fresh sequences
    E, g     = model.loss_and_grads(batch_s)
    g        <- clip_by_value(g, c_v); clip_by_global_norm(g, c_n)     (each when set)
    params   <- optimizer.step(g)

Every `eval_every` updates the model is scored on `eval_size` held-out sequences, drawn once
at the start from a stream of their own, with the task's published criterion
(`task.evaluate`: "loss" and "solved"). Training stops at the first of: `steps` updates,
`max_time` seconds of wall clock (evaluations included), or, with `stop_at`, a held-out
success rate of at least `stop_at`.

The LSTM's forget gate starts at bias `LSTM_FORGET_BIAS` = 3 unless set: the memory kept
over l steps is about sigmoid(b_f)^l, 0.73^100 ~ 1e-14 at the library's b_f = 1 but
0.95^100 ~ 0.008 at b_f = 3, and the adding problem asks for 50 to 110 steps. Gers, Schmidhuber
& Cummins (2000) start the forget gate open for long lags; Hochreiter & Schmidhuber's 1997
LSTM had no forget gate at all (f = 1).

`train_task(config)` is a pure function of its config when no folder is given (the sweep
runs it in worker processes); with a folder it also writes the run folder of
`rnnvanish.taskfolder`.
"""
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from .. import taskfolder
from ..clip import check_finite, clip_by_global_norm, clip_by_value, global_norm
from ..errors import RnnvanishError
from ..optim import make_optimizer
from .model import TaskModel
from . import make_task

EVAL_CHUNK = 250          # held-out sequences per forward pass: bounds the cache's memory
LSTM_FORGET_BIAS = 3.0    # see the module docstring


@dataclasses.dataclass
class TaskConfig:
    """Every setting of a task run. `length=None` takes the task's published length."""

    task: str = "adding"
    length: int = None
    cell: str = "lstm"
    hidden: int = 64
    batch: int = 32
    optimizer: str = "adam"
    lr: float = 3e-3
    clip_norm: float = 1.0            # None: no clipping by global norm
    clip_value: float = None          # None: no clipping by value
    init_hh: str = None               # None: the cell's default (orthogonal)
    radius: float = None              # spectral radius of each recurrent block at the start
    activation: str = None            # tanh cell only (default tanh)
    forget_bias: float = None         # LSTM only (default LSTM_FORGET_BIAS)
    seed: int = 0
    steps: int = 10000
    max_time: float = None            # seconds
    eval_every: int = 200
    eval_size: int = 1000
    stop_at: float = 0.95             # None: never stop early
    backend: str = None
    dtype: str = "float64"
    task_options: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise RnnvanishError(f"unknown task setting {unknown[0]!r}")
        return cls(**d)


def format_duration(seconds):
    """45s, 2m10s, 1h02m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _check(config):
    if config.stop_at is not None and not 0.0 < config.stop_at <= 1.0:
        raise RnnvanishError(f"stop-at must be a fraction in (0, 1], got {config.stop_at:g}")
    if config.max_time is not None and not config.max_time > 0:
        raise RnnvanishError(f"max-time must be a positive number of seconds, got {config.max_time:g}")
    for name in ("hidden", "batch", "steps", "eval_every", "eval_size"):
        value = getattr(config, name)
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise RnnvanishError(f"{name.replace('_', '-')} must be a positive whole number, got {value!r}")


def build(config):
    """(task, model, optimizer, held-out batch) for a config; `config.length` and an LSTM's
    `config.forget_bias` are filled in when unset."""
    _check(config)
    task = make_task(config.task, **config.task_options)
    if config.length is None:
        config.length = task.default_length
    if config.cell == "lstm" and config.forget_bias is None:
        config.forget_bias = LSTM_FORGET_BIAS
    model = TaskModel(task, config.cell, config.hidden, seed=config.seed, dtype=config.dtype,
                      backend=config.backend, init_hh=config.init_hh, radius=config.radius,
                      activation=config.activation, forget_bias=config.forget_bias)
    optimizer = make_optimizer(config.optimizer, model.params, config.lr, backend=model.backend)
    # The held-out set has its own stream: the same sequences whatever the batch size or steps.
    heldout = task.generate(config.eval_size, config.length, rng=np.random.default_rng([config.seed, 3]))
    return task, model, optimizer, heldout


def evaluate(model, batch):
    """The task's scores of `model` on `batch`, forward passes of EVAL_CHUNK sequences at a time."""
    parts = [model.predict(batch.inputs[:, b:b + EVAL_CHUNK]) for b in range(0, batch.B, EVAL_CHUNK)]
    return model.task.evaluate(np.concatenate(parts, axis=1), batch)


def clip(grads, config):
    """Clip in place (by value, then by global norm); returns (norm before, norm after, clipped?)."""
    before = global_norm(grads)
    changed = False
    if config.clip_value is not None:
        changed = clip_by_value(grads, config.clip_value) > 0
    if config.clip_norm is not None:
        norm = clip_by_global_norm(grads, config.clip_norm)
        changed = changed or norm > config.clip_norm
    after = global_norm(grads) if changed else before
    return before, after, changed


class _Interval:
    """Sums over the updates between two evaluations."""

    def __init__(self):
        self.n = 0
        self.loss = self.norm = self.norm_clipped = 0.0
        self.clipped = 0

    def add(self, loss, before, after, changed):
        self.n += 1
        self.loss += loss
        self.norm += before
        self.norm_clipped += after
        self.clipped += changed

    def means(self):
        sums = {"train_loss": self.loss, "grad_norm": self.norm, "grad_norm_clipped": self.norm_clipped,
                "clipped_frac": self.clipped}
        return {key: (total / self.n if self.n else None) for key, total in sums.items()}


def log_line(row, baseline):
    """`step 800 | loss 0.0121 | held-out 0.0118 | solved 97.3% (baseline 15.4%) | 2m10s`."""
    train = "" if row["train_loss"] is None else f" | loss {row['train_loss']:.4g}"
    return (f"step {row['step']}{train} | held-out {row['eval_loss']:.4g} | solved {100 * row['eval_solved']:.1f}% "
            f"(baseline {100 * baseline['solved']:.1f}%) | {format_duration(row['elapsed'])}")


def train_task(config, folder=None, *, overwrite=False, progress=False, log=None, on_model=None):
    """Train one task model; returns the result dict (see `result_dict`).

    folder: write the run folder there (None: nothing is written). progress: show a tqdm bar.
    log: a function taking one line per evaluation (None: silent). on_model(model, config, when)
    is called with when = "start" (before the clock starts) and "end" (after the last
    evaluation); the command uses it to take gradient traces.
    """
    config = dataclasses.replace(config)
    task, model, optimizer, heldout = build(config)
    baseline = task.baseline(config.length)
    say = log or (lambda line: None)
    if folder is not None:
        folder = taskfolder.prepare_folder(folder, overwrite)
        taskfolder.write_json(folder / taskfolder.CONFIG, describe(config, task, model, baseline))
        metrics = taskfolder.MetricsFile(folder / taskfolder.METRICS)
    if on_model is not None:
        on_model(model, config, "start")

    rng = np.random.default_rng([config.seed, 2])                   # the training stream
    start = time.perf_counter()
    rows, interval, step, stopped = [], _Interval(), 0, "steps"
    bar = _progress_bar(config, progress)

    def evaluate_now():
        nonlocal interval
        scores = evaluate(model, heldout)
        row = {"step": step, "sequences": step * config.batch, "elapsed": time.perf_counter() - start,
               **interval.means(), **{f"eval_{name}": value for name, value in scores.items()}, "scores": scores}
        interval = _Interval()
        rows.append(row)
        if folder is not None:
            metrics.append(row)
        _write_line(bar, say, log_line(row, baseline))
        return row

    row = evaluate_now()                                             # the untrained model
    try:
        # Overflow is not warned about: check_finite stops the run with a diagnosis instead.
        with np.errstate(over="ignore", invalid="ignore"):
            while step < config.steps:
                if config.stop_at is not None and row["eval_solved"] >= config.stop_at:
                    stopped = "solved"
                    break
                if config.max_time is not None and time.perf_counter() - start >= config.max_time:
                    stopped = "time"
                    break
                batch = task.generate(config.batch, config.length, rng)
                loss, grads, _ = model.loss_and_grads(batch)
                check_finite(grads, loss, step=step + 1, policy="raise")
                interval.add(loss, *clip(grads, config))
                optimizer.step(grads)
                step += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"loss {loss:.4g}", refresh=False)
                if step % config.eval_every == 0:
                    row = evaluate_now()
    except KeyboardInterrupt:              # Ctrl-C: stop here, but score and save what was learnt
        stopped = "interrupted"
    finally:
        if bar is not None:
            bar.close()
    if rows[-1]["step"] != step:
        row = evaluate_now()
    if stopped == "steps" and config.stop_at is not None and row["eval_solved"] >= config.stop_at:
        stopped = "solved"

    result = result_dict(config, rows, baseline, stopped)
    if on_model is not None:
        on_model(model, config, "end")
    if folder is not None:
        taskfolder.save_checkpoint(folder / taskfolder.CHECKPOINT, model, optimizer, step, config.to_dict())
        taskfolder.write_json(folder / taskfolder.RESULT, result)
        draw_chart(folder, rows, baseline, config, task)
    return result


def _progress_bar(config, progress):
    if not progress:
        return None
    from tqdm import tqdm
    # disable=None: no bar when stderr is not a terminal (a log file gets the log lines only).
    # Under a time budget the step count is only a ceiling: the bar then counts without a total.
    total = config.steps if config.max_time is None else None
    return tqdm(total=total, unit="step", dynamic_ncols=True, leave=False, file=sys.stderr, disable=None)


def _write_line(bar, say, line):
    if bar is not None:
        bar.clear()
        say(line)
        bar.refresh()
    else:
        say(line)


def describe(config, task, model, baseline):
    """config.json: the resolved settings, the task and its baseline, the model."""
    return {"config": config.to_dict(),
            "task": {"name": task.name, "kind": task.kind, "reference": task.reference,
                     "criterion": task.criterion, "settings": task.settings, "baseline": baseline},
            "model": {**model.config(), "n_params": model.n_params(), "backend": model.backend}}


def result_dict(config, rows, baseline, stopped):
    """The outcome of one run: the final held-out scores, the baseline, when the bar was first met.

    Keys: task, length, cell, seed, steps, elapsed, stopped ("solved", "time", "steps",
    "interrupted", "diverged"), solved, loss, accuracy, baseline_solved, baseline_loss, best_solved,
    reached_step, reached_time (first evaluation with solved >= stop_at; None if never), scores
    (every held-out score of the last evaluation, e.g. the copy task's recall_accuracy).
    """
    last = rows[-1]
    reached = next((r for r in rows if config.stop_at is not None and r["eval_solved"] >= config.stop_at), None)
    return {"task": config.task, "length": config.length, "cell": config.cell, "seed": config.seed,
            "hidden": config.hidden, "steps": last["step"], "elapsed": last["elapsed"], "stopped": stopped,
            "solved": last["eval_solved"], "loss": last["eval_loss"], "accuracy": last["scores"].get("accuracy"),
            "baseline_solved": baseline["solved"], "baseline_loss": baseline["loss"],
            "best_solved": max(r["eval_solved"] for r in rows), "stop_at": config.stop_at,
            "reached_step": None if reached is None else reached["step"],
            "reached_time": None if reached is None else reached["elapsed"], "scores": last["scores"]}


def draw_chart(folder, rows, baseline, config, task):
    from ..plots.tasks import plot_task_run
    columns = {key: np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)
               for key in rows[0] if key != "scores"}
    title = f"{task.name}, T = {config.length}, {config.cell} (H = {config.hidden}, seed {config.seed})"
    fig = plot_task_run(columns, baseline, title=title, stop_at=config.stop_at)
    from ..plots import save_figure
    save_figure(fig, Path(folder) / taskfolder.CHART)


def summary_line(result):
    """The final result against the baseline, one line."""
    why = {"solved": "criterion met", "time": "time budget spent", "steps": "all steps done",
           "interrupted": "interrupted", "diverged": "diverged"}[result["stopped"]]
    others = [f"{name} {value:.4g}" for name, value in result.get("scores", {}).items()
              if name not in ("loss", "solved") and isinstance(value, float)]
    return (f"{result['task']} T={result['length']} {result['cell']}: solved {100 * result['solved']:.1f}% of held-out "
            f"sequences (baseline {100 * result['baseline_solved']:.1f}%), loss {result['loss']:.4g} "
            f"(baseline {result['baseline_loss']:.4g})" + "".join(f", {o}" for o in others)
            + f" after {result['steps']} steps in {format_duration(result['elapsed'])} ({why})")

