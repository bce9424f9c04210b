"""The deep-MLP lessons' claims, measured: initialisation x activation, dead units, self-normalisation."""
import math

import numpy as np
import pytest
from scipy.special import erfc

from rnnvanish.errors import RnnvanishError
from rnnvanish.lessons import ACTIVATIONS, deep_mlp_variances, init_weight, mlp_backward, mlp_forward
from rnnvanish.lessons.activations import SELU_ALPHA, SELU_LAMBDA
from rnnvanish.lessons.selu import SELU_VARIANTS, alpha_dropout, selu_layer_stats, standard_dropout

BAND = (0.8, 1.25)


pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def deep50():
    """Fifty layers of 256 units on 64 inputs, for the pairs the tests below look at."""
    labels = ("ReLU + He", "leaky ReLU + He", "ELU + He", "SELU + LeCun", "ReLU + Glorot (mismatch)",
              "tanh + He (mismatch)")
    return {label: deep_mlp_variances(label, n_layers=50, width=256, batch=64, rng=4) for label in labels}


def test_he_keeps_the_relu_family_of_order_one_and_glorot_halves_relu_every_layer(deep50):
    for label in ("ReLU + He", "leaky ReLU + He"):
        r = deep50[label]
        assert 0.1 < r["var_h"][-1] < 10, f"{label}: Var(h_50) = {r['var_h'][-1]:.3g}"
        assert 0.1 < r["var_dh"][0] < 10, f"{label}: Var(dE/dh_0) = {r['var_dh'][0]:.3g}"
    # Glorot on a square layer is Var(W) = 1/n: half what ReLU needs, so E[h^2] halves per layer
    mismatch = deep50["ReLU + Glorot (mismatch)"]["var_h"]
    per_layer = (mismatch[-1] / mismatch[9]) ** (1 / 40)
    assert 0.4 < per_layer < 0.6, f"ReLU + Glorot: variance factor per layer {per_layer:.3f}, expected ~1/2"
    assert mismatch[-1] < 1e-10


def test_dead_relu_units_pile_up_with_depth_and_other_activations_have_none(deep50):
    relu = deep50["ReLU + He"]["dead"]
    assert relu[0] == 0.0                                        # 64 Gaussian inputs: no unit off for all
    assert relu[-10:].mean() > 0.1, f"deep ReLU layers: {relu[-10:].mean():.1%} dead"
    for label in ("leaky ReLU + He", "ELU + He", "SELU + LeCun", "tanh + He (mismatch)"):
        assert np.all(deep50[label]["dead"] == 0.0), label


def _chi(activation, var_w_n, q):
    """Mean-field gradient factor n Var(W) E[f'(a)^2] for a ~ N(0, q), by quadrature."""
    step = 24 / 48000
    a = (np.arange(48000) + 0.5) * step - 12                     # midpoints: 0 is a cell edge, f' jumps there
    weight = np.exp(-0.5 * a * a) / math.sqrt(2 * math.pi) * step
    a = a * math.sqrt(q)
    return var_w_n * np.sum(ACTIVATIONS[activation][1](a) ** 2 * weight)


def test_selu_fixed_point_passes_gradients_back_growing_as_mean_field_says(deep50):
    """At SELU's fixed point (q = 1) the gradient's variance grows by
    chi = lam^2 (1/2 + alpha^2 e^2 Phi(-2)) ~ 1.07 per layer: mildly exploding, not flat."""
    chi = SELU_LAMBDA ** 2 * (0.5 + SELU_ALPHA ** 2 * math.e ** 2 * 0.5 * erfc(2 / math.sqrt(2)))
    assert _chi("selu", 1.0, 1.0) == pytest.approx(chi, rel=1e-6)
    r = deep50["SELU + LeCun"]
    measured = (r["var_dh"][0] / r["var_dh"][-1]) ** (1 / 50)
    assert abs(measured - chi) < 0.02, f"per-layer gradient factor {measured:.4f}, mean field {chi:.4f}"
    assert r["var_dh"][0] > 10                                   # 1.07^50 ~ 30: it does grow
    # tanh with He weights: Var(a) settles where chi > 1, and the gradient explodes
    assert deep50["tanh + He (mismatch)"]["var_dh"][0] > 10          # ~1.09 per layer
    assert deep50["ELU + He"]["var_dh"][0] > 100 and deep50["ELU + He"]["var_h"][-1] > 5


