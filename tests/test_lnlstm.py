"""The layer-normalised LSTM (Ba, Kiros & Hinton 2016): the layer norm against its definition,
gradients against central differences (one layer and stacked), the Numba twin against the
reference, the closed-form step Jacobian, and the cell through every command."""
import ast
import inspect
import pathlib

import numpy as np
import pytest

from conftest import TEXT, assert_close, cli
from rnnvanish import kernels, reference
from rnnvanish.cells import CellMasks, make_cell
from rnnvanish.gradcheck import (check_language_model, check_stacked_language_model, numerical_gradient,
                                 relative_error)
from rnnvanish.kernels import lnlstm as k_lnlstm
from rnnvanish.reference import lnlstm as r_lnlstm

TOLERANCE = 1e-7
RTOL = {np.float64: 1e-10, np.float32: 1e-4}
GRID = [(T, B, k) for T in (1, 7) for B in (1, 3) for k in (None, 3)]
GRID_IDS = [f"T{T}-B{B}-k{k}" for T, B, k in GRID]
LN_NAMES = ("alpha_x", "beta_x", "alpha_h", "beta_h", "alpha_c", "beta_c")


def assert_gradients_match(rows, label, suffix=""):
    assert rows, f"{label}: nothing was checked"
    names = {name for name, _, _ in rows}
    for want in ("W_xh", "W_hh", "b_h") + LN_NAMES:
        assert want + suffix in names, f"{label}: {want + suffix} not checked ({sorted(names)})"
    for name, err, magnitude in rows:
        assert magnitude > 0.0, f"{label} {name}: gradient is identically zero, the check would be empty"
        assert err <= TOLERANCE, f"{label} {name}: relative error {err:.2e} > {TOLERANCE:g}"


# --------------------------------------------------------------------------- the layer norm

@pytest.mark.parametrize("module", [reference, kernels], ids=["numpy", "numba"])
def test_layer_norm_follows_its_definition(module):
    """Before the gains ẑ has zero mean and variance v / (v + ε) (1 up to ε) over the units of
    each sample; y = α ẑ + β and r = 1 / sqrt(v + ε)."""
    rng = np.random.default_rng(0)
    z = rng.normal(2.0, 3.0, (4, 3, 8))
    alpha, beta = rng.normal(1.0, 0.5, 8), rng.normal(0.0, 0.5, 8)
    eps = r_lnlstm.EPS
    y, z_hat, r = module.layer_norm_forward(z, alpha, beta, eps)
    v = z.var(axis=-1)
    assert_close(z_hat.mean(axis=-1), np.zeros((4, 3)), atol=1e-14, name="mean of ẑ")
    assert_close(z_hat.var(axis=-1), v / (v + eps), rtol=1e-12, name="variance of ẑ")
    assert np.allclose(z_hat.var(axis=-1), 1.0, atol=1e-5)
    assert_close(r, 1.0 / np.sqrt(v + eps), rtol=1e-12, name="r")
    assert_close(z_hat, (z - z.mean(axis=-1, keepdims=True)) / np.sqrt(v + eps)[..., None], rtol=1e-12, name="ẑ")
    assert_close(y, alpha * z_hat + beta, rtol=1e-12, name="y")


@pytest.mark.parametrize("module", [reference, kernels], ids=["numpy", "numba"])
def test_layer_norm_backward_equals_central_differences(module):
    rng = np.random.default_rng(1)
    z = rng.normal(0.5, 2.0, (2, 3, 6))
    alpha, beta = rng.normal(1.0, 0.5, 6), rng.normal(0.0, 0.5, 6)
    R = rng.normal(size=z.shape)

    def loss():
        return float((R * module.layer_norm_forward(z, alpha, beta, 1e-5)[0]).sum())

    _, z_hat, r = module.layer_norm_forward(z, alpha, beta, 1e-5)
    dz = module.layer_norm_backward(R, z_hat, r, alpha)
    assert relative_error(dz, numerical_gradient(loss, z, 1e-6)) < 1e-8
    # without the paths through mu and sigma (dz = α r dy) the check fails: it can fail
    assert relative_error(alpha * r[..., None] * R, numerical_gradient(loss, z, 1e-6)) > 1e-2


