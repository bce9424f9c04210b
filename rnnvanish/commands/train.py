"""`rnnvanish train [CORPUS]`: a character- or word-level language model, trained with truncated BPTT.

Every flag defaults to None here, so that the settings a user gave can be told apart from the
defaults (rnnvanish.train.DEFAULTS); that matters for --resume, which refuses to change the model
or the data of a run but lets the budget, the logging and the optimiser's step rules change.
Exit status: 0 done, 2 bad input (nothing written), 3 stopped by a non-finite loss or gradient
(the last good checkpoint is kept), 130 interrupted by Ctrl-C (a checkpoint is saved first).
"""
import argparse

from ._args import fraction_or_zero, nonneg_float, nonneg_int, positive_float, positive_int

DEFAULT_MAX_TIME = 120.0      # seconds: the budget when no --steps, --epochs or --max-time is given
EXIT_NONFINITE = 3
EXIT_INTERRUPTED = 130
NONE_WORDS = ("none", "off")


def _or_none(kind):
    """An argparse type that also accepts 'none' / 'off' (returned as the string 'none')."""
    def parse(text):
        return "none" if text.strip().lower() in NONE_WORDS else kind(text)
    parse.__name__ = kind.__name__
    return parse


def _init_spec(text):
    from ..errors import RnnvanishError
    from ..init import parse_init
    try:
        parse_init(text)
    except RnnvanishError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _d(key):
    """' (default: X)' for a help text, from the one table of defaults."""
    from ..training.engine import DEFAULTS
    value = DEFAULTS[key]
    return f" (default: {'none' if value is None else value})"


EPILOG = ("The run folder holds config.json, metrics.csv (step, tokens, train_loss, val_loss, val_bits, val_ppl, "
          "grad_norm, grad_norm_clipped, clipped_frac, lr, tokens_per_s, elapsed, skipped: losses in nats per "
          "token, norms before/after clipping; see rnnvanish.runfolder.METRIC_COLUMNS), checkpoint.npz, best.npz, "
          "samples.txt, traces/ and training.png. Exit status: 0 done; 2 bad input (nothing written); 3 stopped "
          "by a non-finite loss or gradient (the last good checkpoint is kept); 130 Ctrl-C (checkpoint saved).")


