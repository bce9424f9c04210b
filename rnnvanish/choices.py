"""The names a user chooses from, named once, and which cell each cell option belongs to.

The command line offers these names (without importing any numerical code, so `--help` stays
quick); the library checks against them. `cell_options` is the one place that routes the
cell-specific settings (activation, GRU form, forget bias, chrono, the IndRNN's horizon) and the
initialisers to a cell. `CELLS` names the cells of `rnnvanish.cells.CELLS`, the registry, in
its order (a test holds the two equal).
"""
from .errors import RnnvanishError

CELLS = ("tanh", "lstm", "gru", "irnn", "indrnn", "mingru", "minlstm", "lru", "exprnn", "lnlstm")
CLASSIC_CELLS = ("tanh", "lstm", "gru")          # what a sweep compares unless told otherwise
ACTIVATIONS = ("tanh", "sigmoid", "relu")        # of the tanh-family cell
NONLINEARITIES = ("modrelu", "tanh")             # of the expRNN (modReLU: the paper's default)
DTYPES = ("float64", "float32")
BACKENDS = ("numba", "numpy")
CLIP_MODES = ("global", "per-tensor")
NONFINITE_POLICIES = ("raise", "skip")
BIAS_INITS = ("zeros", "pytorch")                # how the biases of tanh, LSTM, GRU start

# setting -> (the cells that take it, the constructor argument it becomes)
CELL_SPECIFIC = {
    "activation": (("tanh",), "activation"),
    "forget_bias": (("lstm",), "forget_bias"),
    "reset_before": (("gru",), "reset_after"),
    "chrono": (("lstm", "gru"), "chrono"),
    # how the biases start: zeros or PyTorch's draws (the cells PyTorch has)
    "init_b": (("tanh", "lstm", "gru"), "init_b"),
    # the sequence length the IndRNN's bound |u| <= gamma^(1/T) is for; filled in from the
    # run (the task's length, the language model's window), not a flag of its own
    "horizon": (("indrnn",), "horizon"),
    "nonlinearity": (("exprnn",), "nonlinearity"),
    # the IndRNN's long-memory start, given to the top layer of a stack only (see rnnvanish.stack)
    "memory_floor": (("indrnn",), "epsilon"),
}
# settings every cell takes: initialisers of the two weight matrices and the spectral radius
CELL_GENERAL = ("init_xh", "init_hh", "radius")


def check_cell(cell: str) -> str:
    if cell not in CELLS:
        raise RnnvanishError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
    return cell


def cell_options(cell: str, settings, defaults=None) -> dict:
    """The constructor options of `cell` from `settings` (an object or a dict).

    A setting left at None takes `defaults[name]` when given there, else the cell's own
    default. A cell-specific setting given a value for a cell that has no such option is a
    user error: it would otherwise be ignored without a word.
    """
    check_cell(cell)
    get = settings.get if isinstance(settings, dict) else (lambda name: getattr(settings, name, None))
    defaults = defaults or {}
    if get("chrono") is not None and get("forget_bias") is not None:
        raise RnnvanishError("--chrono sets the forget-gate biases itself; give --forget-bias or --chrono, not both")
    options = {}
    for name, (owners, argument) in CELL_SPECIFIC.items():
        value = get(name)
        if value is not None and cell not in owners:
            raise RnnvanishError(f"--{name.replace('_', '-')} applies to the {' and '.join(owners)} "
                                 f"cell{'s' if len(owners) > 1 else ''} only, not {cell}")
        if value is None and cell in owners:
            value = defaults.get(name)
        if value is not None:
            options[argument] = (not value) if name == "reset_before" else value
    for name in CELL_GENERAL:
        if get(name) is not None:
            options[name] = get(name)
    return options


def cells_taking(name: str) -> tuple:
    """The cells that take the cell-specific setting `name` (every cell for the others)."""
    return CELL_SPECIFIC[name][0] if name in CELL_SPECIFIC else CELLS