def test_initial_parameters():
    cell = make_cell("lnlstm", 3, 5, seed=0, backend="numpy")
    p = cell.params
    assert set(p) == {"W_xh", "W_hh", "b_h", *LN_NAMES}
    assert p["W_xh"].shape == (3, 20) and p["W_hh"].shape == (5, 20) and p["alpha_c"].shape == (5,)
    for part in ("x", "h", "c"):
        assert np.all(p[f"alpha_{part}"] == 1.0) and np.all(p[f"beta_{part}"] == 0.0)
    assert np.all(p["b_h"][5:10] == 1.0) and np.all(p["b_h"][:5] == 0.0) and np.all(p["b_h"][10:] == 0.0)


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("T,B,truncate", GRID, ids=GRID_IDS)
def test_one_layer_gradients_equal_central_differences(T, B, truncate):
    rows = check_language_model("lnlstm", hidden=5, window=T, batch=B, truncate=truncate, vocab=6, seed=T + B,
                                backend="numpy")
    assert_gradients_match(rows, f"lnlstm T={T} B={B} truncate={truncate}")


@pytest.mark.parametrize("T,B,truncate", GRID, ids=GRID_IDS)
def test_stacked_gradients_equal_central_differences(T, B, truncate):
    rows = check_stacked_language_model("lnlstm", layers=2, hidden=5, window=T, batch=B, truncate=truncate, vocab=6,
                                        seed=10 + T + B, backend="numpy", dropout=0.3)
    assert_gradients_match(rows, f"stacked lnlstm T={T} B={B} truncate={truncate}", suffix="_l1")


def test_the_gradient_check_sees_a_wrong_layer_norm_backward(monkeypatch):
    """With the layer norm's backward cut to dz = α r dy, the same check fails."""
    monkeypatch.setattr(r_lnlstm, "_layer_norm_back", lambda dy, z_hat, r, alpha: alpha * dy * r[..., None])
    rows = check_language_model("lnlstm", hidden=5, window=4, batch=2, truncate=None, vocab=6, seed=3,
                                backend="numpy")
    assert max(err for _, err, _ in rows) > 1e-3


@pytest.mark.parametrize("variational", [False, True], ids=["dropout-zoneout", "variational-zoneout"])
def test_gradients_with_masks_held_fixed(variational):
    rows = check_stacked_language_model("lnlstm", layers=2, hidden=5, window=5, batch=2, truncate=3, vocab=6, seed=4,
                                        backend="numpy", dropout=0.3, variational=variational, zoneout=0.3)
    assert_gradients_match(rows, f"masked lnlstm variational={variational}", suffix="_l1")


def test_without_masks_the_masked_call_is_the_plain_one():
    cell = make_cell("lnlstm", 3, 5, seed=1, backend="numba")
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    plain, masked = cell.forward(x)[0], cell.forward(x, masks=CellMasks())[0]
    assert np.array_equal(plain, masked)
    zoned = cell.forward(x, masks=CellMasks(zoneout=np.ones((4, 2, 5))))[0]
    assert np.all(zoned == zoned[0])                     # d = 1 keeps every unit: the state never moves


# --------------------------------------------------------------------------- the Numba twin

def case(T, B, H, dtype, seed, masks=False):
    rng = np.random.default_rng(seed)
    normal = lambda *shape, s=1.0: (s * rng.standard_normal(shape)).astype(dtype)    # noqa: E731
    extra = {}
    if masks:
        extra = {"m": ((rng.random((B, H)) < 0.7) / 0.7).astype(dtype), "d": (rng.random((T, B, H)) < 0.3).astype(dtype)}
    return {**extra, "xn": normal(T, B, 4 * H), "h0": normal(B, H, s=0.5), "c0": normal(B, H, s=0.5),
            "W_hh": normal(H, 4 * H, s=0.5), "alpha_h": 1 + normal(4 * H, s=0.3), "beta_h": normal(4 * H, s=0.3),
            "alpha_c": 1 + normal(H, s=0.3), "beta_c": normal(H, s=0.3), "dh": normal(T, B, H),
            "dh_T": normal(B, H), "dc_T": normal(B, H)}


