"""`rnnvanish task NAME`: train a cell on a long-range task of the literature, judged by its criterion.

The same training engine as `rnnvanish train`: the same flags for the same things, the same run
folder (config.json, metrics.csv, checkpoint.npz, best.npz, traces/) plus result.json and
task.png, `--resume` to continue a run bit for bit. Exit status: 0 done, 2 bad input (nothing
written), 3 stopped by non-finite values or divergence (the last good checkpoint is kept),
130 interrupted by Ctrl-C (a checkpoint is saved first).
"""
import argparse

from ._args import (add_budget_arguments, add_eval_every, add_logging_arguments, add_model_arguments, add_optimisation_arguments,
                    add_run_folder_arguments, duration, optional, positive_float, positive_int)

TASK_NAMES = ("adding", "copy", "temporal_order", "latch", "parity")


def stop_fraction(text):
    """A success rate in (0, 1] (or a percentage like 95%), or `none`."""
    if text.lower() in ("none", "off"):
        return "none"
    percent = text.endswith("%")
    value = positive_float(text[:-1] if percent else text) / (100.0 if percent else 1.0)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1] or a percentage, got {text}")
    return value


def add_task_training_arguments(p):
    """The model, optimisation and evaluation flags shared by `task` and `sweep`."""
    from ..tasks.objective import LSTM_FORGET_BIAS, TaskConfig as C

    add_model_arguments(p, C, forget_bias_default=LSTM_FORGET_BIAS)
    g = p.add_argument_group("batches")
    g.add_argument("--batch", type=positive_int, metavar="B", help="fresh sequences per update (default: 32)")
    g.add_argument("--truncate", type=optional(positive_int), metavar="K2",
                   help="each answer's loss sends its gradient back at most K2 steps (default: none, full BPTT)")
    add_optimisation_arguments(p, C)
    g = p.add_argument_group("evaluation")
    add_eval_every(g, C)
    g.add_argument("--eval-size", type=positive_int, metavar="N", help="held-out sequences (default: 1000)")
    g.add_argument("--stop-at", type=stop_fraction, metavar="F",
                   help="stop once this share of held-out sequences is solved, e.g. 0.95 or 95%%, or 'none' "
                        "(default: 0.95)")
    return C


def add_arguments(p):
    p.add_argument("name", metavar="NAME", nargs="?", help=f"the task: {', '.join(TASK_NAMES)} (not with --resume)")
    p.add_argument("--length", "-T", type=positive_int, default=None,
                   help="sequence length T, or the copy task's delay (default: the paper's, 100)")
    C = add_task_training_arguments(p)
    add_budget_arguments(p, C)
    add_logging_arguments(p, C)
    g = add_run_folder_arguments(p, "runs/task-NAME-TLENGTH-CELL-sSEED")
    g.add_argument("--no-trace", action="store_true", help="skip the gradient lag profiles at start and end")


def prepare(args):
    """Every check, no writes: a Session ready to train, or RnnvanishError."""
    from pathlib import Path

    from ..errors import RnnvanishError
    from ..tasks.objective import TaskConfig, make_trainer
    from ..training.session import Session, check_new_folder, given_settings, make_tracer, new_config

    given = given_settings(args, TaskConfig)
    if args.resume:
        return _prepare_resume(args, given)
    if args.name is None:
        raise RnnvanishError(f"name the task: {', '.join(TASK_NAMES)}")
    config = new_config(TaskConfig, {**given, "task": args.name, "length": args.length})
    trainer = make_trainer(config)
    folder = Path(args.out or f"runs/task-{config.task}-T{config.length}-{config.cell}-s{config.seed}")
    if config.trace_every:
        trainer.tracer = make_tracer(folder)
    check_new_folder(folder, args.overwrite)
    return Session(trainer, folder, resumed=False, command="task", quiet=args.quiet,
                   progress=False if args.quiet else args.progress, overwrite=args.overwrite,
                   hooks=_hooks(args, folder))


def _prepare_resume(args, given):
    from pathlib import Path

    from ..errors import RnnvanishError
    from ..tasks.objective import TaskConfig, make_trainer
    from ..training import runfolder as rf
    from ..training.session import Session, check_rebuilt, make_tracer, open_resume, resumed_config

    folder = Path(args.resume)
    ckpt, _ = open_resume(folder, args.out)
    if not isinstance(ckpt.config.get("task"), str):
        raise RnnvanishError(f"checkpoint {ckpt.path} is not a task run's")
    if args.name is not None and args.name != ckpt.config["task"]:
        raise RnnvanishError(f"the run in {folder} trains the {ckpt.config['task']} task; leave out NAME when resuming")
    saved = {k: v for k, v in ckpt.config.items() if k in TaskConfig.names()}
    config, changes = resumed_config(TaskConfig, saved, {**given, **({"length": args.length} if args.length else {})})
    trainer = make_trainer(config)
    trainer.info["sessions"] = list(ckpt.config.get("sessions", []))
    check_rebuilt(trainer, ckpt, folder)
    if config.trace_every:
        trainer.tracer = make_tracer(folder)
    rf.check_writable(folder)
    return Session(trainer, folder, resumed=True, command="task", quiet=args.quiet,
                   progress=False if args.quiet else args.progress, changes=changes, hooks=_hooks(args, folder))


def _hooks(args, folder):
    if args.no_trace:
        return []
    from ..tasks.traces import LagTraces
    return [LagTraces(folder)]


def run(args):
    from ..training.session import run_session
    return run_session(prepare(args))        # prepare: every check, before anything is written


__all__ = ["TASK_NAMES", "add_arguments", "run", "duration", "stop_fraction"]
