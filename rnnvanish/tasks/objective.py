"""The task objective: a cell trained on fresh sequences of a long-range task, judged on a
fixed held-out set by the task's published criterion.

    batches      every update draws a new batch from the task's generator (the published
                 experiments never reuse a sequence), from the stream seeded (seed, 2)
    loss         the task's loss over the answer steps, full BPTT from the zero state
    evaluation   every `eval_every` updates (and once before training) the model is scored on
                 `eval_size` held-out sequences, drawn once from a stream of their own
                 (seed, 3), with `task.evaluate`: eval_loss, eval_solved and the task's other scores
    untrained    the larger of the trivial strategy's loss and the untrained model's held-out loss
    done         held-out success of at least `stop_at`

The generator's state is the objective's whole state, so a task run resumes exactly.

The LSTM's forget gate starts at bias `LSTM_FORGET_BIAS` = 3 unless set: the memory kept
over l steps is about sigmoid(b_f)^l, 0.73^100 ~ 1e-14 at the library's b_f = 1 but
0.95^100 ~ 0.008 at b_f = 3, and the adding problem asks for 50 to 110 steps. Gers, Schmidhuber
& Cummins (2000) start the forget gate open for long lags; Hochreiter & Schmidhuber's 1997
LSTM had no forget gate at all (f = 1).

The IndRNN's top layer starts with `INDRNN_MEMORY_FLOOR` = 1/2 unless set (`--memory-floor 0`
turns it off): its recurrent weights in [(1/2)^(1/T), 2^(1/T)], so each unit keeps at least half
its signal over the sequence, as in Li et al.'s code for the adding problem. From U[0, 1]
instead the memory of a unit over T steps is u^T, below 1/2 for all but a share of 0.7/T of the
units: a 2-layer IndRNN (H 128, batch 32, Adam 2e-4) stayed at the baseline for 1,500 steps at
T = 200 and solved it in 1,000 with the floor.

`train_task(config)` is a pure function of its config when no folder is given (the sweep runs
it in worker processes); with a folder it writes the run folder as `rnnvanish task` does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..choices import cell_options
from ..errors import RnnvanishError
from ..stack import depth_summary
from ..training.console import format_duration  # noqa: F401  (one duration format for every command)
from ..training.engine import Trainer
from ..training.runfolder import RESULT, atomic_write_json, columns_around
from ..training.settings import TrainConfig, stack_options
from . import make_task
from .model import TaskModel

EVAL_CHUNK = 250          # held-out sequences per forward pass: bounds the cache's memory
LSTM_FORGET_BIAS = 3.0    # see the module docstring
INDRNN_MEMORY_FLOOR = 0.5 # see the module docstring
CELL_DEFAULTS = {"forget_bias": LSTM_FORGET_BIAS, "memory_floor": INDRNN_MEMORY_FLOOR}


@dataclass
class TaskConfig(TrainConfig):
    """A task run. `length=None` takes the task's published length."""
    task: str = "adding"                # adding, copy, temporal_order, latch, parity
    length: int | None = None           # sequence length T (the copy task's delay)
    task_options: dict = field(default_factory=dict)
    eval_size: int = 1000               # held-out sequences
    stop_at: float | None = 0.95        # stop once this share of held-out sequences is solved
    # the task defaults of the shared settings
    hidden: int = 64
    lr: float = 3e-3
    clip_norm: float | None = 1.0
    steps: int | None = 10000
    log_every: int | None = None        # one metrics row per evaluation

    def check(self):
        super().check()
        if self.stop_at is not None and not 0.0 < self.stop_at <= 1.0:
            raise RnnvanishError(f"--stop-at must be a fraction in (0, 1], got {self.stop_at:g}")
        if isinstance(self.eval_size, bool) or int(self.eval_size) != self.eval_size or self.eval_size < 1:
            raise RnnvanishError(f"--eval-size must be a positive whole number, got {self.eval_size!r}")
        return self


