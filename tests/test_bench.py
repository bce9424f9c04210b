"""`rnnvanish bench` on a tiny grid: the records and their keys, the torch twin, thread limits.

No timing is asserted: speed depends on the machine and on what else runs on it."""
import json

import numpy as np
import pytest

from conftest import assert_close
from rnnvanish import bench
from rnnvanish.cli import main

TINY = ("tanh", 8, 1, 5, "float64", 1)          # cell, hidden, batch, window, dtype, threads


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
        assert (r["cell"], r["hidden"], r["batch"], r["window"], r["dtype"], r["threads"]) == TINY
    assert set(peaks) == {("float64", 1)} and peaks[("float64", 1)] > 0


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
