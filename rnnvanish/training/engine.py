"""Training a language model with truncated BPTT: one window of the token stream per step.

One step (Williams & Peng's TBPTT(k1, k2) with k1 = window, k2 = truncate):

    inputs, targets   = next (T, B) window of the B parallel streams
    loss, grads, s_T  = model.loss_and_grads(inputs, targets, s_0, truncate)   # s_0 carried, not its gradient
    check             loss and every gradient finite (else stop, or drop the step: --nonfinite)
    clip              by value (entry-wise), then by norm (global, or per tensor)
    update            optimizer.step(grads, lr(step))
    carry             s_0 <- s_T for the next window (reset to zeros at each new epoch)

Every quantity a run logs comes from `Trainer.run`: metrics rows (see runfolder.METRIC_COLUMNS),
evaluations, samples and checkpoints, handed to hooks (`TrainHooks`) that write files or print.

Determinism: after initialisation nothing is random in training (the streams are read in order,
there is no dropout), so parameters, optimiser state, the stream position, the carried state, the
step and the half-filled metrics interval are the whole state: a run resumed from a checkpoint
computes the same numbers as one that never stopped. Samples use a generator seeded by
(seed, step), so they too come out the same however often a run was interrupted.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

from rnnvanish.training.checkpoint import Checkpoint, load_params
from rnnvanish.clip import clip_by_global_norm, clip_by_norm, clip_by_value, global_norm, nonfinite_report
from rnnvanish.data import TokenStream, eval_windows
from rnnvanish.errors import NonFiniteError, RnnvanishError
from rnnvanish.model import bits_per_token, perplexity
from rnnvanish.optim import make_optimizer, make_schedule
from rnnvanish.training.runfolder import COLUMNS, metrics_table

# Every setting of a run, with its default. The command line fills these in; config.json records them.
DEFAULTS = {
    # data
    "level": "char", "vocab_size": None, "min_count": 1, "val_frac": 0.05,
    # model
    "cell": "lstm", "activation": "tanh", "reset_before": False, "forget_bias": 1.0, "hidden": 128,
    "init_xh": None, "init_hh": None, "radius": None, "dtype": "float64", "backend": None, "threads": 1, "seed": 0,
    # truncated BPTT
    "window": 64, "truncate": None, "batch": 32,
    # optimisation
    "optimizer": "adam", "lr": 2e-3, "lr_schedule": "constant", "weight_decay": 0.0,
    "clip_value": None, "clip_norm": 5.0, "clip_mode": "global", "nonfinite": "raise",
    # budget: total steps (or epochs) and/or seconds per session
    "steps": None, "epochs": None, "max_time": None,
    # what is logged
    "log_every": 10, "eval_every": 200, "eval_windows": 100,
    "sample_every": 400, "sample_length": 200, "sample_temperature": 0.8, "trace_every": None,
}
CLIP_MODES = ("global", "per-tensor")
MAX_CONSECUTIVE_SKIPS = 100   # --nonfinite skip gives up after this many bad steps in a row


def model_options(settings: dict) -> dict:
    """The cell options the settings ask for (only those that apply to the chosen cell)."""
    s = settings
    options = {"tanh": {"activation": s["activation"]}, "lstm": {"forget_bias": s["forget_bias"]},
               "gru": {"reset_after": not s["reset_before"]}}[s["cell"]]
    for key in ("init_xh", "init_hh", "radius"):
        if s[key] is not None:
            options[key] = s[key]
    return options


def build_model(settings: dict, vocab_size: int):
    """A fresh LanguageModel for these settings and vocabulary size."""
    from rnnvanish.model import LanguageModel

    try:
        return LanguageModel(settings["cell"], vocab_size, settings["hidden"], seed=settings["seed"],
                             dtype=settings["dtype"], backend=settings["backend"], **model_options(settings))
    except ValueError as err:
        raise RnnvanishError(f"cannot build the model: {err}") from None


def total_steps(settings: dict, windows_per_epoch: int) -> int | None:
    """The step budget: --steps, or --epochs times the windows in an epoch, or None (time only)."""
    if settings["steps"] is not None:
        return int(settings["steps"])
    if settings["epochs"] is not None:
        return int(settings["epochs"]) * windows_per_epoch
    return None


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


class Trainer:
    """Truncated BPTT over a token stream, with everything needed to stop and continue exactly.

    `settings` holds every key of DEFAULTS. `train_ids` and `val_ids` are int arrays of token ids
    of `vocab`; `info` (JSON-able) is recorded in `config()` beside the settings. A trainer can
    run, stop (budget, Ctrl-C), be saved with `checkpoint()` and be rebuilt with `restore()`.
    """

    def __init__(self, settings: dict, model, vocab, train_ids, val_ids, info=None):
        s = self.settings = {k: settings[k] for k in DEFAULTS}
        self.info = dict(info or {})         # recorded beside the settings (corpus, sessions)
        self.model, self.vocab = model, vocab
        self.train_ids = np.asarray(train_ids)
        self.stream = TokenStream(self.train_ids, s["batch"], s["window"])
        self.val_ids = np.asarray(val_ids)
        self.total_steps = total_steps(s, self.stream.windows_per_epoch)
        if s["lr_schedule"] != "constant" and self.total_steps is None:
            raise RnnvanishError(f"the {s['lr_schedule']} learning-rate schedule needs a length: give --steps or --epochs")
        if s["clip_mode"] not in CLIP_MODES:
            raise RnnvanishError(f"clip mode must be one of {', '.join(CLIP_MODES)}, got {s['clip_mode']!r}")
        self.optimizer = make_optimizer(s["optimizer"], model.params, s["lr"], weight_decay=s["weight_decay"],
                                        backend=model.backend)
        self.lr_at = make_schedule(s["lr_schedule"], s["lr"], self.total_steps or 1)
        self.step = 0
        self.state = model.initial_state(s["batch"])
        self.interval = Interval()
        self.rows: list[dict] = []
        self.best_val, self.best_step = math.inf, None
        self.elapsed_before = 0.0            # seconds of earlier sessions of this run
        self.recent_norms = deque(maxlen=5)  # (step, global norm before clipping)
        self.consecutive_skips = 0
        self.tracer = None                   # callable(model, inputs, state, step), set to trace
        self._new_best = False
        self.prime_ids = self._default_prime()

    @property
    def tokens_per_step(self) -> int:
        return self.settings["batch"] * self.settings["window"]

    # -- one step -------------------------------------------------------------------------
    def train_step(self) -> StepResult:
        """Read the next window, compute loss and gradients, check, clip, update, carry the state."""
        s, model = self.settings, self.model
        inputs, targets, new_epoch = self.stream.next_window()
        if new_epoch:
            self.state = model.initial_state(s["batch"])      # the streams start over: so does h_0
        if self.tracer is not None and s["trace_every"] and self.step % s["trace_every"] == 0:
            self.tracer(model, inputs, self.state, self.step)    # before the update, not in the step's time
        t0 = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # diagnosed below instead
            loss, grads, state_T, _ = model.loss_and_grads(inputs, targets, self.state, s["truncate"])
            norm = global_norm(grads)
        step, lr = self.step + 1, self.lr_at(self.step)
        report = nonfinite_report(grads, loss=loss, step=step)
        if not report and not math.isfinite(norm):
            report = (f"non-finite values at step {step}: the global gradient norm overflows "
                      f"(largest entry {max(float(np.abs(g).max()) for g in grads.values()):.3g}).")
        if report:
            if s["nonfinite"] == "raise":
                raise NonFiniteError(self._diagnosis(report))
            return self._skip(step, loss, lr, state_T, t0, report)
        n_changed = clip_by_value(grads, s["clip_value"]) if s["clip_value"] else 0
        if s["clip_norm"]:
            if s["clip_mode"] == "global":
                clip_by_global_norm(grads, s["clip_norm"])
            else:
                clip_by_norm(grads, s["clip_norm"])
        norm_clipped = global_norm(grads)
        with np.errstate(over="ignore", invalid="ignore"):
            self.optimizer.step(grads, lr)
        self._check_params(step, norm, lr)
        self.state, self.step, self.consecutive_skips = state_T, step, 0
        self.recent_norms.append((step, norm))
        clipped = n_changed > 0 or norm_clipped < norm
        return StepResult(step, loss, norm, norm_clipped, clipped, False, lr, time.perf_counter() - t0)

    def _skip(self, step, loss, lr, state_T, t0, report):
        """--nonfinite skip: no update; keep the carried state only if it is finite."""
        self.consecutive_skips += 1
        if self.consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
            raise NonFiniteError(f"{MAX_CONSECUTIVE_SKIPS} steps in a row were non-finite, so training cannot "
                                 f"recover; the last: {report}")
        finite = all(np.isfinite(x).all() for x in state_T)
        self.state = state_T if finite else self.model.initial_state(self.settings["batch"])
        self.step = step
        self.recent_norms.append((step, math.nan))
        return StepResult(step, loss, math.nan, math.nan, False, True, lr, time.perf_counter() - t0)

    def _check_params(self, step, norm, lr):
        """An update with finite gradients can still overflow a parameter (a huge learning rate)."""
        bad = [k for k, p in self.model.params.items() if not np.isfinite(p.sum()) and not np.isfinite(p).all()]
        if bad:
            raise NonFiniteError(
                f"at step {step} the update (learning rate {lr:g}, gradient norm {norm:.3g}) made "
                f"{', '.join(bad)} non-finite; lower the learning rate or clip by global norm (e.g. --clip-norm 5)"
                + self._recent_norms_text())

    def _diagnosis(self, report):
        s = self.settings
        clip = "no clipping is on" if not (s["clip_norm"] or s["clip_value"]) else (
            f"clipping: value {s['clip_value']}, norm {s['clip_norm']} ({s['clip_mode']})")
        return (f"{report} Learning rate {self.lr_at(self.step):g}, {clip}." + self._recent_norms_text()
                + " " + self._params_text())

    def _params_text(self):
        """Which parameter is non-finite, or else which holds the largest entry."""
        params = self.model.params
        bad = [k for k, p in params.items() if not np.isfinite(p).all()]
        if bad:
            return f"Non-finite parameters: {', '.join(bad)}."
        name = max(params, key=lambda k: float(np.abs(params[k]).max(initial=0.0)))
        return f"The parameters are finite; the largest entry is in {name} ({float(np.abs(params[name]).max()):.3g})."

    def _recent_norms_text(self):
        if not self.recent_norms:
            return ""
        return " Gradient norms of the last steps: " + ", ".join(
            f"step {k} {n:.3g}" for k, n in self.recent_norms) + "."

    def warm_up(self) -> float:
        """Run the kernels once on a two-step window, changing nothing; returns the seconds it took.

        Numba compiles a kernel on its first call (or loads it from its cache): done here, that
        time stays out of the time budget and the tokens/s."""
        t0 = time.perf_counter()
        ids = self.train_ids[:3]
        x, y = np.ascontiguousarray(ids[:2, None]), np.ascontiguousarray(ids[1:3, None])    # (2, 1)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.model.loss_and_grads(x, y, None, self.settings["truncate"])
            self.model.loss(x, y, None)
            self.model.sample(ids[:1], 1, 1.0, np.random.default_rng(0))
        return time.perf_counter() - t0

    # -- evaluation and samples -------------------------------------------------------------
    def eval_batch(self) -> int:
        """Validation streams: as many as training uses, fewer if the text is short (each needs T+1 tokens)."""
        return max(1, min(self.settings["batch"], len(self.val_ids) // (self.settings["window"] + 1)))

    def evaluate(self) -> float:
        """Mean validation loss (nats/token) over at most `eval_windows` windows, state carried."""
        if len(self.val_ids) < 2:
            return math.nan
        state, total, count = None, 0.0, 0
        for k, (x, y) in enumerate(eval_windows(self.val_ids, self.eval_batch(), self.settings["window"])):
            if self.settings["eval_windows"] and k >= self.settings["eval_windows"]:
                break
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss, state = self.model.loss(x, y, state)
            total, count = total + loss * x.size, count + x.size
        return total / count if count else math.nan

    def _default_prime(self):
        """Samples start after a newline (the first training token if there is no newline symbol)."""
        ids = self.vocab.encode("\n", unknown="skip")
        return ids if ids.size else self.train_ids[:1]

    def sample(self, length=None, temperature=None, step=None) -> str:
        """Text from the model after the default prime, drawn with the generator seeded (seed, 3, step)."""
        s = self.settings
        rng = np.random.default_rng([s["seed"], 3, self.step if step is None else step])
        with np.errstate(over="ignore", invalid="ignore"):      # a diverging model still samples
            ids = self.model.sample(self.prime_ids, length or s["sample_length"],
                                    s["sample_temperature"] if temperature is None else temperature, rng)
        return self.vocab.decode(ids)

    # -- the loop -----------------------------------------------------------------------------
    def run(self, hooks: TrainHooks | None = None, max_time=None, should_stop=lambda: False) -> str:
        """Train until the step budget, `max_time` seconds of this session, or `should_stop()`.

        Returns why it stopped: "steps", "time" or "interrupted". At every `log_every` steps a
        metrics row; at every `eval_every` an evaluation, then a checkpoint (and best.npz when
        validation improved); at every `sample_every` a sample. When the budget ends the last
        row, evaluation, sample and checkpoint are made at once; an interruption only saves a
        checkpoint (with the half-filled interval), so a resumed run logs the same rows.
        """
        hooks = hooks or TrainHooks()
        s = self.settings
        start = time.monotonic()
        reason = None
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
            final = reason is not None
            due_eval = final or self.step % s["eval_every"] == 0
            if due_eval or self.step % s["log_every"] == 0:
                hooks.on_row(self, self._flush_row(start, evaluate=due_eval), due_eval)
            if final or (s["sample_every"] and self.step % s["sample_every"] == 0):
                hooks.on_sample(self, self.step, self.sample())
            if due_eval:
                self._save(hooks, start, reason)
        if reason == "interrupted":
            self._save(hooks, start, reason)
        self.elapsed_before += time.monotonic() - start
        return reason

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
        val = self.evaluate() if evaluate else math.nan
        row = {"step": self.step, "tokens": self.step * self.tokens_per_step,
               "train_loss": iv.mean(iv.loss, iv.finite),
               "val_loss": val, "val_bits": bits_per_token(val), "val_ppl": perplexity(val) if val == val else math.nan,
               "grad_norm": iv.mean(iv.norm, iv.finite), "grad_norm_clipped": iv.mean(iv.norm_clipped, iv.finite),
               "clipped_frac": iv.mean(iv.clipped, iv.finite), "lr": iv.lr,
               "tokens_per_s": iv.mean(iv.steps * self.tokens_per_step, iv.seconds),
               "elapsed": self.elapsed_before + time.monotonic() - session_start, "skipped": iv.skipped}
        self.rows.append(row)
        self.interval = Interval()
        if val < self.best_val:
            self.best_val, self.best_step = val, self.step
            self._new_best = True
        return row

    def _save(self, hooks, session_start, reason):
        best, self._new_best = self._new_best, False
        hooks.on_checkpoint(self, self.checkpoint(reason, self.elapsed_before + time.monotonic() - session_start), best)

    # -- checkpoints --------------------------------------------------------------------------
    def checkpoint(self, reason=None, elapsed=None) -> Checkpoint:
        """Everything needed to continue exactly (see rnnvanish.checkpoint for the layout)."""
        meta = {"step": self.step, "tokens": self.step * self.tokens_per_step,
                "config": self.config(), "vocab": self.vocab.to_dict(), "data": self.stream.state_dict(),
                "rng": {"training": "none: streams are read in order and nothing is dropped out",
                        "samples": "numpy default_rng([seed, 3, step])"},
                "interval": asdict(self.interval), "best_val": None if math.isinf(self.best_val) else self.best_val,
                "best_step": self.best_step, "elapsed": self.elapsed_before if elapsed is None else elapsed,
                "reason": reason}
        return Checkpoint(meta=meta, params={k: v.copy() for k, v in self.model.params.items()},
                          optimizer_state=self.optimizer.state_dict(), state=tuple(x.copy() for x in self.state),
                          metrics=metrics_table(self.rows))

    def config(self) -> dict:
        """The settings, the model's own description and `info` (what config.json and checkpoints record)."""
        return {**self.settings, "model": self.model.config(), **self.info}

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue from a checkpoint of the same run (same data, settings and model shape)."""
        meta = ckpt.meta
        load_params(self.model, ckpt)
        self.optimizer.load_state_dict(ckpt.optimizer_state)
        self.stream.load_state_dict(meta["data"])
        want = [(self.settings["batch"], self.model.hidden_size)] * len(self.state)
        if [np.shape(x) for x in ckpt.state] != want:
            raise RnnvanishError(f"checkpoint {ckpt.path} carries a hidden state of shapes "
                                 f"{[np.shape(x) for x in ckpt.state]}, this run needs {want}")
        self.state = tuple(np.array(x, dtype=self.model.dtype) for x in ckpt.state)
        self.step = int(meta["step"])
        try:
            self.interval = Interval(**meta["interval"])
            table = np.asarray(ckpt.metrics, dtype=np.float64).reshape(-1, len(COLUMNS))
        except (TypeError, ValueError, KeyError):
            raise RnnvanishError(f"checkpoint {ckpt.path} holds malformed metrics") from None
        self.rows = [{c: _from_table(c, v) for c, v in zip(COLUMNS, r)} for r in table]
        self.best_val = math.inf if meta.get("best_val") is None else float(meta["best_val"])
        self.best_step = meta.get("best_step")
        self.elapsed_before = float(meta.get("elapsed") or 0.0)


def _from_table(column, value):
    """A metrics value back from the float table: counts as int, missing as NaN."""
    if column in ("step", "tokens", "skipped") and value == value:
        return int(value)
    return float(value)
