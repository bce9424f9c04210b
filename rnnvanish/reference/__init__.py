"""The NumPy reference kernels (see recurrent.py): every public name, importable from here."""
from .recurrent import *  # noqa: F401,F403
from .recurrent import ACTIVATIONS, RELU, SIGMOID, TANH, activate, activate_grad, sigmoid  # noqa: F401