def build(config):
    """(task, model, None, held-out batch) for a config (the None stands where an optimiser once
    was; the engine makes its own); `config.length` is filled in when unset."""
    config.check()
    task = make_task(config.task, **config.task_options)
    if config.length is None:
        config.length = task.default_length
    if config.length < task.min_length:
        raise RnnvanishError(f"the {task.name} task needs --length of at least {task.min_length}, got {config.length}")
    model = TaskModel(task, config.cell, config.hidden, seed=config.seed, dtype=config.dtype, backend=config.backend,
                      **stack_options(config), **cell_options(config.cell, config,
                                                              {**CELL_DEFAULTS, "horizon": config.length}))
    # The held-out set has its own stream: the same sequences whatever the batch size or steps.
    heldout = task.generate(config.eval_size, config.length, rng=np.random.default_rng([config.seed, 3]))
    return task, model, None, heldout


def evaluate(model, batch):
    """The task's scores of `model` on `batch`, forward passes of EVAL_CHUNK sequences at a time."""
    parts = [model.predict(batch.inputs[:, b:b + EVAL_CHUNK]) for b in range(0, batch.B, EVAL_CHUNK)]
    return model.task.evaluate(np.concatenate(parts, axis=1), batch)


class TaskObjective:
    """A task's training stream, held-out set and criterion (see the module docstring)."""

    evaluate_at_start = True
    best_column = "eval_loss"
    rng_note = {"training": "numpy default_rng([seed, 2]), state in 'data'", "held-out": "default_rng([seed, 3])",
                "masks": "numpy default_rng([seed, 4]), state in mask_rng"}
    chart = "task.png"
    described = "the task, its criterion and baseline"
    evaluated = "held-out loss and success by the task's criterion"
    reference_loss = None                 # known after the first evaluation (untrained_loss)

    def __init__(self, config, task, heldout):
        self.config, self.task, self.heldout = config, task, heldout
        self.baseline = task.baseline(config.length)
        self.rng = np.random.default_rng([config.seed, 2])
        self.tokens_per_step = config.batch * config.length
        probe = task.generate(2, config.length, rng=np.random.default_rng([config.seed, 9]))
        names = list(task.evaluate(np.zeros((probe.T, 2, task.output_size)), probe))
        scores = ["loss", "solved"] + [n for n in names if n not in ("loss", "solved")]
        self.columns = columns_around("sequences", [f"eval_{n}" for n in scores])
        self.result = None

    # -- what the loop asks -----------------------------------------------------------------------
    def total_steps(self, config):
        return config.steps

    def initial_state(self, model):
        return None                                   # every sequence starts from the zero state

    def next_batch(self):
        return self.task.generate(self.config.batch, self.config.length, self.rng), False

    def loss_and_grads(self, model, batch, state, truncate, rng):
        loss, grads, _ = model.loss_and_grads(batch, truncate=truncate, masks=model.draw_masks(batch.T, batch.B, rng))
        return loss, grads, None

    @staticmethod
    def trace_inputs(batch):
        return batch.inputs

    def progress(self, step):
        return {"sequences": step * self.config.batch}

    def evaluate(self, model) -> dict:
        with np.errstate(over="ignore", invalid="ignore"):
            return {f"eval_{name}": value for name, value in evaluate(model, self.heldout).items()}

    def done(self, row) -> bool:
        return self.config.stop_at is not None and row["eval_solved"] >= self.config.stop_at

    def untrained_loss(self, row):
        return max(self.baseline["loss"], row["eval_loss"])

    def warm_up(self, model, truncate):
        model.loss_and_grads(self.task.generate(1, self.config.length, np.random.default_rng(0)), truncate=truncate)

    # -- what a checkpoint keeps --------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, d) -> None:
        try:
            self.rng.bit_generator.state = d["rng"]
        except (KeyError, TypeError, ValueError):
            raise RnnvanishError("the checkpoint holds no usable state of the task's sequence generator") from None

    def checkpoint_meta(self, step) -> dict:
        return {"sequences": step * self.config.batch}

    # -- what the run folder and the console show ------------------------------------------------
    def config_extra(self) -> dict:
        t = self.task
        return {"task": {"name": t.name, "kind": t.kind, "reference": t.reference, "criterion": t.criterion,
                         "settings": t.settings, "baseline": self.baseline}}

    def header_lines(self):
        c, t = self.config, self.task
        yield "task", f"{t.name} (T = {c.length}): {t.reference}"
        yield "judged", f"{t.criterion}; held-out set of {c.eval_size} sequences"
        yield "baseline", f"loss {self.baseline['loss']:.4g}, solved {100 * self.baseline['solved']:.1f}% (trivial strategy)"
        yield "batches", (f"{c.batch} fresh sequences per step, truncate {'none' if c.truncate is None else c.truncate}"
                          + ("" if c.stop_at is None else f"; stops at {100 * c.stop_at:g}% solved"))

    def log_text(self, row) -> str:
        return (f"held-out {row['eval_loss']:.4g} | solved {100 * row['eval_solved']:.1f}% "
                f"(baseline {100 * self.baseline['solved']:.1f}%)")

    def figure(self, metrics, name):
        from ..plots.tasks import plot_task_run
        c = self.config
        depth = depth_summary(**stack_options(c))
        title = f"{self.task.name}, T = {c.length}, {c.cell} (H = {c.hidden}{', ' + depth if depth else ''}, seed {c.seed})"
        evaluated = np.isfinite(metrics["eval_loss"])
        return plot_task_run({k: v[evaluated] for k, v in metrics.items()}, self.baseline, title=title,
                             stop_at=c.stop_at)

    def finish(self, trainer, folder, reason) -> list:
        self.result = result_dict(self.config, trainer.rows, self.baseline, reason, trainer.step,
                                  trainer.elapsed_before)
        if folder is not None:
            atomic_write_json(folder / RESULT, self.result)
        return [summary_line(self.result)]

    def next_hint(self, folder) -> str:
        return f"next: rnnvanish plot {folder}    (more training: rnnvanish task --resume {folder} --steps N)"


