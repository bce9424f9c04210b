"""A deep MLP at initialisation: how the variance of activations and gradients moves from layer
to layer, for pairs of activation and weight initialisation (after Glorot & Bengio 2010).

    h_0 = x;   a_l = h_{l-1} @ W_l;   h_l = f(a_l)   (+ h_{l-1} with a skip connection)

One step forward multiplies the variance by about  n_in * Var(W) * E[f(a)^2] / Var(a)  and one
step back multiplies the gradient's variance by about  n_out * Var(W) * E[f'(a)^2]  (+1 with a
skip connection). Each initialisation chooses Var(W) so that one of these factors is 1 for the
activation it was derived for; with any other activation the factor is not 1 and the variance
grows or shrinks geometrically with depth.
"""
import math

import numpy as np

from ..errors import RnnvanishError
from .activations import activation as lookup_activation

SCHEMES = ("normal", "standard", "glorot", "he", "lecun")


def init_weight(scheme, n_in, n_out, rng):
    """W (n_in, n_out) by scheme:

        normal     N(0, 1)                                  (no scaling at all)
        standard   U[-1/sqrt(n_in), 1/sqrt(n_in)]           (the common heuristic Glorot & Bengio 2010 start from)
        glorot     U[-sqrt(6/(n_in+n_out)), +...]           (Var = 2/(n_in+n_out), Glorot & Bengio 2010; for tanh)
        he         N(0, 2/n_in)                             (He et al. 2015, for the ReLU family)
        lecun      N(0, 1/n_in)                             (LeCun et al. 1998; for SELU, Klambauer et al. 2017)
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
    if scheme == "lecun":
        return rng.standard_normal((n_in, n_out)) * math.sqrt(1.0 / n_in)
    raise RnnvanishError(f"unknown initialisation {scheme!r}; choose {', '.join(SCHEMES)}")


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

# the pairs the texts recommend, then mismatches: label -> (activation, initialisation, skip)
INIT_PAIRS = {
    "tanh + Glorot": ("tanh", "glorot", False),
    "sigmoid + Glorot": ("sigmoid", "glorot", False),
    "ReLU + He": ("relu", "he", False),
    "leaky ReLU + He": ("leaky_relu", "he", False),
    "ELU + He": ("elu", "he", False),
    "SELU + LeCun": ("selu", "lecun", False),
    "ReLU + Glorot (mismatch)": ("relu", "glorot", False),
    "tanh + He (mismatch)": ("tanh", "he", False),
    "SELU + He (mismatch)": ("selu", "he", False),
}
RECOMMENDED = tuple(label for label in INIT_PAIRS if "mismatch" not in label)


def mlp_forward(x, Ws, activation, skip=False):
    """h_0 = x;  a_l = h_{l-1} @ W_l;  h_l = f(a_l)  (+ h_{l-1} with a skip connection).

    Returns (hs, As): hs = [h_0 .. h_L] (B, n) each, As = [a_1 .. a_L]; backward needs both.
    """
    f = lookup_activation(activation)[0]
    hs, As = [x], []
    for W in Ws:
        a = hs[-1] @ W                                       # (B, n)
        As.append(a)
        hs.append(f(a) + hs[-1] if skip else f(a))
    return hs, As


def mlp_backward(As, Ws, dh_L, activation, skip=False):
    """dhs = [dE/dh_0 .. dE/dh_L] from dE/dh_L, layer by layer from the top."""
    df = lookup_activation(activation)[1]
    dhs = [dh_L]
    for a, W in zip(reversed(As), reversed(Ws)):
        dh = dhs[-1]
        da = dh * df(a)                                      # through f: dE/da_l = dE/dh_l * f'(a_l)
        dh_prev = da @ W.T                                   # through the matmul: (B, n)
        if skip:
            dh_prev = dh_prev + dh                           # the identity path adds dE/dh_l unchanged
        dhs.append(dh_prev)
    return dhs[::-1]


def dead_fraction(a, activation):
    """Fraction of units whose derivative f'(a) is 0 for every input in the batch a (B, n).

    Such a unit passes no gradient back and its incoming weights get none: it is dead until
    something else moves its inputs. ReLU units die; leaky ReLU, ELU and SELU units cannot.
    """
    df = lookup_activation(activation)[1]
    return float(np.mean(np.all(df(a) == 0.0, axis=0)))


def deep_mlp_variances(setup, n_layers=30, width=256, batch=256, rng=None):
    """Per-layer statistics of a deep MLP at initialisation.

    `setup` is a label of MLP_SETUPS or INIT_PAIRS, or a tuple (activation, scheme, skip).
    Inputs x ~ N(0, 1); the loss E = sum(h_L * G) with G ~ N(0, 1), so dE/dh_L = G and the
    gradient at the top has variance 1. Returns {"layers_h", "var_h", "mean_h", "dead",
    "layers_dh", "var_dh", "width"}: var_h, mean_h and dead (fraction of dead units, see
    `dead_fraction`) for l = 1..L, var_dh for l = 0..L.
    """
    if isinstance(setup, str):
        setup = {**MLP_SETUPS, **INIT_PAIRS}[setup]
    activation, scheme, skip = setup
    rng = np.random.default_rng(rng)
    Ws = [init_weight(scheme, width, width, rng) for _ in range(n_layers)]
    x = rng.standard_normal((batch, width))
    hs, As = mlp_forward(x, Ws, activation, skip)
    dhs = mlp_backward(As, Ws, rng.standard_normal((batch, width)), activation, skip)
    return {
        "layers_h": np.arange(1, n_layers + 1),
        "var_h": np.array([h.var() for h in hs[1:]]),
        "mean_h": np.array([h.mean() for h in hs[1:]]),
        "dead": np.array([dead_fraction(a, activation) for a in As]),
        "layers_dh": np.arange(n_layers + 1),
        "var_dh": np.array([dh.var() for dh in dhs]),
        "width": width,
    }


def mlp_script_arguments(doc, out, layers, extra=None):
    """The command line the deep-MLP lesson scripts share: --out, --layers, --width, --batch,
    --seed and --quick (6 layers of width 32 on 32 inputs). `extra(parser)` adds a script's own
    flags. Returns a function argv -> args with --quick applied."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default=out, help="PNG or SVG to write (default: %(default)s)")
    if extra is not None:
        extra(parser)
    parser.add_argument("--layers", type=int, default=layers, help="depth L (default: %(default)s)")
    parser.add_argument("--width", type=int, default=256, help="units per layer (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=256, help="random inputs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="6 layers of width 32 on 32 inputs")

    def parse(argv=None):
        args = parser.parse_args(argv)
        if args.quick:
            args.layers, args.width, args.batch = 6, 32, 32
        return args
    return parse
