"""One session of a training command: settings, objective, model and run folder put together,
then trained, for language models (`rnnvanish train`) and tasks (`rnnvanish task`) alike.

    given_settings(args, Config)   the flags a user typed (None = not given; 'none' = off)
    new_config / resumed_config    the settings of a new run, or of a resumed one with the
                                   changes --resume allows
    open_resume(folder, out)       the run folder's checkpoint and config.json, checked
    Session                        a trainer ready to run, its folder, how to show progress
    train_session(session)         write config.json, train with Ctrl-C handling, save
                                   checkpoints, metrics and samples (RunRecorder), print progress
                                   (rnnvanish.training.console), draw the chart at the end

Everything that can be wrong with the input is found before a single file is written; a run
that stops (non-finite values, divergence) keeps its last good checkpoint.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._version import __version__
from ..backend import resolve_backend
from ..errors import RnnvanishError
from . import runfolder as rf
from .checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from .engine import Hooks, TrainHooks

EXIT_STOPPED = 3           # non-finite values or divergence; the last good checkpoint is kept
EXIT_INTERRUPTED = 130     # Ctrl-C; a checkpoint is saved first
BUDGET_KEYS = ("steps", "epochs", "max_time")
# What --resume may change: how long, how it is logged, and the step rule. Not the model or the data.
RESUME_MAY_CHANGE = BUDGET_KEYS + (
    "backend", "threads", "log_every", "eval_every", "eval_windows", "sample_every", "sample_length",
    "sample_temperature", "trace_every", "lr", "lr_schedule", "recurrent_lr", "weight_decay", "clip_value", "clip_norm",
    "clip_mode", "nonfinite", "divergence", "stop_at")


# ----------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------

def given_settings(args, config_cls) -> dict:
    """The settings the user typed: flags left at None were not given; 'none' means None."""
    given = {k: getattr(args, k) for k in config_cls.names() if getattr(args, k, None) is not None}
    return {k: (None if v == "none" else v) for k, v in given.items()}


def new_config(config_cls, given: dict, default_max_time=None):
    """The settings of a new run: defaults, then what was given; a default time budget when none is."""
    config = config_cls.from_dict(given)
    if default_max_time is not None and not any(k in given for k in BUDGET_KEYS):
        config.max_time = default_max_time
    config.backend = resolve_backend(config.backend)
    return config.check()


def resumed_config(config_cls, saved: dict, given: dict):
    """(config, changes): the saved settings with the allowed changes applied."""
    names = config_cls.names()
    refused = {k: v for k, v in given.items() if k not in RESUME_MAY_CHANGE and saved.get(k) != v}
    if refused:
        flag, value = next(iter(refused.items()))
        raise RnnvanishError(f"--{flag.replace('_', '-')} cannot change when resuming (the run has "
                             f"{saved.get(flag)!r}, got {value!r}); start a new run with --out instead")
    defaults = config_cls()
    values = {k: saved.get(k, getattr(defaults, k)) for k in names}
    if any(k in given for k in BUDGET_KEYS):
        values.update({k: None for k in BUDGET_KEYS if k in names})   # a new budget replaces the old one whole
    changes = {k: v for k, v in given.items() if saved.get(k) != v}
    values.update(given)
    # The run's own backend unless one is asked for (flag or environment): kernels agree to ~1e-12, not bit for bit.
    values["backend"] = resolve_backend(given.get("backend") or os.environ.get("RNNVANISH_BACKEND")
                                        or saved.get("backend"))
    return config_cls.from_dict(values).check(), changes


def open_resume(folder, out=None):
    """(checkpoint, config.json) of the run in `folder`, checked to belong together."""
    folder = Path(folder)
    if out and Path(out).resolve() != folder.resolve():
        raise RnnvanishError("--resume continues a run in its own folder; leave out --out (or give the same folder)")
    if not folder.is_dir():
        raise RnnvanishError(f"there is no run folder {folder} to resume")
    if not (folder / rf.CHECKPOINT).exists():
        raise RnnvanishError(f"{folder} holds no {rf.CHECKPOINT}, so there is nothing to resume")
    recorded = rf.read_json(folder / rf.CONFIG)
    ckpt = load_checkpoint(find_checkpoint(folder, prefer_best=False))
    if not isinstance(ckpt.config, dict) or recorded.get("model") != ckpt.config.get("model"):
        raise RnnvanishError(f"checkpoint {ckpt.path} does not match the run described by its {rf.CONFIG} "
                             f"(the model differs), so it cannot be resumed")
    return ckpt, recorded


def check_rebuilt(trainer, ckpt, folder):
    """The resumed trainer describes the saved model and has budget left; then restore it."""
    saved = ckpt.config.get("model")
    if trainer.model.config() != saved:
        raise RnnvanishError(f"checkpoint {ckpt.path} describes a model ({saved}) that these "
                             f"settings do not rebuild ({trainer.model.config()})")
    trainer.restore(ckpt)
    if trainer.total_steps is not None and trainer.step >= trainer.total_steps and trainer.settings.max_time is None:
        raise RnnvanishError(f"the run in {folder} already reached its budget of {trainer.total_steps} steps; "
                             f"give a larger --steps (or --max-time) to train further")


def default_folder(name: str) -> Path:
    base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def make_tracer(folder: Path):
    """record_training_trace bound to the run's traces/ folder."""
    from ..tracer import record_training_trace

    def trace(model, inputs, state, step):
        record_training_trace(model, inputs, state, step, folder / rf.TRACES)
    return trace


