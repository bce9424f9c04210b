"""Batch and layer normalisation: backward passes against central differences, and the lessons'
claims at initialisation, in training and for small batches."""
import numpy as np
import pytest

from rnnvanish.errors import RnnvanishError
from rnnvanish.gradcheck import numerical_gradient
from rnnvanish.lessons.norm import (NORM_SETUPS, init_norm_mlp, norm_backward, norm_forward, norm_mlp_backward,
                                    norm_mlp_forward, norm_variances)
from rnnvanish.lessons.normtrain import make_task, softmax_cross_entropy, train_norm_mlp

H = 1e-6                                                         # central-difference step (float64)


pytestmark = pytest.mark.usefixtures("one_blas_thread")


def assert_matches_fd(analytic, fd, what, tol=1e-7):
    diff = np.abs(analytic - fd)
    limit = tol * np.maximum(1.0, np.abs(fd))
    assert np.all(diff <= limit), (f"{what}: largest difference {diff.max():.3g}\n"
                                   f"  analytic {np.ravel(analytic)[:5]}\n  fd       {np.ravel(fd)[:5]}")


def central_differences(loss, array):
    """dE/d(array) entry by entry (the project's central differences, step H)."""
    return numerical_gradient(loss, array, H)


@pytest.mark.parametrize("kind", ["batch", "layer"])
@pytest.mark.parametrize("B, n", [(4, 5), (2, 3), (1, 4)])
def test_norm_backward_matches_central_differences(kind, B, n):
    if kind == "batch" and B == 1:
        pytest.skip("batch norm of one example is x_hat = 0: nothing to check")
    rng = np.random.default_rng(B * 10 + n)
    x = 2.0 * rng.standard_normal((B, n)) + 0.5
    gamma, beta = 1.0 + 0.3 * rng.standard_normal(n), 0.2 * rng.standard_normal(n)
    G = rng.standard_normal((B, n))

    def loss():
        return np.sum(norm_forward(x, gamma, beta, kind)[0] * G)  # E = sum(y * G): dE/dy = G

    dx, dgamma, dbeta = norm_backward(G, norm_forward(x, gamma, beta, kind)[1])
    assert_matches_fd(dx, central_differences(loss, x), f"{kind} norm dx")
    assert_matches_fd(dgamma, central_differences(loss, gamma), f"{kind} norm dgamma")
    assert_matches_fd(dbeta, central_differences(loss, beta), f"{kind} norm dbeta")


@pytest.mark.parametrize("setup", list(NORM_SETUPS))
@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_norm_mlp_backward_matches_central_differences(setup, activation):
    place, kind = NORM_SETUPS[setup]
    rng = np.random.default_rng(11)
    params = init_norm_mlp(3, 4, n_in=3, scheme="he", rng=rng)
    for name in ("b", "gamma", "beta"):                         # away from the symmetric start
        params[name] = [p + 0.2 * rng.standard_normal(p.shape) for p in params[name]]
    x = rng.standard_normal((5, 3))
    G = rng.standard_normal((5, 4))

    def loss():
        return np.sum(norm_mlp_forward(x, params, activation, place, kind)[0][-1] * G)

    hs, caches = norm_mlp_forward(x, params, activation, place, kind)
    grads, dhs = norm_mlp_backward(G, hs, caches, params, activation, place)
    assert_matches_fd(dhs[0], central_differences(loss, x), f"{setup}, {activation}: dx")
    for name in ("W", "b") + (("gamma", "beta") if place != "none" else ()):
        for l, p in enumerate(params[name]):
            assert_matches_fd(grads[name][l], central_differences(loss, p), f"{setup}, {activation}: d{name}[{l}]")


def test_what_each_normalisation_normalises():
    rng = np.random.default_rng(0)
    x = 3.0 * rng.standard_normal((64, 10)) + 2.0
    n = np.ones(10), np.zeros(10)
    y_batch, y_layer = norm_forward(x, *n, "batch")[0], norm_forward(x, *n, "layer")[0]
    assert np.allclose(y_batch.mean(axis=0), 0, atol=1e-12) and np.allclose(y_batch.var(axis=0), 1, atol=1e-4)
    assert np.allclose(y_layer.mean(axis=1), 0, atol=1e-12) and np.allclose(y_layer.var(axis=1), 1, atol=1e-4)
    # a batch of two: every unit's x_hat is +-1 whatever the two inputs were
    pair = norm_forward(x[:2], *n, "batch")[0]
    assert np.allclose(np.abs(pair), 1.0, atol=1e-4)
    with pytest.raises(RnnvanishError):
        norm_mlp_forward(x, init_norm_mlp(1, 10), "relu", "middle")


def test_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(2)
    logits, y = rng.standard_normal((3, 4)), np.array([0, 3, 1])
    E, dlogits = softmax_cross_entropy(logits, y)
    assert_matches_fd(dlogits, central_differences(lambda: softmax_cross_entropy(logits, y)[0], logits), "dlogits")


@pytest.fixture(scope="module")
def at_init():
    return {label: norm_variances(label, "relu", "glorot", n_layers=40, width=128, batch=128, rng=1)
            for label in NORM_SETUPS}


def test_normalisation_holds_the_forward_variance_and_batch_norm_explodes_the_gradient(at_init):
    assert at_init["no normalisation"]["var_h"][-1] < 1e-9      # ReLU + Glorot: halves per layer
    for label in NORM_SETUPS:
        if label != "no normalisation":
            var_h = at_init[label]["var_h"]
            assert np.all((var_h > 0.2) & (var_h < 1.5)), f"{label}: Var(h_l) from {var_h.min():.3g} to {var_h.max():.3g}"
    # at initialisation batch norm multiplies the gradient's variance by ~1.4 per layer going back
    for label in ("batch norm before f", "batch norm after f", "layer norm after f"):
        assert at_init[label]["back_factor"] > 1.25, f"{label}: x{at_init[label]['back_factor']:.3f}"
        assert at_init[label]["var_dh"][0] > 1e4
    assert 0.9 < at_init["layer norm before f"]["back_factor"] < 1.1


def test_normalisation_lets_a_deep_relu_net_with_glorot_weights_train():
    task = make_task(n_train=512, n_test=256, rng=3)
    runs = {label: train_norm_mlp(label, task, n_layers=12, width=32, batch=32, steps=150, lr=0.05, rng=3)
            for label in ("no normalisation", "batch norm before f", "layer norm before f")}
    g = {label: np.median(r["grad_norm_first"]) for label, r in runs.items()}
    drop = {label: r["loss"][:10].mean() - r["loss"][-10:].mean() for label, r in runs.items()}
    assert g["no normalisation"] < 0.05 * min(g["batch norm before f"], g["layer norm before f"]), g
    assert drop["no normalisation"] < 0.05, drop
    assert drop["batch norm before f"] > 0.1 and drop["layer norm before f"] > 0.1, drop


def test_batch_norm_fails_for_a_batch_of_two_and_layer_norm_does_not():
    task = make_task(rng=0)
    acc = {(label, B): train_norm_mlp(label, task, scheme="he", n_layers=6, width=32, batch=B, steps=2400 // B,
                                      lr=0.02, rng=0)["test_acc"][-1]
           for label in ("batch norm before f", "layer norm before f") for B in (2, 16)}
    assert acc[("batch norm before f", 2)] < acc[("layer norm before f", 2)] - 0.2, acc
    assert acc[("batch norm before f", 2)] < acc[("batch norm before f", 16)] - 0.05, acc
