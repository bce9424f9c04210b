"""One session of `rnnvanish train`: settings, data, model and run folder put together, then trained.

    prepare_run(args)      resolve the settings (new run, or --resume), read the corpus, build the
                           vocabulary, model and trainer, check the run folder. Everything that can
                           be wrong with the input is found here, before a single file is written.
    train_session(session) write config.json, train with Ctrl-C handling, save checkpoints, metrics
                           and samples (RunRecorder), print progress (rnnvanish.trainconsole), draw
                           training.png at the end.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from rnnvanish.training import runfolder as rf
from rnnvanish._version import __version__
from rnnvanish.backend import resolve_backend
from rnnvanish.training.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from rnnvanish.data import TokenStream, Vocab, default_corpus, load_corpus, split_train_val
from rnnvanish.errors import RnnvanishError
from rnnvanish.training.engine import DEFAULTS, Trainer, TrainHooks, build_model

BUDGET_KEYS = ("steps", "epochs", "max_time")
# What --resume may change: how long, how it is logged, and the step rule. Not the model or the data.
RESUME_MAY_CHANGE = BUDGET_KEYS + (
    "backend", "threads", "log_every", "eval_every", "eval_windows", "sample_every", "sample_length", "sample_temperature",
    "trace_every", "lr", "lr_schedule", "weight_decay", "clip_value", "clip_norm", "clip_mode", "nonfinite")


@dataclass
class Session:
    trainer: Trainer
    folder: Path
    resumed: bool
    max_time: float | None
    quiet: bool = False
    progress: bool = True
    overwrite: bool = False
    changes: dict = field(default_factory=dict)
    recorder: "RunRecorder | None" = None
    console: object = None

    def report_nonfinite(self, err):
        """The diagnosis of a non-finite stop, on stderr, with where the last good checkpoint is."""
        if self.console is not None:
            self.console.close()
        last = self.recorder.last_checkpoint_step if self.recorder else None
        kept = (f"The last good checkpoint is {self.folder / rf.CHECKPOINT} (step {last})." if last is not None
                else "No checkpoint had been saved yet.")
        sys.stderr.write(f"rnnvanish train: stopped: {err} {kept}\n")
        draw_chart(self.folder, self.trainer.settings, self.trainer.vocab.level, quiet=True)


# ----------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------

def given_settings(args) -> dict:
    """The settings the user typed: flags left at None were not given; 'none' means None."""
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k, None) is not None}
    return {k: (None if v == "none" else v) for k, v in given.items()}


def new_settings(given: dict, default_max_time: float) -> dict:
    settings = {**DEFAULTS, **given}
    if not any(k in given for k in BUDGET_KEYS):
        settings["max_time"] = default_max_time
    if settings["steps"] is not None and settings["epochs"] is not None:
        raise RnnvanishError("give --steps or --epochs, not both")
    settings["backend"] = resolve_backend(settings["backend"])
    return settings


def resumed_settings(saved: dict, given: dict) -> tuple[dict, dict]:
    """(settings, changes): the saved settings with the allowed changes applied."""
    refused = {k: v for k, v in given.items() if k not in RESUME_MAY_CHANGE and saved.get(k) != v}
    if refused:
        flag, value = next(iter(refused.items()))
        raise RnnvanishError(f"--{flag.replace('_', '-')} cannot change when resuming (the run has "
                             f"{saved.get(flag)!r}, got {value!r}); start a new run with --out instead")
    settings = {k: saved.get(k, DEFAULTS[k]) for k in DEFAULTS}
    if any(k in given for k in BUDGET_KEYS):
        settings.update({k: None for k in BUDGET_KEYS})    # a new budget replaces the old one whole
    changes = {k: v for k, v in given.items() if saved.get(k) != v}
    settings.update(given)
    if settings["steps"] is not None and settings["epochs"] is not None:
        raise RnnvanishError("give --steps or --epochs, not both")
    # The run's own backend unless one is asked for (flag or environment): kernels agree to ~1e-12, not bit for bit.
    settings["backend"] = resolve_backend(given.get("backend") or os.environ.get("RNNVANISH_BACKEND")
                                          or saved.get("backend"))
    return settings, changes


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def read_corpus(source):
    """(source, name, text): `source` is what reads the same text again (a built-in name or an absolute path)."""
    if source is None:
        name, text = default_corpus()
        return name, name, text
    name, text = load_corpus(source)
    path = Path(source)
    return (str(path.resolve()) if path.exists() else name), name, text


def encode_corpus(settings, text, vocab=None):
    """(vocab, train_ids, val_ids, description). The vocabulary is built from the whole text
    unless given; symbols it does not hold (only when capped) become its unknown token."""
    if vocab is None:
        vocab = Vocab.build(text, settings["level"], max_size=settings["vocab_size"], min_count=settings["min_count"])
    ids = vocab.encode(text, unknown="replace")
    train_ids, val_ids = split_train_val(ids, settings["val_frac"])
    TokenStream(train_ids, settings["batch"], settings["window"])     # raises when the text is too short
    if settings["val_frac"] > 0 and len(val_ids) < 2:
        raise RnnvanishError(f"the validation part of the text ({len(val_ids)} tokens at --val-frac "
                             f"{settings['val_frac']:g}) is too short; raise --val-frac or use --val-frac 0")
    return vocab, train_ids, val_ids, {"chars": len(text), "tokens": len(ids), "train_tokens": len(train_ids),
                                       "val_tokens": len(val_ids), "crc32": zlib.crc32(text.encode("utf-8"))}


# ----------------------------------------------------------------------------------------------
# Preparing a session
# ----------------------------------------------------------------------------------------------

def default_folder(cell: str) -> Path:
    base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{cell}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def make_tracer(folder: Path):
    """record_training_trace bound to the run's traces/ folder; one clear error if tracing is missing."""
    try:
        from rnnvanish.tracer import record_training_trace
    except ImportError as err:
        raise RnnvanishError(f"tracing is unavailable (cannot import rnnvanish.tracer: {err}); "
                             "run without --trace-every") from None

    def trace(model, inputs, state, step):
        record_training_trace(model, inputs, state, step, folder / rf.TRACES)
    return trace


