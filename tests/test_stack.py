"""Stacked layers: exact gradients (finite differences, masks held fixed), both backends equal,
PyTorch's parameter names, bad values, exact resume with dropout and zoneout, and the depth
lesson: the signal reaching the bottom of a deep tanh stack, and what residuals do to it."""
import numpy as np
import pytest

from conftest import TEXT, assert_close, cli
from rnnvanish.errors import RnnvanishError
from rnnvanish.gradcheck import check_stacked_language_model
from rnnvanish.model import LanguageModel
from rnnvanish.stack import Stack

CELLS = [("tanh", {}), ("lstm", {}), ("gru", {}), ("gru", {"reset_after": False})]
CELL_IDS = ["tanh", "lstm", "gru", "gru-reset-before"]


def assert_gradients(rows, tol=1e-7):
    bad = [(name, err) for name, err, size in rows if err > tol and size > 1e-12]
    assert not bad, f"relative errors above {tol}: {bad}"


@pytest.mark.parametrize("cell, options", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("layers", [2, 3])
@pytest.mark.parametrize("truncate", [None, 3])
def test_stack_gradients_match_finite_differences(cell, options, layers, truncate):
    rows = check_stacked_language_model(cell, layers, hidden=4, window=7, batch=3, truncate=truncate, vocab=5,
                                        backend="numpy", **options)
    names = {name for name, _, _ in rows}
    assert {"W_xh_l1", "W_hh_l1"} <= names and (layers < 3 or "W_hh_l2" in names)
    assert_gradients(rows)


@pytest.mark.parametrize("regulariser", [{"residual": True}, {"dropout": 0.3}, {"dropout": 0.3, "variational": True},
                                         {"zoneout": 0.3}, {"dropout": 0.2, "zoneout": 0.2, "residual": True}],
                         ids=["residual", "dropout", "variational", "zoneout", "all"])
@pytest.mark.parametrize("cell, options", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("shape", [(1, 1, None), (7, 3, None), (7, 3, 3)], ids=["T1B1", "T7B3", "T7B3-k3"])
def test_regularised_stack_gradients_with_fixed_masks(regulariser, cell, options, shape):
    T, B, truncate = shape
    rows = check_stacked_language_model(cell, 2, hidden=4, window=T, batch=B, truncate=truncate, vocab=5,
                                        backend="numpy", **regulariser, **options)
    assert_gradients(rows)


@pytest.mark.parametrize("cell, options", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("regulariser", [{}, {"dropout": 0.3, "residual": True}, {"dropout": 0.3, "variational": True},
                                         {"zoneout": 0.3}], ids=["plain", "dropout-residual", "variational", "zoneout"])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_numba_stack_equals_the_reference(cell, options, regulariser, dtype, rtol):
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 6, (7, 3)), rng.integers(0, 6, (7, 3))
    results = []
    for backend in ("numpy", "numba"):
        model = LanguageModel(cell, 6, 5, layers=3, seed=2, dtype=dtype, backend=backend, **regulariser, **options)
        masks = model.draw_masks(7, 3, np.random.default_rng(5))
        results.append(model.loss_and_grads(x, y, None, truncate=3, masks=masks))
    (loss_a, grads_a, state_a, _), (loss_b, grads_b, state_b, _) = results
    assert loss_b == pytest.approx(loss_a, rel=rtol)
    for name in grads_a:
        assert_close(grads_b[name], grads_a[name], rtol=rtol, name=name)
    for a, b in zip(state_a, state_b):
        assert_close(b, a, rtol=rtol, name="state_T")


def test_one_plain_layer_is_the_cell_exactly():
    """layers=1 without regularisation: today's names, numbers and files."""
    a, b = LanguageModel("lstm", 6, 5, seed=3), LanguageModel("lstm", 6, 5, seed=3, layers=1)
    assert sorted(a.params) == sorted(b.params) == ["W_hh", "W_hy", "W_xh", "b_h", "b_y"]
    assert a.config() == b.config() and "layers" not in a.config()
    x = np.random.default_rng(0).integers(0, 6, (4, 2))
    assert a.loss_and_grads(x, x)[0] == b.loss_and_grads(x, x)[0]


def test_masks_follow_their_definitions():
    stack = Stack("tanh", 3, 6, 2, dropout=0.25, zoneout=0.1, seed=0)
    m = stack.draw_masks(50, 40, np.random.default_rng(0))
    values = np.unique(m.between[0])
    assert_close(values, [0.0, 1 / 0.75], rtol=1e-15, name="inverted dropout values")
    assert m.between[0].shape == (50, 40, 6) and abs((m.between[0] == 0).mean() - 0.25) < 0.02
    assert m.cells[0].zoneout.shape == (50, 40, 6) and abs(m.cells[0].zoneout.mean() - 0.1) < 0.02
    assert m.cells[0].recurrent is None
    v = Stack("tanh", 3, 6, 2, dropout=0.25, variational=True, seed=0).draw_masks(50, 40, np.random.default_rng(0))
    assert v.between[0].shape == (40, 6) and v.cells[0].recurrent.shape == (40, 6)
    assert Stack("tanh", 3, 6, 2, seed=0).draw_masks(5, 4, np.random.default_rng(0)) is None


def test_evaluation_drops_nothing():
    """masks=None is evaluation: no dropout, so two passes agree and equal the masks of ones."""
    model = LanguageModel("gru", 6, 5, layers=2, dropout=0.5, seed=1)
    x = np.random.default_rng(0).integers(0, 6, (5, 2))
    assert model.loss(x, x)[0] == model.loss(x, x)[0]
    train = model.draw_masks(5, 2, np.random.default_rng(1))
    assert model.loss_and_grads(x, x, masks=train)[0] != model.loss(x, x)[0]


@pytest.mark.parametrize("argv, message", [
    (["--layers", "0"], "positive"), (["--dropout", "1"], "[0, 1)"), (["--zoneout", "-0.1"], "[0, 1)"),
    (["--residual"], "--layers 2 or more"), (["--variational"], "--dropout"),
])
def test_bad_depth_values_are_one_line_exit_2(argv, message, capsys, corpus, tmp_path):
    out = tmp_path / "r"
    code, stdout, err = cli(capsys, "train", corpus, "--hidden", 4, "--window", 5, "--batch", 2, "--steps", 2,
                            "--out", out, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_resume_refuses_another_depth(capsys, corpus, tmp_path):
    out = tmp_path / "r"
    small = ["--hidden", 4, "--window", 5, "--batch", 2, "--eval-every", 2, "--quiet"]
    assert cli(capsys, "train", corpus, *small, "--layers", 2, "--steps", 2, "--out", out)[0] == 0
    before = (out / "checkpoint.npz").read_bytes()
    code, _, err = cli(capsys, "train", "--resume", out, "--layers", 3, "--steps", 4)
    assert code == 2 and "--layers cannot change" in err
    assert (out / "checkpoint.npz").read_bytes() == before


def _bottom_signal(residual):
    from rnnvanish.tracer.depth import trace_depth
    stack = Stack("tanh", 8, 32, 4, residual=residual, seed=0, backend="numpy")
    x = np.random.default_rng(0).standard_normal((30, 16, 8))
    return trace_depth(stack, x, seed=0)


def test_the_signal_fades_down_the_layers_and_residuals_carry_it():
    """The depth lesson: from a unit probe at the top layer's last step, a 4-layer tanh stack
    delivers far less to layer 1 at lag 0 than the top receives (1 by construction); residual
    connections add an identity path down the layers and deliver much more."""
    plain, residual = _bottom_signal(False), _bottom_signal(True)
    top = plain.median()[-1, 0]
    assert top == pytest.approx(1.0, rel=1e-12)                       # the unit probe itself
    assert plain.median()[0, 0] < 0.5 * top                           # far below at the bottom (measured 0.35)
    assert residual.median()[0, 0] > 3 * plain.median()[0, 0]         # residuals raise it (measured 5.8x)
    # down the layers the signal falls monotonically at lag 0 without residuals
    assert np.all(np.diff(plain.median()[:, 0]) > 0)


def test_gradcheck_command_checks_a_regularised_stack(capsys):
    code, out, err = cli(capsys, "gradcheck", "--cell", "gru", "--layers", 2, "--dropout", 0.2, "--zoneout", 0.1,
                         "--residual", "--truncate", 3, "--window", 4, "--batch", 2, "--hidden", 3, "--vocab", 4)
    assert code == 0, err
    assert "stack: 2 layers, dropout 0.2, zoneout 0.1, residual" in out and "W_hh_l1" in out
    assert "all gradients match" in out


def test_a_stack_is_named_in_the_training_header(capsys, corpus, tmp_path):
    code, out, err = cli(capsys, "train", corpus, "--hidden", 4, "--window", 5, "--batch", 2, "--layers", 2,
                         "--dropout", 0.25, "--variational", "--steps", 2, "--out", tmp_path / "r")
    assert code == 0, err
    model_line = next(line for line in out.splitlines() if line.strip().startswith("model"))
    assert "2 layers, dropout 0.25 (variational)" in model_line
    from rnnvanish.stack import depth_summary
    assert depth_summary(1) == "" and depth_summary(3, zoneout=0.1, residual=True) == "3 layers, zoneout 0.1, residual"


def test_training_a_stack_records_depth_traces_and_plots_them(capsys, corpus, tmp_path):
    out = tmp_path / "r"
    code, _, err = cli(capsys, "train", corpus, "--hidden", 4, "--window", 5, "--batch", 2, "--layers", 3,
                       "--residual", "--steps", 4, "--trace-every", 2, "--eval-every", 2, "--quiet", "--out", out)
    assert code == 0, err
    from rnnvanish.tracer.depth import DepthTrace
    files = sorted((out / "traces").glob("depth_*.npz"))
    assert [p.name for p in files] == ["depth_00000000.npz", "depth_00000002.npz"]
    tr = DepthTrace.load(files[-1])
    assert tr.layers == 3 and tr.T == 5 and tr.meta["step"] == 2 and tr.meta["residual"] is True
    assert tr.median()[-1, 0] == pytest.approx(1.0, rel=1e-6)            # the unit probe on the top layer
    code, printed, err = cli(capsys, "plot", out)
    assert code == 0 and (out / "depth.png").stat().st_size > 1000, err
