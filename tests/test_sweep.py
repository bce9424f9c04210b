"""The sweep: grid, run_one, executors, summary against direct computation, files and chart."""
import concurrent.futures
import csv
import json
import pickle

import numpy as np
import pytest

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
