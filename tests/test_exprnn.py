"""expRNN (Lezcano-Casado & Martínez-Rubio 2019): the gradient through expm against central
differences, the adjoint of the Fréchet derivative, the modReLU kernels' Numba twin against the
reference, W_hh = expm(A) orthogonal after 1000 Adam steps, the bound on its Jacobian products,
and the cell through every command."""
import ast
import inspect
import pathlib

import numpy as np
import pytest
from scipy.linalg import expm, expm_frechet

from conftest import TEXT, assert_close, cli, make_task_trainer
from rnnvanish import kernels, reference
from rnnvanish.cells import make_cell
from rnnvanish.exprnn import expm_grad, skew, skew_init
from rnnvanish.gradcheck import check_language_model, check_stacked_language_model, relative_error
from rnnvanish.kernels import exprnn as k_exprnn
from rnnvanish.reference import exprnn as r_exprnn

TOLERANCE = 1e-7
RTOL = {np.float64: 1e-10, np.float32: 1e-4}
GRID = [(T, B, k) for T in (1, 7) for B in (1, 3) for k in (None, 3)]
GRID_IDS = [f"T{T}-B{B}-k{k}" for T, B, k in GRID]
NONLINEARITIES = ("modrelu", "tanh")


def assert_gradients_match(rows, label, bias):
    names = [name for name, _, _ in rows]
    assert "A" in names and "W_xh" in names and bias in names, f"{label}: checked {names}"
    for name, err, magnitude in rows:
        assert magnitude > 0.0, f"{label} {name}: gradient is identically zero, the check would be empty"
        assert err <= TOLERANCE, f"{label} {name}: relative error {err:.2e} > {TOLERANCE:g}"


# --------------------------------------------------------------------------- the matrix exponential

def test_the_adjoint_of_the_frechet_derivative_is_the_frechet_derivative_at_the_transpose():
    """<L(A, E), F> = <E, L(A^T, F)> for a general (not skew) A: the identity dA uses."""
    rng = np.random.default_rng(0)
    for n in (1, 3, 6):
        A, E, F = (rng.standard_normal((n, n)) for _ in range(3))
        left = np.sum(expm_frechet(A, E, compute_expm=False) * F)
        right = np.sum(E * expm_frechet(A.T, F, compute_expm=False))
        assert abs(left - right) <= 1e-12 * max(1.0, abs(left)), (n, left, right)
    # the identity is not trivially true: L(A, .) itself is not self-adjoint
    A, E, F = (rng.standard_normal((4, 4)) for _ in range(3))
    assert abs(np.sum(expm_frechet(A, E, compute_expm=False) * F) - np.sum(E * expm_frechet(A, F, compute_expm=False))) > 1e-3


def test_expm_grad_equals_central_differences_of_a_linear_function_of_expm():
    """E(A) = <C, expm(S(A))>: dE/dA = expm_grad(A, C), entry by entry, A skew or not."""
    rng = np.random.default_rng(1)
    C = rng.standard_normal((5, 5))
    for A in (skew(rng.standard_normal((5, 5))), rng.standard_normal((5, 5))):
        analytic = expm_grad(A, C)
        numeric = np.zeros_like(A)
        eps = 1e-6
        for i in range(5):
            for j in range(5):
                plus, minus = A.copy(), A.copy()
                plus[i, j] += eps
                minus[i, j] -= eps
                numeric[i, j] = (np.sum(C * expm(skew(plus))) - np.sum(C * expm(skew(minus)))) / (2 * eps)
        assert relative_error(analytic, numeric) <= 1e-8
        assert_close(analytic, -analytic.T, rtol=0, atol=0, name="dA is skew")


# --------------------------------------------------------------------------- gradients of the cell

@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("T,B,truncate", GRID, ids=GRID_IDS)
def test_one_layer_gradients_equal_central_differences(T, B, truncate, nonlinearity):
    rows = check_language_model("exprnn", hidden=5, window=T, batch=B, truncate=truncate, vocab=6, seed=T + B,
                                backend="numpy", nonlinearity=nonlinearity)
    assert_gradients_match(rows, f"exprnn/{nonlinearity} T={T} B={B} truncate={truncate}",
                           "b_mod" if nonlinearity == "modrelu" else "b_h")


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_stacked_gradients_with_masks_held_fixed(nonlinearity):
    rows = check_stacked_language_model("exprnn", layers=2, hidden=5, window=5, batch=2, truncate=3, vocab=6, seed=4,
                                        backend="numpy", dropout=0.3, variational=True, zoneout=0.3,
                                        nonlinearity=nonlinearity)
    assert any(name == "A_l1" for name, _, _ in rows)
    assert_gradients_match(rows, f"masked stacked exprnn/{nonlinearity}", "b_mod" if nonlinearity == "modrelu" else "b_h")


