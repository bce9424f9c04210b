"""The activations of the tanh-family RNN in NumPy: their codes, f, and f' from f's output.

`rnnvanish.reference.recurrent` re-exports every name here; the Numba kernels repeat the codes.
"""
import numpy as np

# Activation codes (kernels take ints, not strings). The derivative is written in terms
# of the output y = f(a), which is what forward keeps.
TANH, SIGMOID, RELU = 0, 1, 2
ACTIVATIONS = {"tanh": TANH, "sigmoid": SIGMOID, "relu": RELU}


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def activate(a, act):
    if act == TANH:
        return np.tanh(a)
    if act == SIGMOID:
        return sigmoid(a)
    return np.maximum(a, 0.0)


def activate_grad(y, act):
    """f'(a) from y = f(a): tanh 1 - y^2, sigmoid y (1 - y), relu [y > 0]."""
    if act == TANH:
        return 1.0 - y * y
    if act == SIGMOID:
        return y * (1.0 - y)
    return (y > 0.0).astype(y.dtype)
