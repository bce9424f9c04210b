"""`rnnvanish bench` on a tiny grid: the records and their keys, the torch twin, thread limits.

No timing is asserted: speed depends on the machine and on what else runs on it."""
import json

import numpy as np
import pytest

from conftest import assert_close, cli
from rnnvanish import bench
from rnnvanish.cli import build_parser, main
from rnnvanish.commands import bench as bench_command

TINY = ("tanh", 8, 1, 5, "float64", 1, 1)          # cell, hidden, batch, window, dtype, threads, layers


def check_record(record):
    assert set(record) == set(bench.RECORD_KEYS), sorted(set(record) ^ set(bench.RECORD_KEYS))
    assert record["train_tok_s"] > 0 and record["gflops"] > 0 and record["peak_fraction"] > 0
    assert (record["gen_tok_s"] is not None) == (record["batch"] == 1)


def test_run_grid_gives_one_full_record_per_implementation():
    impls = ["numba", "numpy"] + (["torch"] if bench.torch_available() else [])
    records, peaks = bench.run_grid([TINY], impls, min_time=0.01, progress=False)
    assert [r["impl"] for r in records] == impls
    for r in records:
        check_record(r)
        assert (r["cell"], r["hidden"], r["batch"], r["window"], r["dtype"], r["threads"], r["layers"]) == TINY
    assert set(peaks) == {("float64", 1)} and peaks[("float64", 1)] > 0


def test_rounds_keep_each_implementations_fastest_round_and_the_fastest_peak(monkeypatch):
    """run_grid in rounds: numba and torch measured in every round, numpy in the first only;
    a record is its implementation's fastest round; every share is over the fastest peak of
    every round, the one passed in included."""
    peaks_measured = iter([100.0, 150.0, 120.0])
    speeds = {"numba": iter([10.0, 30.0, 20.0]), "torch": iter([5.0, 4.0, 6.0]), "numpy": iter([1.0])}
    calls = []

    def fake_measure(cell, hidden, batch, window, dtype, threads, impl, **kw):
        calls.append((impl, cell))
        tok_s = next(speeds[impl])
        return {"cell": cell, "layers": kw["layers"], "hidden": hidden, "batch": batch, "window": window,
                "dtype": np.dtype(dtype).name, "threads": threads, "impl": impl, "train_tok_s": tok_s,
                "gen_tok_s": None, "gflops": tok_s, "peak_fraction": None}
    monkeypatch.setattr(bench, "measure", fake_measure)
    monkeypatch.setattr(bench, "measure_peak", lambda dtype, threads, min_time: next(peaks_measured))
    records, peaks = bench.run_grid([TINY], ["numba", "numpy", "torch"], min_time=0.3, progress=False, rounds=3,
                                    peaks={("float64", 1): 140.0})
    assert [impl for impl, _ in calls] == ["numba", "numpy", "torch", "numba", "torch", "numba", "torch"]
    assert peaks == {("float64", 1): 150.0}
    assert [(r["impl"], r["train_tok_s"]) for r in records] == [("numba", 30.0), ("numpy", 1.0), ("torch", 6.0)]
    assert [r["peak_fraction"] for r in records] == [30.0 / 150.0, 1.0 / 150.0, 6.0 / 150.0]


def test_rounds_are_passes_over_the_whole_grid(monkeypatch):
    """Two configs in two rounds: the grid is run through twice (a spell slows a round, not a
    config), records come back in the order of configs then impls."""
    calls = []

    def fake_measure(cell, hidden, batch, window, dtype, threads, impl, **kw):
        calls.append((cell, impl))
        return {"cell": cell, "layers": 1, "hidden": hidden, "batch": batch, "window": window, "dtype": "float64",
                "threads": threads, "impl": impl, "train_tok_s": float(len(calls)), "gen_tok_s": None,
                "gflops": 1.0, "peak_fraction": None}
    monkeypatch.setattr(bench, "measure", fake_measure)
    monkeypatch.setattr(bench, "measure_peak", lambda dtype, threads, min_time: 10.0)
    configs = [TINY, ("gru",) + TINY[1:]]
    records, _ = bench.run_grid(configs, ["numba", "torch"], min_time=0.2, progress=False, rounds=2)
    assert calls == [("tanh", "numba"), ("tanh", "torch"), ("gru", "numba"), ("gru", "torch")] * 2
    assert [(r["cell"], r["impl"], r["train_tok_s"]) for r in records] == [
        ("tanh", "numba", 5.0), ("tanh", "torch", 6.0), ("gru", "numba", 7.0), ("gru", "torch", 8.0)]


