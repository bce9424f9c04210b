"""The training loop every command shares: one objective, one model, everything needed to stop
and continue exactly.

One step (Williams & Peng's TBPTT(k1, k2) for a language model; full BPTT on fresh sequences
for a task):

    batch, new_epoch  = objective.next_batch()
    loss, grads, s_T  = objective.loss_and_grads(model, batch, s_0, truncate, mask_rng)  # s_0 carried, not its gradient
    check             loss and every gradient finite (else stop, or drop the step: nonfinite)
    clip              by value (entry-wise), then by norm (global, or per tensor)
    update            optimizer.step(grads, lr(step)); the recurrent parameters at lr * recurrent_lr
    constrain         model.constrain(): each cell projects its parameters back (IndRNN: |u| <= U_max)
    health            the smoothed loss far above the untrained loss stops the run (health.py)
    carry             s_0 <- s_T for the next batch (reset when the objective starts over)

The objective (`rnnvanish.training.language.LanguageObjective`, `rnnvanish.tasks.objective.
TaskObjective`) supplies batches, the loss and gradients, its evaluation and what it reports;
the loop owns the metrics rows, evaluation schedule, budgets, samples, traces and checkpoints,
and hands each to hooks (`TrainHooks`: the run folder's recorder, the console).

Determinism: a run resumed from a checkpoint computes the same numbers as one that never
stopped. The checkpoint holds the parameters, the optimiser's state, the objective's position
(stream position or generator state), the generator of the dropout and zoneout masks, the
carried state, the step, the half-filled metrics interval and the health monitor's smoothed loss; samples use a generator seeded by (seed, step).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..clip import (clip_by_global_norm, clip_by_norm, clip_by_value, clip_coefficient, global_norm,
                    nonfinite_report)
from ..errors import NonFiniteError, RnnvanishError
from ..optim import make_optimizer, make_schedule
from .checkpoint import Checkpoint, load_params
from .health import Health, params_text
from .runfolder import metrics_table, rows_from_table

MAX_CONSECUTIVE_SKIPS = 100   # nonfinite "skip" gives up after this many bad steps in a row


def recurrent_factors(settings, model) -> dict:
    """{name: recurrent_lr} for the model's recurrent parameters; {} at the factor 1.

    A factor for a cell with no recurrent parameters (minGRU, minLSTM) is a user error: it
    would change nothing without a word."""
    if settings.recurrent_lr == 1:
        return {}
    keys = model.recurrent_keys
    if not keys:
        raise RnnvanishError(f"--recurrent-lr scales the learning rate of the recurrent weights; the {model.cell.title}'s "
                             f"gates read the input only and it has none")
    return {key: settings.recurrent_lr for key in keys}


@dataclass
class Interval:
    """Sums over the steps since the last metrics row."""
    steps: int = 0
    finite: int = 0
    loss: float = 0.0
    norm: float = 0.0
    norm_clipped: float = 0.0
    clipped: int = 0
    skipped: int = 0
    seconds: float = 0.0
    lr: float = math.nan

    def mean(self, total, count):
        return total / count if count else math.nan


@dataclass
class StepResult:
    step: int
    loss: float
    norm: float            # global gradient norm before clipping (NaN for a skipped step)
    norm_clipped: float    # ... after clipping
    clipped: bool
    skipped: bool
    lr: float
    seconds: float


class TrainHooks:
    """What a training loop reports; every method may be overridden, none has to be."""

    def on_step(self, trainer, result: StepResult): ...
    def on_row(self, trainer, row: dict, evaluated: bool): ...
    def on_sample(self, trainer, step: int, text: str): ...
    def on_checkpoint(self, trainer, checkpoint: Checkpoint, best: bool): ...


class Hooks(TrainHooks):
    """Several hooks in order: files first, then the console, so what is printed has been saved."""

    def __init__(self, *hooks):
        self.hooks = [h for h in hooks if h is not None]

    def on_step(self, trainer, result):
        for h in self.hooks:
            h.on_step(trainer, result)

    def on_row(self, trainer, row, evaluated):
        for h in self.hooks:
            h.on_row(trainer, row, evaluated)

    def on_sample(self, trainer, step, text):
        for h in self.hooks:
            h.on_sample(trainer, step, text)

    def on_checkpoint(self, trainer, checkpoint, best):
        for h in self.hooks:
            h.on_checkpoint(trainer, checkpoint, best)


class Trainer:
    """Trains `model` on `objective` under `config` (a TrainConfig); can run, stop (budget,
    Ctrl-C, criterion met), be saved with `checkpoint()` and be rebuilt with `restore()`.
    `info` (JSON-able) is recorded in `config_dict()` beside the settings."""

    def __init__(self, config, model, objective, info=None):
        self.settings = s = config.check()
        self.model, self.objective = model, objective
        self.info = dict(info or {})
        self.total_steps = objective.total_steps(s)
        if s.lr_schedule != "constant" and self.total_steps is None:
            raise RnnvanishError(f"the {s.lr_schedule} learning-rate schedule needs a length: give --steps")
        self.optimizer = make_optimizer(s.optimizer, model.params, s.lr, weight_decay=s.weight_decay,
                                        backend=model.backend, lr_factors=recurrent_factors(s, model))
        self.lr_at = make_schedule(s.lr_schedule, s.lr, self.total_steps or 1)
        self.columns = objective.columns
        self.step = 0
        self.state = objective.initial_state(model)
        self.mask_rng = np.random.default_rng([s.seed, 4])      # dropout and zoneout masks
        self.interval = Interval()
        self.rows: list[dict] = []
        self.best_val, self.best_step = math.inf, None
        self.elapsed_before = 0.0            # seconds of earlier sessions of this run
        self.health = Health(s, objective.reference_loss)
        self.consecutive_skips = 0
        self.tracer = None                   # callable(model, inputs, state, step), set to trace
        self._new_best = False

    @property
    def tokens_per_step(self) -> int:
        return self.objective.tokens_per_step

    @property
    def log_every(self) -> int:
        return self.settings.log_every or self.settings.eval_every

    # -- one step -------------------------------------------------------------------------
    def train_step(self) -> StepResult:
        """Take the next batch, compute loss and gradients, check, clip, update, carry the state."""
        s, model = self.settings, self.model
        batch, new_epoch = self.objective.next_batch()
        if new_epoch:
            self.state = self.objective.initial_state(model)      # the data starts over: so does the carry
        if self.tracer is not None and s.trace_every and self.step % s.trace_every == 0:
            self.tracer(model, self.objective.trace_inputs(batch), self.state, self.step)   # not in the step's time
        t0 = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # diagnosed below instead
            loss, grads, state_T = self.objective.loss_and_grads(model, batch, self.state, s.truncate, self.mask_rng)
            norm = global_norm(grads)
        step, lr = self.step + 1, self.lr_at(self.step)
        # A finite global norm means every entry is finite: the scan for bad entries runs only when it is not.
        finite = math.isfinite(norm) and math.isfinite(float(loss))
        report = "" if finite else nonfinite_report(grads, loss=loss, step=step)
        if not report and not math.isfinite(norm):
            report = (f"non-finite values at step {step}: the global gradient norm overflows "
                      f"(largest entry {max(float(np.abs(g).max()) for g in grads.values()):.3g}).")
        if report:
            if s.nonfinite == "raise":
                raise NonFiniteError(self._diagnosis(report, lr))
            return self._skip(step, loss, lr, state_T, t0, report)
        n_changed, scale = 0, 1.0
        if s.clip_value or (s.clip_norm and s.clip_mode != "global"):
            n_changed = clip_by_value(grads, s.clip_value) if s.clip_value else 0
            if s.clip_norm:
                (clip_by_global_norm if s.clip_mode == "global" else clip_by_norm)(grads, s.clip_norm)
            norm_clipped = global_norm(grads)
        else:
            # Clipping by global norm alone: its factor goes into the optimiser's pass over the
            # parameters, the same update as scaling the gradients first, one pass fewer.
            scale = clip_coefficient(norm, s.clip_norm) if s.clip_norm else 1.0
            norm_clipped = norm * scale
        self.health.record(step, loss, norm, norm_clipped, lr)     # raises before a diverged update
        with np.errstate(over="ignore", invalid="ignore"):
            self.optimizer.step(grads, lr, scale=scale)
        self.model.constrain()                                     # the cells' own parameter constraints
        self._check_params(step, norm, lr)
        self.state, self.step, self.consecutive_skips = state_T, step, 0
        clipped = n_changed > 0 or norm_clipped < norm
        return StepResult(step, loss, norm, norm_clipped, clipped, False, lr, time.perf_counter() - t0)

    def _skip(self, step, loss, lr, state_T, t0, report):
        """nonfinite "skip": no update; keep the carried state only if it is finite."""
        self.consecutive_skips += 1
        if self.consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
            raise NonFiniteError(f"{MAX_CONSECUTIVE_SKIPS} steps in a row were non-finite, so training cannot "
                                 f"recover; the last: {report}")
        finite = state_T is None or all(np.isfinite(x).all() for x in state_T)
        self.state = state_T if finite else self.objective.initial_state(self.model)
        self.step = step
        self.health.skipped(step)
        return StepResult(step, loss, math.nan, math.nan, False, True, lr, time.perf_counter() - t0)

    def _check_params(self, step, norm, lr):
        """An update with finite gradients can still overflow a parameter (a huge learning rate)."""
        bad = [k for k, p in self.model.params.items() if not np.isfinite(p.sum()) and not np.isfinite(p).all()]
        if bad:
            raise NonFiniteError(
                f"at step {step} the update (learning rate {lr:g}, gradient norm {norm:.3g}) made "
                f"{', '.join(bad)} non-finite; lower the learning rate or clip by global norm (e.g. --clip-norm 5)."
                + self.health.history_text())

    def _diagnosis(self, report, lr):
        return (f"{report} Learning rate {lr:g}, {self.health.clipping_text()}." + self.health.history_text()
                + " " + params_text(self.model.params))

    def warm_up(self) -> float:
        """Run the kernels once on a tiny batch, changing nothing; returns the seconds it took.

        Numba compiles a kernel on its first call (or loads it from its cache): done here, that
        time stays out of the time budget and the tokens/s."""
        t0 = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.objective.warm_up(self.model, self.settings.truncate)
        return time.perf_counter() - t0

    # -- the loop -----------------------------------------------------------------------------
    def run(self, hooks: TrainHooks | None = None, max_time=None, should_stop=lambda: False) -> str:
        """Train until the step budget, `max_time` seconds of this session, the objective's
        criterion, or `should_stop()`.

        Returns why it stopped: "steps", "time", "solved" or "interrupted". Every `log_every`
        steps a metrics row; every `eval_every` an evaluation, then a checkpoint (and best.npz
        when the evaluation improved); every `sample_every` a sample where the objective samples.
        When the budget ends the last row, evaluation, sample and checkpoint are made at once;
        an interruption only saves a checkpoint (with the half-filled interval), so a resumed run
        logs the same rows.
        """
        hooks = hooks or TrainHooks()
        s = self.settings
        start = time.monotonic()
        reason = None
        if self.step == 0 and not self.rows and self.objective.evaluate_at_start:
            row = self._flush_row(start, evaluate=True)           # the untrained model, the line to beat
            hooks.on_row(self, row, True)
            reason = "solved" if self.objective.done(row) else None
        while reason is None:
            if self.total_steps is not None and self.step >= self.total_steps:
                reason = "steps"
                break
            if should_stop():
                reason = "interrupted"
                break
            result = self.train_step()
            self._accumulate(result)
            hooks.on_step(self, result)
            if max_time is not None and time.monotonic() - start >= max_time:
                reason = "time"
            elif self.total_steps is not None and self.step >= self.total_steps:
                reason = "steps"
            due_eval = reason is not None or self.step % s.eval_every == 0
            if due_eval or self.step % self.log_every == 0:
                row = self._flush_row(start, evaluate=due_eval)
                hooks.on_row(self, row, due_eval)
                if due_eval and self.objective.done(row):
                    reason = "solved"
            every = getattr(s, "sample_every", None)
            if every is not None and (reason is not None or (every and self.step % every == 0)):
                hooks.on_sample(self, self.step, self.sample())
            if due_eval:
                self._save(hooks, start, reason)
        if reason == "interrupted":
            self._save(hooks, start, reason)
        self.elapsed_before += time.monotonic() - start
        return reason

    def sample(self, length=None, temperature=None, step=None) -> str:
        """Text from the model (language models), drawn with the generator seeded (seed, 3, step)."""
        rng = np.random.default_rng([self.settings.seed, 3, self.step if step is None else step])
        with np.errstate(over="ignore", invalid="ignore"):      # a diverging model still samples
            return self.objective.sample(self.model, rng, length, temperature)

    def _accumulate(self, r: StepResult):
        iv = self.interval
        iv.steps += 1
        iv.seconds += r.seconds
        iv.lr = r.lr
        if r.skipped:
            iv.skipped += 1
            return
        iv.finite += 1
        iv.loss += r.loss
        iv.norm += r.norm
        iv.norm_clipped += r.norm_clipped
        iv.clipped += int(r.clipped)

    def _flush_row(self, session_start, evaluate: bool) -> dict:
        iv = self.interval
        scores = self.objective.evaluate(self.model) if evaluate else {}
        row = {c: math.nan for c in self.columns}
        row.update({"step": self.step, **self.objective.progress(self.step), "train_loss": iv.mean(iv.loss, iv.finite),
                    "grad_norm": iv.mean(iv.norm, iv.finite), "grad_norm_clipped": iv.mean(iv.norm_clipped, iv.finite),
                    "clipped_frac": iv.mean(iv.clipped, iv.finite), "lr": iv.lr,
                    "tokens_per_s": iv.mean(iv.steps * self.tokens_per_step, iv.seconds),
                    "elapsed": self.elapsed_before + time.monotonic() - session_start, "skipped": iv.skipped,
                    **scores})
        value = row.get(self.objective.best_column, math.nan)
        if evaluate and self.health.reference_loss is None:
            self.health.reference_loss = self.objective.untrained_loss(row)
        elif evaluate:
            self.health.check_evaluation(self.step, value, iv.lr)      # before the row is kept or saved
        self.rows.append(row)
        self.interval = Interval()
        if value < self.best_val:
            self.best_val, self.best_step = value, self.step
            self._new_best = True
        return row

    def _save(self, hooks, session_start, reason):
        best, self._new_best = self._new_best, False
        hooks.on_checkpoint(self, self.checkpoint(reason, self.elapsed_before + time.monotonic() - session_start), best)

    # -- checkpoints --------------------------------------------------------------------------
    def checkpoint(self, reason=None, elapsed=None) -> Checkpoint:
        """Everything needed to continue exactly (see rnnvanish.training.checkpoint for the layout)."""
        meta = {"step": self.step, "config": self.config_dict(), "data": self.objective.state_dict(),
                "rng": self.objective.rng_note, "columns": list(self.columns), "interval": asdict(self.interval),
                "health": self.health.state_dict(), "mask_rng": self.mask_rng.bit_generator.state,
                "best_val": None if math.isinf(self.best_val) else self.best_val, "best_step": self.best_step,
                "elapsed": self.elapsed_before if elapsed is None else elapsed, "reason": reason,
                **self.objective.checkpoint_meta(self.step)}
        return Checkpoint(meta=meta, params={k: v.copy() for k, v in self.model.params.items()},
                          optimizer_state=self.optimizer.state_dict(),
                          state=() if self.state is None else tuple(x.copy() for x in self.state),
                          metrics=metrics_table(self.rows, self.columns))

    def config_dict(self) -> dict:
        """The settings, the model's own description and `info` (what config.json and checkpoints record)."""
        return {**self.settings.to_dict(), "model": self.model.config(), **self.info}

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue from a checkpoint of the same run (same data, settings and model shape)."""
        meta = ckpt.meta
        load_params(self.model, ckpt)
        self.optimizer.load_state_dict(ckpt.optimizer_state)
        self.objective.load_state_dict(meta["data"])
        if self.state is not None:
            want = [np.shape(x) for x in self.state]
            if [np.shape(x) for x in ckpt.state] != want:
                raise RnnvanishError(f"checkpoint {ckpt.path} carries a state of shapes "
                                     f"{[np.shape(x) for x in ckpt.state]}, this run needs {want}")
            self.state = tuple(np.array(x, dtype=self.model.dtype) for x in ckpt.state)
        self.step = int(meta["step"])
        columns = tuple(meta.get("columns") or self.columns)
        if columns != tuple(self.columns):
            raise RnnvanishError(f"checkpoint {ckpt.path} records the metrics {', '.join(columns)}; "
                                 f"this run writes {', '.join(self.columns)}")
        try:
            self.interval = Interval(**meta["interval"])
            self.rows = rows_from_table(ckpt.metrics, self.columns)
        except (TypeError, ValueError, KeyError):
            raise RnnvanishError(f"checkpoint {ckpt.path} holds malformed metrics") from None
        self.health.load_state_dict(meta.get("health") or {})
        if meta.get("mask_rng") is not None:
            self.mask_rng.bit_generator.state = meta["mask_rng"]
        self.best_val = math.inf if meta.get("best_val") is None else float(meta["best_val"])
        self.best_step = meta.get("best_step")
        self.elapsed_before = float(meta.get("elapsed") or 0.0)