def run(module, c, truncate):
    names = ("h", "c", "gates", "zp", "rp", "zc", "rc")
    masks = (c["m"], c["d"]) if "m" in c else ()
    out = dict(zip(names, module.lnlstm_forward(c["xn"], c["h0"], c["c0"], c["W_hh"], c["alpha_h"], c["beta_h"],
                                                c["alpha_c"], c["beta_c"], r_lnlstm.EPS, *masks)))
    back = module.lnlstm_backward(c["dh"], c["dh_T"], c["dc_T"], *(out[n] for n in names), c["W_hh"], c["alpha_h"],
                                  c["alpha_c"], c["beta_c"], truncate, *masks)
    out.update(zip(("da", "dp", "dy", "dh0", "dc0", "norms_h", "norms_c"), back))
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("masks", [False, True], ids=["plain", "masked"])
@pytest.mark.parametrize("truncate", [0, 1, 3])
@pytest.mark.parametrize("T,B", [(1, 1), (1, 3), (7, 1), (7, 3), (4, 2)])
def test_the_kernels_equal_the_reference(T, B, truncate, masks, dtype):
    c = case(T, B, 5, dtype, seed=100 * T + 10 * B + truncate, masks=masks)
    expected, actual = run(reference, c, truncate), run(kernels, c, truncate)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        assert_close(actual[name], value, rtol=RTOL[dtype], name=f"{name} T={T} B={B} k={truncate} masks={masks}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layers", [1, 2])
def test_the_backends_agree_through_a_stacked_task_model(layers, dtype):
    from rnnvanish.stack import Stack
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 3, 3))
    dh = rng.standard_normal((7, 3, 5))
    results = {}
    for backend in ("numpy", "numba"):
        stack = Stack("lnlstm", 3, 5, layers, seed=2, dtype=dtype, backend=backend)
        h, _, cache = stack.forward(x)
        grads, dstate0, _ = stack.backward(dh, cache, truncate=3)
        results[backend] = (h, grads, dstate0)
    rtol = RTOL[np.dtype(dtype).type]
    assert results["numba"][0].dtype == np.dtype(dtype)
    assert_close(results["numba"][0], results["numpy"][0], rtol=rtol, name="h")
    for name in results["numpy"][1]:
        assert_close(results["numba"][1][name], results["numpy"][1][name], rtol=rtol, atol=rtol * 1e-3, name=name)


def _public(module):
    return {n for n, f in vars(module).items() if callable(f) and not n.startswith("_")
            and getattr(f, "__module__", module.__name__) == module.__name__}


def test_the_twins_have_the_same_names_and_arguments_and_are_exported():
    expected = {"lnlstm_forward", "lnlstm_backward", "layer_norm_forward", "layer_norm_backward"}
    assert _public(k_lnlstm) == _public(r_lnlstm) == expected
    for name in expected:
        k_args = list(inspect.signature(getattr(k_lnlstm, name).py_func).parameters)
        assert k_args == list(inspect.signature(getattr(r_lnlstm, name)).parameters), name
        assert name in kernels.__all__ and name in reference.__all__


def test_the_kernel_file_calls_no_jitted_code_of_another_module():
    """Numba's cache checks only the compiled function's own file: import numpy and numba only."""
    tree = ast.parse(pathlib.Path(k_lnlstm.__file__).read_text())
    modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    modules += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert all(m.split(".")[0] in ("numpy", "numba") for m in modules), modules


# --------------------------------------------------------------------------- the tracer

@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_step_jacobians_equal_finite_differences_of_one_step(backend):
    """J_t = ds_t/ds_{t-1}, s = (h, c), against central differences of one step of the cell."""
    from rnnvanish.tracer.jacobians import step_jacobians
    cell = make_cell("lnlstm", 3, 5, seed=0, backend=backend)
    rng = np.random.default_rng(1)
    for p in cell.params.values():
        p += rng.normal(0.0, 0.3, p.shape)
    x = rng.standard_normal((5, 1, 3))
    _, _, cache = cell.forward(x, (rng.normal(0, 0.5, (1, 5)), rng.normal(0, 0.5, (1, 5))))
    J = step_jacobians(cell, cache)
    assert J.shape == (5, 10, 10)
    eps = 1e-6
    for t in range(1, 6):
        s_prev = np.concatenate([cache["h"][t - 1, 0], cache["c"][t - 1, 0]])
        numeric = np.zeros((10, 10))
        for j in range(10):
            plus, minus = s_prev.copy(), s_prev.copy()
            plus[j] += eps
            minus[j] -= eps
            step = [cell.forward(x[t - 1:t], (s[None, :5], s[None, 5:]))[1] for s in (plus, minus)]
            numeric[:, j] = (np.concatenate([step[0][0][0], step[0][1][0]])
                             - np.concatenate([step[1][0][0], step[1][1][0]])) / (2 * eps)
        assert_close(J[t - 1], numeric, rtol=1e-6, atol=1e-9, name=f"J_{t}")


