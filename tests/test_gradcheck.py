"""The language model's truncated BPTT against central differences, over the whole matrix:
every cell, every tanh-RNN activation, both GRU forms, T in {1, 7}, B in {1, 3}, truncate in {None, 1, 3}."""
import numpy as np
import pytest

from rnnvanish.cli import main
from rnnvanish.gradcheck import check_language_model, relative_error

CONFIGS = [("tanh", {"activation": "tanh"}), ("tanh", {"activation": "sigmoid"}), ("tanh", {"activation": "relu"}),
           ("lstm", {}), ("gru", {"reset_after": True}), ("gru", {"reset_after": False})]
IDS = ["tanh", "sigmoid", "relu", "lstm", "gru-after", "gru-before"]


@pytest.mark.parametrize("cell,options", CONFIGS, ids=IDS)
@pytest.mark.parametrize("window", [1, 7])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("truncate", [None, 1, 3])
def test_language_model_gradients(cell, options, window, batch, truncate):
    rows = check_language_model(cell, hidden=5, window=window, batch=batch, truncate=truncate,
                                seed=window + 10 * batch, backend="numpy", **options)
    names = {name for name, _, _ in rows}
    assert {"W_xh", "W_hh", "W_hy", "b_y", "h0"} <= names
    for name, err, magnitude in rows:
        assert magnitude > 0.0, f"{name}: gradient is identically zero, the check would be empty"
        assert err <= 1e-7, f"{name}: relative error {err:.2e}"


def test_check_catches_a_wrong_gradient(monkeypatch):
    """The check can fail: break the backward pass (drop the recurrent term) and see it."""
    from rnnvanish.reference import recurrent

    original = recurrent._tanh_step_back

    def broken(g_h, h_t, W_hh_T, act):
        da_t, dh_prev = original(g_h, h_t, W_hh_T, act)
        return da_t, 0.5 * dh_prev

    monkeypatch.setattr(recurrent, "_tanh_step_back", broken)
    rows = dict((n, e) for n, e, _ in check_language_model("tanh", window=5, batch=2, backend="numpy"))
    assert rows["W_hh"] > 1e-4 and rows["h0"] > 1e-4


def test_relative_error_definition():
    a, n = np.array([1.0, 2.0]), np.array([1.0, 2.5])
    assert relative_error(a, n) == pytest.approx(0.5 / (np.sqrt(5) + np.sqrt(7.25)))
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0


def test_gradcheck_command_passes_and_says_when_truncation_does_not_matter(capsys, monkeypatch):
    monkeypatch.setenv("RNNVANISH_BACKEND", "numpy")
    assert main(["gradcheck", "--cell", "gru", "--reset-before", "--window", "2", "--truncate", "3"]) == 0
    out = capsys.readouterr().out
    assert "gru/reset-before" in out and "no effect" in out and "all gradients match" in out


def test_gradcheck_command_fails_on_an_impossible_tolerance(capsys, monkeypatch):
    monkeypatch.setenv("RNNVANISH_BACKEND", "numpy")
    assert main(["gradcheck", "--cell", "tanh", "--tolerance", "1e-30"]) == 1
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--hidden", "0"], ["--cell", "foo"], ["--window", "-3"], ["--truncate", "x"],
                                  ["--tolerance", "nan"]])
def test_gradcheck_bad_flags_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["gradcheck", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]