def prepare_run(args, default_max_time: float) -> Session:
    """Every check, no writes: a Session ready to train, or RnnvanishError."""
    given = given_settings(args)
    if args.resume:
        return _prepare_resume(args, given)
    settings = new_settings(given, default_max_time)
    source, name, text = read_corpus(args.corpus)
    vocab, train_ids, val_ids, described = encode_corpus(settings, text)
    model = build_model(settings, len(vocab))
    corpus = {"source": source, "name": name, **described}
    trainer = Trainer(settings, model, vocab, train_ids, val_ids, info={"corpus": corpus})
    folder = Path(args.out) if args.out else default_folder(settings["cell"])
    if settings["trace_every"]:
        trainer.tracer = make_tracer(folder)
    _check_new_folder(folder, args.overwrite)
    return Session(trainer, folder, resumed=False, max_time=settings["max_time"], quiet=args.quiet,
                   progress=not (args.quiet or args.no_progress), overwrite=args.overwrite)


def _check_new_folder(folder: Path, overwrite: bool):
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


def _prepare_resume(args, given) -> Session:
    folder = Path(args.resume)
    if args.out and Path(args.out).resolve() != folder.resolve():
        raise RnnvanishError("--resume continues a run in its own folder; leave out --out (or give the same folder)")
    if not folder.is_dir():
        raise RnnvanishError(f"there is no run folder {folder} to resume")
    if not (folder / rf.CHECKPOINT).exists():
        raise RnnvanishError(f"{folder} holds no {rf.CHECKPOINT}, so there is nothing to resume")
    recorded = rf.read_json(folder / rf.CONFIG)
    ckpt = load_checkpoint(find_checkpoint(folder, prefer_best=False))
    saved = ckpt.config
    if not isinstance(saved, dict) or not isinstance(saved.get("corpus"), dict):
        raise RnnvanishError(f"checkpoint {ckpt.path} does not describe its corpus")
    for key in ("model", "corpus"):
        if recorded.get(key) != saved.get(key):
            raise RnnvanishError(f"checkpoint {ckpt.path} does not match the run described by its {rf.CONFIG} "
                                 f"(the {key} differs), so it cannot be resumed")
    settings, changes = resumed_settings(saved, given)
    corpus = dict(saved["corpus"])
    if args.corpus is not None and read_corpus(args.corpus)[0] != corpus.get("source"):
        raise RnnvanishError(f"the run was trained on {corpus.get('source')}; leave out CORPUS when resuming")
    _, name, text = read_corpus(None if corpus.get("source") in ("default",) else corpus.get("source"))
    if zlib.crc32(text.encode("utf-8")) != corpus.get("crc32"):
        raise RnnvanishError(f"the corpus {corpus.get('source')} has changed since the run started "
                             "(its checksum differs), so the run cannot continue exactly")
    vocab, train_ids, val_ids, _ = encode_corpus(settings, text, vocab=ckpt.vocab)
    model = build_model(settings, len(vocab))
    if model.config() != saved.get("model"):
        raise RnnvanishError(f"checkpoint {ckpt.path} describes a model ({saved.get('model')}) that these "
                             f"settings do not rebuild ({model.config()})")
    sessions = list(saved.get("sessions", []))
    trainer = Trainer(settings, model, vocab, train_ids, val_ids, info={"corpus": corpus, "sessions": sessions})
    trainer.restore(ckpt)
    if trainer.total_steps is not None and trainer.step >= trainer.total_steps and settings["max_time"] is None:
        raise RnnvanishError(f"the run in {folder} already reached its budget of {trainer.total_steps} steps; "
                             f"give a larger --steps (or --epochs, --max-time) to train further")
    if settings["trace_every"]:
        trainer.tracer = make_tracer(folder)
    rf.check_writable(folder)
    return Session(trainer, folder, resumed=True, max_time=settings["max_time"], quiet=args.quiet,
                   progress=not (args.quiet or args.no_progress), changes=changes)


