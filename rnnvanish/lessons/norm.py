"""Batch normalisation (Ioffe & Szegedy 2015) and layer normalisation (Ba et al. 2016) in the
deep MLP, forward and backward.

The two are one operation over different axes of the (B, n) activations:

    mu = mean(x), var = mean((x - mu)^2)       over the batch (axis 0, "batch"): each unit on its own
                                               over the units (axis 1, "layer"): each example on its own
    x_hat = (x - mu) / sqrt(var + eps)
    y = gamma * x_hat + beta                   gamma, beta: (n,), one per unit in both

Batch norm therefore couples the examples of a batch (and needs running averages for a single
example at test time); layer norm does not. In the MLP the normalisation goes either before the
activation, h_l = f(N(a_l)), or after it, h_l = N(f(a_l)), with a_l = h_{l-1} @ W_l + b_l.
"""
import math

import numpy as np

from ..errors import RnnvanishError
from .activations import activation as lookup_activation
from .mlp import init_weight

AXES = {"batch": 0, "layer": 1}
PLACES = ("none", "before", "after")


def norm_forward(x, gamma, beta, kind, eps=1e-5):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta, statistics over AXES[kind].

    Returns (y, cache); the cache holds what backward needs: x - mu, 1/sqrt(var + eps), x_hat, gamma.
    """
    axis = AXES[kind]
    mu = x.mean(axis=axis, keepdims=True)                     # (1, n) batch norm, (B, 1) layer norm
    xc = x - mu
    var = np.mean(xc * xc, axis=axis, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = xc * inv_std
    return gamma * x_hat + beta, (xc, inv_std, x_hat, gamma, axis)


def norm_backward(dy, cache):
    """(dx, dgamma, dbeta) from dy = dE/dy. x reaches x_hat three ways: directly, through mu and
    through var; each path is one line below."""
    xc, inv_std, x_hat, gamma, axis = cache
    m = xc.shape[axis]                                        # how many values share one mu and var
    dgamma = np.sum(dy * x_hat, axis=0)                       # y = gamma x_hat + beta, summed over the batch
    dbeta = np.sum(dy, axis=0)
    dx_hat = dy * gamma                                       # through the scale
    dvar = np.sum(dx_hat * xc, axis=axis, keepdims=True) * -0.5 * inv_std ** 3     # x_hat = xc (var + eps)^(-1/2)
    dmu = -np.sum(dx_hat, axis=axis, keepdims=True) * inv_std                      # xc = x - mu (dvar's share is
    #                                                           dvar * mean(-2 xc) = 0: xc sums to zero)
    dx = dx_hat * inv_std + dvar * 2.0 * xc / m + dmu / m     # direct path + through var + through mu
    return dx, dgamma, dbeta


def init_norm_mlp(n_layers, width, n_in=None, scheme="he", rng=None):
    """Parameters {"W": [(n_in, n) ...], "b": [...], "gamma": [ones], "beta": [zeros]}."""
    rng = np.random.default_rng(rng)
    sizes = [n_in or width] + [width] * n_layers
    return {
        "W": [init_weight(scheme, sizes[l], sizes[l + 1], rng) for l in range(n_layers)],
        "b": [np.zeros(width) for _ in range(n_layers)],
        "gamma": [np.ones(width) for _ in range(n_layers)],
        "beta": [np.zeros(width) for _ in range(n_layers)],
    }


def norm_mlp_forward(x, params, activation, place="before", kind="batch", eps=1e-5, running=None,
                     momentum=0.1):
    """h_0 = x; a_l = h_{l-1} @ W_l + b_l; h_l = f(N(a_l)) ("before"), N(f(a_l)) ("after") or f(a_l).

    `running` ({"mean": [...], "var": [...]}, batch norm only) is updated in place with the
    batch statistics, as in training. Returns (hs, caches): hs = [h_0 .. h_L].
    """
    if place not in PLACES:
        raise RnnvanishError(f"unknown place {place!r}; choose {', '.join(PLACES)}")
    if kind not in AXES:
        raise RnnvanishError(f"unknown normalisation {kind!r}; choose {', '.join(AXES)}")
    f = lookup_activation(activation)[0]
    hs, caches = [x], []
    for l, (W, b) in enumerate(zip(params["W"], params["b"])):
        a = hs[-1] @ W + b                                    # (B, n)
        pre = a if place == "before" else f(a)                # what gets normalised
        if place == "none":
            hs.append(pre)
            caches.append((a, None))
            continue
        y, cache = norm_forward(pre, params["gamma"][l], params["beta"][l], kind, eps)
        if running is not None and kind == "batch":
            B = pre.shape[0]
            running["mean"][l] = (1 - momentum) * running["mean"][l] + momentum * pre.mean(axis=0)
            running["var"][l] = (1 - momentum) * running["var"][l] + momentum * pre.var(axis=0) * B / max(B - 1, 1)
        hs.append(f(y) if place == "before" else y)
        caches.append((a, y if place == "before" else None, cache))
    return hs, caches


def norm_mlp_eval(x, params, activation, place, running, eps=1e-5):
    """Batch norm at test time: each example alone, normalised with the running averages."""
    f = lookup_activation(activation)[0]
    h = x
    for l, (W, b) in enumerate(zip(params["W"], params["b"])):
        a = h @ W + b
        pre = a if place == "before" else f(a)
        y = params["gamma"][l] * (pre - running["mean"][l]) / np.sqrt(running["var"][l] + eps) + params["beta"][l]
        h = f(y) if place == "before" else y
    return h


def norm_mlp_backward(dh_L, hs, caches, params, activation, place="before"):
    """Gradients {"W", "b", "gamma", "beta"} (lists, same keys as params) and dhs = [dE/dh_0 .. dE/dh_L]."""
    df = lookup_activation(activation)[1]
    L = len(params["W"])
    grads = {"W": [None] * L, "b": [None] * L, "gamma": [None] * L, "beta": [None] * L}
    dhs = [dh_L]
    for l in reversed(range(L)):
        dh = dhs[-1]
        a = caches[l][0]
        if place == "none":
            da = dh * df(a)                                   # through f
        elif place == "before":
            dy = dh * df(caches[l][1])                        # through f: h = f(y)
            da, grads["gamma"][l], grads["beta"][l] = norm_backward(dy, caches[l][2])   # through N
        else:
            du, grads["gamma"][l], grads["beta"][l] = norm_backward(dh, caches[l][2])   # through N: h = N(u)
            da = du * df(a)                                   # through f: u = f(a)
        grads["W"][l] = hs[l].T @ da                          # a = h_{l-1} @ W + b: (n_in, n)
        grads["b"][l] = da.sum(axis=0)
        dhs.append(da @ params["W"][l].T)                     # back into h_{l-1}: (B, n_in)
    if place == "none":
        grads["gamma"] = [np.zeros_like(g) for g in params["gamma"]]
        grads["beta"] = [np.zeros_like(g) for g in params["beta"]]
    return grads, dhs[::-1]


# label -> (place, kind); "none" ignores the kind
NORM_SETUPS = {
    "no normalisation": ("none", "batch"),
    "batch norm before f": ("before", "batch"),
    "batch norm after f": ("after", "batch"),
    "layer norm before f": ("before", "layer"),
    "layer norm after f": ("after", "layer"),
}


def norm_variances(setup, activation="relu", scheme="glorot", n_layers=50, width=256, batch=256, rng=None):
    """Variance of h_l (l = 1..L) and of dE/dh_l (l = 0..L) at initialisation, inputs N(0, 1),
    E = sum(h_L * G) with G ~ N(0, 1). Returns {"layers_h", "var_h", "layers_dh", "var_dh", "width",
    "back_factor"}: back_factor is the geometric mean of Var(dE/dh_{l-1}) / Var(dE/dh_l), the
    factor one step back multiplies the gradient's variance by (> 1: it explodes toward the input)."""
    place, kind = NORM_SETUPS[setup] if isinstance(setup, str) else setup
    rng = np.random.default_rng(rng)
    params = init_norm_mlp(n_layers, width, scheme=scheme, rng=rng)
    x = rng.standard_normal((batch, width))
    hs, caches = norm_mlp_forward(x, params, activation, place, kind)
    _, dhs = norm_mlp_backward(rng.standard_normal((batch, width)), hs, caches, params, activation, place)
    var_dh = np.array([d.var() for d in dhs])
    return {"layers_h": np.arange(1, n_layers + 1), "var_h": np.array([h.var() for h in hs[1:]]),
            "layers_dh": np.arange(n_layers + 1), "var_dh": var_dh, "width": width,
            "back_factor": math.exp(np.mean(-np.diff(np.log(var_dh))))}