def test_records_of_a_stack_carry_its_layers_and_its_flops():
    impls = ["numba", "numpy"] + (["torch"] if bench.torch_available() else [])
    configs = [("lstm", 6, 1, 4, "float64", 1, 2), ("gru", 6, 2, 4, "float32", 1, 3)]
    records, _ = bench.run_grid(configs, impls, min_time=0.01, progress=False)
    assert [(r["cell"], r["layers"], r["impl"]) for r in records] == [
        (cell, L, impl) for cell, _, _, _, _, _, L in configs for impl in impls]
    for r in records:
        check_record(r)
        seconds = r["window"] * r["batch"] / r["train_tok_s"]
        flops = bench.train_flops(r["cell"], r["hidden"], r["batch"], r["window"], 65, r["layers"])
        assert r["gflops"] == pytest.approx(flops / seconds / 1e9)


def test_command_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = main(["bench", "--cells", "tanh", "gru", "--hidden", "8", "--batch", "1", "2", "--dtype", "float32",
                   "--threads", "1", "--window", "5", "--impls", "numba", "numpy", "--min-time", "0.01",
                   "--no-startup", "--no-trace", "--no-progress", "--json", str(out)])
    assert status == 0
    records = json.loads(out.read_text())
    assert len(records) == 2 * 2 * 2                               # cells x batches x impls
    for r in records:
        check_record(r)
    text = capsys.readouterr().out
    assert "/numpy" in text and "gru" in text and "float32" in text


def test_trace_times_time_a_full_trace_per_cell():
    times = bench.trace_times(["tanh", "lstm"], length=6, hidden=4, batch=2, repeats=1)
    assert list(times) == ["tanh", "lstm"]
    for seconds, method in times.values():
        assert seconds > 0 and method == "exact"


def test_command_rejects_torch_when_it_is_missing(monkeypatch, capsys):
    monkeypatch.setattr(bench, "torch_available", lambda: False)
    assert main(["bench", "--impls", "torch", "--no-startup", "--no-progress"]) == 2
    assert "PyTorch" in capsys.readouterr().err


def test_train_flops_counts_every_matrix_product():
    cell, H, B, T, V = "lstm", 6, 3, 4, 7
    GH = 4 * H
    products = [(B, H, GH)] * T + [(B, GH, H)] * T + [(H, T * B, GH)]            # forward, dh, dW_hh
    products += [(T * B, H, V), (H, T * B, V), (T * B, V, H)]                    # y, dW_hy, dh from y
    assert bench.train_flops(cell, H, B, T, V) == sum(2 * m * k * n for m, k, n in products)
    assert bench.train_flops(cell, H, B, T, V, layers=1) == bench.train_flops(cell, H, B, T, V)


def test_train_flops_of_a_stack_counts_every_layers_products():
    cell, H, B, T, V = "gru", 6, 3, 4, 7
    GH = 3 * H
    recurrent = [(B, H, GH)] * T + [(B, GH, H)] * T + [(H, T * B, GH)]           # per layer: forward, dh, dW_hh
    inputs = [(T * B, H, GH), (T * B, GH, H), (H, T * B, GH)]                     # layer 2: x W_xh, dx, dW_xh
    output = [(T * B, H, V), (H, T * B, V), (T * B, V, H)]
    products = 2 * recurrent + inputs + output
    assert bench.train_flops(cell, H, B, T, V, layers=2) == sum(2 * m * k * n for m, k, n in products)
    assert bench.train_flops(cell, H, B, T, V, layers=3) == 6 * T * B * H * (5 * GH + V)


@pytest.mark.parametrize("backend", ["numba", "numpy", "torch"])
def test_limit_threads_gives_the_backends_blas_n_threads_and_the_others_one(backend):
    import scipy.linalg  # noqa: F401  (SciPy's BLAS is loaded before the limits are read)
    from rnnvanish import threads
    libraries = threads.loaded_openblas()
    if not libraries:
        pytest.skip("no OpenBLAS loaded in this process")
    before = [get() for _, _, get in libraries]
    with threads.limit_threads(3, backend):
        got = {path: get() for path, _, get in libraries}
    assert [get() for _, _, get in libraries] == before
    for path, count in got.items():
        folder = path.split("/")[-2]
        own = {"numba": "scipy.libs", "numpy": "numpy.libs", "torch": None}[backend]
        if folder in ("scipy.libs", "numpy.libs"):
            assert count == (3 if folder == own else 1), (path, count)


