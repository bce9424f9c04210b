"""The first lessons: a product of factors, an iterated map, and clipping one gradient.

    chain_product          a factor applied n times: 0.8^n vanishes, 1.2^n explodes
    logistic_orbit         x_{k+1} = r x_k (1 - x_k) and d x_n / d x_0 = prod_k f'(x_k)
    clip_demo              one gradient clipped by value and by norm
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
