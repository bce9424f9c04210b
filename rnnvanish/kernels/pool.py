"""One pool of threads for the kernels and for the BLAS they call.

The jitted kernels' products run in SciPy's OpenBLAS, which has a pool of threads of its own;
Numba's parallel loops (`prange`) run on Numba's pool. Two pools on two cores get in each
other's way: a pool's threads spin for a while after each job before they sleep, so a Numba
loop right after a two-thread product finds one core taken by OpenBLAS's spinning thread, and
the product after it finds Numba's. Measured (LSTM window, H 256, B 32, float32, two threads):
a 800 x 256 x 1024 product took 2.4 ms alone and 5.1 ms between Numba loops.

OpenBLAS (0.3.27 and later) can hand its parallel jobs to a function of the caller
(`openblas_set_threads_callback_function`). `blas_callback` below runs them on Numba's threads,
one job per thread, so the kernels and the products they call share one pool: the same
products took 2.4 ms between Numba loops that way, as fast as OpenBLAS's own pool.
`rnnvanish.threads.limit_threads` installs it for the block it governs (n > 1 threads on the
numba backend) and sets `PARTS` to n; the batched windows of the LSTM, the tanh RNN and the
reset-after GRU then split their units into n parts, one per thread, whose per-step products
run on packed weights, not in BLAS ("split across threads", "packed products" and "panels of
columns" in recurrent.py), and Adam's pass splits its large arrays (optim.py).

OpenBLAS's jobs wait for each other (a GEMM's threads share their packed blocks), so they
must all run at once: the callback is installed only while Numba has as many threads as
OpenBLAS, only on GNU OpenMP's threading layer (it gives each of n iterations of a parallel loop
its own thread and takes launches from several threads at once; TBB may run two iterations on
one thread, and the workqueue layer stops the process when two threads launch at once), and
it is never called from inside a parallel loop (the split kernels' parts do not call BLAS).
"""
import numpy as np
from llvmlite import ir
from numba import cfunc, njit, prange, types
from numba.extending import intrinsic

# Parallel functions loaded from Numba's cache need the threading layer started first.
from numba.np.ufunc.parallel import _launch_threads

_launch_threads()

# The threading layers on which the pool is shared (see above).
CONCURRENT_LAYERS = ("omp",)


@intrinsic
def _call_job(typingctx, job, i, data, arg):
    """Call the C function at address `job` as job(int i, void *data, int arg)."""
    sig = types.void(types.uintp, types.int32, types.uintp, types.int32)

    def codegen(context, builder, signature, args):
        job, i, data, arg = args
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(32), ptr, ir.IntType(32)])
        builder.call(builder.inttoptr(job, fnty.as_pointer()), [i, builder.inttoptr(data, ptr), arg])
        return context.get_dummy_value()
    return sig, codegen


@njit(cache=True, nogil=True, parallel=True)
def _run_jobs(job, numjobs, size, data, arg):
    """OpenBLAS's jobs 0 .. numjobs-1, job i's data at data + i * size, one per thread."""
    for i in prange(numjobs):
        _call_job(job, np.int32(i), data + np.uintp(i) * size, arg)


@cfunc(types.void(types.int32, types.uintp, types.int32, types.uintp, types.uintp, types.int32), cache=True)
def blas_callback(sync, job, numjobs, size, data, arg):
    """OpenBLAS's openblas_threads_callback: run its jobs on Numba's threads and return when all are done."""
    _run_jobs(job, numjobs, size, data, arg)


# How many parts the split kernels cut a window into: limit_threads sets it while the pool is shared.
PARTS = 1
def share(set_callback, n):
    """With n > 1, make Numba's n threads the OpenBLAS's whose openblas_set_threads_callback_function
    is `set_callback`; with n = 1, give it back its own pool. Returns the function that restores
    what was before (nested blocks restore in reverse order)."""
    before = PARTS

    def apply(parts):
        global PARTS
        PARTS = parts
        set_callback(blas_callback.address if parts > 1 else None)

    apply(n)
    return lambda: apply(before)


# Below this many units per part the split costs more in synchronisation than it saves.
SPLIT_MIN_HIDDEN = 32


def parts(hidden):
    """How many parts a window of `hidden` units is split into now (1: not split)."""
    return PARTS if PARTS > 1 and hidden >= SPLIT_MIN_HIDDEN * PARTS else 1