def test_the_gradient_check_sees_a_gradient_that_skips_expm(monkeypatch):
    """dA = S(dW_hh), as if W_hh were A itself, is caught: the check above can fail."""
    import rnnvanish.exprnn as exprnn
    monkeypatch.setattr(exprnn, "expm_grad", lambda A, dW: skew(np.asarray(dW, dtype=np.float64)))
    rows = check_language_model("exprnn", hidden=5, window=7, batch=3, vocab=6, seed=1, backend="numpy")
    errors = {name: err for name, err, _ in rows}
    assert errors["A"] > 1e-3 and errors["W_xh"] <= TOLERANCE


# --------------------------------------------------------------------------- the Numba twin

def case(T, B, H, dtype, seed, masks):
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.standard_normal(shape).astype(dtype)          # noqa: E731
    c = {"xw": normal(T, B, H), "h0": normal(B, H), "W_hh": expm(skew(rng.standard_normal((H, H)))).astype(dtype),
         "b_mod": rng.uniform(-1.0, 0.3, H).astype(dtype), "dh": normal(T, B, H), "dh_T": normal(B, H)}
    if masks:
        c["m"] = ((rng.random((B, H)) < 0.7) / 0.7).astype(dtype)
        c["d"] = (rng.random((T, B, H)) < 0.3).astype(dtype)
    return c


def run(module, c, truncate):
    if "m" not in c:
        h = module.modrelu_forward(c["xw"], c["h0"], c["W_hh"], c["b_mod"])
        da, dh0, norms = module.modrelu_backward(c["dh"], c["dh_T"], h, c["W_hh"], truncate)
        return {"h": h, "da": da, "dh0": dh0, "norms": norms}
    h_new = np.empty_like(c["xw"])
    h = module.modrelu_forward(c["xw"], c["h0"], c["W_hh"], c["b_mod"], c["m"], c["d"], h_new)
    da, dh0, norms = module.modrelu_backward(c["dh"], c["dh_T"], h, c["W_hh"], truncate, c["m"], c["d"], h_new)
    return {"h": h, "h_new": h_new, "da": da, "dh0": dh0, "norms": norms}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("masks", [False, True], ids=["plain", "masked"])