def test_blas_threads_for_tells_the_libraries_apart():
    from rnnvanish.threads import blas_threads_for
    scipy_blas, numpy_blas, system = "/x/scipy.libs/libscipy_openblas.so", "/x/numpy.libs/libo.so", "/usr/lib/libopenblas.so"
    assert [blas_threads_for(p, 2, "numba") for p in (scipy_blas, numpy_blas, system)] == [2, 1, 2]
    assert [blas_threads_for(p, 2, "numpy") for p in (scipy_blas, numpy_blas, system)] == [1, 2, 2]
    assert [blas_threads_for(p, 2, "torch") for p in (scipy_blas, numpy_blas, system)] == [1, 1, 1]


@pytest.mark.parametrize("cell", ["tanh", "lstm", "gru"])
def test_torch_twin_computes_the_same_loss_and_gradients(cell):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    model = bench.project_model(cell, 9, 5, "float64", "numpy", seed=1)
    rng = np.random.default_rng(2)
    for p in model.params.values():
        p += rng.normal(0, 0.3, p.shape)
    inputs, targets = rng.integers(0, 9, (6, 2)), rng.integers(0, 9, (6, 2))
    loss, grads, _, _ = model.loss_and_grads(inputs, targets)
    rnn, linear, _ = bench.torch_twin(model)
    out, _ = rnn(torch.eye(9, dtype=torch.float64)[torch.from_numpy(inputs)])
    torch_loss = F.cross_entropy(linear(out).reshape(-1, 9), torch.from_numpy(targets).reshape(-1))
    torch_loss.backward()
    assert_close(torch_loss.item(), loss, rtol=1e-12, name="loss")
    assert_close(rnn.weight_hh_l0.grad.numpy().T, grads["W_hh"], rtol=1e-10, name="dW_hh")
    assert_close(rnn.weight_ih_l0.grad.numpy().T, grads["W_xh"], rtol=1e-10, name="dW_xh")
    assert_close(linear.weight.grad.numpy().T, grads["W_hy"], rtol=1e-10, name="dW_hy")


def _perturbed_stack(cell, layers, V=9, H=5, seed=1):
    """A float64 reference model of `layers` layers with every parameter (biases too) away from its init."""
    model = bench.project_model(cell, V, H, "float64", "numpy", seed=seed, layers=layers)
    rng = np.random.default_rng(seed + 1)
    for p in model.params.values():
        p += rng.normal(0, 0.3, p.shape)
    return model, rng


def _torch_loss(rnn, linear, inputs, targets, V):
    import torch
    import torch.nn.functional as F

    out, _ = rnn(torch.eye(V, dtype=torch.float64)[torch.from_numpy(inputs)])
    return F.cross_entropy(linear(out).reshape(-1, V), torch.from_numpy(targets).reshape(-1))


@pytest.mark.parametrize("layers", [2, 3])
@pytest.mark.parametrize("cell", ["tanh", "lstm", "gru"])
def test_torch_twin_of_a_stack_computes_the_same_loss(cell, layers):
    pytest.importorskip("torch")
    model, rng = _perturbed_stack(cell, layers)
    inputs, targets = rng.integers(0, 9, (6, 2)), rng.integers(0, 9, (6, 2))
    loss, _ = model.loss(inputs, targets)
    rnn, linear, params = bench.torch_twin(model)
    assert rnn.num_layers == layers
    assert sum(q.numel() for q in params) == model.n_params()          # bias_hh frozen where b_h is one bias
    assert_close(_torch_loss(rnn, linear, inputs, targets, 9).item(), loss, rtol=1e-12, name="loss")


