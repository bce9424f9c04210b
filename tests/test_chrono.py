"""Chrono initialisation (Tallec & Ollivier 2018) and the IRNN preset (Le et al. 2015).

With zero input and h = 0 a gate reads only its bias: f = sigmoid(b_f), and a unit keeps the
fraction f of its memory per step, a forgetting time 1 / (1 - f) = 1 + u for b_f = log u. The
chrono law (the paper's equation 16) is b_f ~ log(U([1, T_max - 1])): the time scales u are
uniform on [1, T_max - 1], and on the log scale b_f = log u has the law of the log of a uniform
variable, density e^b / (T_max - 2) on [0, log(T_max - 1)] (not a uniform density: log u is
not uniform, most units get long memories)."""
import numpy as np
import pytest

from conftest import TEXT, assert_close, cli
from rnnvanish.cells import make_cell

T_MAX = 200.0
H = 4000                                                           # many units: a histogram of their time scales


def forget_gates(cell):
    """The forget gate (LSTM f, GRU z) of every unit at one step with zero input from h = 0."""
    _, _, cache = cell.forward(np.zeros((1, 1, cell.input_size)))
    n = cell.hidden_size
    return cache["gates"][0, 0, n:2 * n]                           # f is gate 2 of i, f, g, o; z is gate 2 of r, z, n


def assert_log_of_uniform(time_scale, low, high, bins=10):
    """On the log scale, log(time_scale) follows log U[low, high]: bin [a, b) of log u holds the
    share (e^b - e^a) / (high - low), every bin within 5 sigma of its binomial count."""
    assert time_scale.min() >= low * (1 - 1e-12) and time_scale.max() <= high * (1 + 1e-12)
    counts, edges = np.histogram(np.log(time_scale), bins=bins, range=(np.log(low), np.log(high)))
    share = np.diff(np.exp(edges)) / (high - low)
    expected = time_scale.size * share
    sigma = np.sqrt(expected * (1 - share))
    assert np.all(np.abs(counts - expected) <= 5 * sigma), f"counts {counts}, expected {np.round(expected)}"


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_chrono_gates_have_the_stated_time_scales(name):
    cell = make_cell(name, 3, H, seed=7, backend="numpy", chrono=T_MAX, init_hh="zeros")   # W_hh: h = 0 anyway
    f = forget_gates(cell)
    u = f / (1 - f)                                                # e^(b_f): 1 / (1 - f) = 1 + u
    assert_close(1 / (1 - f), 1 + u, rtol=1e-12, name="forgetting time")
    assert_log_of_uniform(u, 1.0, T_MAX - 1)
    assert u.max() > 0.9 * (T_MAX - 1) and u.min() < 1.1           # the whole range is used


def test_another_law_of_the_time_scales_is_told_apart():
    """Log-uniform time scales (b_f ~ U[0, log(T_max - 1)]) fail the histogram: the test can fail."""
    u = np.exp(np.random.default_rng(0).uniform(0.0, np.log(T_MAX - 1), H))
    with pytest.raises(AssertionError, match="counts"):
        assert_log_of_uniform(u, 1.0, T_MAX - 1)
    assert_log_of_uniform(np.random.default_rng(0).uniform(1.0, T_MAX - 1, H), 1.0, T_MAX - 1)


def test_the_lstm_input_gate_is_the_negative_and_the_rest_is_unchanged():
    plain, chrono = (make_cell("lstm", 3, 6, seed=1, backend="numpy", chrono=c) for c in (None, 50))
    b, n = chrono.params["b_h"], 6
    assert np.all(b[n:2 * n] >= 0) and np.all(b[n:2 * n] <= np.log(49) + 1e-12)
    assert_close(b[:n], -b[n:2 * n], name="b_i = -b_f")
    assert np.all(b[2 * n:] == 0)                                  # g and o untouched
    for key in ("W_xh", "W_hh"):                                    # the weights are drawn before the biases
        assert np.array_equal(plain.params[key], chrono.params[key]), key
    assert np.all(plain.params["b_h"][n:2 * n] == 1.0)             # without chrono: forget bias 1


def test_the_gru_takes_chrono_in_b_xh_z_only():
    gru = make_cell("gru", 3, 6, seed=1, backend="numpy", chrono=50, reset_after=False)
    b_xh, b_hh, n = gru.params["b_xh"], gru.params["b_hh"], 6
    assert np.all(b_hh == 0) and np.all(b_xh[:n] == 0) and np.all(b_xh[2 * n:] == 0)
    assert np.all((b_xh[n:2 * n] >= 0) & (b_xh[n:2 * n] <= np.log(49)))
    z = forget_gates(gru)
    assert_close(z, 1 / (1 + np.exp(-b_xh[n:2 * n])), rtol=1e-12, name="z = sigmoid(b_z)")


@pytest.mark.parametrize("value", [2, 1.5, -3])
def test_t_max_must_be_above_two(value):
    with pytest.raises(ValueError, match="above 2"):
        make_cell("lstm", 3, 4, chrono=value)


