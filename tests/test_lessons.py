"""The lesson numbers against closed forms and finite differences; every script writes its PNG."""
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_close

from rnnvanish.errors import RnnvanishError
from rnnvanish.lessons import (ACTIVATIONS, MLP_SETUPS, activation, chain_product, clip_demo,
                               deep_mlp_variances, init_weight, logistic_orbit, mlp_backward,
                               mlp_forward)
from rnnvanish.lessons.activations import ARGSUP

REPO = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_blas_thread")


def close(actual, expected, rtol, what, atol=0.0):
    """Entry by entry: |actual - expected| <= atol + rtol |expected| (expected broadcast to actual)."""
    actual, expected = np.broadcast_arrays(np.asarray(actual, float), np.asarray(expected, float))
    assert_close(actual, expected, rtol, atol, name=what, each=True)


def test_chain_product_is_the_power():
    n, products = chain_product((0.8, 1.2, 1.0), 50)
    for a, values in products.items():
        close(values, float(a) ** n, 1e-12, f"{a}^n")
    assert products[0.8][-1] < 1e-4 and products[1.2][-1] > 1e3


@pytest.mark.parametrize("r, x0", [(3.5, 0.2), (3.9, 0.3), (2.8, 0.7)])
def test_logistic_derivative_matches_finite_differences(r, x0):
    n_steps, h = 12, 1e-6
    x, dx = logistic_orbit(x0, n_steps, r)

    def iterate(x_start, n):                                  # f^n written out again
        for _ in range(n):
            x_start = r * x_start * (1.0 - x_start)
        return x_start

    close(x, [iterate(x0, n) for n in range(n_steps + 1)], 1e-12, "orbit")
    fd = [(iterate(x0 + h, n) - iterate(x0 - h, n)) / (2 * h) for n in range(n_steps + 1)]
    close(dx, fd, 1e-5, f"d f^n / d x0 at r = {r}", atol=1e-7)


def test_logistic_derivative_shrinks_at_3_5_and_grows_at_3_9():
    assert abs(logistic_orbit(0.2, 60, 3.5)[1][-1]) < 1e-10
    assert abs(logistic_orbit(0.2, 60, 3.9)[1][-1]) > 1e10
    with pytest.raises(RnnvanishError):
        logistic_orbit(1.5, 3)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_derivative_matches_finite_differences(name):
    f, df, _ = ACTIVATIONS[name]
    a = np.linspace(-8, 8, 4001)
    a = a[np.abs(a) > 1e-3]                                    # the ReLU family has a kink at 0
    h = 1e-5
    close(df(a), (f(a + h) - f(a - h)) / (2 * h), 1e-6, f"{name}' against finite differences", atol=1e-9)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_supremum_bounds_and_is_reached(name):
    f, df, bound = ACTIVATIONS[name]
    a = np.concatenate([np.linspace(-40, 40, 400001), [0.0, -1e-12, math.sqrt(2.0)]])
    d = np.abs(df(a))
    assert d.max() <= bound * (1 + 1e-12), f"|{name}'| = {d.max()} passes its bound {bound}"
    at = ARGSUP[name] if math.isfinite(ARGSUP[name]) else 40.0
    close(df(np.array([at])), bound, 1e-9, f"{name}' where its supremum is reached")
    # and nowhere on the grid beyond it: the bound is the supremum, not just a bound
    close(d.max(), bound, 1e-9, f"max |{name}'| on the grid")


def test_activation_closed_forms():
    a = np.linspace(-6, 6, 1201)
    close(ACTIVATIONS["sigmoid"][0](a), 1.0 / (1.0 + np.exp(-a)), 1e-12, "sigmoid")
    close(ACTIVATIONS["softplus"][0](a), np.log1p(np.exp(a)), 1e-12, "softplus")
    close(ACTIVATIONS["silu"][0](a), a / (1.0 + np.exp(-a)), 1e-12, "silu")
    close(activation("leaky_relu:0.2")[0](a), np.where(a > 0, a, 0.2 * a), 0.0, "leaky 0.2")
    assert activation("leaky_relu:0.2")[1](np.array([-1.0]))[0] == 0.2
    close(activation("elu:0.5")[0](np.array([-1.0])), 0.5 * (math.exp(-1) - 1), 1e-12, "elu 0.5")
    with pytest.raises(RnnvanishError):
        activation("swish2")
    with pytest.raises(RnnvanishError):
        activation("tanh:0.3")