# ----------------------------------------------------------------------------------------------
# Writing the run folder
# ----------------------------------------------------------------------------------------------

class RunRecorder(TrainHooks):
    """Writes what the training loop reports into the run folder."""

    def __init__(self, folder: Path, last_checkpoint_step=None):
        self.folder = folder
        self.last_checkpoint_step = last_checkpoint_step

    def on_row(self, trainer, row, evaluated):
        rf.append_metrics(self.folder / rf.METRICS, row)

    def on_sample(self, trainer, step, text):
        rf.append_sample(self.folder / rf.SAMPLES, rf.sample_block(step, trainer.settings["sample_temperature"], text))

    def on_checkpoint(self, trainer, checkpoint, best):
        save_checkpoint(self.folder / rf.CHECKPOINT, checkpoint)
        rf.write_metrics(self.folder / rf.METRICS, checkpoint.metrics)   # whole and atomic again
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
    rf.atomic_write_json(session.folder / rf.CONFIG, {**t.config(), "vocab": t.vocab.to_dict()})


def draw_chart(folder: Path, settings: dict, unit: str, quiet=False):
    """training.png from metrics.csv; a failure to draw is reported, not fatal."""
    path = folder / rf.METRICS
    if not path.exists():
        return None
    try:
        from rnnvanish.plots import save_figure
        from rnnvanish.plots.training import plot_training
        metrics = rf.read_metrics(path)
        if metrics["step"].size == 0:
            return None
        clip_norm = settings["clip_norm"] if settings["clip_mode"] == "global" else None
        fig = plot_training(metrics, title=f"{folder.name}: {settings['cell']} H={settings['hidden']}",
                            unit=unit, clip_norm=clip_norm)
        return save_figure(fig, folder / rf.CHART)
    except Exception as err:   # the run itself is saved; a chart problem must not turn it into a failure
        if not quiet:
            sys.stderr.write(f"rnnvanish train: warning: could not draw {rf.CHART}: {err}\n")
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


def train_session(session: Session) -> str:
    """Train one session; returns the stop reason ("steps", "time", "interrupted")."""
    from rnnvanish.training.console import Console

    t, folder = session.trainer, session.folder
    if session.resumed:
        rf.write_metrics(folder / rf.METRICS, rf.metrics_table(t.rows))   # rows past the checkpoint go
        rf.truncate_samples(folder / rf.SAMPLES, t.step)
    else:
        rf.prepare_new(folder, overwrite=session.overwrite)
    if t.tracer is not None:
        rf.traces_folder(folder)
    write_config(session)
    compile_seconds = t.warm_up()
    session.recorder = RunRecorder(folder, last_checkpoint_step=t.step if session.resumed else None)
    session.console = console = Console(t, folder, session)
    hooks = _Both(session.recorder, console)
    console.start(compile_seconds)
    from rnnvanish.threads import limit_threads
    with StopOnInterrupt(notify=console.stopping) as stop, limit_threads(t.settings["threads"], t.model.backend):
        reason = t.run(hooks, max_time=session.max_time, should_stop=stop)
    console.close()
    chart = draw_chart(folder, t.settings, t.vocab.level, quiet=session.quiet)
    console.summary(reason, chart)
    return reason


class _Both(TrainHooks):
    """Files first, then the console: what is printed has been saved."""

    def __init__(self, *hooks):
        self.hooks = hooks

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