@pytest.mark.parametrize("activation, scheme", [("leaky_relu", "he"), ("elu", "he"), ("selu", "lecun"),
                                                 ("gelu", "he"), ("silu", "he"), ("softplus", "glorot")])
def test_mlp_backward_matches_finite_differences_for_the_new_activations(activation, scheme):
    rng = np.random.default_rng(5)
    Ws = [init_weight(scheme, 3, 3, rng) for _ in range(4)]
    x = rng.standard_normal((2, 3)) + 0.1
    G = rng.standard_normal((2, 3))
    As = mlp_forward(x, Ws, activation)[1]
    assert min(np.abs(a).min() for a in As) > 1e-4, "a unit sits on a kink; pick another seed"
    dx = mlp_backward(As, Ws, G, activation)[0]
    fd = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = 1e-6
        fd[idx] = (np.sum(mlp_forward(x + e, Ws, activation)[0][-1] * G)
                   - np.sum(mlp_forward(x - e, Ws, activation)[0][-1] * G)) / 2e-6
    diff = np.abs(dx - fd)
    assert diff.max() < 1e-7 + 1e-6 * np.abs(fd).max(), f"{activation}: largest difference {diff.max():.3g}"


def test_lecun_initialisation_variance():
    W = init_weight("lecun", 500, 300, np.random.default_rng(0))
    assert abs(W.var() * 500 - 1.0) < 0.02
    with pytest.raises(RnnvanishError):
        init_weight("kaiming", 2, 2, np.random.default_rng(0))


# ----------------------------------------------------------------------------- self-normalisation

def test_alpha_dropout_keeps_mean_0_variance_1_and_dropout_does_not():
    rng = np.random.default_rng(1)
    h = ACTIVATIONS["selu"][0](rng.standard_normal(1_000_000))     # mean 0, variance 1
    assert abs(h.mean()) < 0.005 and abs(h.var() - 1) < 0.005
    kept = alpha_dropout(h, 0.2, rng)
    assert abs(kept.mean()) < 0.005 and abs(kept.var() - 1) < 0.01, (kept.mean(), kept.var())
    dropped = standard_dropout(h, 0.2, rng)                         # E[h^2] / q = 1.25
    assert abs(dropped.mean()) < 0.005 and abs(dropped.var() - 1.25) < 0.015, (dropped.mean(), dropped.var())


@pytest.fixture(scope="module")
def selu100():
    return {label: selu_layer_stats(100, 256, 64, rng=7, **options) for label, options in SELU_VARIANTS.items()}


@pytest.mark.parametrize("label", ["SELU + LeCun-normal", "SELU + LeCun + AlphaDropout 0.2",
                                   "SELU + Glorot-uniform"])
def test_selu_keeps_mean_0_variance_1_through_100_layers(selu100, label):
    """Glorot-uniform belongs here for square layers: Var(W) = 2/(n + n) = 1/n, LeCun's variance."""
    r = selu100[label]
    assert BAND[0] <= r["var"][-1] <= BAND[1], f"{label}: Var(h_100) = {r['var'][-1]:.3f}"
    assert np.all((r["var"][1:] > 0.7) & (r["var"][1:] < 1.4)), f"{label}: some layer strays"
    assert abs(r["mean"][-1]) < 0.1, f"{label}: mean(h_100) = {r['mean'][-1]:.3f}"


@pytest.mark.parametrize("label, side", [("SELU + LeCun + dropout 0.2", "above"),
                                         ("SELU + LeCun + skip connection", "above"),
                                         ("SELU + Glorot-uniform, widths alternating 256/64", "below")])
def test_what_breaks_self_normalisation(selu100, label, side):
    v = selu100[label]["var"][-1]
    assert (v > BAND[1]) if side == "above" else (v < BAND[0]), f"{label}: Var(h_100) = {v:.3g}"


def test_self_normalisation_pulls_unstandardised_inputs_back():
    """The fixed point attracts: inputs of mean 1 and variance 4 end near mean 0, variance 1."""
    rng = np.random.default_rng(3)
    x = 1.0 + 2.0 * rng.standard_normal((256, 256))
    r = selu_layer_stats(40, 256, x=x, rng=3)
    assert r["var"][0] > 3.5 and r["mean"][0] > 0.9
    assert BAND[0] <= r["var"][-1] <= BAND[1] and abs(r["mean"][-1]) < 0.1
