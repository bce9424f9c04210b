"""minGRU and minLSTM (Feng et al. 2024) as cells: gradients of the language model against central
differences (one layer and stacked, both truncations), the backends and scans against each other,
the closed form of the Jacobian products through the tracer, and the cells through the commands."""
import numpy as np
import pytest

from conftest import TEXT, assert_close, cli
from rnnvanish.cells import make_cell
from rnnvanish.errors import RnnvanishError
from rnnvanish.gradcheck import check_language_model, check_stacked_language_model, relative_error

TOLERANCE = 1e-7
GRID = [(T, B, k) for T in (1, 7) for B in (1, 3) for k in (None, 3)]
GRID_IDS = [f"T{T}-B{B}-k{k}" for T, B, k in GRID]
CELL_NAMES = ("mingru", "minlstm")


def assert_gradients_match(rows, label):
    names = [name for name, _, _ in rows]
    assert "W_xh" in names and "b_h" in names and ("h0" in names or "state0[0]" in names), f"{label}: checked {names}"
    for name, err, magnitude in rows:
        assert magnitude > 0.0, f"{label} {name}: gradient is identically zero, the check would be empty"
        assert err <= TOLERANCE, f"{label} {name}: relative error {err:.2e} > {TOLERANCE:g}"


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("positive", [False, True], ids=["linear", "g"])
@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("T,B,truncate", GRID, ids=GRID_IDS)
def test_one_layer_gradients_equal_central_differences(T, B, truncate, cell, positive):
    rows = check_language_model(cell, hidden=5, window=T, batch=B, truncate=truncate, vocab=6, seed=T + B,
                                backend="numpy", positive=positive)
    assert_gradients_match(rows, f"{cell} T={T} B={B} truncate={truncate}")


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("T,B,truncate", GRID, ids=GRID_IDS)
def test_stacked_gradients_equal_central_differences(T, B, truncate, cell):
    rows = check_stacked_language_model(cell, layers=2, hidden=5, window=T, batch=B, truncate=truncate, vocab=6,
                                        seed=10 + T + B, backend="numpy", residual=True, dropout=0.3)
    assert any(name == "W_xh_l1" for name, _, _ in rows)
    assert_gradients_match(rows, f"stacked {cell} T={T} B={B} truncate={truncate}")


def test_the_gradient_check_sees_a_wrong_gradient():
    """A gradient off by a little is caught by the tolerance the checks above use."""
    rows = check_language_model("mingru", hidden=5, window=4, batch=2, vocab=6, backend="numpy")
    from rnnvanish.model import LanguageModel
    model = LanguageModel("mingru", 6, 5, seed=1, backend="numpy")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 6, (4, 2)), rng.integers(0, 6, (4, 2))
    _, grads, _, _ = model.loss_and_grads(x, y)
    assert all(err <= TOLERANCE for _, err, _ in rows)
    assert relative_error(grads["W_xh"] * (1 + 1e-5), grads["W_xh"]) > TOLERANCE


# --------------------------------------------------------------------------- backends and scans

@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("T,B,truncate", GRID, ids=GRID_IDS)
def test_numba_equals_the_reference_for_every_scan(T, B, truncate, cell):
    rng = np.random.default_rng(100 * T + B)
    x = rng.standard_normal((T, B, 3))
    state = (np.abs(rng.standard_normal((B, 5))) + 0.1,)               # > 0: the log-space scan needs it
    dh = rng.standard_normal((T, B, 5))
    reference = None
    for backend in ("numpy", "numba"):
        for scan in ("loop", "prefix", "log"):
            c = make_cell(cell, 3, 5, seed=2, backend=backend, positive=True, scan=scan)
            h, (h_T,), cache = c.forward(x, state)
            grads, (dh0,), norms = c.backward(dh, cache, (np.ones((B, 5)),), truncate=truncate)
            result = {"h": h, "dh0": dh0, "norms": norms["h"], **grads}
            if reference is None:
                reference = result
                continue
            for name, value in reference.items():
                assert_close(result[name], value, rtol=1e-10, name=f"{cell} {backend} {scan} {name}")


def test_the_default_scan_depends_on_the_backend_and_bad_scans_are_refused():
    assert make_cell("mingru", 3, 4, backend="numba").scan == "loop"
    assert make_cell("minlstm", 3, 4, backend="numpy").scan == "loop"
    assert make_cell("minlstm", 3, 4, scan="prefix").scan == "prefix"
    with pytest.raises(RnnvanishError, match="positive"):
        make_cell("mingru", 3, 4, scan="log")
    with pytest.raises(RnnvanishError, match="scan must be one of"):
        make_cell("minlstm", 3, 4, scan="fft")
    with pytest.raises(RnnvanishError, match="init-hh"):
        make_cell("mingru", 3, 4, init_hh="orthogonal")


# --------------------------------------------------------------------------- the closed form