def check_new_folder(folder: Path, overwrite: bool):
    """prepare_new's refusals, without creating anything yet."""
    if folder.exists() and not folder.is_dir():
        raise RnnvanishError(f"the run folder {folder} exists and is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        rf.prepare_new(folder, overwrite=False)          # raises the explanation
    ancestor = next((p for p in [folder, *folder.parents] if p.exists()), Path("."))
    if not ancestor.is_dir():
        raise RnnvanishError(f"cannot write to the run folder {folder}: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RnnvanishError(f"cannot write to the run folder {folder}: permission denied")


# ----------------------------------------------------------------------------------------------
# The session
# ----------------------------------------------------------------------------------------------

@dataclass
class Session:
    trainer: object
    folder: Path
    resumed: bool
    command: str = "train"
    quiet: bool = False
    progress: bool | None = None         # None: a bar only when stderr is a terminal
    overwrite: bool = False
    changes: dict = field(default_factory=dict)
    hooks: list = field(default_factory=list)    # more hooks (a task's start/end traces)
    summary: bool = True                 # print the closing summary (the library's own runs do not)
    recorder: "RunRecorder | None" = None
    console: object = None

    @property
    def max_time(self):
        return self.trainer.settings.max_time

    def report_stopped(self, err):
        """The diagnosis of a stopped run, on stderr, with where the last good checkpoint is."""
        if self.console is not None:
            self.console.close()
        last = self.recorder.last_checkpoint_step if self.recorder else None
        kept = (f"The last good checkpoint is {self.folder / rf.CHECKPOINT} (step {last})." if last is not None
                else "No checkpoint had been saved yet.")
        sys.stderr.write(f"rnnvanish {self.command}: stopped: {err} {kept}\n")
        draw_chart(self.folder, self.trainer, quiet=True)


class RunRecorder(TrainHooks):
    """Writes what the training loop reports into the run folder."""

    def __init__(self, folder: Path, last_checkpoint_step=None):
        self.folder = folder
        self.last_checkpoint_step = last_checkpoint_step

    def on_row(self, trainer, row, evaluated):
        rf.append_metrics(self.folder / rf.METRICS, row, trainer.columns)

    def on_sample(self, trainer, step, text):
        rf.append_sample(self.folder / rf.SAMPLES, rf.sample_block(step, trainer.settings.sample_temperature, text))

    def on_checkpoint(self, trainer, checkpoint, best):
        save_checkpoint(self.folder / rf.CHECKPOINT, checkpoint)
        rf.write_metrics(self.folder / rf.METRICS, checkpoint.metrics, trainer.columns)   # whole and atomic again
        if best:
            save_checkpoint(self.folder / rf.BEST, checkpoint)
        self.last_checkpoint_step = checkpoint.meta["step"]


def write_config(session: Session):
    t = session.trainer
    entry = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "at_step": t.step, "command": sys.argv[1:],
             "rnnvanish": __version__}
    if session.changes:
        entry["changed"] = session.changes
    t.info["sessions"] = list(t.info.get("sessions", [])) + [entry]
    rf.atomic_write_json(session.folder / rf.CONFIG, {**t.config_dict(), **t.objective.config_extra()})


def draw_chart(folder: Path, trainer, quiet=False):
    """The objective's chart from metrics.csv; a failure to draw is reported, not fatal."""
    path, name = folder / rf.METRICS, trainer.objective.chart
    if not path.exists():
        return None
    try:
        from ..plots import save_figure
        metrics = rf.read_metrics(path)
        if metrics["step"].size == 0:
            return None
        return save_figure(trainer.objective.figure(metrics, folder.name), folder / name)
    except Exception as err:   # the run itself is saved; a chart problem must not turn it into a failure
        if not quiet:
            sys.stderr.write(f"rnnvanish: warning: could not draw {name}: {err}\n")
        return None


class StopOnInterrupt:
    """The first Ctrl-C asks the loop to stop after the current step; a second one aborts at once."""

    def __init__(self, notify=None):
        self.requested, self.notify, self._previous = False, notify, None

    def __call__(self) -> bool:
        return self.requested

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.notify:
            self.notify()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def run_session(session: Session) -> int:
    """Train a prepared session as a command does; returns the exit status."""
    from ..errors import TrainingStopped
    try:
        reason = train_session(session)
    except TrainingStopped as err:
        session.report_stopped(err)
        return EXIT_STOPPED
    return EXIT_INTERRUPTED if reason == "interrupted" else 0


def train_session(session: Session) -> str:
    """Train one session; returns the stop reason ("steps", "time", "solved", "interrupted")."""
    from ..threads import limit_threads
    from .console import Console

    t, folder = session.trainer, session.folder
    if session.resumed:
        rf.write_metrics(folder / rf.METRICS, rf.metrics_table(t.rows, t.columns), t.columns)   # rows past the checkpoint go
        rf.truncate_samples(folder / rf.SAMPLES, t.step)
    else:
        rf.prepare_new(folder, overwrite=session.overwrite)
    if t.tracer is not None or session.hooks:
        rf.traces_folder(folder)
    write_config(session)
    compile_seconds = t.warm_up()
    session.recorder = RunRecorder(folder, last_checkpoint_step=t.step if session.resumed else None)
    session.console = console = Console(t, folder, session)
    for hook in session.hooks:
        hook.on_start(t)
    console.start(compile_seconds)
    with StopOnInterrupt(notify=console.stopping) as stop, limit_threads(t.settings.threads, t.model.backend):
        reason = t.run(Hooks(session.recorder, console), max_time=session.max_time, should_stop=stop)
    console.close()
    notes = [hook.on_end(t) for hook in session.hooks]
    lines = t.objective.finish(t, folder, reason)
    chart = draw_chart(folder, t, quiet=session.quiet)
    if session.summary:
        console.summary(reason, chart, lines + [n for n in notes if n])
    return reason
