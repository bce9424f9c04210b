"""rnnvanish: recurrent networks and backpropagation through time, made visible.

    from rnnvanish import TanhRNN, LSTM, GRU, IRNN, IndRNN, MinGRU, MinLSTM, LRU, LanguageModel

Names are loaded on first use, so `import rnnvanish` (and `rnnvanish --help`) stays quick
and Numba is imported only when a Numba kernel first runs.
"""
import importlib

from ._version import __version__

_EXPORTS = {
    "TanhRNN": "cells", "LSTM": "cells", "GRU": "cells", "IRNN": "cells", "IndRNN": "cells",
    "MinGRU": "mincells", "MinLSTM": "mincells", "LRU": "lru",
    "make_cell": "cells", "CELLS": "cells",
    "LanguageModel": "model", "Stack": "stack", "CellMasks": "cells",
    "clip_by_value": "clip", "clip_by_norm": "clip", "clip_by_global_norm": "clip", "global_norm": "clip",
    "check_finite": "clip",
    "SGD": "optim", "Momentum": "optim", "Adagrad": "optim", "RMSprop": "optim", "Adam": "optim",
    "make_optimizer": "optim",
    "initialize": "init", "scale_to_radius": "init", "spectral_radius": "init",
    "Vocab": "data", "read_text": "data", "default_corpus": "data",
    "to_torch_state_dict": "interop", "from_torch_state_dict": "interop",
    "check_language_model": "gradcheck",
    "RnnvanishError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in ("trace",):
        return importlib.import_module(".tracer", __name__).trace
    raise AttributeError(f"module 'rnnvanish' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
