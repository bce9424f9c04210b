"""The numbers behind the first lessons on vanishing and exploding gradients.

Each function returns plain arrays (no charts here; `rnnvanish.plots.lessons` draws them and
`scripts/*.py` wires the two together):

    chain_product          a factor applied n times: 0.8^n vanishes, 1.2^n explodes
    logistic_orbit         x_{k+1} = r x_k (1 - x_k) and d x_n / d x_0 = prod_k f'(x_k)
    activation_curves      sigmoid, tanh, ReLU and their derivatives (bounds 1/4, 1, 1)
    deep_mlp_variances     variance of activations and back-propagated gradients per layer
    clip_demo              one gradient clipped by value and by norm

Backpropagation through time multiplies one Jacobian per step; every lesson here is a
one-dimensional or layer-wise picture of that product.
"""
import math

import numpy as np

from ..clip import clip_by_global_norm, clip_by_value
from ..errors import RnnvanishError


# ----------------------------------------------------------------------------- 1. chain product

def chain_product(factors=(0.8, 1.2), n_steps=50):
    """(n, {factor: prod_{k=1..n} factor}) for n = 0..n_steps, accumulated step by step.

    The product is built as the chain rule builds it (one multiplication per step), so it
    equals factor**n; a factor below 1 vanishes geometrically, above 1 explodes.
    """
    n = np.arange(n_steps + 1)
    products = {}
    for a in factors:
        steps = np.full(n_steps + 1, float(a))
        steps[0] = 1.0                                       # the empty product
        products[a] = np.cumprod(steps)
    return n, products


# ----------------------------------------------------------------------------- 2. logistic map

def logistic_orbit(x0, n_steps, r=3.5):
    """The orbit of f(x) = r x (1 - x) and the derivative of its n-fold composition.

    Returns (x, dx) with x[n] = f^n(x0) and, by the chain rule,
        dx[n] = d f^n / d x0 = prod_{k=0..n-1} f'(x_k),   f'(x) = r (1 - 2x),   dx[0] = 1.
    """
    if not 0.0 <= x0 <= 1.0:
        raise RnnvanishError(f"the logistic map lives on [0, 1]; x0 = {x0} is outside")
    x = np.empty(n_steps + 1)
    dx = np.empty(n_steps + 1)
    x[0], dx[0] = x0, 1.0
    for k in range(n_steps):
        dx[k + 1] = dx[k] * r * (1.0 - 2.0 * x[k])           # chain rule: times f'(x_k)
        x[k + 1] = r * x[k] * (1.0 - x[k])
    return x, dx


# ----------------------------------------------------------------------------- 3. activations

def sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))                    # = 1 / (1 + e^-a), no overflow


ACTIVATIONS = {
    # name: (f, f', sup f') -- sup f' bounds how much one step can pass back
    "sigmoid": (sigmoid, lambda a: sigmoid(a) * (1.0 - sigmoid(a)), 0.25),
    "tanh": (np.tanh, lambda a: 1.0 - np.tanh(a) ** 2, 1.0),
    "relu": (lambda a: np.maximum(a, 0.0), lambda a: (a > 0).astype(float), 1.0),
}


def activation_curves(a=None):
    """(a, {name: (f(a), f'(a), sup f')}) on a grid (default: 1001 points on [-5, 5])."""
    a = np.linspace(-5.0, 5.0, 1001) if a is None else np.asarray(a, dtype=float)
    return a, {name: (f(a), df(a), bound) for name, (f, df, bound) in ACTIVATIONS.items()}


# ----------------------------------------------------------------------------- 4. deep MLP

def init_weight(scheme, n_in, n_out, rng):
    """W (n_in, n_out) by scheme:

        normal     N(0, 1)                                  (no scaling at all)
        standard   U[-1/sqrt(n_in), 1/sqrt(n_in)]           (the common heuristic Glorot & Bengio 2010 start from)
        glorot     U[-sqrt(6/(n_in+n_out)), +...]           (Var = 2/(n_in+n_out), Glorot & Bengio 2010)
        he         N(0, 2/n_in)                             (He et al. 2015, for ReLU)
    """
    if scheme == "normal":
        return rng.standard_normal((n_in, n_out))
    if scheme == "standard":
        return rng.uniform(-1.0, 1.0, (n_in, n_out)) / math.sqrt(n_in)
    if scheme == "glorot":
        bound = math.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-bound, bound, (n_in, n_out))
    if scheme == "he":
        return rng.standard_normal((n_in, n_out)) * math.sqrt(2.0 / n_in)
    raise RnnvanishError(f"unknown initialisation {scheme!r}; choose normal, standard, glorot or he")


