"""Initialisers against their formulas, orthogonality, spectral radius, specs and errors."""
import math

import numpy as np
import pytest

from conftest import assert_close

from rnnvanish.errors import RnnvanishError
from rnnvanish.init import (INITIALIZERS, identity, initialize, orthogonal, parse_init, pytorch,
                            scale_to_radius, spectral_radius, uniform)


def assert_rel(measured, expected, rtol, what):
    assert abs(measured - expected) <= rtol * abs(expected), (
        f"{what}: measured {measured:.6g}, formula {expected:.6g}, relative difference "
        f"{abs(measured - expected) / abs(expected):.3%} > {rtol:.1%}")


# fan_in != fan_out, so a rule that used the wrong fan gives a clearly different spread.
N_IN, N_OUT = 300, 700

# name -> (kind, spread): the normal std or the uniform bound, written from the papers.
FAN_RULES = {
    "glorot_normal": ("normal", math.sqrt(2 / (N_IN + N_OUT))),
    "glorot_uniform": ("uniform", math.sqrt(6 / (N_IN + N_OUT))),
    "he_normal": ("normal", math.sqrt(2 / N_IN)),
    "he_uniform": ("uniform", math.sqrt(6 / N_IN)),
    "lecun_normal": ("normal", math.sqrt(1 / N_IN)),
    "lecun_uniform": ("uniform", math.sqrt(3 / N_IN)),
}


def check_distribution(W, kind, spread, what):
    """Mean ~ 0; normal: std ~ spread; uniform: |w| <= bound, max near bound, std = bound/sqrt(3)."""
    assert abs(W.mean()) < 0.02 * spread, f"{what}: mean {W.mean():.3g} is not near 0"
    if kind == "normal":
        assert_rel(W.std(), spread, 0.015, f"{what} std")
    else:
        assert np.abs(W).max() <= spread, f"{what}: entry {np.abs(W).max():.6g} beyond bound {spread:.6g}"
        assert np.abs(W).max() > 0.99 * spread, f"{what}: largest entry {np.abs(W).max():.6g} far below bound {spread:.6g}"
        assert_rel(W.std(), spread / math.sqrt(3), 0.015, f"{what} std")


@pytest.mark.parametrize("name", sorted(FAN_RULES))
def test_fan_rules_match_formulas(name):
    kind, spread = FAN_RULES[name]
    W = INITIALIZERS[name]((N_IN, N_OUT), np.random.default_rng(1))
    assert W.shape == (N_IN, N_OUT)
    check_distribution(W, kind, spread, name)


def test_normal_uniform_and_pytorch_match_formulas():
    rng = np.random.default_rng(2)
    check_distribution(initialize("normal:1.0", (400, 500), rng), "normal", 1.0, "normal:1.0")
    check_distribution(initialize("normal", (400, 500), rng), "normal", 0.01, "normal default")
    check_distribution(initialize("uniform:0.3", (400, 500), rng), "uniform", 0.3, "uniform:0.3")
    check_distribution(uniform((400, 500), rng), "uniform", 0.08, "uniform default")
    # tanh RNN: H is the fan_out
    check_distribution(pytorch((300, 200), rng), "uniform", 1 / math.sqrt(200), "pytorch (300, 200)")
    # LSTM W_hh (H, 4H) and its bias: the bound uses H, not 4H
    H = 100
    check_distribution(pytorch((H, 4 * H), rng, hidden_size=H), "uniform", 0.1, "pytorch LSTM W_hh")
    check_distribution(initialize("pytorch:100", (40000,), rng), "uniform", 0.1, "pytorch bias")


def test_zeros_and_dtype():
    assert not np.any(initialize("zeros", (3, 4), 0))
    W64 = initialize("glorot_uniform", (20, 30), np.random.default_rng(3))
    W32 = initialize("glorot_uniform", (20, 30), np.random.default_rng(3), dtype=np.float32)
    assert W32.dtype == np.float32 and W64.dtype == np.float64
    assert_close(W32, W64.astype(np.float32), rtol=0, atol=0, name="float32 draws = float64 draws rounded")


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_every_initialiser_gives_shape_and_dtype(name):
    W = INITIALIZERS[name]((6, 6), np.random.default_rng(4), dtype=np.float32)
    assert W.shape == (6, 6) and W.dtype == np.float32


@pytest.mark.parametrize("shape", [(6, 6), (9, 4), (4, 9), (1, 5), (5, 1)])
def test_orthogonal_is_orthogonal(shape):
    m, n = shape
    Q = orthogonal(shape, np.random.default_rng(5))
    assert Q.shape == shape
    if m >= n:
        assert_close(Q.T @ Q, np.eye(n), rtol=0, atol=1e-12, name="Q^T Q")
    if m <= n:
        assert_close(Q @ Q.T, np.eye(m), rtol=0, atol=1e-12, name="Q Q^T")
    Q = orthogonal(shape, np.random.default_rng(5), gain=1.1)
    assert_close(np.linalg.svd(Q, compute_uv=False), np.full(min(m, n), 1.1), rtol=0, atol=1e-12, name="singular values")