def test_the_probe_matches_the_kernels_norms():
    """The tracer's probe steps back with the reference's step: from a loss on h_T alone its
    ||dE/dh_k|| equal the backward kernel's norms."""
    from rnnvanish.tracer.signal import backprop_signal
    cell = make_cell("lnlstm", 3, 5, seed=0, backend="numba")
    x = np.random.default_rng(2).standard_normal((6, 1, 3))
    _, _, cache = cell.forward(x)
    u = np.random.default_rng(3).standard_normal((1, 5))
    grad_h, grad_c, _ = backprop_signal(cell, cache, u)
    dh = np.zeros((6, 1, 5))
    dh[-1] = u
    _, _, norms = cell.backward(dh, cache)
    assert_close(grad_h[0], norms["h"][::-1], rtol=1e-10, name="||dE/dh_k|| by lag")
    assert_close(grad_c[0], norms["c"][::-1], rtol=1e-10, name="||dE/dc_k|| by lag")


# --------------------------------------------------------------------------- through the commands

def test_train_command(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    code, out, err = cli(capsys, "train", corpus, "--cell", "lnlstm", "--steps", "20", "--hidden", "8", "--window", "10",
                         "--batch", "4", "--eval-every", "10", "--out", tmp_path / "run")
    assert code == 0, err
    assert "LN-LSTM (forget bias 1" in out


def test_task_command(tmp_path, capsys):
    code, out, err = cli(capsys, "task", "adding", "--cell", "lnlstm", "--length", "12", "--layers", "2",
                         "--hidden", "6", "--batch", "4", "--steps", "6", "--eval-every", "3", "--eval-size", "20",
                         "--out", tmp_path / "run")
    assert code == 0, err
    assert "adding T=12 lnlstm" in out


def test_trace_command(tmp_path, capsys):
    code, out, err = cli(capsys, "trace", "--cell", "lnlstm", "--hidden", "6", "--length", "12", "--batch", "3",
                         "--out", tmp_path / "t")
    assert code == 0, err
    from rnnvanish.tracer import Trace
    tr = Trace.load(tmp_path / "t" / "trace.npz")
    assert tr.meta["cell"] == "lnlstm" and tr.grad_c is not None and tr.meta["state_size"] == 12


def test_sweep_command(tmp_path, capsys):
    code, out, err = cli(capsys, "sweep", "adding", "--cells", "lnlstm", "--lengths", "10", "--seeds", "1", "--steps",
                         "4", "--workers", "1", "--hidden", "6", "--out", tmp_path / "sweep")
    assert code == 0, err
    assert "lnlstm T=10 seed 0" in out


def test_gradcheck_command(capsys):
    code, out, err = cli(capsys, "gradcheck", "--cell", "lnlstm", "--window", "3", "--batch", "2", "--backend", "numpy")
    assert code == 0, err
    assert "lnlstm" in out and "all gradients match" in out


@pytest.mark.parametrize("argv, words", [
    (["train", "--cell", "lnlstm", "--activation", "relu", "--steps", "1"], "activation"),
    (["task", "adding", "--cell", "lnlstm", "--reset-before", "--steps", "1"], "reset"),
    (["gradcheck", "--cell", "lnlstm", "--activation", "relu"], "activation"),
])
def test_a_bad_option_is_one_line_and_exit_2(argv, words, capsys, tmp_path):
    code, out, err = cli(capsys, *argv, *(["--out", tmp_path / "run"] if argv[0] != "gradcheck" else []))
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err
