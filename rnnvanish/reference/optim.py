"""NumPy reference of `rnnvanish.optim.Adam`'s update; its twin is `rnnvanish.kernels.optim.adam_update`.

    m_t = beta1 m_{t-1} + (1 - beta1) g_t
    v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
    p_t = p_{t-1} - lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)
The kernel takes the same operations in the same order with every scalar in the arrays'
dtype, so the two give the same bits (a test holds them equal).
"""
import math

import numpy as np


def adam_update(p, g, m, v, lr, beta1, beta2, eps, t, scale=1.0):
    """Adam's update at step t = 1, 2, ..., in place on p, m and v, from the gradient g * scale."""
    if scale != 1.0:
        g = g * p.dtype.type(scale)                           # the clipped gradient
    m *= beta1
    m += (1.0 - beta1) * g                                    # m_t = b1 m_{t-1} + (1 - b1) g_t
    v *= beta2
    v += (1.0 - beta2) * g * g                                # v_t = b2 v_{t-1} + (1 - b2) g_t^2
    step_size = lr / (1.0 - beta1 ** t)
    denom = np.sqrt(v) / math.sqrt(1.0 - beta2 ** t) + eps
    p -= step_size * m / denom