# label -> (activation, initialisation, skip connection). Two sigmoid rows on purpose: with
# N(0, 1) weights the units saturate, but E[sigma'(a)^2] only falls like 1/sqrt(width) while
# width * Var(W) = width, so at width 256 the gradient *grows* about 1.5x per layer (at width
# 64 it shrinks); the standard U[+-1/sqrt(n)] start shows the textbook vanishing gradient.
MLP_SETUPS = {
    "sigmoid, N(0, 1)": ("sigmoid", "normal", False),
    "sigmoid, U[±1/√n]": ("sigmoid", "standard", False),
    "tanh, Glorot": ("tanh", "glorot", False),
    "ReLU, He": ("relu", "he", False),
    "tanh, Glorot + skip": ("tanh", "glorot", True),
}


def mlp_forward(x, Ws, activation, skip=False):
    """h_0 = x;  a_l = h_{l-1} @ W_l;  h_l = f(a_l)  (+ h_{l-1} with a skip connection).

    Returns (hs, As): hs = [h_0 .. h_L] (B, n) each, As = [a_1 .. a_L]; backward needs both.
    """
    f = ACTIVATIONS[activation][0]
    hs, As = [x], []
    for W in Ws:
        a = hs[-1] @ W                                       # (B, n)
        As.append(a)
        hs.append(f(a) + hs[-1] if skip else f(a))
    return hs, As


def mlp_backward(As, Ws, dh_L, activation, skip=False):
    """dhs = [dE/dh_0 .. dE/dh_L] from dE/dh_L, layer by layer from the top."""
    df = ACTIVATIONS[activation][1]
    dhs = [dh_L]
    for a, W in zip(reversed(As), reversed(Ws)):
        dh = dhs[-1]
        da = dh * df(a)                                      # through f: dE/da_l = dE/dh_l * f'(a_l)
        dh_prev = da @ W.T                                   # through the matmul: (B, n)
        if skip:
            dh_prev = dh_prev + dh                           # the identity path adds dE/dh_l unchanged
        dhs.append(dh_prev)
    return dhs[::-1]


def deep_mlp_variances(setup, n_layers=30, width=256, batch=256, rng=None):
    """Per-layer variance of activations h_l (l = 1..L) and of gradients dE/dh_l (l = 0..L).

    Inputs x ~ N(0, 1); the loss E = sum(h_L * G) with G ~ N(0, 1), so dE/dh_L = G and the
    gradient at the top has variance 1. Returns {"layers_h", "var_h", "layers_dh", "var_dh",
    "width"}.
    One step back multiplies the gradient variance by about width * Var(W) * E[f'(a)^2]
    (+1 with the skip connection): below 1 the gradient vanishes, above 1 it explodes.
    """
    activation, scheme, skip = MLP_SETUPS[setup] if isinstance(setup, str) else setup
    rng = np.random.default_rng(rng)
    Ws = [init_weight(scheme, width, width, rng) for _ in range(n_layers)]
    x = rng.standard_normal((batch, width))
    hs, As = mlp_forward(x, Ws, activation, skip)
    dhs = mlp_backward(As, Ws, rng.standard_normal((batch, width)), activation, skip)
    return {
        "layers_h": np.arange(1, n_layers + 1),
        "var_h": np.array([h.var() for h in hs[1:]]),
        "layers_dh": np.arange(n_layers + 1),
        "var_dh": np.array([dh.var() for dh in dhs]),
        "width": width,
    }


# ----------------------------------------------------------------------------- 5. clipping

def clip_demo(g, threshold):
    """A gradient g clipped by value (each entry into [-c, c]) and by norm (g * c / ||g||).

    Returns {"gradient", "by_value", "by_norm", "threshold", "angle_by_value",
    "angle_by_norm"}; the angles (degrees) say how far each clipped vector turned away
    from g. Clipping by norm keeps the direction; clipping by value does not.
    """
    g = np.asarray(g, dtype=float)
    by_value, by_norm = {"g": g.copy()}, {"g": g.copy()}
    clip_by_value(by_value, threshold)
    clip_by_global_norm(by_norm, threshold)
    return {
        "gradient": g,
        "by_value": by_value["g"],
        "by_norm": by_norm["g"],
        "threshold": float(threshold),
        "angle_by_value": angle_between(g, by_value["g"]),
        "angle_by_norm": angle_between(g, by_norm["g"]),
    }


def angle_between(u, v):
    """The angle between two vectors in degrees."""
    cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))