@pytest.mark.parametrize("layers", [2, 3])
@pytest.mark.parametrize("cell", ["tanh", "lstm", "gru"])
def test_torch_twin_of_a_stack_computes_the_same_gradients(cell, layers):
    pytest.importorskip("torch")
    model, rng = _perturbed_stack(cell, layers)
    inputs, targets = rng.integers(0, 9, (6, 2)), rng.integers(0, 9, (6, 2))
    loss, grads, _, _ = model.loss_and_grads(inputs, targets)
    rnn, linear, _ = bench.torch_twin(model)
    torch_loss = _torch_loss(rnn, linear, inputs, targets, 9)
    torch_loss.backward()
    assert_close(torch_loss.item(), loss, rtol=1e-12, name="loss")
    for k in range(layers):
        sfx = "" if k == 0 else f"_l{k}"
        assert_close(getattr(rnn, f"weight_ih_l{k}").grad.numpy().T, grads["W_xh" + sfx], name="dW_xh" + sfx)
        assert_close(getattr(rnn, f"weight_hh_l{k}").grad.numpy().T, grads["W_hh" + sfx], name="dW_hh" + sfx)
        bias = "b_xh" if cell == "gru" else "b_h"
        assert_close(getattr(rnn, f"bias_ih_l{k}").grad.numpy(), grads[bias + sfx], name="d" + bias + sfx)
    assert_close(linear.weight.grad.numpy().T, grads["W_hy"], name="dW_hy")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_torch_generation_of_a_stack_draws_the_tokens_the_model_draws(cell):
    pytest.importorskip("torch")
    model, _ = _perturbed_stack(cell, 2)
    uniforms = np.random.default_rng(7).random(12)
    ours = model.sample([3], 12, 1.0, rng=7)                           # draws the same 12 uniforms
    assert list(ours) == bench.torch_generate(model)(3, uniforms)


@pytest.mark.parametrize("setting", [{"dropout": 0.2}, {"zoneout": 0.1}, {"residual": True}])
def test_torch_twin_refuses_what_torch_does_not_compute(setting):
    pytest.importorskip("torch")
    from rnnvanish.model import LanguageModel
    model = LanguageModel("lstm", 9, 5, layers=2, backend="numpy", **setting)
    with pytest.raises(ValueError, match="plain stack"):
        bench.torch_twin(model)