def test_orthogonal_is_haar_distributed():
    # Under the Haar measure on O(3), Q[0, 0] is symmetric about 0 (std 1/sqrt(3), so the mean
    # of 2000 draws has std 0.013). Householder QR without the sign fix gives Q[0, 0] < 0 always.
    rng = np.random.default_rng(6)
    q00 = np.array([orthogonal((3, 3), rng)[0, 0] for _ in range(2000)])
    assert abs(q00.mean()) < 0.06, f"mean of Q[0, 0] is {q00.mean():.3f}, not ~0"
    assert 0.25 < np.mean(q00 ** 2) < 0.42, f"E[Q00^2] = {np.mean(q00 ** 2):.3f}, Haar gives 1/3"


def test_identity():
    assert_close(identity((4, 4), None), np.eye(4), rtol=0, atol=0, name="identity")
    assert_close(initialize("identity:0.5", (3, 3), 0), 0.5 * np.eye(3), rtol=0, atol=0, name="identity gain")
    with pytest.raises(RnnvanishError, match="square"):
        identity((3, 12), None)


def test_spectral_radius_of_known_matrices():
    assert spectral_radius(np.diag([-3.0, 2.0, 0.5])) == pytest.approx(3.0, rel=1e-14)
    theta = 0.7
    R = 0.7 * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    assert spectral_radius(R) == pytest.approx(0.7, rel=1e-14)  # complex pair 0.7 e^{+-i theta}
    U = np.triu(np.full((3, 3), 5.0), 1) + np.diag([0.2, -1.5, 0.9])
    assert spectral_radius(U) == pytest.approx(1.5, rel=1e-12)  # eigenvalues of a triangle: its diagonal


def test_scale_to_radius():
    rng = np.random.default_rng(7)
    lams = np.array([2.0, -0.5, 0.3, 1.2])
    S = rng.standard_normal((4, 4))
    W = S @ np.diag(lams) @ np.linalg.inv(S)
    assert_close(scale_to_radius(W, 1.1), W * 1.1 / 2.0, rtol=0, atol=1e-12, name="scaled W")
    G = rng.standard_normal((8, 8))
    assert spectral_radius(scale_to_radius(G, 0.9)) == pytest.approx(0.9, rel=1e-10)


@pytest.mark.parametrize("W, radius, match", [
    (np.zeros((3, 3)), 1.0, "zero"),
    (np.array([[0.0, 1.0], [0.0, 0.0]]), 1.0, "zero"),   # nilpotent: nonzero but rho = 0
    (np.ones((3, 4)), 1.0, "square"),
    (np.eye(3), 0.0, "positive"),
    (np.eye(3), -1.0, "positive"),
])
def test_scale_to_radius_errors(W, radius, match):
    with pytest.raises(RnnvanishError, match=match):
        scale_to_radius(W, radius)


@pytest.mark.parametrize("spec, expected", [
    ("orthogonal", ("orthogonal", {})),
    ("normal:1.0", ("normal", {"std": 1.0})),
    ("orthogonal:1.1", ("orthogonal", {"gain": 1.1})),
    ("uniform:0.08", ("uniform", {"scale": 0.08})),
    (" Identity:gain=0.5 ", ("identity", {"gain": 0.5})),
])
def test_parse_init(spec, expected):
    assert parse_init(spec) == expected


@pytest.mark.parametrize("spec, match", [
    ("xavier", "orthogonal, identity"),          # lists the valid names
    ("he_normal:2", "takes no number"),
    ("normal:big", "number"),
    ("normal:mean=1", "does not take mean"),
    ("orthogonal:gain=1,2", "key=value"),
])
def test_parse_init_errors(spec, match):
    with pytest.raises(RnnvanishError, match=match):
        parse_init(spec)


def test_initialize_options_and_errors():
    a = initialize("normal:1.0", (5, 5), np.random.default_rng(8))
    b = initialize("normal", (5, 5), 8, std=1.0)                 # a seed works as rng
    assert_close(a, b, rtol=0, atol=0, name="spec vs keyword option")
    c = initialize("normal:1.0", (5, 5), 8, std=2.0)             # keyword overrides the spec
    assert_close(c, 2 * a, rtol=0, atol=1e-15, name="overridden std")
    with pytest.raises(RnnvanishError, match="2-D"):
        initialize("glorot_normal", (10,), 0)
    with pytest.raises(RnnvanishError, match="positive"):
        initialize("normal", (3, 3), 0, std=-1.0)
    with pytest.raises(RnnvanishError, match="does not take"):
        initialize("glorot_normal", (3, 3), 0, gain=2.0)
