"""The IndRNN (Li et al. 2018): gradients against central differences, the Numba twin against the
reference, the closed form of its Jacobian products, the bound on u after every update, and the
cell through every command."""
import ast
import inspect
import pathlib

import numpy as np
import pytest

from conftest import TEXT, assert_close, cli, make_task_trainer
from rnnvanish import kernels, reference
from rnnvanish.cells import make_cell
from rnnvanish.gradcheck import check_language_model, check_stacked_language_model, relative_error
from rnnvanish.kernels import indrnn as k_indrnn
from rnnvanish.reference import indrnn as r_indrnn

TOLERANCE = 1e-7
RTOL = {np.float64: 1e-10, np.float32: 1e-4}
GRID = [(T, B, k) for T in (1, 7) for B in (1, 3) for k in (None, 3)]
GRID_IDS = [f"T{T}-B{B}-k{k}" for T, B, k in GRID]


def assert_gradients_match(rows, label):
    assert rows, f"{label}: nothing was checked"
    names = [name for name, _, _ in rows]
    assert "u" in names and "W_xh" in names and "b_h" in names, f"{label}: checked {names}"
    for name, err, magnitude in rows:
        assert magnitude > 0.0, f"{label} {name}: gradient is identically zero, the check would be empty"
        assert err <= TOLERANCE, f"{label} {name}: relative error {err:.2e} > {TOLERANCE:g}"


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("T,B,truncate", GRID, ids=GRID_IDS)
def test_one_layer_gradients_equal_central_differences(T, B, truncate):
    rows = check_language_model("indrnn", hidden=5, window=T, batch=B, truncate=truncate, vocab=6, seed=T + B,
                                backend="numpy")
    assert_gradients_match(rows, f"indrnn T={T} B={B} truncate={truncate}")


@pytest.mark.parametrize("T,B,truncate", GRID, ids=GRID_IDS)
def test_stacked_gradients_equal_central_differences(T, B, truncate):
    rows = check_stacked_language_model("indrnn", layers=2, hidden=5, window=T, batch=B, truncate=truncate, vocab=6,
                                        seed=10 + T + B, backend="numpy", residual=True)
    assert any(name == "u_l1" for name, _, _ in rows)
    assert_gradients_match(rows, f"stacked indrnn T={T} B={B} truncate={truncate}")


@pytest.mark.parametrize("variational", [False, True], ids=["dropout-zoneout", "variational-zoneout"])
def test_gradients_with_masks_held_fixed(variational):
    rows = check_stacked_language_model("indrnn", layers=2, hidden=5, window=5, batch=2, truncate=3, vocab=6, seed=4,
                                        backend="numpy", dropout=0.3, variational=variational, zoneout=0.3)
    assert_gradients_match(rows, f"masked indrnn variational={variational}")


def test_the_gradient_check_sees_a_wrong_gradient():
    """A wrong du (here, dropped entirely) is caught: the check above can fail."""
    from rnnvanish.model import LanguageModel
    model = LanguageModel("indrnn", 6, 5, seed=1, backend="numpy")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 6, (4, 2)), rng.integers(0, 6, (4, 2))
    _, grads, _, _ = model.loss_and_grads(x, y)
    assert relative_error(np.zeros_like(grads["u"]), grads["u"]) == pytest.approx(1.0)


# --------------------------------------------------------------------------- the Numba twin

def case(T, B, H, dtype, seed, masks):
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.standard_normal(shape).astype(dtype)          # noqa: E731
    c = {"xw": normal(T, B, H), "h0": np.abs(normal(B, H)), "u": rng.uniform(-1.2, 1.2, H).astype(dtype),
         "dh": normal(T, B, H), "dh_T": normal(B, H)}
    if masks:
        c["m"] = ((rng.random((B, H)) < 0.7) / 0.7).astype(dtype)
        c["d"] = (rng.random((T, B, H)) < 0.3).astype(dtype)
    return c


