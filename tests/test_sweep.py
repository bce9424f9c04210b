"""The sweep: grid, run_one, executors, summary against direct computation, files and chart."""
import concurrent.futures
import concurrent.futures.process
import csv
import json
import pickle

import numpy as np
import pytest

from conftest import cli
from rnnvanish.cli import main
from rnnvanish.errors import RnnvanishError
from rnnvanish.tasks.sweep import (InlineExecutor, grid, run_one, run_sweep, summarize, table_csv, write_sweep,
                             SUMMARY_COLUMNS)
from rnnvanish.tasks import make_task
from rnnvanish.tasks.objective import TaskConfig, train_task

BASE = TaskConfig(task="adding", hidden=3, batch=4, steps=4, eval_every=2, eval_size=16, stop_at=None,
                  backend="numpy")


def test_grid_is_every_cell_length_and_seed_as_plain_data():
    specs = grid(BASE, [8, 12], ["tanh", "gru"], 2)
    assert len(specs) == 8
    assert {(s["cell"], s["length"], s["seed"]) for s in specs} == {
        (c, L, k) for c in ("tanh", "gru") for L in (8, 12) for k in (0, 1)}
    assert all(s["hidden"] == 3 and s["task"] == "adding" for s in specs)
    assert json.loads(json.dumps(specs)) == specs                   # JSON-able, so any executor can ship it
    assert pickle.loads(pickle.dumps(specs)) == specs


def test_cell_options_go_to_their_cell_only():
    base = TaskConfig(**{**BASE.to_dict(), "forget_bias": 5.0, "activation": "relu"})
    specs = {s["cell"]: s for s in grid(base, [8], ["tanh", "lstm", "gru"], 1)}
    assert (specs["lstm"]["forget_bias"], specs["lstm"]["activation"]) == (5.0, None)
    assert (specs["tanh"]["forget_bias"], specs["tanh"]["activation"]) == (None, "relu")
    assert (specs["gru"]["forget_bias"], specs["gru"]["activation"]) == (None, None)
    with pytest.raises(RnnvanishError, match="forget-bias applies to the lstm cell only"):
        grid(base, [8], ["tanh", "gru"], 1)


def test_cell_settings_replace_one_cells_settings():
    specs = grid(BASE, [8], ["tanh", "indrnn"], 1, cell_settings={"indrnn": {"lr": 5e-5}})
    lr = {s["cell"]: s["lr"] for s in specs}
    assert lr == {"tanh": BASE.lr, "indrnn": 5e-5}


