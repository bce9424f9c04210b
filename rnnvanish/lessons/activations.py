"""Activation functions, their derivatives, and the supremum of each derivative.

Backpropagation multiplies by f'(a) once per layer (once per time step in an RNN), so

    gamma = sup_a |f'(a)|

bounds how much one unit can pass back: the chain-product bound (gamma * sigma_max(W))^n of
Pascanu et al. 2013 uses it. Every entry of `ACTIVATIONS` is `(f, f', gamma)`.

    name        f(a)                                   f'(a)                               gamma
    sigmoid     1 / (1 + e^-a)                         s (1 - s)                           1/4   at a = 0
    tanh        tanh a                                 1 - tanh^2 a                        1     at a = 0
    relu        max(a, 0)                              [a > 0]                             1
    leaky_relu  a if a > 0 else alpha a                1 if a > 0 else alpha               1     (never 0)
    elu         a if a > 0 else alpha (e^a - 1)        1 if a > 0 else alpha e^a           max(1, alpha)
    selu        lam * elu_alpha(a)                     lam if a > 0 else lam alpha e^a     lam alpha ~ 1.758 as a -> 0-
    gelu        a Phi(a)                               Phi(a) + a phi(a)                   Phi(sqrt 2) + 1/(e sqrt pi) at a = sqrt 2
    silu        a s(a)                                 s (1 + a (1 - s))                   ~1.0998 at a tanh(a/2) = 2
    softplus    log(1 + e^a)                           s(a)                                1     as a -> +inf (never reached)

(s = sigmoid, Phi / phi = standard normal cdf / density.) Where f' jumps at a = 0 the value
at 0 is the left limit, the convention `a > 0` gives.
SELU's constants are those of Klambauer et al. 2017 (the fixed point mean 0, variance 1 of a
LeCun-normal layer); the other gammas are worked out from f'' = 0 (GELU: f'' = phi (2 - a^2);
SiLU: f'' = s' (2 - a tanh(a/2))).
"""
import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import erf

from ..errors import RnnvanishError

SELU_LAMBDA = 1.0507009873554804934193349852946          # Klambauer et al. 2017, eq. (14)
SELU_ALPHA = 1.6732632423543772848170429916717
LEAKY_ALPHA = 0.01
ELU_ALPHA = 1.0


def sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))                    # = 1 / (1 + e^-a), no overflow


def _normal_pdf(a):
    return np.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)


def _normal_cdf(a):
    return 0.5 * (1.0 + erf(a / math.sqrt(2.0)))


def _negative_part_exp(a):
    return np.exp(np.minimum(a, 0.0))                        # e^a where it is used, no overflow elsewhere


def leaky_relu(alpha=LEAKY_ALPHA):
    """(f, f', gamma) of the leaky ReLU with slope alpha (0 < alpha) for a < 0."""
    return (lambda a: np.where(a > 0, a, alpha * a),
            lambda a: np.where(a > 0, 1.0, alpha),
            max(1.0, alpha))


def elu(alpha=ELU_ALPHA, scale=1.0):
    """(f, f', gamma) of scale * ELU_alpha; SELU is elu(SELU_ALPHA, SELU_LAMBDA)."""
    return (lambda a: scale * np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0.0))),
            lambda a: scale * np.where(a > 0, 1.0, alpha * _negative_part_exp(a)),
            scale * max(1.0, alpha))


def _silu_sup():
    """sup of SiLU': f'' = s'(a) (2 - a tanh(a/2)) vanishes where a tanh(a/2) = 2."""
    a_star = brentq(lambda a: a * math.tanh(0.5 * a) - 2.0, 1.0, 4.0, xtol=1e-15)
    s = 1.0 / (1.0 + math.exp(-a_star))
    return s * (1.0 + a_star * (1.0 - s)), a_star


SILU_SUP, SILU_ARGSUP = _silu_sup()
GELU_SUP = 0.5 * (1.0 + math.erf(1.0)) + 1.0 / (math.e * math.sqrt(math.pi))   # f'(sqrt 2)


def _sigmoid_derivative(a):
    s = sigmoid(a)
    return s * (1.0 - s)


def _silu_derivative(a):
    s = sigmoid(a)
    return s * (1.0 + a * (1.0 - s))                         # product rule: s + a s (1 - s)


ACTIVATIONS = {
    # name: (f, f', gamma = sup f')
    "sigmoid": (sigmoid, _sigmoid_derivative, 0.25),
    "tanh": (np.tanh, lambda a: 1.0 - np.tanh(a) ** 2, 1.0),
    "relu": (lambda a: np.maximum(a, 0.0), lambda a: (a > 0).astype(float), 1.0),
    "leaky_relu": leaky_relu(),
    "elu": elu(),
    "selu": elu(SELU_ALPHA, SELU_LAMBDA)[:2] + (SELU_LAMBDA * SELU_ALPHA,),
    "gelu": (lambda a: a * _normal_cdf(a), lambda a: _normal_cdf(a) + a * _normal_pdf(a), GELU_SUP),
    "silu": (lambda a: a * sigmoid(a), _silu_derivative, SILU_SUP),
    "softplus": (lambda a: np.logaddexp(0.0, a), sigmoid, 1.0),
}

# where the supremum is reached, or approached (used by the chart and the tests)
ARGSUP = {"sigmoid": 0.0, "tanh": 0.0, "relu": 1.0, "leaky_relu": 1.0, "elu": 1.0, "selu": 0.0,
          "gelu": math.sqrt(2.0), "silu": SILU_ARGSUP, "softplus": math.inf}

LABELS = {"sigmoid": "sigmoid σ", "tanh": "tanh", "relu": "ReLU",
          "leaky_relu": f"leaky ReLU (α = {LEAKY_ALPHA:g})", "elu": f"ELU (α = {ELU_ALPHA:g})",
          "selu": "SELU (λ ≈ 1.0507, α ≈ 1.6733)", "gelu": "GELU", "silu": "SiLU / swish",
          "softplus": "softplus"}


def activation(name):
    """(f, f', gamma) by name; 'leaky_relu:0.2' and 'elu:0.5' set alpha."""
    base, _, param = name.partition(":")
    if param:
        if base not in ("leaky_relu", "elu"):
            raise RnnvanishError(f"only leaky_relu and elu take a parameter, not {base!r}")
        return leaky_relu(float(param)) if base == "leaky_relu" else elu(float(param))
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise RnnvanishError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None


def activation_curves(a=None, names=None):
    """(a, {name: (f(a), f'(a), sup f')}) on a grid (default: 1001 points on [-5, 5])."""
    a = np.linspace(-5.0, 5.0, 1001) if a is None else np.asarray(a, dtype=float)
    names = list(ACTIVATIONS) if names is None else names
    return a, {name: (activation(name)[0](a), activation(name)[1](a), activation(name)[2]) for name in names}
