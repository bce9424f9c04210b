"""Numba twin of `rnnvanish.reference.optim.adam_update`, the update of `rnnvanish.optim.Adam`:
one pass over the arrays instead of about a dozen NumPy passes and their temporaries, the
clipping factor applied on the way (g * scale: clipping by global norm and the update in one
pass, the same bits as scaling g first). At
B = 1 the NumPy update is the largest part of a training step (see `rnnvanish bench`);
`optim.Adam` calls this on the numba backend. While the run's threads are one pool
(rnnvanish.kernels.pool), a large array's pass is split across them (`_adam_pass_split`).

    m_t = beta1 m_{t-1} + (1 - beta1) g_t
    v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
    p_t = p_{t-1} - lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)
The operations and their order are those of the NumPy reference, with every scalar in the
arrays' dtype, so float64 and float32 give the same bits as the reference.
"""
import math

import numpy as np
from numba import njit, prange

from . import pool


@njit(cache=True, nogil=True, error_model="numpy")
def _adam_pass(p, g, m, v, b1, one_minus_b1, b2, one_minus_b2, step_size, root_bias2, eps, scale):
    p, g, m, v = p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)
    for i in range(p.shape[0]):
        g_i = g[i] * scale                                    # the clipped gradient
        m[i] = m[i] * b1 + one_minus_b1 * g_i                 # m_t = b1 m_{t-1} + (1 - b1) g_t
        v[i] = v[i] * b2 + one_minus_b2 * g_i * g_i           # v_t = b2 v_{t-1} + (1 - b2) g_t^2
        p[i] -= step_size * m[i] / (np.sqrt(v[i]) / root_bias2 + eps)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def _adam_pass_split(p, g, m, v, b1, one_minus_b1, b2, one_minus_b2, step_size, root_bias2, eps, scale, parts):
    """_adam_pass over `parts` runs of the arrays, one per thread: each entry's update is the
    same, so are its bits."""
    p, g, m, v = p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)
    n = p.shape[0]
    for k in prange(parts):
        i0, i1 = k * n // parts, (k + 1) * n // parts
        _adam_pass(p[i0:i1], g[i0:i1], m[i0:i1], v[i0:i1], b1, one_minus_b1, b2, one_minus_b2, step_size,
                   root_bias2, eps, scale)


# From this many entries an array's update is split across the threads of a shared pool
# (rnnvanish.kernels.pool); a smaller one costs less than the parallel loop's start.
SPLIT_MIN_SIZE = 1 << 15


def _pass(p, g, m, v, scalars):
    parts = pool.PARTS if p.size >= SPLIT_MIN_SIZE else 1
    if parts > 1:
        _adam_pass_split(p, g, m, v, *scalars, parts)
    else:
        _adam_pass(p, g, m, v, *scalars)


def adam_update(p, g, m, v, lr, beta1, beta2, eps, t, scale=1.0):
    """Adam's update at step t = 1, 2, ..., in place on p, m and v, from the gradient g * scale."""
    s = p.dtype.type
    scalars = (s(beta1), s(1.0 - beta1), s(beta2), s(1.0 - beta2),
               s(lr / (1.0 - beta1 ** t)), s(math.sqrt(1.0 - beta2 ** t)), s(eps), s(scale))
    g = np.ascontiguousarray(g, dtype=p.dtype)
    if p.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous:
        _pass(p, g, m, v, scalars)
        return
    # Another layout: the pass runs on C-ordered copies (elementwise, so the same bits), written back.
    p_c, m_c, v_c = np.ascontiguousarray(p), np.ascontiguousarray(m), np.ascontiguousarray(v)
    _pass(p_c, g, m_c, v_c, scalars)
    p[...], m[...], v[...] = p_c, m_c, v_c