def test_selu_constants_give_the_fixed_point_mean_0_variance_1():
    """For a ~ N(0, 1): E[selu(a)] = 0 and E[selu(a)^2] = 1, by quadrature on a fine grid."""
    a = np.linspace(-12, 12, 240001)
    weight = np.exp(-0.5 * a * a) / math.sqrt(2 * math.pi) * (a[1] - a[0])
    s = ACTIVATIONS["selu"][0](a)
    assert abs(np.sum(s * weight)) < 1e-9
    assert abs(np.sum(s * s * weight) - 1.0) < 1e-9
    # a neighbour of the constants misses: the test can tell
    wrong = 1.05 * s
    assert abs(np.sum(wrong * wrong * weight) - 1.0) > 0.05


@pytest.mark.parametrize("setup", list(MLP_SETUPS))
def test_mlp_backward_matches_finite_differences(setup):
    activation, scheme, skip = MLP_SETUPS[setup]
    rng = np.random.default_rng(3)
    Ws = [init_weight(scheme, 3, 3, rng) * (0.5 if scheme == "normal" else 1.0) for _ in range(4)]
    x = rng.standard_normal((2, 3)) + 0.1                      # keep ReLU units off their kink
    G = rng.standard_normal((2, 3))

    def loss(x_in):
        return np.sum(mlp_forward(x_in, Ws, activation, skip)[0][-1] * G)

    hs, As = mlp_forward(x, Ws, activation, skip)
    dx = mlp_backward(As, Ws, G, activation, skip)[0]
    fd = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = 1e-6
        fd[idx] = (loss(x + e) - loss(x - e)) / 2e-6
    close(dx, fd, 1e-6, f"dE/dx for {setup}", atol=1e-9)


def test_init_weight_variances():
    rng = np.random.default_rng(0)
    n = 400
    expected = {"normal": 1.0, "standard": 1.0 / (3 * n), "glorot": 2.0 / (2 * n), "he": 2.0 / n}
    for scheme, var in expected.items():
        close(init_weight(scheme, n, n, rng).var(), var, 0.02, f"Var(W) for {scheme}")
    with pytest.raises(RnnvanishError):
        init_weight("orthogonal", 2, 2, rng)


def test_gradient_variance_trends():
    kw = dict(n_layers=12, width=256, batch=64, rng=1)          # the chart's width, fewer layers
    r = {label: deep_mlp_variances(label, **kw) for label in MLP_SETUPS}
    top = 0.5 < r["ReLU, He"]["var_dh"][-1] < 2.0
    assert top, "the top gradient G ~ N(0, 1) should have variance near 1"
    # sigmoid with the standard heuristic: about (1/3) * E[sigma'^2] ~ 0.02 per layer -> vanishes
    assert r["sigmoid, U[±1/√n]"]["var_dh"][0] < 1e-15
    # the skip connection's identity path keeps it from vanishing (it even grows)
    assert r["tanh, Glorot + skip"]["var_dh"][0] >= r["tanh, Glorot + skip"]["var_dh"][-1]
    # He initialisation for ReLU keeps both passes of order one
    assert 0.1 < r["ReLU, He"]["var_dh"][0] < 10 and 0.1 < r["ReLU, He"]["var_h"][-1] < 10
    # sigmoid with N(0, 1) weights: units saturate, yet at width 256 width * Var(W) * E[sigma'^2] > 1;
    # E[sigma'^2] only falls like 1/sqrt(width), so a narrow net of the same kind vanishes instead
    assert r["sigmoid, N(0, 1)"]["var_dh"][0] > 10
    narrow = deep_mlp_variances("sigmoid, N(0, 1)", n_layers=12, width=32, batch=64, rng=1)
    assert narrow["var_dh"][0] < 0.1


