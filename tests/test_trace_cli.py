"""`rnnvanish trace` and `rnnvanish plot` on tiny settings: the files they write, what they
print, and one-line errors with exit status 2 for bad input."""
import numpy as np
import pytest

from conftest import cli
from rnnvanish.cli import main
from rnnvanish.tracer import Trace, load_training_traces

TINY = ["--hidden", "6", "--length", "12", "--batch", "3", "--backend", "numpy"]


def written(path):
    return path.is_file() and path.stat().st_size > 0


def test_compare_cells_writes_charts_data_and_a_table(tmp_path, capsys):
    code, out, err = cli(capsys, "trace", "--compare", "cell=tanh,lstm,gru", *TINY,
                         "--chart", tmp_path / "lag.png", "--heatmap", tmp_path / "jac.svg",
                         "--contributions", tmp_path / "terms.png", "--data-out", tmp_path / "trace.npz")
    assert code == 0, err
    for name in ("lag.png", "jac.svg", "terms.png"):
        assert written(tmp_path / name), name
    assert (tmp_path / "jac.svg").read_text().lstrip().startswith("<?xml")
    for label in ("tanh-rnn", "lstm", "gru"):
        assert written(tmp_path / f"trace-{label}.npz") and written(tmp_path / f"trace-{label}.csv"), label
    lstm = Trace.load(tmp_path / "trace-lstm.npz")
    assert lstm.meta["cell"] == "lstm" and lstm.grad_c is not None and lstm.T == 12 and lstm.B == 3
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("configuration"))
    assert "lag 10" in header and "decay/step" in header and "bound/step" in header
    rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in ("tanh", "LSTM", "GRU")}
    assert set(rows) == {"tanh", "LSTM", "GRU"}
    # the printed median at lag 10 is the one in the saved trace
    assert float(rows["LSTM"].split()[1]) == pytest.approx(lstm.signal_at(10), rel=1e-2)


def test_out_is_a_folder_of_every_output(tmp_path, capsys):
    code, out, err = cli(capsys, "trace", "--cell", "lstm", *TINY, "--out", tmp_path / "t")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == [
        "contributions.png", "jacobians.png", "lag.png", "trace.csv", "trace.npz"]
    assert Trace.load(tmp_path / "t" / "trace.npz").meta["cell"] == "lstm"


@pytest.mark.parametrize("compare", ["radius=0.9,1.1", "init=normal:1.0,glorot_uniform,orthogonal",
                                     "activation=tanh,sigmoid,relu", "forget-bias=0,1,3"])
def test_each_compare_key_runs(tmp_path, capsys, compare):
    extra = ["--cell", "lstm"] if compare.startswith("forget") else []
    code, out, err = cli(capsys, "trace", "--compare", compare, *TINY, *extra, "--no-jacobian")
    assert code == 0, err
    n_values = len(compare.split("=")[1].split(","))
    table = out.split("configuration", 1)[1].splitlines()[1:1 + n_values]
    assert len(table) == n_values and all(line.strip() for line in table)


def test_single_trace_data_out_is_the_path_given(tmp_path, capsys):
    code, out, err = cli(capsys, "trace", *TINY, "--cell", "gru", "--method", "exact", "--data-out", tmp_path / "g")
    assert code == 0, err
    tr = Trace.load(tmp_path / "g.npz")
    assert tr.meta["jacobian_method"] == "exact" and tr.jacobian_log10.shape == (12, 12)
    assert (tmp_path / "g.csv").read_text().startswith("quantity,lag,k,t,value,q10,q90\n")


@pytest.mark.parametrize("source", [["--task", "adding"], ["--tokens", "5"], ["--input-scale", "0.01"]])
def test_input_sources(tmp_path, capsys, source):
    code, out, err = cli(capsys, "trace", *TINY, *source, "--no-jacobian", "--data-out", tmp_path / "t.npz")
    assert code == 0, err
    tr = Trace.load(tmp_path / "t.npz")
    assert tr.T == 12 and np.isfinite(tr.grad_h).all()


def test_corpus_windows(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 5)
    code, out, err = cli(capsys, "trace", *TINY, "--corpus", corpus, "--no-jacobian", "--data-out", tmp_path / "t")
    assert code == 0, err
    assert Trace.load(tmp_path / "t.npz").meta["input_size"] == len(set(corpus.read_text()))


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A tiny trained run with traces every 5 steps, made once."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RNNVANISH_BACKEND", "numpy")
    folder = tmp_path_factory.mktemp("plot")
    corpus = folder / "corpus.txt"
    corpus.write_text("one fish two fish red fish blue fish. " * 30)
    try:
        code = main(["train", str(corpus), "--cell", "tanh", "--hidden", "8", "--window", "10", "--batch", "4",
                     "--steps", "20", "--trace-every", "5", "--eval-every", "10", "--lr", "0.01", "--quiet",
                     "--out", str(folder / "run")])
    finally:
        mp.undo()
    assert code == 0
    return folder / "run"


def test_training_traces_and_plot_of_a_run(run_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RNNVANISH_BACKEND", "numpy")
    history = load_training_traces(run_folder)
    assert list(history.steps) == [0, 5, 10, 15] and history.grad_h.shape == (4, 11)
    code, out, err = cli(capsys, "plot", run_folder, "--out", tmp_path, "--format", "svg")
    assert code == 0, err
    assert written(tmp_path / "lag_profiles.svg")
    assert written(tmp_path / "training.svg")


def test_trace_a_checkpoint(run_folder, tmp_path, capsys):
    code, out, err = cli(capsys, "trace", "--checkpoint", run_folder, "--length", "9", "--batch", "2",
                         "--backend", "numpy", "--data-out", tmp_path / "ckpt.npz")
    assert code == 0, err
    tr = Trace.load(tmp_path / "ckpt.npz")
    assert tr.meta["cell"] == "tanh" and tr.meta["hidden_size"] == 8 and tr.T == 9
    assert "step 20" in tr.label


@pytest.mark.parametrize("argv,message", [
    (["--compare", "colour=red,blue"], "cannot vary"),
    (["--compare", "radius=0.9,abc"], "must be a number"),
    (["--compare", "cell=tanh,"], "empty value"),
    (["--compare", "cell"], "KEY=V1,V2"),
    (["--compare", "cell=tanh,elman"], "unknown cell"),
    (["--compare", "forget-bias=0,1"], "add --cell lstm"),
    (["--cell", "gru", "--compare", "activation=tanh,relu"], "add --cell tanh"),
    (["--init-hh", "bogus"], "unknown initialiser"),
    (["--chart", "chart.jpg"], ".png or .svg"),
    (["--out", "lag.png"], "name a single chart with --chart"),
    (["--data-out", "trace.txt"], ".npz"),
    (["--data-out", "no/such/folder/t.npz"], "does not exist"),
    (["--heatmap", "h.png", "--no-jacobian"], "drop --no-jacobian"),
    (["--task", "juggling"], "unknown task"),
    (["--corpus", "no_such_file.txt"], "does not exist"),
    (["--checkpoint", "no_such_run"], "no checkpoint"),
    (["--length", "0"], "positive"),
    (["--radius", "-1"], "positive"),
    (["--forget-bias", "nan"], "finite"),
    (["--cell", "elman"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "trace", *TINY, *argv)
    assert code == 2, (out, err)
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())


def test_plot_errors(tmp_path, capsys):
    code, _, err = cli(capsys, "plot", tmp_path / "missing")
    assert code == 2 and "no run folder" in err
    code, _, err = cli(capsys, "plot", tmp_path)
    assert code == 2 and "nothing to plot" in err and len(err.strip().splitlines()) == 1
