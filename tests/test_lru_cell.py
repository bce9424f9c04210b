"""The LRU (Orvieto et al. 2023) as a cell: gradients of the language model against central
differences (one layer and stacked with residuals, both truncations), Numba against the reference,
the closed form ds_T/ds_k = Λ^(T-k) through the tracer, the ring initialisation and the carry,
and the cell through the commands."""
import numpy as np
import pytest

from conftest import TEXT, assert_close, cli
from rnnvanish.cells import make_cell
from rnnvanish.errors import RnnvanishError
from rnnvanish.gradcheck import check_language_model, check_stacked_language_model

TOLERANCE = 1e-7
GRID = [(T, B, k) for T in (1, 7) for B in (1, 3) for k in (None, 3)]
GRID_IDS = [f"T{T}-B{B}-k{k}" for T, B, k in GRID]
LRU_PARAMS = ("W_xh", "b_h", "B_re", "B_im", "nu_log", "theta_log", "gamma_log", "C_re", "C_im", "D")


def assert_gradients_match(rows, label, suffix=""):
    names = [name for name, _, _ in rows]
    assert all(p + suffix in names for p in LRU_PARAMS), f"{label}: checked {names}"
    for name, err, magnitude in rows:
        assert magnitude > 0.0, f"{label} {name}: gradient is identically zero, the check would be empty"
        assert err <= TOLERANCE, f"{label} {name}: relative error {err:.2e} > {TOLERANCE:g}"


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("T,B,truncate", GRID, ids=GRID_IDS)
def test_one_layer_gradients_equal_central_differences(T, B, truncate):
    rows = check_language_model("lru", hidden=6, window=T, batch=B, truncate=truncate, vocab=5, seed=T + B,
                                backend="numpy")
    assert "s0" in [name for name, _, _ in rows]
    assert_gradients_match(rows, f"lru T={T} B={B} truncate={truncate}")


@pytest.mark.parametrize("T,B,truncate", GRID, ids=GRID_IDS)
def test_stacked_gradients_equal_central_differences(T, B, truncate):
    rows = check_stacked_language_model("lru", layers=2, hidden=4, window=T, batch=B, truncate=truncate, vocab=5,
                                        seed=10 + T + B, backend="numpy", residual=True)
    assert_gradients_match(rows, f"stacked lru T={T} B={B} truncate={truncate}", suffix="_l1")


# --------------------------------------------------------------------------- the Numba twin

@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("T,B,truncate", GRID, ids=GRID_IDS)
def test_numba_equals_the_reference(T, B, truncate, layers):
    from rnnvanish.stack import Stack
    rng = np.random.default_rng(100 * T + B)
    x = rng.standard_normal((T, B, 3))
    state = tuple(rng.standard_normal((B, 6)) for _ in range(layers))
    dh = rng.standard_normal((T, B, 6))
    dstate = tuple(rng.standard_normal((B, 6)) for _ in range(layers))
    results = {}
    for backend, scan in (("numpy", "loop"), ("numpy", "prefix"), ("numba", "loop"), ("numba", "prefix")):
        stack = Stack("lru", 3, 6, layers, residual=layers > 1, seed=2, backend=backend, scan=scan,
                      r_min=0.5, r_max=0.99, max_phase=np.pi)
        h, carry, cache = stack.forward(x, state)
        grads, dstate0, norms = stack.backward(dh, cache, dstate, truncate=truncate)
        results[backend, scan] = {"h": h, "norms": norms["h"], **{f"carry{i}": c for i, c in enumerate(carry)},
                                  **{f"dstate{i}": d for i, d in enumerate(dstate0)}, **grads}
    expected = results["numpy", "loop"]
    for key, result in results.items():
        for name, value in expected.items():
            assert_close(result[name], value, rtol=1e-10, name=f"{key} {name}")


# --------------------------------------------------------------------------- the closed form

@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_the_tracer_finds_lambda_to_the_lag(backend):
    """ds_t/ds_k = Λ^(t-k) on s = (Re x, Im x): the product of the tracer's step Jacobians is the
    real form of diag(lambda^(t-k)), and its log10 ||ds_t/ds_k||_2 is (t-k) log10 max |lambda|."""
    from rnnvanish.tracer import trace
    from rnnvanish.tracer.jacobians import step_chain
    T, H = 25, 6
    cell = make_cell("lru", 3, H, seed=1, backend=backend, r_min=0.6, r_max=0.97, max_phase=np.pi)
    x = np.random.default_rng(2).standard_normal((T, 2, 3))
    tr = trace(cell, x, method="exact")
    lam = np.exp(-np.exp(cell.params["nu_log"]) + 1j * np.exp(cell.params["theta_log"]))
    assert "Lambda^(T-k)" in tr.meta["closed_form"]
    assert tr.bound_base == pytest.approx(np.max(np.abs(lam)), rel=1e-12)
    t, k = np.tril_indices(T)
    expected = ((t + 1) - k) * np.log10(np.max(np.abs(lam)))
    assert_close(tr.jacobian_log10[t, k], expected, rtol=1e-10, atol=1e-10, name="log10 ||ds_t/ds_k||")
    _, _, cache = cell.forward(x)
    J = step_chain(cell, cache, 0).full()
    P = np.eye(H)
    N = H // 2
    for lag in range(1, T + 1):
        P = P @ J[T - lag]                                           # ds_T/ds_{T-lag}
        power = lam ** lag
        real_form = np.block([[np.diag(power.real), -np.diag(power.imag)], [np.diag(power.imag), np.diag(power.real)]])
        assert_close(P, real_form, rtol=1e-12, atol=1e-14, name=f"ds_T/ds_(T-{lag})")
    # the lag profile of the probe u on s_T: ||u Λ^lag|| (Λ applied as conj(lambda) to the gradient)
    from rnnvanish.tracer.signal import unit_directions
    u = unit_directions(2, H, 0)
    g = u[:, :N] + 1j * u[:, N:]
    for lag in (0, 1, 5, T):
        assert_close(tr.grad_h[:, lag], np.linalg.norm(np.conj(lam) ** lag * g, axis=1), rtol=1e-10, name=f"lag {lag}")


