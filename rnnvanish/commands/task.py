"""`rnnvanish task NAME`: train a cell on a long-range task of the literature, judged by its criterion."""
import argparse

from ._args import nonneg_int, positive_float, positive_int

TASK_NAMES = ("adding", "copy", "temporal_order", "latch")


def optional_positive_float(text):
    """A positive number, or `none` to switch the feature off."""
    if text.lower() in ("none", "off"):
        return None
    return positive_float(text)


def stop_fraction(text):
    """A success rate in (0, 1] (or a percentage like 95%), or `none`."""
    if text.lower() in ("none", "off"):
        return None
    percent = text.endswith("%")
    value = positive_float(text[:-1] if percent else text) / (100.0 if percent else 1.0)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1] or a percentage, got {text}")
    return value


def duration(text):
    """Seconds, or a number with a unit: 90, 90s, 10m, 1.5h."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    scale = units.get(text[-1:].lower())
    return positive_float(text[:-1] if scale else text) * (scale or 1.0)


def add_training_arguments(p):
    """The model and training flags shared by `task` and `sweep`."""
    m = p.add_argument_group("model")
    m.add_argument("--hidden", type=positive_int, default=64, help="hidden size H (default: 64)")
    m.add_argument("--init-hh", default=None, metavar="SPEC",
                   help="initialiser of W_hh, e.g. orthogonal, identity, normal:0.1 (default: orthogonal)")
    m.add_argument("--radius", type=positive_float, default=None,
                   help="scale each recurrent block to this spectral radius at the start")
    m.add_argument("--activation", choices=("tanh", "sigmoid", "relu"), default=None,
                   help="activation of the tanh RNN (default: tanh)")
    m.add_argument("--forget-bias", type=float, default=None,
                   help="LSTM forget-gate bias at the start (default: 3, open for long lags)")
    m.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="float32 is faster (default: float64)")
    m.add_argument("--backend", choices=("numba", "numpy"), default=None,
                   help="kernels (default: $RNNVANISH_BACKEND or numba)")
    t = p.add_argument_group("training")
    t.add_argument("--batch", type=positive_int, default=32, help="sequences per update (default: 32)")
    t.add_argument("--optimizer", default="adam",
                   help="sgd, momentum, nesterov, adagrad, rmsprop, adam (default: adam)")
    t.add_argument("--lr", type=positive_float, default=3e-3, help="learning rate (default: 0.003)")
    t.add_argument("--clip-norm", type=optional_positive_float, default=1.0,
                   help="clip the global gradient norm to this, or 'none' (default: 1)")
    t.add_argument("--clip-value", type=optional_positive_float, default=None,
                   help="clip every gradient entry to [-c, c] first (default: none)")
    t.add_argument("--steps", type=positive_int, default=10000, help="most updates (default: 10000)")
    t.add_argument("--eval-every", type=positive_int, default=200,
                   help="updates between held-out evaluations (default: 200)")
    t.add_argument("--eval-size", type=positive_int, default=1000, help="held-out sequences (default: 1000)")
    t.add_argument("--stop-at", type=stop_fraction, default=0.95,
                   help="stop once this share of held-out sequences is solved, or 'none' (default: 0.95)")


def add_arguments(p):
    p.add_argument("name", metavar="NAME", help=f"the task: {', '.join(TASK_NAMES)}")
    p.add_argument("--length", "-T", type=positive_int, default=None,
                   help="sequence length T, or the copy task's delay (default: the paper's, 100)")
    p.add_argument("--cell", choices=("tanh", "lstm", "gru"), default="lstm", help="recurrent cell (default: lstm)")
    add_training_arguments(p)
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the weights and the sequences (default: 0)")
    p.add_argument("--max-time", type=duration, default=None, metavar="TIME",
                   help="wall-clock budget, e.g. 600, 10m, 1h (default: none)")
    p.add_argument("--threads", type=positive_int, default=1, metavar="N",
                   help="threads of the matrix products (BLAS); more rarely pays at these sizes (default: 1)")
    o = p.add_argument_group("output")
    o.add_argument("--out", default=None, metavar="RUN",
                   help="run folder (default: runs/task-NAME-TLENGTH-CELL-sSEED)")
    o.add_argument("--overwrite", action="store_true", help="replace a run already in the folder")
    o.add_argument("--no-trace", action="store_true", help="skip the gradient lag profiles at start and end")


def config_from_args(args, **fields):
    """A TaskConfig from the shared flags; `fields` (task, length, cell, seed, ...) add to them."""
    from ..tasks.objective import TaskConfig
    return TaskConfig(hidden=args.hidden, batch=args.batch, optimizer=args.optimizer, lr=args.lr,
                      clip_norm=args.clip_norm, clip_value=args.clip_value, init_hh=args.init_hh,
                      radius=args.radius, activation=args.activation, forget_bias=args.forget_bias,
                      steps=args.steps, eval_every=args.eval_every, eval_size=args.eval_size,
                      stop_at=args.stop_at, backend=args.backend, dtype=args.dtype, **fields)


def run(args):
    from pathlib import Path

    from ..backend import resolve_backend
    from ..errors import RnnvanishError
    from ..tasks import make_task
    from ..threads import limit_threads
    from ..taskfolder import prepare_folder
    from ..tasks.objective import build, summary_line, train_task

    task = make_task(args.name)
    length = task.default_length if args.length is None else args.length
    if length < task.min_length:
        raise RnnvanishError(f"the {task.name} task needs --length of at least {task.min_length}, got {length}")
    config = config_from_args(args, task=task.name, length=length, cell=args.cell, seed=args.seed,
                              max_time=args.max_time)
    folder = Path(args.out or f"runs/task-{task.name}-T{length}-{args.cell}-s{args.seed}")
    build(config)                                  # every setting checked before anything is printed
    prepare_folder(folder, args.overwrite)
    baseline = task.baseline(length)
    print(f"{task.name} (T = {length}): {task.reference}")
    print(f"criterion: {task.criterion}")
    print(f"baseline (trivial strategy): loss {baseline['loss']:.4g}, solved {100 * baseline['solved']:.1f}%")
    budget = f"{args.steps} steps" + ("" if args.max_time is None else f" or {args.max_time:g} s")
    cell = args.cell + (f" (forget bias {config.forget_bias:g})" if config.forget_bias is not None else "")
    print(f"{cell} H={args.hidden}, {args.optimizer} lr {args.lr:g}, batch {args.batch}, "
          f"clip-norm {args.clip_norm}, budget {budget}; run folder {folder}")

    tracer = None if args.no_trace else _lag_tracer(folder)
    with limit_threads(args.threads, resolve_backend(args.backend)):
        result = train_task(config, folder, overwrite=args.overwrite, progress=True, log=print,
                            on_model=tracer)
    print(summary_line(result))
    if tracer is not None:
        print(tracer.finish(config))
    print(f"wrote {folder}")
    return 130 if result["stopped"] == "interrupted" else 0


def _lag_tracer(folder):
    """The start/end gradient traces (None when rnnvanish.tracer is not installed)."""
    import importlib.util
    if importlib.util.find_spec("rnnvanish.tracer") is None:
        return None
    from ..tasks.traces import LagTraces
    return LagTraces(folder)