def decay_of(cell, x):
    """a_t (T, B, H) by the paper's equations from the parameters (not from the cell's cache)."""
    p, H = cell.params, cell.hidden_size
    a = x @ p["W_xh"] + p["b_h"]
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))                     # noqa: E731
    if cell.name == "mingru":
        return 1.0 - sigmoid(a[..., :H])
    i, f = sigmoid(a[..., :H]), sigmoid(a[..., H:2 * H])
    return f / (f + i)


@pytest.mark.parametrize("H", [5, 6], ids=["H5", "H6"])           # an even H takes the tracer's block path
@pytest.mark.parametrize("cell_name", CELL_NAMES)
def test_jacobian_products_are_products_of_the_decays(cell_name, H):
    """ds_t/ds_k = prod_{j=k+1..t} diag(a_j): the tracer's log10 ||ds_t/ds_k||_2 is
    log10 max_i prod a_j[i] for every pair, and its lag profile is ||u ⊙ prod a_j||."""
    from rnnvanish.tracer import trace
    T = 20
    cell = make_cell(cell_name, 3, H, seed=0, backend="numba")
    x = np.random.default_rng(2).standard_normal((T, 2, 3))
    tr = trace(cell, x, method="exact")
    assert "prod" in tr.meta["closed_form"]
    a = decay_of(cell, x)[:, 0]                                      # (T, H), sequence 0
    log_a = np.log10(a)
    cum = np.concatenate([np.zeros((1, H)), np.cumsum(log_a, axis=0)])  # sum_{j<=t} log10 a_j
    t, k = np.tril_indices(T)                                        # jacobian_log10[t-1, k], k <= t-1
    expected = np.max(cum[t + 1] - cum[k], axis=1)
    assert_close(tr.jacobian_log10[t, k], expected, rtol=1e-10, atol=1e-10, name="log10 ||ds_t/ds_k||")
    # the lag profile from the probe u at T: ||u ⊙ prod_{j=k+1..T} a_j||
    from rnnvanish.tracer.signal import unit_directions
    u = unit_directions(2, H, 0)
    all_a = decay_of(cell, x)                                        # (T, B, H)
    for lag in range(T + 1):
        prod = np.prod(all_a[T - lag:], axis=0)
        assert_close(tr.grad_h[:, lag], np.linalg.norm(u * prod, axis=1), rtol=1e-10, name=f"lag {lag}")


def test_a_wrong_decay_would_fail_the_closed_form():
    """The closed-form comparison can fail: the minGRU's factor is 1 - z, not z."""
    from rnnvanish.tracer.jacobians import step_jacobians
    cell = make_cell("mingru", 3, 4, seed=0, backend="numpy")
    x = np.random.default_rng(2).standard_normal((6, 1, 3))
    _, _, cache = cell.forward(x)
    J = step_jacobians(cell, cache)
    a = decay_of(cell, x)[:, 0]
    assert_close(np.diagonal(J, axis1=1, axis2=2), a, rtol=1e-12, name="diag J_t")
    assert np.max(np.abs(np.diagonal(J, axis1=1, axis2=2) - (1 - a))) > 1e-3


# --------------------------------------------------------------------------- through the commands

def test_task_command(tmp_path, capsys):
    code, out, err = cli(capsys, "task", "adding", "--cell", "mingru", "--length", "12", "--layers", "2", "--residual",
                         "--hidden", "6", "--batch", "4", "--steps", "6", "--eval-every", "3", "--eval-size", "20",
                         "--no-trace", "--out", tmp_path / "run")
    assert code == 0, err
    assert "adding T=12 mingru" in out


def test_train_command(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    code, out, err = cli(capsys, "train", corpus, "--cell", "minlstm", "--steps", "10", "--hidden", "8", "--window",
                         "10", "--batch", "4", "--eval-every", "5", "--out", tmp_path / "run")
    assert code == 0, err
    assert "minLSTM (linear candidate, loop scan)" in out


def test_trace_and_gradcheck_commands(tmp_path, capsys):
    code, out, err = cli(capsys, "trace", "--cell", "minlstm", "--hidden", "6", "--length", "12", "--batch", "3",
                         "--out", tmp_path / "t")
    assert code == 0, err
    from rnnvanish.tracer import Trace
    tr = Trace.load(tmp_path / "t" / "trace.npz")
    assert tr.meta["cell"] == "minlstm" and "f'" in tr.meta["closed_form"]
    code, out, err = cli(capsys, "gradcheck", "--cell", "mingru", "--window", "3", "--batch", "2", "--backend", "numpy")
    assert code == 0, err
    assert "mingru" in out and "all gradients match" in out


@pytest.mark.parametrize("argv,words", [
    (["--zoneout", "0.1"], "no recurrent dropout or zoneout"),
    (["--init-hh", "orthogonal"], "no recurrent weights"),
    (["--chrono", "10"], "lstm and gru"),
], ids=["zoneout", "init-hh", "chrono"])
def test_options_the_cells_lack_are_one_line_errors(tmp_path, capsys, argv, words):
    code, out, err = cli(capsys, "task", "adding", "--cell", "mingru", "--length", "8", "--hidden", "4", "--steps", "2",
                         "--no-trace", "--out", tmp_path / "run", *argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and words in err