def result_dict(config, rows, baseline, stopped, steps=None, elapsed=None):
    """The outcome of one run: the final held-out scores, the baseline, when the bar was first met.

    Keys: task, length, cell, seed, hidden, steps, elapsed, stopped ("solved", "time", "steps",
    "interrupted", "diverged"), solved, loss, accuracy, baseline_solved, baseline_loss,
    best_solved, stop_at, reached_step, reached_time (first evaluation with solved >= stop_at;
    None if never), scores (every held-out score of the last evaluation).
    """
    evaluated = [r for r in rows if r.get("eval_loss") == r.get("eval_loss")]
    last = evaluated[-1]
    scores = {k[len("eval_"):]: v for k, v in last.items() if k.startswith("eval_")}
    reached = next((r for r in evaluated if config.stop_at is not None and r["eval_solved"] >= config.stop_at), None)
    return {"task": config.task, "length": config.length, "cell": config.cell, "seed": config.seed,
            "hidden": config.hidden, "steps": rows[-1]["step"] if steps is None else steps,
            "elapsed": rows[-1]["elapsed"] if elapsed is None else elapsed, "stopped": stopped,
            "solved": last["eval_solved"], "loss": last["eval_loss"], "accuracy": scores.get("accuracy"),
            "baseline_solved": baseline["solved"], "baseline_loss": baseline["loss"],
            "best_solved": max(r["eval_solved"] for r in evaluated), "stop_at": config.stop_at,
            "reached_step": None if reached is None else reached["step"],
            "reached_time": None if reached is None else reached["elapsed"], "scores": scores}


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


def make_trainer(config):
    """A Trainer of a fresh model on the task `config` names (the config is checked and completed)."""
    task, model, _, heldout = build(config)
    return Trainer(config, model, TaskObjective(config, task, heldout))


def train_task(config, folder=None, *, overwrite=False, quiet=True, progress=False, hooks=()):
    """Train one task model; returns the result dict (see `result_dict`).

    folder: write the run folder there, as `rnnvanish task` does (None: nothing is written).
    hooks: more session hooks (e.g. the start and end traces), with a folder only.
    """
    config = config.replace()
    trainer = make_trainer(config)
    if folder is None:
        reason = trainer.run(max_time=config.max_time)
        trainer.objective.finish(trainer, None, reason)
        return trainer.objective.result
    from pathlib import Path

    from ..training.session import Session, train_session
    session = Session(trainer, Path(folder), resumed=False, command="task", quiet=quiet, progress=progress,
                      overwrite=overwrite, hooks=list(hooks), summary=False)
    train_session(session)
    return trainer.objective.result