def test_command_takes_layers_and_names_them_in_the_table(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code, text, err = cli(capsys, "bench", "--cells", "lstm", "--layers", "1", "2", "--hidden", "6", "--batch", "2",
                          "--dtype", "float64", "--threads", "1", "--window", "4", "--impls", "numpy",
                          "--min-time", "0.01", "--no-startup", "--no-trace", "--no-progress", "--json", out)
    assert code == 0, err
    assert [r["layers"] for r in json.loads(out.read_text())] == [1, 2]
    rows = [line.split() for line in text.splitlines() if line.startswith("lstm")]
    assert [row[:3] for row in rows] == [["lstm", "1", "6"], ["lstm", "2", "6"]]
    assert "num_layers" in text


def test_table_of_one_layer_has_no_layers_column():
    record = {"cell": "tanh", "layers": 1, "hidden": 8, "batch": 1, "window": 5, "dtype": "float64", "threads": 1,
              "impl": "numba", "train_tok_s": 1e4, "gen_tok_s": 2e4, "gflops": 1.0, "peak_fraction": 0.1}
    head = bench_command.table([record]).splitlines()[1].split()
    assert head[:3] == ["cell", "H", "B"]
    assert bench_command.table([dict(record, layers=2)]).splitlines()[1].split()[:3] == ["cell", "L", "H"]


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_command_rejects_a_bad_number_of_layers_with_one_line(bad, capsys):
    code, out, err = cli(capsys, "bench", "--layers", "1", bad, "--cells", "tanh", "--hidden", "4", "--batch", "1",
                         "--dtype", "float64", "--threads", "1", "--impls", "numpy", "--min-time", "0.01",
                         "--no-startup", "--no-trace", "--no-progress")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--layers" in err, err


def test_stacked_preset_is_a_two_layer_lstm_against_torch():
    args = build_parser(only="bench").parse_args(["bench", "--stacked", "--window", "7"])
    assert bench_command._grid(args) == [("lstm", 256, 32, 7, "float32", 2, 2), ("lstm", 128, 1, 7, "float64", 1, 2)]


def test_stacked_preset_refuses_grid_flags_with_one_line(capsys):
    code, out, err = cli(capsys, "bench", "--stacked", "--hidden", "64", "--layers", "3", "--no-progress")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["rnnvanish bench: error: --stacked runs its own two configurations; "
                                        "drop --hidden, --layers"]


def test_stacked_summary_gives_the_ratios_numba_over_torch():
    base = {"cell": "lstm", "layers": 2, "hidden": 128, "batch": 1, "window": 25, "dtype": "float64", "threads": 1,
            "gflops": 1.0, "peak_fraction": 0.1}
    records = [dict(base, impl="numba", train_tok_s=3000.0, gen_tok_s=5000.0),
               dict(base, impl="torch", train_tok_s=2000.0, gen_tok_s=1000.0)]
    assert bench_command.stacked_summary(records) == (
        "2-layer lstm, B 1, H 128, float64, 1 thread: numba / torch training 1.50x, generation 5.00x")


def test_flagship_is_the_batched_float32_lstm_of_train_and_refuses_grid_flags(capsys):
    assert bench_command.FLAGSHIP == ("lstm", 256, 32, 64, "float32", 2, 1)
    args = build_parser(only="bench").parse_args(["bench", "--flagship"])
    assert bench_command._grid(args) == []                     # the flagship is added to the grid, last
    code, out, err = cli(capsys, "bench", "--flagship", "--batch", "8", "--no-progress")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["rnnvanish bench: error: --flagship runs one configuration; drop --batch"]
    code, _, err = cli(capsys, "bench", "--flagship", "--stacked", "--no-progress")
    assert code == 2 and "--stacked runs its own two configurations; drop --flagship" in err


def test_the_flagship_is_the_grids_last_configuration_in_every_round(monkeypatch, capsys):
    """A grid with the flagship line: each round passes over the grid's configurations and then
    the flagship's, so its rounds lie a pass apart like theirs; the table leaves it out."""
    calls = []

    def fake_measure(cell, hidden, batch, window, dtype, threads, impl, **kw):
        calls.append((cell, hidden, window, impl))
        return {"cell": cell, "layers": 1, "hidden": hidden, "batch": batch, "window": window,
                "dtype": np.dtype(dtype).name, "threads": threads, "impl": impl, "train_tok_s": 1000.0,
                "gen_tok_s": 10.0 if batch == 1 else None, "gflops": 1.0, "peak_fraction": None}
    monkeypatch.setattr(bench, "measure", fake_measure)
    monkeypatch.setattr(bench, "measure_peak", lambda dtype, threads, min_time: 10.0)
    monkeypatch.setattr(bench_command, "_grid", lambda args: [TINY])
    monkeypatch.setattr(bench, "torch_available", lambda: False)
    assert main(["bench", "--rounds", "2", "--impls", "numba", "--no-startup", "--no-trace", "--no-progress"]) == 0
    assert calls == [("tanh", 8, 5, "numba"), ("lstm", 256, 64, "numba")] * 2
    out = capsys.readouterr().out
    assert "flagship (rnnvanish train" in out and "the fastest of 2 rounds" in out
    assert "lstm  " not in out.split("flagship")[0]            # the table has the grid's rows only


def test_flagship_line_gives_both_speeds_the_ratio_and_the_share_of_peak():
    base = {"cell": "lstm", "layers": 1, "hidden": 256, "batch": 32, "window": 64, "dtype": "float32", "threads": 2,
            "gflops": 50.0}
    records = [dict(base, impl="numba", train_tok_s=54000.0, peak_fraction=0.62),
               dict(base, impl="torch", train_tok_s=45000.0, peak_fraction=0.5)]
    assert bench_command.flagship_line(records) == (
        "flagship (rnnvanish train --hidden 256 --dtype float32 --threads 2: LSTM, B 32, T 64): "
        "numba 54.0k tok/s (62% of peak), torch 45.0k tok/s, numba / torch 1.20x")
    assert bench_command.flagship_line(records[:1]).endswith("numba 54.0k tok/s (62% of peak)")


def test_startup_probe_reports_its_times():
    result = bench.startup_times([["tanh", "float64"]], backend="numpy")
    assert set(result) >= {"import_s", "first_step_s", "to_first_step_s", "process_s"}
    assert list(result["first_step_s"]) == ["tanh/float64"]
    assert 0 < result["import_s"] < result["to_first_step_s"] < result["process_s"]


@pytest.mark.parametrize("argv", [["--help"], ["bench", "--help"]])
def test_help_does_not_import_numba_or_torch(argv):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "rnnvanish", *argv],
                          capture_output=True, text=True, env=env, check=True)
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time")}
    assert "numba" not in imported and "torch" not in imported
    assert "usage:" in done.stdout