def test_the_closed_form_check_can_fail():
    """Λ^(T-k) is not Λ^(T-k+1): the comparison above distinguishes one step."""
    from rnnvanish.tracer.jacobians import step_jacobians
    cell = make_cell("lru", 3, 4, seed=1, backend="numpy", r_min=0.5, r_max=0.9)
    _, _, cache = cell.forward(np.zeros((3, 1, 3)))
    J = step_jacobians(cell, cache)
    lam = cell.lam()
    assert not np.allclose(np.diag(J[0])[:2], (lam ** 2).real)
    assert_close(np.diag(J[0])[:2], lam.real, rtol=1e-12, name="Re lambda")


# --------------------------------------------------------------------------- initialisation and carry

def test_ring_initialisation_and_gamma_normalisation():
    cell = make_cell("lru", 3, 4000, seed=0, r_min=0.4, r_max=0.9, max_phase=np.pi / 5)
    lam = cell.lam()
    assert np.all((np.abs(lam) >= 0.4) & (np.abs(lam) <= 0.9))
    assert np.all((np.angle(lam) >= 0) & (np.angle(lam) <= np.pi / 5))
    assert_close(np.exp(cell.params["gamma_log"]), np.sqrt(1 - np.abs(lam) ** 2), rtol=1e-12, each=True, name="gamma")
    # the paper's defaults: the whole unit disc, any phase
    default = make_cell("lru", 3, 8, seed=0)
    assert (default.r_min, default.r_max, default.max_phase) == (0.0, 1.0, 2 * np.pi)


def test_the_carry_holds_the_complex_state_as_halves():
    """Two windows carried through s = [Re x | Im x] equal one window of both."""
    cell = make_cell("lru", 3, 6, seed=3, backend="numpy")
    x = np.random.default_rng(4).standard_normal((8, 2, 3))
    h_all, (s_all,), cache = cell.forward(x)
    h1, carry, _ = cell.forward(x[:5])
    h2, (s2,), _ = cell.forward(x[5:], carry)
    assert_close(np.concatenate([h1[1:], h2[1:]]), h_all[1:], rtol=1e-12, name="h")
    assert_close(s2, s_all, rtol=1e-12, name="s_T")
    assert_close(s_all, np.concatenate([cache["xs"][-1].real, cache["xs"][-1].imag], axis=1), rtol=0, name="halves")


def test_bad_lru_settings_are_refused():
    with pytest.raises(RnnvanishError, match="even"):
        make_cell("lru", 3, 5)
    with pytest.raises(RnnvanishError, match="r_min"):
        make_cell("lru", 3, 4, r_min=0.9, r_max=0.5)
    with pytest.raises(RnnvanishError, match="loop or the prefix"):
        make_cell("lru", 3, 4, scan="log")


# --------------------------------------------------------------------------- through the commands

def test_train_command_stacked_with_residuals(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    code, out, err = cli(capsys, "train", corpus, "--cell", "lru", "--layers", "2", "--residual", "--steps", "6",
                         "--hidden", "8", "--window", "10", "--batch", "4", "--eval-every", "3", "--out", tmp_path / "run")
    assert code == 0, err
    assert "LRU (4 complex units" in out


def test_task_trace_and_gradcheck_commands(tmp_path, capsys):
    code, out, err = cli(capsys, "task", "adding", "--cell", "lru", "--length", "12", "--hidden", "6", "--batch", "4",
                         "--steps", "4", "--eval-every", "2", "--eval-size", "20", "--no-trace", "--out", tmp_path / "a")
    assert code == 0, err
    code, out, err = cli(capsys, "trace", "--cell", "lru", "--hidden", "6", "--length", "12", "--batch", "3",
                         "--out", tmp_path / "t")
    assert code == 0, err
    from rnnvanish.tracer import Trace
    tr = Trace.load(tmp_path / "t" / "trace.npz")
    assert tr.meta["cell"] == "lru" and tr.meta["jacobian_state"] == "s" and np.isfinite(tr.bound_base)
    code, out, err = cli(capsys, "gradcheck", "--cell", "lru", "--window", "3", "--batch", "2", "--backend", "numpy")
    assert code == 0, err
    assert "H=6" in out and "all gradients match" in out                # an even default for the LRU


@pytest.mark.parametrize("argv,words", [
    (["--hidden", "5"], "must be even"),
    (["--zoneout", "0.2"], "no recurrent dropout or zoneout"),
    (["--radius", "0.9"], "do not apply"),
], ids=["odd-hidden", "zoneout", "radius"])
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv, words):
    code, out, err = cli(capsys, "task", "adding", "--cell", "lru", "--length", "8", "--steps", "2", "--no-trace",
                         "--out", tmp_path / "run", *argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and words in err


def test_every_cell_on_one_lag_chart(tmp_path, capsys):
    """`trace --compare cell=...` over the classic and the newer cells draws one chart."""
    cells = "tanh,lstm,gru,irnn,indrnn,mingru,minlstm,lru"
    code, out, err = cli(capsys, "trace", "--compare", f"cell={cells}", "--hidden", "6", "--length", "10", "--batch", "2",
                         "--out", tmp_path / "t")
    assert code == 0, err
    assert (tmp_path / "t" / "lag.png").stat().st_size > 0
    for title in ("minGRU", "minLSTM", "LRU", "IndRNN"):
        assert title in out
