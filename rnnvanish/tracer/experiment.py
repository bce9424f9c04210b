"""What to trace: fresh model settings, one of them varied, and the input sequences.

    base = Setting(cell="tanh", hidden=128)
    for s in vary(base, "radius", ["0.9", "1.0", "1.1"]):
        cell = s.build(input_size=8, seed=0)
    x, about = dense_inputs(T=100, B=32, I=8, scale=1.0, seed=0)

Inputs come from four sources, all seeded: random dense vectors N(0, scale^2) (the default),
random token ids, windows of a text corpus at random offsets, and the long-range tasks of
`rnnvanish.tasks`. Each source returns the array and a short description for the trace's meta.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..cells import CELLS, make_cell
from ..choices import CELLS as CELL_NAMES, NONLINEARITIES, cells_taking
from ..errors import RnnvanishError
from ..init import parse_init

# --compare KEY -> the Setting field it varies
COMPARE_KEYS = {"cell": "cell", "init": "init", "radius": "radius", "activation": "activation",
                "forget-bias": "forget_bias", "forget_bias": "forget_bias",
                "layers": "layers", "residual": "residual", "zoneout": "zoneout", "chrono": "chrono",
                "nonlinearity": "nonlinearity"}
DEPTH_FIELDS = ("layers", "residual", "zoneout")
SWITCH = {"on": True, "off": False, "yes": True, "no": False, "true": True, "false": False, "1": True, "0": False}
ACTIVATION_NAMES = ("tanh", "sigmoid", "relu")


@dataclass(frozen=True)
class Setting:
    """One fresh model: a cell and how its recurrent weights start.

    init is the W_hh initialiser spec of `rnnvanish.init` (None: the cell's default,
    orthogonal), applied to each gate's (H, H) block; radius rescales every block to that
    spectral radius afterwards (None: leave it)."""

    cell: str = "tanh"
    hidden: int = 128
    activation: str = "tanh"
    init: str | None = None
    radius: float | None = None
    forget_bias: float = 1.0
    reset_after: bool = True
    chrono: float | None = None
    nonlinearity: str | None = None       # expRNN: modrelu or tanh (None: the cell's, modrelu)
    layers: int = 1
    residual: bool = False
    zoneout: float = 0.0

    @property
    def stacked(self) -> bool:
        """More than one layer, a residual or zoneout: traced across depth (rnnvanish.tracer.depth)."""
        return self.layers > 1 or self.residual or self.zoneout > 0

    def label(self, varied=None) -> str:
        """Legend text: the varied setting alone when there is one, else the cell and its extras."""
        cell = CELLS[self.cell].title.format(activation=self.activation)
        if self.nonlinearity is not None and self.cell in cells_taking("nonlinearity"):
            cell = f"{cell} ({self.nonlinearity})"
        init = f"{pretty_init(self.init)} init"
        radius = f"radius {self.radius:g}" if self.radius is not None else ""
        if varied in ("cell", "activation", "nonlinearity"):
            return cell
        if varied == "init":
            return init
        if varied == "radius":
            return radius
        if varied == "forget_bias":
            return f"forget bias {self.forget_bias:g}"
        if varied == "chrono":
            return "no chrono" if self.chrono is None else f"chrono {self.chrono:g}"
        depth = ", ".join(p for p in (f"{self.layers} layers" if self.layers > 1 else "",
                                      "residual" if self.residual else "",
                                      f"zoneout {self.zoneout:g}" if self.zoneout else "") if p)
        if varied in DEPTH_FIELDS:
            return {"layers": f"{self.layers} layer{'s' if self.layers > 1 else ''}",
                    "residual": "residual" if self.residual else "no residual",
                    "zoneout": f"zoneout {self.zoneout:g}"}[varied]
        return ", ".join(p for p in (cell, init if self.init else "", radius, depth) if p)

    def build(self, input_size, seed=0, dtype="float64", backend=None):
        """The cell, freshly initialised (W_xh Glorot uniform, W_hh by `init`)."""
        options = {"init_hh": self.init, "radius": self.radius, "seed": seed, "dtype": dtype, "backend": backend}
        # the cell-specific settings, each to the cells that take it (rnnvanish.choices)
        for setting, field, value in (("activation", "activation", self.activation),
                                      ("forget_bias", "forget_bias", self.forget_bias),
                                      ("reset_before", "reset_after", self.reset_after),
                                      ("chrono", "chrono", self.chrono),
                                      ("nonlinearity", "nonlinearity", self.nonlinearity)):
            if self.cell in cells_taking(setting) and value is not None:
                options[field] = value
        try:
            if self.stacked:
                from ..stack import Stack
                return Stack(self.cell, input_size, self.hidden, self.layers, residual=self.residual,
                             zoneout=self.zoneout, **options)
            return make_cell(self.cell, input_size, self.hidden, **options)
        except ValueError as err:
            raise RnnvanishError(str(err)) from None

    def check(self):
        """The setting itself, or RnnvanishError naming what is wrong with it."""
        if self.cell not in CELL_NAMES:
            raise RnnvanishError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELL_NAMES)}")
        if self.activation not in ACTIVATION_NAMES:
            raise RnnvanishError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATION_NAMES)}")
        if self.nonlinearity is not None and self.nonlinearity not in NONLINEARITIES:
            raise RnnvanishError(f"unknown nonlinearity {self.nonlinearity!r}; choose one of {', '.join(NONLINEARITIES)}")
        if self.init is not None:
            parse_init(self.init)                                      # raises on a bad spec
        if self.radius is not None and not (np.isfinite(self.radius) and self.radius > 0):
            raise RnnvanishError(f"the spectral radius must be a positive number, got {self.radius:g}")
        if int(self.layers) != self.layers or self.layers < 1:
            raise RnnvanishError(f"layers must be a positive whole number, got {self.layers!r}")
        if not 0 <= self.zoneout < 1:
            raise RnnvanishError(f"zoneout is a probability in [0, 1), got {self.zoneout:g}")
        return self


_INIT_NAMES = {"normal": "N(0, {variance:g})", "uniform": "U(±{scale:g})", "orthogonal": "orthogonal",
               "glorot_uniform": "Glorot uniform", "glorot_normal": "Glorot normal", "he_normal": "He normal",
               "he_uniform": "He uniform", "lecun_normal": "LeCun normal", "lecun_uniform": "LeCun uniform",
               "identity": "identity", "pytorch": "PyTorch default", "zeros": "zeros"}
_INIT_DEFAULTS = {"normal": {"std": 0.01}, "uniform": {"scale": 0.08}}


def pretty_init(spec):
    """'normal:1.0' -> 'N(0, 1²)', 'glorot_uniform' -> 'Glorot uniform'; None -> the cells' default."""
    if spec is None:
        return "orthogonal"
    name, options = parse_init(spec)
    options = {**_INIT_DEFAULTS.get(name, {}), **options}
    if "std" in options:
        options["variance"] = options["std"] ** 2
    text = _INIT_NAMES.get(name, name)
    try:
        text = text.format(**options)
    except (KeyError, ValueError):
        return spec
    gain = options.get("gain")
    return f"{text} ×{gain:g}" if gain not in (None, 1.0) else text


