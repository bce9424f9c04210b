"""Every setting of a training run, typed and commented: one dataclass per objective.

`TrainConfig` holds what every run has (model, batches, optimisation, budget, logging);
`LanguageConfig` adds the text and truncated BPTT of a language model, `TaskConfig` (in
`rnnvanish.tasks.objective`) the task and its criterion. The command line fills them in, the
run folder's config.json records them (`to_dict`), and `from_dict` reads them back, refusing a
name it does not know. A cell-specific option left at None takes the cell's default
(`rnnvanish.choices.cell_options` routes them).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..choices import BACKENDS, CLIP_MODES, DTYPES, NONFINITE_POLICIES, NONLINEARITIES, check_cell
from ..errors import RnnvanishError


@dataclass
class TrainConfig:
    # -- model
    cell: str = "lstm"                  # tanh, lstm, gru, irnn or indrnn (rnnvanish.choices.CELLS)
    hidden: int = 128                   # hidden size H
    activation: str | None = None       # tanh cell: tanh (default), sigmoid or relu
    reset_before: bool | None = None    # GRU: reset gate before the recurrent product (Cho et al. 2014)
    forget_bias: float | None = None    # LSTM: forget-gate bias at the start
    chrono: float | None = None         # LSTM, GRU: forget/update-gate biases log U[1, T_max - 1] (Tallec & Ollivier)
    init_b: str | None = None           # tanh, LSTM, GRU: biases start at zeros or drawn as PyTorch's
    nonlinearity: str | None = None     # expRNN: modrelu (default) or tanh
    memory_floor: float | None = None   # IndRNN: the top layer's u starts in [eps^(1/T), U_max] (Li et al.'s code)
    init_xh: str | None = None          # initialiser of W_xh (None: the cell's)
    init_hh: str | None = None          # initialiser of W_hh (None: orthogonal)
    radius: float | None = None         # rescale each W_hh gate block to this spectral radius
    layers: int = 1                     # stacked recurrent layers, each with its own carry
    dropout: float = 0.0                # between layers and before the readout (inverted; none at evaluation)
    variational: bool = False           # dropout masks one per sequence, also on the recurrent state (Gal & Ghahramani)
    zoneout: float = 0.0                # each unit keeps its previous value with this probability (Krueger et al.)
    residual: bool = False              # add each layer's input (the output below) to its output, layers 2..L
    dtype: str = "float64"
    backend: str | None = None          # numba or numpy (None: $RNNVANISH_BACKEND, else numba)
    threads: int = 1                    # BLAS threads of the backend's matrix products
    seed: int = 0                       # initial weights, data order where random, samples
    # -- batches and truncated BPTT
    batch: int = 32                     # sequences (streams) per update
    truncate: int | None = None         # k2: each step's loss reaches back at most this many steps
    # -- optimisation
    optimizer: str = "adam"
    lr: float = 2e-3
    lr_schedule: str = "constant"
    recurrent_lr: float = 1.0           # the recurrent parameters (W_hh, the IndRNN's u, ...) learn at lr times this
    weight_decay: float = 0.0
    clip_value: float | None = None     # clamp every gradient entry to [-v, v] (before clip_norm)
    clip_norm: float | None = 5.0       # rescale gradients whose norm exceeds this
    clip_mode: str = "global"           # clip_norm over all gradients together, or per tensor
    nonfinite: str = "raise"            # a NaN/inf loss or gradient: stop with a diagnosis, or skip the step
    divergence: float | None = 4.0      # stop when the smoothed loss exceeds this times the untrained loss
    # -- budget (the first reached ends the session)
    steps: int | None = None            # total updates of the run
    max_time: float | None = None       # seconds of wall clock in this session, evaluations included
    # -- logging
    log_every: int | None = 10          # a metrics row every N steps (None: one per evaluation)
    eval_every: int = 200               # evaluate, log and checkpoint every N steps
    trace_every: int | None = None      # a gradient lag profile in traces/ every N steps

    # ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise RnnvanishError(f"unknown setting {unknown[0]!r}")
        return cls(**d)

    @classmethod
    def names(cls) -> tuple:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def check(self):
        """Every value in range, or RnnvanishError naming the flag; returns self."""
        check_cell(self.cell)
        _choice("dtype", self.dtype, DTYPES)
        if self.backend is not None:
            _choice("backend", self.backend, BACKENDS)
        _choice("clip-mode", self.clip_mode, CLIP_MODES)
        _choice("nonfinite", self.nonfinite, NONFINITE_POLICIES)
        if self.nonlinearity is not None:
            _choice("nonlinearity", self.nonlinearity, NONLINEARITIES)
        for name in ("hidden", "threads", "batch", "eval_every", "layers"):
            _whole(name, getattr(self, name), low=1)
        _whole("seed", self.seed, low=0)
        for name in ("truncate", "steps", "log_every", "trace_every"):
            if getattr(self, name) is not None:
                _whole(name, getattr(self, name), low=1)
        for name in ("lr", "recurrent_lr", "clip_value", "clip_norm", "divergence", "max_time", "radius"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise RnnvanishError(f"--{_flag(name)} must be a positive number, got {value!r}")
        for name in ("dropout", "zoneout"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
                raise RnnvanishError(f"--{name} is a probability in [0, 1), got {value!r}")
        if self.chrono is not None and not (isinstance(self.chrono, (int, float)) and math.isfinite(self.chrono)
                                            and self.chrono > 2):
            raise RnnvanishError(f"--chrono T_MAX must be above 2 (the time scales are drawn from U[1, T_MAX - 1]), "
                                 f"got {self.chrono!r}")
        if self.memory_floor is not None and not (isinstance(self.memory_floor, (int, float))
                                                  and 0.0 <= self.memory_floor < 1.0):
            raise RnnvanishError(f"--memory-floor is the share of its signal each IndRNN unit of the top layer keeps "
                                 f"over the sequence at the start, in [0, 1) (0: no floor); got {self.memory_floor!r}")
        if self.variational and not self.dropout:
            raise RnnvanishError("--variational chooses how --dropout draws its masks; give --dropout P too")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise RnnvanishError(f"--weight-decay must be zero or more, got {self.weight_decay!r}")
        if self.divergence is not None and self.divergence <= 1:
            raise RnnvanishError(f"--divergence must be above 1 (a multiple of the untrained loss), "
                                 f"got {self.divergence:g}")
        return self


# The language model's LSTM starts with forget-gate bias 0, PyTorch's (its two biases are drawn
# around 0), not the cell's 1.0: from the same weights otherwise, bias 0 learns faster per step on
# tiny-shakespeare (validation 2.18 against 2.28 nats/char at step 400; the LSTM's docstring has
# the measurements). Predicting the next character needs memory of tens of steps, not hundreds.
LM_FORGET_BIAS = 0.0

# ... and its biases (tanh, LSTM, GRU) start drawn as PyTorch draws them, not at zero: with the
# cell's own weights otherwise, that learns faster per step on tiny-shakespeare than zero biases
# (validation 2.066 against 2.180 nats/char at step 400) and keeps level with PyTorch's own
# initialisation over 3,000 steps (the LSTM's docstring has the curves). The tasks keep zeros.
LM_INIT_B = "pytorch"


@dataclass
class LanguageConfig(TrainConfig):
    """A language model over a token stream, trained with truncated BPTT (Williams & Peng's k1, k2)."""
    # -- data
    level: str = "char"                 # model characters or words
    vocab_size: int | None = None       # keep the N most frequent symbols
    min_count: int = 1                  # drop symbols seen fewer than N times
    val_frac: float = 0.05              # share of the text, from its end, held out for validation
    # -- truncated BPTT
    window: int = 64                    # k1: steps per window; the state is carried, the gradient is not
    epochs: int | None = None           # a budget in passes over the training text (instead of steps)
    # -- evaluation and samples
    eval_windows: int = 100             # at most N validation windows per evaluation (0: all)
    sample_every: int = 400             # a sample every N steps (0: only at the end)
    sample_length: int = 200
    sample_temperature: float = 0.8

    def check(self):
        super().check()
        _choice("level", self.level, ("char", "word"))
        _whole("window", self.window, low=1)
        if self.steps is not None and self.epochs is not None:
            raise RnnvanishError("give --steps or --epochs, not both")
        if not 0.0 <= self.val_frac < 1.0:
            raise RnnvanishError(f"--val-frac must be at least 0 and below 1, got {self.val_frac!r}")
        return self


def _flag(name):
    return name.replace("_", "-")


def _choice(name, value, choices):
    if value not in choices:
        raise RnnvanishError(f"--{_flag(name)} must be one of {', '.join(choices)}, got {value!r}")


def _whole(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < low:
        what = "a positive whole number" if low == 1 else "a whole number, zero or more"
        raise RnnvanishError(f"--{_flag(name)} must be {what}, got {value!r}")


STACK_SETTINGS = ("layers", "dropout", "variational", "zoneout", "residual")


def stack_options(config) -> dict:
    """The model constructor's stack options from a config."""
    return {name: getattr(config, name) for name in STACK_SETTINGS}