def run(module, c, truncate):
    if "m" not in c:
        h = module.indrnn_forward(c["xw"], c["h0"], c["u"])
        da, dh0, norms = module.indrnn_backward(c["dh"], c["dh_T"], h, c["u"], truncate)
        return {"h": h, "da": da, "dh0": dh0, "norms": norms}
    h_new = np.empty_like(c["xw"])
    h = module.indrnn_forward(c["xw"], c["h0"], c["u"], c["m"], c["d"], h_new)
    da, dh0, norms = module.indrnn_backward(c["dh"], c["dh_T"], h, c["u"], truncate, c["m"], c["d"], h_new)
    return {"h": h, "h_new": h_new, "da": da, "dh0": dh0, "norms": norms}


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
        stack = Stack("indrnn", 3, 5, layers, residual=layers > 1, seed=2, dtype=dtype, backend=backend, horizon=7)
        h, _, cache = stack.forward(x)
        grads, dstate0, _ = stack.backward(dh, cache, truncate=3)
        results[backend] = (h, grads, dstate0)
    rtol = RTOL[np.dtype(dtype).type]
    assert_close(results["numba"][0], results["numpy"][0], rtol=rtol, name="h")
    for name in results["numpy"][1]:
        assert_close(results["numba"][1][name], results["numpy"][1][name], rtol=rtol, name=name)


def _public(module):
    return {n for n, f in vars(module).items() if callable(f) and not n.startswith("_")
            and getattr(f, "__module__", module.__name__) == module.__name__}


def test_the_twins_have_the_same_names_and_arguments_and_are_exported():
    assert _public(k_indrnn) == _public(r_indrnn) == {"indrnn_forward", "indrnn_backward"}
    for name in _public(r_indrnn):
        k_args = list(inspect.signature(getattr(k_indrnn, name).py_func).parameters)
        assert k_args == list(inspect.signature(getattr(r_indrnn, name)).parameters), name
        assert name in kernels.__all__ and name in reference.__all__


def test_the_kernel_file_calls_no_jitted_code_of_another_module():
    """Numba's cache checks only the compiled function's own file: import numpy and numba only."""
    tree = ast.parse(pathlib.Path(k_indrnn.__file__).read_text())
    modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    modules += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert all(m.split(".")[0] in ("numpy", "numba") for m in modules), modules


# --------------------------------------------------------------------------- the closed form

def test_step_jacobians_equal_finite_differences_of_one_step():
    from rnnvanish.tracer.jacobians import step_jacobians
    cell = make_cell("indrnn", 3, 5, seed=0, backend="numpy")
    cell.params["u"][...] = [0.9, -0.7, 1.05, 0.3, -1.1]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 1, 3))
    _, _, cache = cell.forward(x)
    J = step_jacobians(cell, cache)
    eps = 1e-6
    for t in range(1, 7):
        h_prev = cache["h"][t - 1]
        numeric = np.zeros((5, 5))
        for j in range(5):
            plus, minus = h_prev.copy(), h_prev.copy()
            plus[0, j] += eps
            minus[0, j] -= eps
            numeric[:, j] = (cell.forward(x[t - 1:t], (plus,))[0][1, 0]
                             - cell.forward(x[t - 1:t], (minus,))[0][1, 0]) / (2 * eps)
        assert_close(J[t - 1], numeric, rtol=1e-6, atol=1e-9, name=f"J_{t}")


@pytest.mark.parametrize("u", [[0.98, -0.9, 1.01, 0.5, 0.75], [0.6, -0.95, 1.02, 0.2, 0.9, -0.3]],
                         ids=["H5", "H6"])                        # an even H takes the tracer's block path