def parse_compare(text):
    """'KEY=V1,V2,...' -> (field name, [values as strings])."""
    key, eq, values = text.partition("=")
    key = key.strip().lower()
    if not eq or not values.strip():
        raise RnnvanishError(f"--compare wants KEY=V1,V2,... (e.g. cell=tanh,lstm,gru), got {text!r}")
    if key not in COMPARE_KEYS:
        raise RnnvanishError(f"--compare cannot vary {key!r}; "
                             "choose one of cell, init, radius, activation, forget-bias, chrono, nonlinearity, layers, "
                             "residual, zoneout")
    items = [v.strip() for v in values.split(",")]
    if any(not v for v in items):
        raise RnnvanishError(f"--compare {text!r} has an empty value")
    if len(set(items)) != len(items):
        raise RnnvanishError(f"--compare {text!r} lists a value twice")
    return COMPARE_KEYS[key], items


def _number(field, text):
    try:
        value = float(text)
    except ValueError:
        raise RnnvanishError(f"{field.replace('_', ' ')} must be a number, got {text!r}") from None
    if not np.isfinite(value):
        raise RnnvanishError(f"{field.replace('_', ' ')} must be finite, got {text!r}")
    return value


def vary(base: Setting, field, values):
    """One Setting per value of `field` (values as strings, converted and checked)."""
    out = []
    for text in values:
        if field in ("radius", "forget_bias", "zoneout"):
            value = _number(field, text)
        elif field == "chrono":
            value = None if text.lower() in ("none", "off") else _number(field, text)
            if value is not None and value <= 2:
                raise RnnvanishError(f"chrono T_MAX must be above 2 (time scales from U[1, T_MAX - 1]), got {text!r}")
        elif field == "layers":
            value = _number(field, text)
            if value != int(value):
                raise RnnvanishError(f"layers must be whole numbers, got {text!r}")
            value = int(value)
        elif field == "residual":
            if text.lower() not in SWITCH:
                raise RnnvanishError(f"residual is on or off, got {text!r}")
            value = SWITCH[text.lower()]
        elif field in ("cell", "activation", "nonlinearity"):
            value = text.lower()
        else:
            value = text
        out.append(replace(base, **{field: value}).check())
    return out


# --------------------------------------------------------------------------- inputs

def dense_inputs(T, B, I, scale=1.0, seed=0):
    """x (T, B, I) with entries N(0, scale^2)."""
    x = scale * np.random.default_rng([seed, 11]).standard_normal((T, B, I))
    return x, f"random dense inputs N(0, {scale * scale:g}), I={I}"


def token_inputs(T, B, V, seed=0):
    """ids (T, B) uniform on 0..V-1."""
    ids = np.random.default_rng([seed, 13]).integers(0, V, size=(T, B))
    return ids, f"random tokens, V={V}"


def corpus_windows(ids, T, B, seed=0, name="corpus"):
    """B windows of T consecutive token ids at random offsets: (T, B)."""
    ids = np.asarray(ids)
    if ids.size < T:
        raise RnnvanishError(f"the corpus {name} has {ids.size} tokens, fewer than the {T} steps asked for")
    starts = np.random.default_rng([seed, 17]).integers(0, ids.size - T + 1, size=B)
    return ids[starts[None, :] + np.arange(T)[:, None]], f"windows of {name}"


def corpus_inputs(source, T, B, seed=0, vocab=None):
    """(ids (T, B), description, vocab): character windows of a built-in corpus or a text file.

    Without `vocab` the characters of the text make one; with it (a checkpoint's) unknown
    characters become its replacement symbol."""
    from ..data import Vocab, load_corpus

    name, text = load_corpus(source)
    if vocab is None:
        vocab = Vocab.build(text, "char")
    ids = vocab.encode(text, unknown="replace")
    x, about = corpus_windows(ids, T, B, seed, name=name)
    return x, about, vocab


def task_inputs(name, T, B, seed=0):
    """(inputs, description, input_size) from a long-range task, every sequence of length T."""
    from ..tasks import make_task

    task = make_task(name)
    if "jitter" in task.settings:
        task = make_task(name, jitter=False)                           # the answer at the same row for all
    batch = task.generate(B, T, rng=np.random.default_rng([seed, 19]))
    return batch.inputs, f"{name} task ({task.reference})", task.input_size