def test_one_backward_step_scales_the_variance_by_the_mean_field_factor():
    """Var(dE/dh_{l-1}) ~ width * Var(W) * E[f'(a_l)^2] * Var(dE/dh_l), layer by layer."""
    rng = np.random.default_rng(2)
    width = 256
    for activation, scheme in (("sigmoid", "standard"), ("sigmoid", "normal"), ("tanh", "glorot")):
        Ws = [init_weight(scheme, width, width, rng) for _ in range(4)]
        hs, As = mlp_forward(rng.standard_normal((256, width)), Ws, activation)
        dhs = mlp_backward(As, Ws, rng.standard_normal((256, width)), activation)
        df = ACTIVATIONS[activation][1]
        for l in range(1, 5):
            factor = width * Ws[l - 1].var() * np.mean(df(As[l - 1]) ** 2)
            ratio = dhs[l - 1].var() / dhs[l].var()
            close(ratio, factor, 0.15, f"{activation} + {scheme}, layer {l}")


def test_clip_demo_against_the_definitions():
    g, c = np.array([4.0, 1.0]), 1.0
    demo = clip_demo(g, c)
    close(demo["by_value"], np.clip(g, -c, c), 0.0, "clip by value")
    close(demo["by_norm"], g * c / np.linalg.norm(g), 1e-5, "clip by norm")
    close(demo["angle_by_value"], math.degrees(math.atan2(1, 1) - math.atan2(1, 4)), 1e-9, "angle")
    assert demo["angle_by_norm"] < 1e-4
    small = clip_demo([0.3, -0.4], 1.0)
    close(small["by_value"], [0.3, -0.4], 0.0, "inside the box")
    close(small["by_norm"], [0.3, -0.4], 0.0, "inside the ball")


# ----------------------------------------------------------------------------- charts and scripts

def test_chart_functions_draw_on_given_axes():
    from rnnvanish.plots import plt
    from rnnvanish.plots.lessons import plot_chain_product, plot_deep_mlp_variances

    fig, axes = plt.subplots(1, 3)
    assert plot_chain_product(*chain_product(), ax=axes[0]) is fig
    results = {"ReLU, He": deep_mlp_variances("ReLU, He", 3, 8, 8, rng=0)}
    assert plot_deep_mlp_variances(results, axes=axes[1:]) is fig
    assert len(axes[0].lines) >= 2 and axes[1].get_yscale() == "log"
    plt.close(fig)


SCRIPTS = {
    "chain_product": ["--steps", "10"],
    "logistic_map": ["--steps", "10"],
    "activations": ["--names", "sigmoid", "selu", "gelu", "softplus"],
    "deep_mlp_variance": ["--quick"],
    "init_activation": ["--quick"],
    "self_normalisation": ["--quick"],
    "norm_init": ["--quick"],
    "norm_training": ["--quick"],
    "weight_decay": ["--quick"],
    "clip_value_vs_norm": ["--gradient", "3", "-2", "--threshold", "1.5"],
}


def _check_png(out, folder):
    assert out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in folder.iterdir()) == [out.name], "stray files left behind"


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_writes_a_png(name, tmp_path, monkeypatch, capsys):
    """Each script's main() in this process (one interpreter start for all of them)."""
    from rnnvanish.plots import plt

    monkeypatch.chdir(tmp_path)
    out = tmp_path / f"{name}.png"
    main = runpy.run_path(str(REPO / "scripts" / f"{name}.py"))["main"]
    main(["--out", str(out), *SCRIPTS[name]])
    assert str(out) in capsys.readouterr().out
    _check_png(out, tmp_path)
    assert not plt.get_fignums(), "the script left a figure open"


def test_a_script_runs_on_its_own_without_a_display(tmp_path):
    out = tmp_path / "chain_product.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "chain_product.py"), "--out", str(out), "--steps", "10"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    _check_png(out, tmp_path)