def add_arguments(p):
    from ..optim import LR_SCHEDULES, OPTIMIZERS

    p.epilog = EPILOG

    p.add_argument("corpus", nargs="?", metavar="CORPUS",
                   help="a UTF-8 text file, or a built-in corpus name (default: the offline built-in corpus)")
    g = p.add_argument_group("data")
    g.add_argument("--level", choices=("char", "word"), help="model characters or words" + _d("level"))
    g.add_argument("--vocab-size", type=positive_int, metavar="N",
                   help="keep the N most frequent symbols (the rest become the unknown token)" + _d("vocab_size"))
    g.add_argument("--min-count", type=positive_int, metavar="N",
                   help="drop symbols seen fewer than N times" + _d("min_count"))
    g.add_argument("--val-frac", type=fraction_or_zero, metavar="F",
                   help="share of the text, taken from its end, held out for validation; 0 for none" + _d("val_frac"))

    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=("tanh", "lstm", "gru"), help="recurrent cell" + _d("cell"))
    g.add_argument("--activation", choices=("tanh", "sigmoid", "relu"),
                   help="activation of the tanh cell" + _d("activation"))
    g.add_argument("--reset-before", action="store_true", default=None,
                   help="GRU: reset gate before the recurrent product (Cho et al. 2014) instead of after (PyTorch)")
    g.add_argument("--forget-bias", type=float, metavar="B", help="LSTM forget-gate bias at start" + _d("forget_bias"))
    g.add_argument("--hidden", type=positive_int, metavar="H", help="hidden size H" + _d("hidden"))
    g.add_argument("--init-xh", type=_init_spec, metavar="SPEC",
                   help="initialiser of W_xh, e.g. glorot_uniform, uniform:0.08 (default: the cell's)")
    g.add_argument("--init-hh", type=_init_spec, metavar="SPEC",
                   help="initialiser of W_hh, e.g. orthogonal, identity, normal:0.01 (default: orthogonal)")
    g.add_argument("--radius", type=positive_float, metavar="R",
                   help="rescale each W_hh block to spectral radius R" + _d("radius"))
    g.add_argument("--dtype", choices=("float64", "float32"), help="floating-point type" + _d("dtype"))
    g.add_argument("--backend", choices=("numba", "numpy"), help="kernels (default: $RNNVANISH_BACKEND or numba)")
    g.add_argument("--threads", type=positive_int, metavar="N",
                   help="threads of the matrix products (BLAS); more rarely pays at these sizes and can be "
                   "many times slower on a busy machine" + _d("threads"))
    g.add_argument("--seed", type=nonneg_int, help="random seed of the initial weights and samples" + _d("seed"))

    g = p.add_argument_group("truncated BPTT")
    g.add_argument("--window", type=positive_int, metavar="K1",
                   help="steps per window; the state is carried across windows, the gradient is not" + _d("window"))
    g.add_argument("--truncate", type=_or_none(positive_int), metavar="K2",
                   help="each step's loss sends its gradient back at most K2 steps; 'none' = to the window start"
                   + _d("truncate"))
    g.add_argument("--batch", type=positive_int, metavar="B", help="parallel streams through the text" + _d("batch"))

    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=tuple(OPTIMIZERS), help="update rule" + _d("optimizer"))
    g.add_argument("--lr", type=positive_float, help="learning rate" + _d("lr"))
    g.add_argument("--lr-schedule", choices=tuple(LR_SCHEDULES),
                   help="learning-rate schedule over the step budget" + _d("lr_schedule"))
    g.add_argument("--weight-decay", type=nonneg_float, metavar="WD", help="L2 weight decay" + _d("weight_decay"))
    g.add_argument("--clip-value", type=_or_none(positive_float), metavar="V",
                   help="clamp every gradient entry to [-V, V] (applied before --clip-norm)" + _d("clip_value"))
    g.add_argument("--clip-norm", type=_or_none(positive_float), metavar="N",
                   help="rescale gradients whose norm exceeds N; 'none' turns it off" + _d("clip_norm"))
    g.add_argument("--clip-mode", choices=("global", "per-tensor"),
                   help="--clip-norm over all gradients together or each tensor alone" + _d("clip_mode"))
    g.add_argument("--nonfinite", choices=("raise", "skip"),
                   help="on a NaN/inf loss or gradient: stop with a diagnosis, or drop that step" + _d("nonfinite"))

    g = p.add_argument_group("budget (default: --max-time 120 when none is given)")
    g.add_argument("--steps", type=positive_int, help="train until this many steps (windows) in total")
    g.add_argument("--epochs", type=positive_int, help="train for this many passes over the training text")
    g.add_argument("--max-time", type=positive_float, metavar="SECONDS",
                   help="stop this session after SECONDS of wall-clock time")

    g = p.add_argument_group("logging")
    g.add_argument("--log-every", type=positive_int, metavar="N", help="a metrics row every N steps" + _d("log_every"))
    g.add_argument("--eval-every", type=positive_int, metavar="N",
                   help="validate, print a log line and save a checkpoint every N steps" + _d("eval_every"))
    g.add_argument("--eval-windows", type=nonneg_int, metavar="N",
                   help="at most N validation windows per evaluation; 0 = all" + _d("eval_windows"))
    g.add_argument("--sample-every", type=nonneg_int, metavar="N",
                   help="sample text every N steps; 0 = only at the end" + _d("sample_every"))
    g.add_argument("--sample-length", type=positive_int, metavar="N", help="symbols per sample" + _d("sample_length"))
    g.add_argument("--sample-temperature", type=nonneg_float, metavar="T",
                   help="sampling temperature; 0 = most likely symbol" + _d("sample_temperature"))
    g.add_argument("--trace-every", type=positive_int, metavar="N",
                   help="store a gradient lag profile in traces/ every N steps (default: never)")

    g = p.add_argument_group("run folder")
    g.add_argument("--out", metavar="RUN_FOLDER", help="where to write the run (default: runs/<timestamp>-<cell>)")
    g.add_argument("--resume", metavar="RUN_FOLDER", help="continue the run in RUN_FOLDER exactly where it stopped")
    g.add_argument("--overwrite", action="store_true", help="replace the run files already in --out")
    g.add_argument("--quiet", action="store_true", help="print only the final summary (and errors)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar (log lines and samples still print)")


def run(args):
    from ..errors import NonFiniteError
    from ..training.session import prepare_run, train_session

    session = prepare_run(args, default_max_time=DEFAULT_MAX_TIME)     # all checks; raises before writing
    try:
        reason = train_session(session)
    except NonFiniteError as err:
        session.report_nonfinite(err)
        return EXIT_NONFINITE
    return EXIT_INTERRUPTED if reason == "interrupted" else 0