def test_jacobian_products_are_u_to_the_lag_on_the_active_path(u):
    """All units active (a large positive bias): ds_t/ds_k = diag(u^(t-k)), and the tracer's
    log10 ||ds_t/ds_k||_2 is (t-k) log10 max|u_i| for every pair."""
    from rnnvanish.tracer import trace
    from rnnvanish.tracer.jacobians import step_chain
    u = np.array(u)
    H = u.size
    cell = make_cell("indrnn", 3, H, seed=0, backend="numba", horizon=30)
    cell.params["u"][...] = u
    cell.params["b_h"][...] = 50.0                                   # a_t > 0 for every unit and step
    x = np.random.default_rng(2).standard_normal((30, 2, 3))
    tr = trace(cell, x, method="exact")
    t, k = np.tril_indices(30)                                       # jacobian_log10[t-1, k], k <= t-1
    expected = ((t + 1) - k) * np.log10(np.max(np.abs(u)))
    assert_close(tr.jacobian_log10[t, k], expected, rtol=1e-12, atol=1e-12, name="log10 ||ds_t/ds_k||")
    # Unit by unit: the product of the step Jacobians is diag(u_i^(T-k)).
    _, _, cache = cell.forward(x)
    assert np.all(cache["h"][1:] > 0), "the premise: every unit active at every step"
    J = step_chain(cell, cache, 0).full()
    P = np.eye(H)
    for lag in range(1, 31):
        P = P @ J[30 - lag]                                          # ds_T/ds_{T-lag}
        assert_close(np.diag(P), u ** lag, rtol=1e-12, name=f"diag ds_T/ds_(T-{lag})")
        assert np.count_nonzero(P - np.diag(np.diag(P))) == 0
    assert tr.bound_base == pytest.approx(np.max(np.abs(u)))


def test_an_inactive_step_cuts_the_units_path():
    """Where a_t < 0 the unit's factor is 0: the product is u_i^(T-k) times the active flags."""
    from rnnvanish.tracer.jacobians import step_jacobians
    cell = make_cell("indrnn", 2, 4, seed=0, backend="numpy")
    u = np.array([0.9, 0.8, -0.95, 1.02])
    cell.params["u"][...] = u
    cell.params["W_xh"][...] = 0.0
    cell.params["b_h"][...] = 1.0
    x = np.zeros((8, 1, 2))
    cell.params["b_h"][1] = -1.0                                     # unit 1 is never active
    _, _, cache = cell.forward(x, (np.full((1, 4), 2.0),))
    J = step_jacobians(cell, cache)
    P = np.linalg.multi_dot(list(J[::-1][:6]))                       # ds_8/ds_2 = J_8 ... J_3
    active = (cache["h"][1:, 0] > 0).astype(float)
    expected = u ** 6 * np.prod(active[2:8], axis=0)
    assert expected[1] == 0.0 and expected[0] != 0.0
    # unit 2 (u < 0) alternates in sign and goes inactive on the way; the formula covers it
    assert_close(np.diag(P), expected, rtol=1e-12, atol=1e-15, name="diag ds_8/ds_2")


# --------------------------------------------------------------------------- the bound on u

def test_initialisation_and_bound_follow_the_paper():
    cell = make_cell("indrnn", 3, 4000, seed=0, backend="numpy", horizon=100)
    u = cell.params["u"]
    assert cell.u_max == pytest.approx(2.0 ** (1 / 100))
    assert u.min() >= 0.0 and u.max() <= 1.0 and abs(u.mean() - 0.5) < 0.02     # U[0, 1], section 4.1
    long = make_cell("indrnn", 3, 4000, seed=0, backend="numpy", horizon=100, epsilon=0.5)
    assert long.params["u"].min() >= 0.5 ** (1 / 100) and long.params["u"].max() <= long.u_max
    assert np.all(cell.params["b_h"] == 0.0)


def test_u_stays_within_the_bound_after_every_update():
    trainer = make_task_trainer(cell="indrnn", lr=0.3, clip_norm=None, steps=12, hidden=6, layers=2, backend="numpy")
    u_max = 2.0 ** (1 / trainer.settings.length)
    cells = trainer.model.stack.cells
    assert all(c.u_max == pytest.approx(u_max) for c in cells)
    for _ in range(12):
        trainer.train_step()
        for c in cells:
            assert np.abs(c.params["u"]).max() <= u_max
    # Without the projection the same steps leave the bound: the test above can fail.
    free = make_task_trainer(cell="indrnn", lr=0.3, clip_norm=None, steps=12, hidden=6, layers=2, backend="numpy")
    for c in free.model.stack.cells:
        c.horizon = None
    for _ in range(12):
        free.train_step()
    assert max(np.abs(c.params["u"]).max() for c in free.model.stack.cells) > u_max


