"""The numbers behind the lessons on vanishing and exploding gradients.

Each function returns plain arrays (no charts here; `rnnvanish.plots.lessons` draws them and
`scripts/*.py` wires the two together). Pure NumPy, every backward pass written out.

    first          chain_product, logistic_orbit, clip_demo: one-dimensional pictures
    activations    sigmoid, tanh, the ReLU family, SELU, GELU, SiLU, softplus: f, f', sup f'
    mlp            a deep MLP at initialisation: variance by layer, dead units, init x activation
    selu           self-normalisation: SELU + LeCun keeps mean 0, variance 1; what breaks it
    norm           batch and layer normalisation, forward and backward, in the deep MLP
    normtrain      a short training run with and without normalisation; batch size and batch norm
    weight_decay   a tanh RNN started above the edge of stability: weight decay against clipping

Backpropagation through time multiplies one Jacobian per step; every lesson here is a
one-dimensional or layer-wise picture of that product.
"""
from .activations import ACTIVATIONS, activation, activation_curves, sigmoid
from .first import angle_between, chain_product, clip_demo, logistic_orbit
from .mlp import (INIT_PAIRS, MLP_SETUPS, dead_fraction, deep_mlp_variances, init_weight, mlp_backward,
                  mlp_forward)
from .norm import NORM_SETUPS, norm_backward, norm_forward, norm_mlp_backward, norm_mlp_forward, norm_variances
from .selu import SELU_VARIANTS, alpha_dropout, selu_layer_stats

__all__ = [
    "ACTIVATIONS", "INIT_PAIRS", "MLP_SETUPS", "NORM_SETUPS", "SELU_VARIANTS", "alpha_dropout",
    "norm_backward", "norm_forward", "norm_mlp_backward", "norm_mlp_forward", "norm_variances",
    "selu_layer_stats", "activation", "activation_curves", "angle_between",
    "chain_product", "clip_demo", "dead_fraction", "deep_mlp_variances", "init_weight",
    "logistic_orbit", "mlp_backward", "mlp_forward", "sigmoid",
]
