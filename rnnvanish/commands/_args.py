"""argparse value types that reject bad values with one clear message."""
import argparse
import math


def whole_number(text, low=1):
    """A whole number of at least `low` (1: positive, 0: zero or more)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        what = "a positive whole number" if low == 1 else f"at least {low}" if low else "zero or more"
        raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
    return value


def positive_int(text):
    return whole_number(text, 1)


def nonneg_int(text):
    return whole_number(text, 0)


def finite_float(text):
    """Any finite number (negative allowed)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text):
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def nonneg_float(text):
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


def fraction_or_zero(text):
    """A number from 0 up to, not including, 1."""
    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


def fraction(text):
    """A number strictly between 0 and 1."""
    value = finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def optional_truncate(text):
    """`--truncate K`: a positive number of steps, or `none` for back to the window start."""
    if text.lower() in ("none", "full"):
        return None
    return positive_int(text)


def optional(kind):
    """An argparse type that also accepts 'none' / 'off' (returned as the string 'none': the
    setting is switched off, which differs from not giving the flag)."""
    def parse(text):
        return "none" if text.strip().lower() in ("none", "off") else kind(text)
    parse.__name__ = kind.__name__
    return parse


def duration(text):
    """Seconds, or a number with a unit: 90, 90s, 10m, 1.5h."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    scale = units.get(text[-1:].lower())
    return positive_float(text[:-1] if scale else text) * (scale or 1.0)


def chrono_horizon(text):
    """`--chrono T_MAX`: the longest time scale, above 2 (time scales are drawn from U[1, T_MAX - 1])."""
    value = finite_float(text)
    if value <= 2:
        raise argparse.ArgumentTypeError(f"T_MAX must be above 2 (time scales are drawn from U[1, T_MAX - 1]), "
                                         f"got {text}")
    return value


def init_spec(text):
    """An initialiser name with its parameter, checked now (e.g. orthogonal, normal:0.01)."""
    from ..errors import RnnvanishError
    from ..init import parse_init
    try:
        parse_init(text)
    except RnnvanishError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


# --------------------------------------------------------------------------- flag groups
# The training commands share these groups, so the same thing is spelled the same way
# everywhere. Every flag defaults to None: a given setting can be told apart from a default
# (that matters for --resume), and the defaults live in one place, the config dataclass.

def _default(config_cls, key, shown=None):
    value = getattr(config_cls(), key) if shown is None else shown
    return f" (default: {'none' if value is None else value})"


def add_model_arguments(p, config_cls, forget_bias_default=1.0, init_b_default="zeros"):
    from ..choices import ACTIVATIONS, BACKENDS, BIAS_INITS, CELLS, DTYPES, NONLINEARITIES
    d = lambda key, shown=None: _default(config_cls, key, shown)       # noqa: E731
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=CELLS, help="recurrent cell" + d("cell"))
    g.add_argument("--hidden", type=positive_int, metavar="H", help="hidden size H" + d("hidden"))
    g.add_argument("--activation", choices=ACTIVATIONS, help="activation of the tanh cell (default: tanh)")
    g.add_argument("--reset-before", action="store_true", default=None,
                   help="GRU: reset gate before the recurrent product (Cho et al. 2014) instead of after (PyTorch)")
    g.add_argument("--forget-bias", type=finite_float, metavar="B",
                   help=f"LSTM forget-gate bias at the start (default: {forget_bias_default:g})")
    g.add_argument("--chrono", type=chrono_horizon, metavar="T_MAX",
                   help="LSTM, GRU: chrono initialisation (Tallec & Ollivier 2018), forget (GRU: update) gate "
                        "biases log u, u ~ U[1, T_MAX - 1]; the LSTM's input gate the negative")
    g.add_argument("--nonlinearity", choices=NONLINEARITIES,
                   help="expRNN: sign(z) relu(|z| + b) (modrelu, the paper's) or tanh (default: modrelu)")
    g.add_argument("--memory-floor", type=share, metavar="EPS",
                   help="IndRNN: the top layer's recurrent weights start in [EPS^(1/T), 2^(1/T)], so each of its "
                        "units keeps at least EPS of its signal over the T steps (Li et al. 2018's code: 0.5), "
                        "the layers below in [0, 1]; 0: every layer in [0, 1] (default: 0.5 for tasks, 0 for train)")
    g.add_argument("--init-xh", type=init_spec, metavar="SPEC",
                   help="initialiser of W_xh, e.g. glorot_uniform, uniform:0.08 (default: the cell's)")
    g.add_argument("--init-hh", type=init_spec, metavar="SPEC",
                   help="initialiser of W_hh, e.g. orthogonal, identity, normal:0.01 (default: orthogonal)")
    g.add_argument("--init-b", choices=BIAS_INITS,
                   help="tanh, LSTM, GRU: the biases start at zeros or drawn as PyTorch's, each of its two biases "
                        "U(-1/sqrt(H), 1/sqrt(H)) (the tanh cell's and LSTM's one bias their sum; --forget-bias "
                        f"adds to it) (default: {init_b_default})")
    g.add_argument("--radius", type=positive_float, metavar="R", help="rescale each W_hh block to spectral radius R")
    g.add_argument("--dtype", choices=DTYPES, help="floating-point type" + d("dtype"))
    g.add_argument("--backend", choices=BACKENDS, help="kernels (default: $RNNVANISH_BACKEND or numba)")
    add_stack_arguments(p)
    g.add_argument("--threads", type=positive_int, metavar="N",
                   help="threads of the matrix products (BLAS); more rarely pays at these sizes" + d("threads"))
    g.add_argument("--seed", type=nonneg_int, help="random seed of the weights, the data and the samples" + d("seed"))
    return g


def add_stack_arguments(p):
    g = p.add_argument_group("depth and regularisation")
    g.add_argument("--layers", type=positive_int, metavar="L", help="stacked recurrent layers (default: 1)")
    g.add_argument("--dropout", type=probability, metavar="P",
                   help="dropout between layers and before the readout, a fresh mask per step (default: 0)")
    g.add_argument("--variational", action="store_true", default=None,
                   help="--dropout draws one mask per sequence, for the recurrent state too (Gal & Ghahramani 2016)")
    g.add_argument("--zoneout", type=probability, metavar="P",
                   help="each unit keeps its previous value with probability P (Krueger et al. 2017) (default: 0)")
    g.add_argument("--residual", action="store_true", default=None,
                   help="add each layer's input, the output of the layer below, to its output (layers 2 and up)")
    return g


def share(text):
    """A share of the signal in [0, 1)."""
    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a share in [0, 1), got {text}")
    return value


def probability(text):
    """A probability in [0, 1)."""
    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1), got {text}")
    return value


def add_optimisation_arguments(p, config_cls):
    from ..optim import LR_SCHEDULES, OPTIMIZERS
    from ..choices import CLIP_MODES, NONFINITE_POLICIES
    d = lambda key: _default(config_cls, key)                           # noqa: E731
    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=tuple(OPTIMIZERS), help="update rule" + d("optimizer"))
    g.add_argument("--lr", type=positive_float, help="learning rate" + d("lr"))
    g.add_argument("--lr-schedule", choices=tuple(LR_SCHEDULES),
                   help="learning-rate schedule over the step budget" + d("lr_schedule"))
    g.add_argument("--recurrent-lr", type=positive_float, metavar="F",
                   help="the recurrent parameters (W_hh; the IndRNN's u, the expRNN's A, the LRU's nu and theta) "
                        "learn at F times --lr" + d("recurrent_lr"))
    g.add_argument("--weight-decay", type=nonneg_float, metavar="WD", help="L2 weight decay" + d("weight_decay"))
    g.add_argument("--clip-value", type=optional(positive_float), metavar="V",
                   help="clamp every gradient entry to [-V, V] (applied before --clip-norm)" + d("clip_value"))
    g.add_argument("--clip-norm", type=optional(positive_float), metavar="N",
                   help="rescale gradients whose norm exceeds N; 'none' turns it off" + d("clip_norm"))
    g.add_argument("--clip-mode", choices=CLIP_MODES,
                   help="--clip-norm over all gradients together or each tensor alone" + d("clip_mode"))
    g.add_argument("--nonfinite", choices=NONFINITE_POLICIES,
                   help="on a NaN/inf loss or gradient: stop with a diagnosis, or drop that step" + d("nonfinite"))
    g.add_argument("--divergence", type=optional(above_one), metavar="F",
                   help="stop with a diagnosis when the smoothed training loss exceeds F times the untrained "
                        "model's loss; 'off' turns the check off" + d("divergence"))
    return g


def add_budget_arguments(p, config_cls, epochs=False, title="budget"):
    g = p.add_argument_group(title)
    g.add_argument("--steps", type=positive_int, help="train until this many steps (updates) in total"
                   + _default(config_cls, "steps"))
    if epochs:
        g.add_argument("--epochs", type=positive_int, help="train for this many passes over the training text")
    g.add_argument("--max-time", type=duration, metavar="TIME",
                   help="stop this session after TIME of wall clock, e.g. 90, 90s, 10m, 1.5h")
    return g


def add_logging_arguments(p, config_cls):
    g = p.add_argument_group("logging")
    g.add_argument("--log-every", type=positive_int, metavar="N", help="a metrics row every N steps"
                   + _default(config_cls, "log_every", getattr(config_cls(), "log_every") or "each evaluation"))
    if not any("--eval-every" in a.option_strings for a in p._actions):
        add_eval_every(g, config_cls)
    g.add_argument("--trace-every", type=positive_int, metavar="N",
                   help="store a gradient lag profile in traces/ every N steps (default: never)")
    return g


def add_eval_every(group, config_cls):
    group.add_argument("--eval-every", type=positive_int, metavar="N",
                       help="evaluate, print a log line and save a checkpoint every N steps"
                       + _default(config_cls, "eval_every"))


def add_run_folder_arguments(p, default_folder):
    g = p.add_argument_group("run folder")
    g.add_argument("--out", metavar="RUN_FOLDER", help=f"where to write the run (default: {default_folder})")
    g.add_argument("--resume", metavar="RUN_FOLDER", help="continue the run in RUN_FOLDER exactly where it stopped")
    g.add_argument("--overwrite", action="store_true", help="replace the run files already in --out")
    g.add_argument("--quiet", action="store_true", help="print only the final summary (and errors)")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="draw a progress bar (default: only when stderr is a terminal)")
    return g


def above_one(text):
    value = finite_float(text)
    if value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 1, got {text}")
    return value