def test_the_memory_floor_is_for_the_top_layer_only():
    """--memory-floor EPS starts the top layer's u in [EPS^(1/T), 2^(1/T)] (Li et al.'s code for the
    adding problem), so each of its units keeps at least EPS of its signal over T steps at relu' = 1;
    the layers below keep U[0, 1]. It survives a checkpoint: the config rebuilds the same stack."""
    trainer = make_task_trainer(cell="indrnn", memory_floor=0.5, hidden=300, layers=3, length=50, backend="numpy")
    bottom, middle, top = (c.params["u"] for c in trainer.model.stack.cells)
    assert top.min() >= 0.5 ** (1 / 50) and top.max() <= 2.0 ** (1 / 50)
    assert np.prod(np.full(50, top.min())) >= 0.5 - 1e-12                 # EPS of the signal left after T steps
    for u in (bottom, middle):
        assert u.min() < 0.1 and u.max() <= 1.0                           # U[0, 1]: plenty far below the floor
    assert trainer.model.config()["epsilon"] == 0.5
    one = make_task_trainer(cell="indrnn", memory_floor=0.5, hidden=300, length=50, backend="numpy")
    assert one.model.stack.cells[0].params["u"].min() >= 0.5 ** (1 / 50)  # one layer: it is the top
    # tasks start at the floor 1/2 unless told; 0 turns it off
    assert make_task_trainer(cell="indrnn", hidden=300, length=50).model.stack.cells[0].params["u"].min() > 0.98
    assert make_task_trainer(cell="indrnn", memory_floor=0, hidden=300, length=50).model.stack.cells[0].params["u"].min() < 0.1


def test_the_memory_floor_is_refused_outside_the_indrnn_and_outside_0_1(capsys):
    for args, words in ((("--cell", "lstm", "--memory-floor", "0.5"), "indrnn"),
                        (("--cell", "indrnn", "--memory-floor", "1.5"), "share"),
                        (("--cell", "indrnn", "--memory-floor", "-0.1"), "share")):
        code, out, err = cli(capsys, "task", "adding", *args, "--steps", "1", "--out", "/nonexistent/never")
        assert code == 2 and len(err.strip().splitlines()) == 1 and words in err, err


def test_init_hh_does_not_apply():
    with pytest.raises(ValueError, match="do not apply"):
        make_cell("indrnn", 3, 4, init_hh="orthogonal")


# --------------------------------------------------------------------------- through the commands

def test_train_command(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    code, out, err = cli(capsys, "train", corpus, "--cell", "indrnn", "--steps", "20", "--hidden", "8", "--window", "10",
                         "--batch", "4", "--eval-every", "10", "--out", tmp_path / "run")
    assert code == 0, err
    assert "IndRNN (relu, |u| <= 2^(1/10)" in out


def test_task_command(tmp_path, capsys):
    code, out, err = cli(capsys, "task", "adding", "--cell", "indrnn", "--length", "12", "--layers", "2", "--residual",
                         "--hidden", "6", "--batch", "4", "--steps", "6", "--eval-every", "3", "--eval-size", "20",
                         "--no-trace", "--out", tmp_path / "run")
    assert code == 0, err
    assert "adding T=12 indrnn" in out


def test_trace_command(tmp_path, capsys):
    code, out, err = cli(capsys, "trace", "--cell", "indrnn", "--hidden", "6", "--length", "12", "--batch", "3",
                         "--out", tmp_path / "t")
    assert code == 0, err
    from rnnvanish.tracer import Trace
    tr = Trace.load(tmp_path / "t" / "trace.npz")
    assert tr.meta["cell"] == "indrnn" and np.isfinite(tr.bound_base)


def test_gradcheck_command(capsys):
    code, out, err = cli(capsys, "gradcheck", "--cell", "indrnn", "--window", "3", "--batch", "2", "--backend", "numpy")
    assert code == 0, err
    assert "indrnn" in out and "all gradients match" in out


def test_an_unknown_cell_lists_the_choices(capsys):
    code, out, err = cli(capsys, "train", "--cell", "nosuch", "--steps", "1")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "indrnn" in err and "irnn" in err and "nosuch" in err