def test_the_sweep_command_runs_a_cell_at_its_own_rate(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "parity", "--lengths", "4", "--cells", "tanh,indrnn", "--cell-lr", "indrnn=5e-5",
                 "--seeds", "1", "--workers", "1", "--hidden", "3", "--steps", "2", "--eval-every", "1",
                 "--eval-size", "8", "--backend", "numpy", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    record = json.loads((out / "sweep.json").read_text())
    assert record["settings"]["cell_lr"] == {"indrnn": 5e-5}
    assert sorted(r["cell"] for r in record["runs"]) == ["indrnn", "tanh"]
    assert "indrnn at lr 5e-05" in capsys.readouterr().out
    assert main(["sweep", "parity", "--lengths", "4", "--cells", "tanh", "--cell-lr", "gru=1e-3",
                 "--out", str(tmp_path / "x")]) == 2
    assert "gru" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_run_one_is_train_task_on_the_spec():
    spec = grid(BASE, [8], ["lstm"], [5])[0]
    direct = train_task(TaskConfig.from_dict(spec))
    assert _untimed(run_one(spec)) == _untimed(direct) and direct["seed"] == 5 and direct["length"] == 8


def _untimed(result):
    return {k: v for k, v in result.items() if k not in ("elapsed", "reached_time")}


def test_the_default_process_pool_runs_spawned_workers():
    """Two workers started with 'spawn': the specs travel by pickle, results equal inline ones."""
    specs = grid(BASE, [8], ["tanh"], 2)
    pooled = run_sweep(specs, workers=2)
    inline = run_sweep(specs, executor=InlineExecutor())
    assert [_untimed(r) for r in pooled] == [_untimed(r) for r in inline]


class RecordingExecutor(InlineExecutor):
    """An injected executor: runs inline and records what it was given."""

    def __init__(self):
        self.calls = []

    def submit(self, fn, /, *args, **kwargs):
        self.calls.append((fn, args))
        return super().submit(fn, *args, **kwargs)


def test_sweep_uses_the_injected_executor_and_keeps_spec_order():
    specs = grid(BASE, [8, 10], ["tanh"], 2)
    executor = RecordingExecutor()
    seen = []
    results = run_sweep(specs, executor=executor, on_result=lambda i, r: seen.append(i))
    assert [fn for fn, _ in executor.calls] == [run_one] * 4
    assert [args[0] for _, args in executor.calls] == specs
    assert sorted(seen) == [0, 1, 2, 3]
    assert [(r["length"], r["seed"]) for r in results] == [(s["length"], s["seed"]) for s in specs]


def test_inline_runs_report_one_by_one():
    """With an inline executor each result is handled before the next run is submitted."""
    events = []

    class Logging(InlineExecutor):
        def submit(self, fn, /, *args, **kwargs):
            events.append(("submit", args[0]["seed"]))
            return super().submit(fn, *args, **kwargs)

    run_sweep(grid(BASE, [8], ["tanh"], 3), executor=Logging(),
              on_result=lambda i, r: events.append(("result", r["seed"])))
    assert events == [("submit", 0), ("result", 0), ("submit", 1), ("result", 1), ("submit", 2), ("result", 2)]


def test_a_diverging_run_is_a_result():
    spec = {**grid(BASE, [8], ["tanh"], 1)[0], "optimizer": "sgd", "lr": 1e30, "clip_norm": None, "steps": 40}
    result = run_one(spec)
    assert result["stopped"] == "diverged" and result["solved"] == 0.0 and "diverged at step 2" in result["error"]
    spec["divergence"] = None                                    # without the guard: the numbers overflow
    assert "non-finite" in run_one(spec)["error"]
    assert summarize([result])[0]["runs"] == 1


def test_ctrl_c_in_a_run_stops_the_sweep(monkeypatch):
    import rnnvanish.tasks.sweep as sweep
    def interrupted(config):
        raise KeyboardInterrupt
    monkeypatch.setattr(sweep, "train_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid(BASE, [8], ["tanh"], 2), executor=InlineExecutor())


def test_a_thread_pool_gives_the_same_results_as_inline():
    specs = grid(BASE, [8], ["tanh", "lstm"], 1)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        pooled = run_sweep(specs, executor=pool)
    assert [r["loss"] for r in pooled] == [r["loss"] for r in run_sweep(specs, executor=InlineExecutor())]


def test_a_failing_run_propagates():
    with pytest.raises(RnnvanishError, match="unknown task"):
        run_sweep([{**grid(BASE, [8], ["tanh"], 1)[0], "task": "nosuch"}], executor=InlineExecutor())


def test_summary_against_direct_computation():
    results = [{"task": "adding", "cell": c, "length": L, "seed": k, "solved": v, "loss": loss,
                "baseline_solved": 0.15, "baseline_loss": 0.04, "reached_step": reached, "elapsed": 2.0}
               for c, L, k, v, loss, reached in [("lstm", 20, 0, 0.9, 0.01, 100),
                                                  ("lstm", 20, 1, 0.5, float("nan"), None),
                                                  ("lstm", 10, 0, 1.0, 0.001, 50),
                                                  ("tanh", 10, 0, 0.2, 0.03, None)]]
    rows = summarize(results)
    assert [(r["cell"], r["length"]) for r in rows] == [("lstm", 10), ("lstm", 20), ("tanh", 10)]
    lstm20 = rows[1]
    assert lstm20["mean"] == pytest.approx(0.7) and lstm20["std"] == pytest.approx(0.2)
    assert (lstm20["min"], lstm20["max"], lstm20["runs"], lstm20["reached"]) == (0.5, 0.9, 2, 1)
    assert lstm20["mean_loss"] == pytest.approx(0.01)                # the diverged run's NaN is left out
    text = table_csv(rows, SUMMARY_COLUMNS)
    parsed = list(csv.DictReader(text.splitlines()))
    assert float(parsed[1]["mean"]) == pytest.approx(0.7) and parsed[2]["cell"] == "tanh"


def test_sweep_writes_table_and_chart_on_a_tiny_grid(tmp_path):
    specs = grid(BASE, [8, 12], ["tanh", "lstm"], 2)
    results = run_sweep(specs, executor=InlineExecutor())
    settings = {**BASE.to_dict(), "lengths": [8, 12], "cells": ["tanh", "lstm"], "seeds": 2}
    summary = write_sweep(tmp_path, settings, results)
    assert {p.name for p in tmp_path.iterdir()} == {"runs.csv", "summary.csv", "sweep.json", "sweep.png"}
    with open(tmp_path / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 8
    for row in summary:
        mine = [r["solved"] for r in results if (r["cell"], r["length"]) == (row["cell"], row["length"])]
        assert row["mean"] == pytest.approx(np.mean(mine)) and row["runs"] == 2
        assert row["baseline_solved"] == pytest.approx(make_task("adding").baseline(row["length"])["solved"])
    record = json.loads((tmp_path / "sweep.json").read_text())
    assert len(record["runs"]) == 8 and record["settings"]["cells"] == ["tanh", "lstm"]
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_partial_results_are_written_without_the_missing_runs(tmp_path):
    results = run_sweep(grid(BASE, [8], ["gru"], 2), executor=InlineExecutor())
    write_sweep(tmp_path, {**BASE.to_dict()}, [results[0], None], chart=False)
    with open(tmp_path / "runs.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 1
    assert not (tmp_path / "sweep.png").exists()


def test_sweep_command_with_one_worker(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "latch", "--lengths", "4,6", "--cells", "tanh", "--seeds", "1", "--workers", "1",
                 "--hidden", "3", "--steps", "2", "--eval-every", "1", "--eval-size", "8", "--backend", "numpy",
                 "--out", str(out)])
    assert code == 0
    assert (out / "sweep.png").exists() and (out / "summary.csv").exists()
    printed = capsys.readouterr().out
    assert "[2/2]" in printed and "T=6" in printed
    assert main(["sweep", "latch", "--lengths", "4", "--seeds", "1", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--lengths", "10,x"], "whole numbers"),
    (["--cells", "lstm,rnn"], "cells are"),
    (["--seeds", "0"], "positive"),
    (["--cell-lr", "indrnn:1e-3"], "CELL=LR"),
    (["--cell-lr", "indrnn=-1"], "CELL=LR"),
])
def test_bad_sweep_flags_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "adding", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_bad_sweep_settings_fail_before_any_run(tmp_path, capsys):
    small = ["--seeds", "1", "--steps", "1", "--eval-size", "4", "--workers", "1", "--backend", "numpy",
             "--out", str(tmp_path / "s")]                          # tiny, should a check ever let it run
    assert main(["sweep", "adding", "--lengths", "4,10", *small]) == 2
    assert "at least 6" in capsys.readouterr().err
    assert main(["sweep", "adding", "--lengths", "8", "--cells", "lstm,gru", "--activation", "relu", *small]) == 2
    assert "activation applies to the tanh cell only, and the sweep has no tanh runs" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- lost workers, Dask

class LostWorkerExecutor(InlineExecutor):
    """Runs inline, except that the job of seed 1 comes back as a broken process pool's."""

    def submit(self, fn, /, *args, **kwargs):
        if args[0]["seed"] == 1:
            future = concurrent.futures.Future()
            future.set_exception(concurrent.futures.process.BrokenProcessPool("a worker died"))
            return future
        return super().submit(fn, *args, **kwargs)


def test_a_lost_worker_is_a_failed_run_kept_out_of_the_summary(tmp_path):
    specs = grid(BASE, [8], ["tanh"], 3)
    results = run_sweep(specs, executor=LostWorkerExecutor())
    assert [r["stopped"] == "failed" for r in results] == [False, True, False]
    lost = results[1]
    assert lost["solved"] is None and "worker lost: BrokenProcessPool" in lost["error"] and lost["seed"] == 1
    write_sweep(tmp_path, {**BASE.to_dict()}, results, chart=False)
    record = json.loads((tmp_path / "sweep.json").read_text())
    assert len(record["runs"]) == 3 and record["failed"] == 1
    assert record["summary"][0]["runs"] == 2
    assert record["summary"][0]["mean"] == pytest.approx((results[0]["solved"] + results[2]["solved"]) / 2)


def _closed_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SMALL_SWEEP = ["sweep", "latch", "--lengths", "4", "--cells", "tanh", "--seeds", "2", "--hidden", "3", "--steps", "2",
               "--eval-every", "1", "--eval-size", "8", "--backend", "numpy"]


def test_an_unreachable_scheduler_is_one_line_and_exit_2_and_keeps_the_folder(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    import time
    import rnnvanish.tasks.cluster as cluster
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1.0)
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.json").write_text('{"runs": ["an earlier sweep"]}')
    start = time.perf_counter()
    code, printed, err = cli(capsys, *SMALL_SWEEP, "--out", out, "--overwrite",
                             "--scheduler", f"tcp://127.0.0.1:{_closed_port()}")
    assert code == 2 and time.perf_counter() - start < 20
    assert err.count("\n") == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:" in err and "within 1 s" in err
    assert [p.name for p in out.iterdir()] == ["sweep.json"] and "an earlier sweep" in (out / "sweep.json").read_text()
    code, _, err = cli(capsys, *SMALL_SWEEP, "--out", tmp_path / "other", "--scheduler", "nonsense://x")
    assert code == 2 and err.count("\n") == 1 and "not a scheduler address" in err
    assert not (tmp_path / "other").exists()


def test_scheduler_without_dask_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "distributed", None)          # import distributed -> ImportError
    code, _, err = cli(capsys, *SMALL_SWEEP, "--out", tmp_path / "s", "--scheduler", "tcp://127.0.0.1:8786")
    assert code == 2 and err.count("\n") == 1 and 'pip install "rnnvanish[dask]"' in err
    assert not (tmp_path / "s").exists()


@pytest.fixture(scope="module")
def local_cluster():
    """Two worker processes of one thread each (the machine has two cores)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
        yield cluster


def _untimed_row(row):
    return {k: v for k, v in row.items() if k != "mean_elapsed"}


def test_a_dask_cluster_gives_the_results_of_the_inline_executor(local_cluster, tmp_path, capsys):
    from rnnvanish.tasks.cluster import dask_executor
    specs = grid(BASE, [8], ["tanh", "lstm"], 2)                    # 2 cells x 1 length x 2 seeds
    inline = run_sweep(specs, executor=InlineExecutor())
    with dask_executor(local_cluster.scheduler_address) as (executor, slots):
        assert slots == 2
        on_cluster = run_sweep(specs, executor=executor)
    assert [_untimed(r) for r in on_cluster] == [_untimed(r) for r in inline]

    out = tmp_path / "sweep"                                        # the command: one sweep.json, here
    code, printed, err = cli(capsys, *SMALL_SWEEP, "--out", out, "--scheduler", local_cluster.scheduler_address)
    assert code == 0, err
    assert "on the Dask cluster at tcp://127.0.0.1:" in printed and "[2/2]" in printed
    record = json.loads((out / "sweep.json").read_text())
    assert record["settings"]["scheduler"] == local_cluster.scheduler_address and record["failed"] == 0
    assert (out / "sweep.png").exists()
    assert cli(capsys, *SMALL_SWEEP, "--out", tmp_path / "inline", "--workers", "1")[0] == 0
    inline = json.loads((tmp_path / "inline" / "sweep.json").read_text())
    assert [_untimed(r) for r in record["runs"]] == [_untimed(r) for r in inline["runs"]]
    assert [_untimed_row(r) for r in record["summary"]] == [_untimed_row(r) for r in inline["summary"]]


def test_a_worker_killed_mid_run_hands_the_run_to_another(local_cluster):
    """The scheduler reschedules the job of a dead worker (allowed-failures, 3 by default):
    the run still gives the result it gives inline."""
    import os
    import signal
    import time
    from distributed import Client
    from rnnvanish.tasks.cluster import dask_executor
    spec = {**grid(BASE, [8], ["tanh"], 1)[0], "steps": 1500, "eval_every": 500}      # about 1.5 s
    with Client(local_cluster.scheduler_address, set_as_default=False) as watcher, \
            dask_executor(local_cluster.scheduler_address) as (executor, _):
        future = executor.submit(run_one, spec)
        deadline = time.monotonic() + 30
        while not any(watcher.processing().values()):
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        address = next(w for w, keys in watcher.processing().items() if keys)
        pid = watcher.run(os.getpid, workers=[address])[address]
        os.kill(pid, signal.SIGKILL)
        result = future.result(timeout=120)
    assert _untimed(result) == _untimed(run_one(spec))


def test_a_killed_dask_job_is_a_failed_run():
    """Past the scheduler's allowed failures a job's future raises KilledWorker: a failed run."""
    import types
    KilledWorker = pytest.importorskip("distributed").KilledWorker

    class Killed(InlineExecutor):
        def submit(self, fn, /, *args, **kwargs):
            future = concurrent.futures.Future()
            future.set_exception(KilledWorker("run_one-key", types.SimpleNamespace(address="tcp://127.0.0.1:1"), 3))
            return future

    result, = run_sweep(grid(BASE, [8], ["gru"], 1), executor=Killed())
    assert result["stopped"] == "failed" and result["error"].startswith("worker lost: KilledWorker")
    assert "tcp://127.0.0.1:1" in result["error"] and result["solved"] is None