@pytest.mark.parametrize("truncate", [0, 3])
@pytest.mark.parametrize("T,B", [(1, 1), (1, 3), (7, 1), (7, 3)])
def test_the_kernels_equal_the_reference(T, B, truncate, masks, dtype):
    c = case(T, B, 6, dtype, seed=100 * T + 10 * B + truncate, masks=masks)
    expected, actual = run(reference, c, truncate), run(kernels, c, truncate)
    if T * B > 1:
        assert np.any(expected["h"][1:] == 0) and np.any(expected["h"][1:] != 0), "both modReLU branches are taken"
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        assert_close(actual[name], value, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3,
                     name=f"{name} T={T} B={B} k={truncate} masks={masks}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_the_backends_agree_through_the_cell(nonlinearity, dtype):
    rng = np.random.default_rng(3)
    x, dh = rng.standard_normal((7, 3, 3)), rng.standard_normal((7, 3, 5))
    results = {}
    for backend in ("numpy", "numba"):
        cell = make_cell("exprnn", 3, 5, seed=2, dtype=dtype, backend=backend, nonlinearity=nonlinearity)
        h, _, cache = cell.forward(x)
        results[backend] = (h, cell.backward(dh, cache, truncate=3)[0])
    rtol = RTOL[np.dtype(dtype).type]
    assert_close(results["numba"][0], results["numpy"][0], rtol=rtol, atol=rtol * 1e-3, name="h")
    for name in results["numpy"][1]:
        assert_close(results["numba"][1][name], results["numpy"][1][name], rtol=rtol, atol=rtol * 1e-3, name=name)


def _public(module):
    return {n for n, f in vars(module).items() if callable(f) and not n.startswith("_")
            and getattr(f, "__module__", module.__name__) == module.__name__}


def test_the_twins_have_the_same_names_and_arguments_and_are_exported():
    assert _public(k_exprnn) == _public(r_exprnn) == {"modrelu_forward", "modrelu_backward"}
    for name in _public(r_exprnn):
        k_args = list(inspect.signature(getattr(k_exprnn, name).py_func).parameters)
        assert k_args == list(inspect.signature(getattr(r_exprnn, name)).parameters), name
        assert name in kernels.__all__ and name in reference.__all__


def test_the_kernel_file_calls_no_jitted_code_of_another_module():
    tree = ast.parse(pathlib.Path(k_exprnn.__file__).read_text())
    modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    modules += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert all(m.split(".")[0] in ("numpy", "numba") for m in modules), modules


# --------------------------------------------------------------------------- orthogonality

def orthogonality_error(cell):
    W = expm(np.asarray(cell.params["A"], dtype=np.float64))
    return np.max(np.abs(W.T @ W - np.eye(W.shape[0])))


@pytest.mark.parametrize("kind", ["henaff", "cayley"])
def test_initialisation_is_block_rotations(kind):
    A = skew_init(kind, 7, np.random.default_rng(0))
    assert np.array_equal(A, -A.T)
    s = A[[0, 2, 4], [1, 3, 5]]
    assert np.count_nonzero(A) == 6 and np.all(A[6] == 0)                     # 2 x 2 blocks; odd H: last unit free
    assert (np.all(np.abs(s) <= np.pi) if kind == "henaff" else np.all((s <= 0) & (s >= -1)))
    W = expm(A)
    assert_close(W[0:2, 0:2], [[np.cos(s[0]), np.sin(s[0])], [-np.sin(s[0]), np.cos(s[0])]], rtol=1e-12, atol=1e-15)


def test_expm_of_A_stays_orthogonal_after_1000_adam_steps():
    """A tiny task model trained on random data: ||W^T W - I||_max <= 1e-12 after every 100 steps."""
    from rnnvanish.optim import Adam
    rng = np.random.default_rng(0)
    cell = make_cell("exprnn", 3, 6, seed=1, backend="numba", nonlinearity="modrelu")
    opt = Adam(cell.params, lr=0.02)
    x, target = rng.standard_normal((6, 4, 3)), rng.standard_normal((6, 4, 6))
    A0 = cell.params["A"].copy()
    for step in range(1, 1001):
        h, _, cache = cell.forward(x)
        grads, _, _ = cell.backward(h[1:] - target, cache)                   # E = |h - target|^2 / 2
        opt.step(grads)
        cell.constrain()
        if step % 100 == 0:
            assert orthogonality_error(cell) <= 1e-12, f"step {step}: {orthogonality_error(cell):.2e}"
    assert np.array_equal(cell.params["A"], -cell.params["A"].T)
    assert np.max(np.abs(cell.params["A"] - A0)) > 0.5                        # A did move far
    # An unconstrained W_hh, started at the same expm(A) and trained by the same Adam steps, leaves
    # the orthogonal group: the check above can fail.
    free = make_cell("tanh", 3, 6, seed=1, backend="numba")
    free.params["W_hh"][...] = expm(A0)
    opt = Adam(free.params, lr=0.02)
    for _ in range(100):
        h, _, cache = free.forward(x)
        opt.step(free.backward(h[1:] - target, cache)[0])
    W = free.params["W_hh"]
    assert np.max(np.abs(W.T @ W - np.eye(6))) > 1e-2


def test_constrain_projects_onto_skew_matrices():
    cell = make_cell("exprnn", 2, 4, seed=0, backend="numpy")
    cell.params["A"][0, 1] += 0.3
    cell.constrain()
    assert np.array_equal(cell.params["A"], -cell.params["A"].T)


def test_a_resumed_run_continues_bit_for_bit():
    """W_hh is recomputed from A every window and the projection is part of every update, so a
    task run restored from a checkpoint computes the same parameters as one that never stopped."""
    whole = make_task_trainer(cell="exprnn", lr=0.05, steps=8, hidden=6, backend="numba")
    for _ in range(8):
        whole.train_step()
    first = make_task_trainer(cell="exprnn", lr=0.05, steps=8, hidden=6, backend="numba")
    for _ in range(3):
        first.train_step()
    second = make_task_trainer(cell="exprnn", lr=0.05, steps=8, hidden=6, backend="numba")
    second.restore(first.checkpoint())
    for _ in range(5):
        second.train_step()
    for name, value in whole.model.params.items():
        assert np.array_equal(second.model.params[name], value), name
    assert not np.array_equal(first.model.params["A"], whole.model.params["A"])


def test_a_language_model_rebuilds_with_its_nonlinearity():
    from rnnvanish.model import LanguageModel
    from rnnvanish.training.checkpoint import build_model
    model = LanguageModel("exprnn", 7, 6, seed=3, backend="numpy", nonlinearity="tanh")
    rebuilt = build_model(model.config(), backend="numpy")
    assert set(rebuilt.params) == set(model.params) and "b_h" in rebuilt.params and "A" in rebuilt.params
    samples = [LanguageModel("exprnn", 7, 6, seed=3, backend=b).sample([1, 2], 12, 1.0, rng=5) for b in ("numpy", "numba")]
    assert samples[0].shape == (12,) and np.array_equal(samples[0], samples[1])


# --------------------------------------------------------------------------- the tracer

def test_jacobian_products_have_singular_values_at_most_one_for_tanh():
    from rnnvanish.tracer import trace
    from rnnvanish.tracer.jacobians import step_chain
    cell = make_cell("exprnn", 3, 6, seed=0, backend="numba", nonlinearity="tanh")
    x = np.random.default_rng(2).standard_normal((30, 2, 3))
    _, _, cache = cell.forward(x)
    sv_W = np.linalg.svd(cache["W_hh"], compute_uv=False)
    assert np.max(np.abs(sv_W - 1.0)) <= 1e-12
    J = step_chain(cell, cache, 0).full()
    P = np.eye(6)
    for lag in range(1, 31):
        P = P @ J[30 - lag]                                                  # ds_T/ds_{T-lag}
        assert np.linalg.svd(P, compute_uv=False).max() <= 1.0 + 1e-12, lag
    assert np.linalg.svd(P, compute_uv=False).max() < 0.999                  # tanh' < 1: the bound is not tight
    tr = trace(cell, x, method="exact")
    t, k = np.tril_indices(30)
    assert np.all(tr.jacobian_log10[t, k] <= 1e-12)
    assert np.all(tr.sv_log10[np.isfinite(tr.sv_log10)] <= 1e-12)
    assert tr.bound_base == 1.0 and tr.meta["orthogonality_error"] <= 1e-12
    assert "singular values 1" in tr.meta["closed_form"]


def test_a_modrelu_step_jacobian_is_orthogonal_on_its_active_units():
    """modReLU' is 0 or 1: J_t = diag([h_t != 0]) W_hh^T, the rows of W_hh^T kept or zeroed."""
    from rnnvanish.tracer.jacobians import step_jacobians
    cell = make_cell("exprnn", 3, 5, seed=0, backend="numpy")
    cell.params["b_mod"][...] = [-0.8, 0.01, 0.0, -0.2, 0.3]
    _, _, cache = cell.forward(np.random.default_rng(1).standard_normal((6, 1, 3)))
    J = step_jacobians(cell, cache)
    active = cache["h"][1:, 0] != 0
    assert not active.all() and active.any()
    assert_close(J, active[:, :, None] * cache["W_hh"].T[None], rtol=0, name="J")


# --------------------------------------------------------------------------- through the commands

def test_train_command(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    code, out, err = cli(capsys, "train", corpus, "--cell", "exprnn", "--steps", "20", "--hidden", "8", "--window", "10",
                         "--batch", "4", "--eval-every", "10", "--out", tmp_path / "run")
    assert code == 0, err
    assert "expRNN (modReLU" in out


def test_task_command(tmp_path, capsys):
    code, out, err = cli(capsys, "task", "copy", "--cell", "exprnn", "--nonlinearity", "tanh", "--hidden", "6",
                         "--batch", "4", "--steps", "6", "--eval-every", "3", "--eval-size", "20", "--no-trace",
                         "--out", tmp_path / "run")
    assert code == 0, err
    assert "exprnn" in out


def test_trace_command(tmp_path, capsys):
    code, out, err = cli(capsys, "trace", "--cell", "exprnn", "--hidden", "6", "--length", "12", "--batch", "3",
                         "--out", tmp_path / "t")
    assert code == 0, err
    from rnnvanish.tracer import Trace
    tr = Trace.load(tmp_path / "t" / "trace.npz")
    assert tr.meta["cell"] == "exprnn" and tr.meta["nonlinearity"] == "modrelu" and tr.bound_base == 1.0


def test_gradcheck_command(capsys):
    code, out, err = cli(capsys, "gradcheck", "--cell", "exprnn", "--window", "3", "--batch", "2", "--backend", "numpy")
    assert code == 0, err
    assert "exprnn/modrelu" in out and "exprnn/tanh" in out and "all gradients match" in out


@pytest.mark.parametrize("argv", [("train", "--cell", "tanh", "--nonlinearity", "tanh", "--steps", "1"),
                                  ("task", "copy", "--cell", "lstm", "--nonlinearity", "modrelu", "--steps", "1"),
                                  ("trace", "--cell", "gru", "--nonlinearity", "tanh"),
                                  ("train", "--cell", "exprnn", "--radius", "0.9", "--steps", "1")],
                         ids=["train", "task", "trace", "radius"])
def test_a_misplaced_option_is_one_line_and_exit_2(argv, capsys, tmp_path):
    code, out, err = cli(capsys, *argv, *(() if argv[0] == "trace" else ("--out", tmp_path / "run")))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and ("nonlinearity" in err or "radius" in err), err


def test_trace_compares_the_two_nonlinearities(tmp_path, capsys):
    code, out, err = cli(capsys, "trace", "--cell", "exprnn", "--compare", "nonlinearity=modrelu,tanh", "--hidden", "6",
                         "--length", "12", "--batch", "3", "--no-jacobian")
    assert code == 0, err
    assert "expRNN (modrelu)" in out and "expRNN (tanh)" in out
    code, out, err = cli(capsys, "trace", "--cell", "tanh", "--compare", "nonlinearity=modrelu,tanh")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--cell exprnn" in err
