"""Choosing the kernel implementation: the Numba kernels (default) or the NumPy reference.

    backend="numba"   rnnvanish.kernels    (jitted, fast; the default)
    backend="numpy"   rnnvanish.reference  (the math, to be read)

`RNNVANISH_BACKEND=numpy` in the environment selects the reference everywhere a backend
is not given explicitly. Both modules expose the same functions with the same arguments.
"""
import importlib
import os

from .errors import RnnvanishError

BACKENDS = {"numba": "rnnvanish.kernels", "numpy": "rnnvanish.reference"}
DEFAULT_BACKEND = "numba"


def resolve_backend(backend=None):
    """The backend name in force: the argument, else $RNNVANISH_BACKEND, else numba."""
    name = backend or os.environ.get("RNNVANISH_BACKEND") or DEFAULT_BACKEND
    name = name.strip().lower()
    if name not in BACKENDS:
        raise RnnvanishError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


def get_kernels(backend=None):
    """The module of kernels for `backend` (imported on first use: Numba loads only when needed)."""
    return importlib.import_module(BACKENDS[resolve_backend(backend)])
