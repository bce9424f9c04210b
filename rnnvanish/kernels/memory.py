"""Keep freed memory in the process, so a training loop does not fault in fresh pages each step.

Every window allocates the same arrays again (states, gates, gradients): tens of kilobytes to
megabytes each. glibc's malloc serves a block above its mmap threshold with a fresh mapping
and gives it back to the system on free, and returns the free top of its heap once that
exceeds the trim threshold; both thresholds move with the program's history. When a step's
arrays land on the wrong side of them, each step maps and zero-fills the same memory again:
measured for an LSTM language model at H = 128, B = 1, T = 25, 200 page faults and +75 %
time per window, depending only on which arrays happened to be allocated before.

`keep_freed_memory()` fixes both thresholds high (glibc's `mallopt`), so freed blocks are
reused: the process keeps its peak footprint instead of giving it back between steps. It is
called when the kernels are imported. It changes nothing when the C library is not glibc, or
when MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ is set in the environment (the user's
choice stands); RNNVANISH_KEEP_MEMORY=0 turns it off.
"""
import ctypes
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20        # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 512 * 2**20


def keep_freed_memory():
    """Raise glibc's mmap and trim thresholds; True when they were set, False when left alone."""
    if os.environ.get("RNNVANISH_KEEP_MEMORY", "1").strip() == "0":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt          # the C library the interpreter runs on
    except (OSError, AttributeError):                 # not glibc (no mallopt): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