def test_train_and_task_take_chrono(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    code, out, err = cli(capsys, "train", corpus, "--cell", "gru", "--chrono", "64", "--steps", "3", "--hidden", "6",
                         "--window", "8", "--batch", "2", "--out", tmp_path / "lm")
    assert code == 0, err
    assert "chrono T_max 64" in out
    code, out, err = cli(capsys, "task", "adding", "--cell", "lstm", "--chrono", "64", "--length", "8", "--hidden", "4",
                         "--batch", "4", "--steps", "3", "--eval-every", "3", "--eval-size", "20", "--no-trace",
                         "--out", tmp_path / "task")
    assert code == 0, err
    assert "LSTM (chrono T_max 64)" in out


def test_trace_takes_chrono(tmp_path, capsys):
    code, out, err = cli(capsys, "trace", "--cell", "lstm", "--chrono", "30", "--hidden", "6", "--length", "12",
                         "--batch", "3", "--no-jacobian", "--data-out", tmp_path / "t.npz")
    assert code == 0, err
    from rnnvanish.tracer import Trace
    assert Trace.load(tmp_path / "t.npz").meta["chrono"] == 30


@pytest.mark.parametrize("argv, message", [
    (["train", "--cell", "tanh", "--chrono", "100", "--steps", "1"], "chrono applies to the lstm and gru cells only"),
    (["task", "adding", "--cell", "indrnn", "--chrono", "100"], "chrono applies to the lstm and gru cells only"),
    (["trace", "--cell", "irnn", "--chrono", "100"], "chrono applies to the lstm and gru cells only"),
    (["sweep", "adding", "--cells", "lstm", "--chrono", "2"], "T_MAX must be above 2"),
    (["train", "--cell", "lstm", "--chrono", "1", "--steps", "1"], "T_MAX must be above 2"),
    (["train", "--cell", "lstm", "--chrono", "50", "--forget-bias", "2", "--steps", "1"], "not both"),
    (["train", "--cell", "irnn", "--activation", "tanh", "--steps", "1"], "activation applies to the tanh cell only"),
])
def test_a_bad_option_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    code, out, err = cli(capsys, *argv, "--out", tmp_path / "run")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


# --------------------------------------------------------------------------- IRNN

def test_irnn_is_relu_with_identity_recurrence_and_zero_bias():
    cell = make_cell("irnn", 3, 5, seed=0, backend="numpy")
    assert cell.activation == "relu" and cell.name == "irnn"
    assert np.array_equal(cell.params["W_hh"], np.eye(5)) and np.all(cell.params["b_h"] == 0)
    scaled = make_cell("irnn", 3, 5, seed=0, backend="numpy", init_hh="identity:0.9")
    assert np.array_equal(scaled.params["W_hh"], 0.9 * np.eye(5))
    # With zero input a unit keeps its (non-negative) value: the signal passes back unchanged.
    h, _, _ = cell.forward(np.zeros((6, 1, 3)), (np.full((1, 5), 0.5),))
    assert np.all(h == 0.5)


def test_irnn_through_the_commands(tmp_path, capsys):
    code, out, err = cli(capsys, "gradcheck", "--cell", "irnn", "--window", "3", "--batch", "2", "--backend", "numpy")
    assert code == 0 and "all gradients match" in out, err
    code, out, err = cli(capsys, "trace", "--compare", "cell=tanh,irnn,indrnn", "--hidden", "6", "--length", "12",
                         "--batch", "3", "--no-jacobian", "--data-out", tmp_path / "t.npz")
    assert code == 0, err
    assert "IRNN" in out and "IndRNN" in out


def test_trace_compares_chrono_and_refuses_it_for_other_cells(tmp_path, capsys):
    code, out, err = cli(capsys, "trace", "--cell", "gru", "--compare", "chrono=none,40", "--hidden", "6", "--length",
                         "12", "--batch", "3", "--no-jacobian")
    assert code == 0, err
    assert "no chrono" in out and "chrono 40" in out
    code, out, err = cli(capsys, "trace", "--cell", "tanh", "--compare", "chrono=none,40")
    assert code == 2 and "changes only the lstm and gru cells" in err and len(err.strip().splitlines()) == 1


def test_every_cell_option_belongs_to_registered_cells():
    from rnnvanish import cells, choices
    assert choices.CELLS == tuple(cells.CELLS)
    for name, (owners, _) in choices.CELL_SPECIFIC.items():
        assert set(owners) <= set(cells.CELLS), name
    assert set(choices.CLASSIC_CELLS) <= set(choices.CELLS)


@pytest.mark.parametrize("argv, message", [
    (["gradcheck", "--cell", "lstm", "--activation", "relu"], "activation applies to the tanh cell only, not lstm"),
    (["gradcheck", "--cell", "indrnn", "--reset-before"], "reset-before applies to the gru cell only, not indrnn"),
])
def test_gradcheck_refuses_an_option_of_another_cell(argv, message, capsys):
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"rnnvanish gradcheck: error: --{message}"]
