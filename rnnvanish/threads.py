"""How many threads the matrix products use: `limit_threads(n, backend)`.

NumPy and SciPy wheels each bring their own OpenBLAS (numpy.libs/libscipy_openblas64_*,
scipy.libs/libscipy_openblas*), each with its own pool of threads. The jitted kernels' np.dot
calls SciPy's; NumPy's array products (clipping's norms, the NumPy reference) call NumPy's.
After a call, an OpenBLAS pool's threads spin for a while before they sleep, so when both
pools have two threads on a two-core machine, every switch from one library to the other
finds the cores taken by the other pool's spinning threads. Measured (LSTM language model,
H = 512, B = 32, float32, 2 threads): one window took 62 ms with NumPy's pool at one thread
and 131 ms with it at two, and the clipping norm 1.7 ms against 13 ms.

So the library a backend runs on gets the n threads and every other OpenBLAS gets one:

    backend "numba"   SciPy's OpenBLAS n, NumPy's 1       (the kernels)
    backend "numpy"   NumPy's OpenBLAS n, SciPy's 1       (the reference)
    backend "torch"   torch n, every OpenBLAS 1           (torch brings its own BLAS)

Numba's own thread count and torch's are set to n as well. A library is told apart by the
folder it was loaded from (`numpy.libs`, `scipy.libs`); one shared by both (a system OpenBLAS)
gets n. Other BLAS libraries (MKL) are not reached: set OMP_NUM_THREADS / MKL_NUM_THREADS
before starting Python instead.

With n > 1 on the numba backend, the kernels' OpenBLAS also runs its jobs on Numba's n
threads instead of a pool of its own (`rnnvanish.kernels.pool`), so that the kernels' parallel
loops and the products between them share one pool; where that cannot be done (an OpenBLAS
older than 0.3.27, a threading layer other than GNU OpenMP's), the products keep OpenBLAS's
pool and the recurrences run as on one thread.
"""
import contextlib
import ctypes
import os
import sys

_OPENBLAS_SETTERS = (("openblas_set_num_threads", "openblas_get_num_threads"),
                     ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                     ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                     ("openblas_set_num_threads64_", "openblas_get_num_threads64_"))

# The folder of the OpenBLAS each backend runs on; the others get one thread.
_OWN_FOLDER = {"numba": "scipy.libs", "numpy": "numpy.libs", "torch": None}


def loaded_openblas():
    """[(path, set, get)]: the thread-count functions of every OpenBLAS mapped into this process (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return []
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _OPENBLAS_SETTERS:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                found.append((path, getattr(lib, set_name), getattr(lib, get_name)))
                break
    return found


def blas_threads_for(path, n, backend):
    """The thread count the OpenBLAS at `path` gets when `backend` runs with n threads."""
    own = _OWN_FOLDER[backend]
    folder = os.path.basename(os.path.dirname(path))
    if folder not in _OWN_FOLDER.values():
        return 1 if backend == "torch" else n           # a BLAS shared by NumPy and SciPy
    return n if folder == own else 1


def _share_pool(path, n):
    """Hand the OpenBLAS at `path` Numba's n threads, or with n = 1 its own pool back
    (rnnvanish.kernels.pool.share); returns the function that undoes it. Where it cannot be
    done here (an OpenBLAS without the callback, Numba with fewer threads, a threading layer
    other than pool.CONCURRENT_LAYERS) the pool is not shared."""
    import numba

    from .kernels import pool

    lib = ctypes.CDLL(path)
    set_callback = getattr(lib, "openblas_set_threads_callback_function", None)
    if set_callback is None:
        return lambda: None
    set_callback.argtypes, set_callback.restype = [ctypes.c_void_p], None
    if numba.get_num_threads() != n or numba.threading_layer() not in pool.CONCURRENT_LAYERS:
        n = 1
    return pool.share(set_callback, n)


@contextlib.contextmanager
def limit_threads(n, backend="numba"):
    """Run the block with n threads for `backend` ("numba", "numpy" or "torch"); restore after."""
    import numba
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, the one jitted np.dot calls)

    if backend not in _OWN_FOLDER:
        raise ValueError(f"backend must be one of {', '.join(_OWN_FOLDER)}, got {backend!r}")
    restore = []
    old_numba = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    restore.append(lambda: numba.set_num_threads(old_numba))
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        old_torch = torch.get_num_threads()
        torch.set_num_threads(n)
        restore.append(lambda: torch.set_num_threads(old_torch))
    for path, set_threads, get_threads in loaded_openblas():
        old = get_threads()
        set_threads(blas_threads_for(path, n, backend))
        restore.append(lambda s=set_threads, o=old: s(o))
        if os.path.basename(os.path.dirname(path)) == _OWN_FOLDER["numba"]:
            restore.append(_share_pool(path, n if backend == "numba" else 1))
    try:
        yield
    finally:
        for undo in reversed(restore):
            undo()
