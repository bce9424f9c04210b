"""Self-normalisation (Klambauer et al. 2017): SELU layers with LeCun-normal weights map
inputs of mean 0 and variance 1 to outputs of mean 0 and variance 1, and the fixed point
attracts, so the statistics stay put however deep the network is.

The claim has conditions; each variant below keeps one or drops one:

    a_l = h_{l-1} @ W_l;   h_l = D(selu(a_l))  (+ h_{l-1} with a skip connection)

where D is no dropout, ordinary (inverted) dropout, or AlphaDropout.

    ordinary dropout   h <- h * m / q,  m ~ Bernoulli(q), q = 1 - p: keeps the mean, but
                       E[h^2] grows by 1/q, and the next layer's fixed point moves away
    AlphaDropout       h <- A (h m + alpha' (1 - m)) + B,  alpha' = -lam alpha = selu(-inf):
                       a dropped unit takes SELU's saturation value, and the affine map
                       A = (q + alpha'^2 q (1 - q))^(-1/2),  B = -A (1 - q) alpha'
                       puts mean 0, variance 1 back (both from the paper)
"""
import numpy as np

from ..errors import RnnvanishError
from .activations import SELU_ALPHA, SELU_LAMBDA, activation
from .mlp import init_weight

SELU_SATURATION = -SELU_LAMBDA * SELU_ALPHA                  # lim_{a -> -inf} selu(a) = alpha'

# label -> options of `selu_layer_stats`
SELU_VARIANTS = {
    "SELU + LeCun-normal": {},
    "SELU + Glorot-uniform": {"scheme": "glorot"},
    "SELU + Glorot-uniform, widths alternating 256/64": {"scheme": "glorot", "widths": (256, 64)},
    "SELU + LeCun + skip connection": {"skip": True},
    "SELU + LeCun + dropout 0.2": {"dropout": "standard"},
    "SELU + LeCun + AlphaDropout 0.2": {"dropout": "alpha"},
}


def standard_dropout(h, p, rng):
    """Inverted dropout: each unit zeroed with probability p, the rest scaled by 1/(1 - p)."""
    keep = rng.random(h.shape) >= p
    return h * keep / (1.0 - p)


def alpha_dropout(h, p, rng):
    """AlphaDropout: a dropped unit is set to alpha' = -lam alpha, then A x + B restores the
    mean 0 and variance 1 of inputs that had them."""
    q = 1.0 - p
    keep = rng.random(h.shape) >= p
    A = (q + SELU_SATURATION ** 2 * q * (1.0 - q)) ** -0.5
    B = -A * (1.0 - q) * SELU_SATURATION
    return A * np.where(keep, h, SELU_SATURATION) + B


DROPOUTS = {"standard": standard_dropout, "alpha": alpha_dropout}


def selu_layer_stats(n_layers=100, width=256, batch=256, scheme="lecun", skip=False, dropout=None,
                     p=0.2, widths=None, x=None, rng=None):
    """Mean and variance of h_l over units and inputs, for l = 0 (the input) .. n_layers.

    `widths` cycles the hidden widths (default: all `width`); `x` is the input (default:
    N(0, 1) of shape (batch, first width), standardised per feature so the claim's premise
    holds exactly). Returns {"layers", "mean", "var", "width"}.
    """
    if dropout is not None and dropout not in DROPOUTS:
        raise RnnvanishError(f"unknown dropout {dropout!r}; choose {', '.join(DROPOUTS)}")
    rng = np.random.default_rng(rng)
    widths = tuple(widths) if widths else (width,)
    if x is None:
        x = rng.standard_normal((batch, widths[0]))
        x = (x - x.mean(axis=0)) / x.std(axis=0)            # standardised inputs
    selu = activation("selu")[0]
    h = x
    means, variances = [h.mean()], [h.var()]
    for l in range(n_layers):
        n_in, n_out = widths[l % len(widths)], widths[(l + 1) % len(widths)]
        W = init_weight(scheme, n_in, n_out, rng)
        out = selu(h @ W)                                    # (B, n_out)
        if dropout is not None:
            out = DROPOUTS[dropout](out, p, rng)
        h = out + h if skip and n_in == n_out else out
        means.append(h.mean())
        variances.append(h.var())
    return {"layers": np.arange(n_layers + 1), "mean": np.array(means), "var": np.array(variances),
            "width": widths[0] if len(widths) == 1 else "/".join(map(str, widths))}
