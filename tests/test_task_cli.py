"""`rnnvanish task`: the run folder on a tiny setting, its contents, and one-line errors for bad input."""
import csv
import json

import numpy as np
import pytest

from rnnvanish.cli import main
from rnnvanish.tasks import make_task
from rnnvanish.tasks.model import TaskModel
from rnnvanish.tasks.objective import TaskConfig, build, evaluate, format_duration, make_trainer, train_task
from rnnvanish.training.checkpoint import load_checkpoint as load_ckpt
from rnnvanish.training.runfolder import read_metrics


def load_checkpoint(path):
    """(params, optimizer state, step, saved settings) of a run's checkpoint."""
    ckpt = load_ckpt(path)
    return ckpt.params, ckpt.optimizer_state, ckpt.step, {k: v for k, v in ckpt.config.items()
                                                            if k in TaskConfig.names()}

TINY = ["--hidden", "4", "--batch", "4", "--steps", "6", "--eval-every", "3", "--eval-size", "20",
        "--backend", "numpy", "--no-trace"]


def test_task_command_writes_its_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["task", "adding", "--length", "8", "--cell", "gru", "--stop-at", "none", "--out", str(out), *TINY])
    assert code == 0
    written = {p.name for p in out.iterdir()}
    assert {"config.json", "metrics.csv", "checkpoint.npz", "result.json", "task.png"} <= written
    printed = capsys.readouterr().out
    assert "step 6 | loss" in printed and "baseline" in printed

    config = json.loads((out / "config.json").read_text())
    assert config["length"] == 8 and config["cell"] == "gru"
    assert config["task"]["baseline"] == pytest.approx(make_task("adding").baseline(8))

    metrics = read_metrics(out / "metrics.csv")
    assert metrics["step"].tolist() == [0, 3, 6]                 # before training, then every 3 steps
    assert np.isnan(metrics["train_loss"][0]) and np.all(np.isfinite(metrics["train_loss"][1:]))
    assert np.all(np.diff(metrics["elapsed"]) > 0)
    with open(out / "metrics.csv", newline="") as f:
        assert len(list(csv.reader(f))) == 4
    assert "best.npz" in written

    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == 6 and result["stopped"] == "steps"
    assert result["solved"] == metrics["eval_solved"][-1]

    # The checkpoint rebuilds a model that scores exactly what the last row says.
    params, optim, step, saved = load_checkpoint(out / "checkpoint.npz")
    assert step == 6 and int(optim["step"]) == 6
    task, model, _, heldout = build(TaskConfig.from_dict(saved))
    model.set_params(params)
    scores = evaluate(model, heldout)
    assert scores["loss"] == pytest.approx(metrics["eval_loss"][-1], rel=1e-12)
    # every score the task reports has its column (the adding task: mean_abs_error)
    assert scores["mean_abs_error"] == pytest.approx(metrics["eval_mean_abs_error"][-1], rel=1e-12)


@pytest.mark.parametrize("cell, layers, keys", [("lstm", 2, ("W_hh", "W_hh_l1")), ("indrnn", 2, ("u", "u_l1")),
                                               ("exprnn", 1, ("A",)), ("lru", 1, ("nu_log", "theta_log")),
                                               ("minlstm", 2, ())])
def test_recurrent_lr_moves_the_recurrent_parameters_alone_at_its_factor(cell, layers, keys):
    """One SGD step from the same weights and batch: the recurrent parameters move by the factor
    times their plain step, every other parameter by the same bits."""
    def one_step(factor):
        config = TaskConfig(task="adding", length=8, cell=cell, hidden=4, layers=layers, batch=4, steps=1,
                            optimizer="sgd", lr=0.01, recurrent_lr=factor, eval_every=1, eval_size=10, stop_at=None,
                            clip_norm=None, divergence=None, dtype="float64", backend="numpy")
        trainer = make_trainer(config)
        before = {k: p.copy() for k, p in trainer.model.params.items()}
        trainer.run()
        return trainer.model, {k: p - before[k] for k, p in trainer.model.params.items()}
    model, plain = one_step(1.0)
    assert model.recurrent_keys == keys
    if not keys:
        return
    _, scaled = one_step(0.25)
    for k in plain:
        if k in keys:
            np.testing.assert_allclose(scaled[k], 0.25 * plain[k], rtol=1e-9, atol=1e-15, err_msg=k)
            assert np.abs(plain[k]).max() > 0, k
        else:
            assert np.array_equal(scaled[k], plain[k]), k


def test_the_training_loop_is_deterministic():
    config = TaskConfig(task="latch", length=6, cell="tanh", hidden=3, batch=4, steps=4, eval_every=2,
                        eval_size=10, stop_at=None, backend="numpy")
    a, b = train_task(config), train_task(config)
    assert a["loss"] == b["loss"] and a["solved"] == b["solved"]


def test_stops_at_the_first_evaluation_that_meets_the_bar(tmp_path):
    """Run once without a bar; a second run with the best held-out score as its bar must stop at
    the first evaluation that reached it (same seed, so the same trajectory)."""
    config = TaskConfig(task="adding", length=8, cell="lstm", hidden=4, batch=8, steps=12, eval_every=2,
                        eval_size=100, stop_at=None, lr=0.02, backend="numpy")
    train_task(config, tmp_path / "free")
    metrics = read_metrics(tmp_path / "free" / "metrics.csv")
    bar = metrics["eval_solved"].max()
    assert bar > 0
    first = int(metrics["step"][np.argmax(metrics["eval_solved"] >= bar)])
    result = train_task(TaskConfig(**{**config.to_dict(), "stop_at": bar}))
    assert result["stopped"] == "solved" and result["steps"] == first == result["reached_step"]
    assert result["solved"] == bar


def test_time_budget_stops_training():
    config = TaskConfig(task="adding", length=8, cell="lstm", hidden=3, batch=2, steps=10**6, eval_every=10**6,
                        eval_size=5, stop_at=None, max_time=0.3, backend="numpy")
    result = train_task(config)
    assert result["stopped"] == "time" and 0 < result["steps"] < 10**6
    assert result["elapsed"] >= 0.3


@pytest.mark.parametrize("argv, message", [
    (["task", "nosuch"], "unknown task 'nosuch'"),
    (["task", "adding", "--length", "3"], "at least 6"),
    (["task", "adding", "--cell", "lstm", "--activation", "relu"], "activation applies to the tanh cell only"),
    (["task", "adding", "--cell", "gru", "--forget-bias", "2"], "forget-bias applies to the lstm cell only"),
    (["task", "adding", "--cell", "tanh", "--reset-before"], "reset-before applies to the gru cell only"),
    (["task", "adding", "--cell", "mingru", "--recurrent-lr", "0.1"], "the minGRU's gates read the input only"),
])
def test_bad_settings_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*argv, "--out", str(out), "--backend", "numpy"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1
    assert captured.out == "" and not out.exists()                  # nothing printed, nothing written


@pytest.mark.parametrize("flag", [["--lr", "-1"], ["--hidden", "0"], ["--stop-at", "150%"], ["--clip-norm", "x"],
                                  ["--max-time", "soon"], ["--cell", "rnn"], ["--optimizer", "adamw"],
                                  ["--init-hh", "nosuch"], ["--divergence", "0.5"],
                                  ["--recurrent-lr", "0"]])
def test_bad_flag_values_exit_2(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["task", "adding", *flag])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnvanish task: error:") and err.count("\n") == 1


def test_an_occupied_folder_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["task", "adding", "--length", "8", "--out", str(out), *TINY]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["task", "adding", "--length", "8", "--out", str(out), "--overwrite", *TINY]) == 0
    assert (out / "notes.txt").read_text() == "mine"                # only the run's own files are replaced


def test_flag_parsers():
    from rnnvanish.commands.task import duration, stop_fraction
    assert duration("90") == 90 and duration("10m") == 600 and duration("1.5h") == 5400
    assert stop_fraction("95%") == pytest.approx(0.95) and stop_fraction("0.5") == 0.5
    assert stop_fraction("none") == "none"                           # switched off, unlike not given
    assert [format_duration(s) for s in (4.4, 130, 3720)] == ["4s", "2m10s", "1h02m"]


def test_checkpoint_model_matches_a_fresh_one_before_training(tmp_path):
    """The readout is built from the task: a model from the saved config has the saved shapes."""
    config = TaskConfig(task="copy", length=4, cell="lstm", hidden=5, batch=2, steps=1, eval_every=1,
                        eval_size=4, stop_at=None, backend="numpy", task_options={"n_data": 2, "n_categories": 3})
    result = train_task(config, tmp_path / "run")
    metrics = read_metrics(tmp_path / "run" / "metrics.csv")
    assert metrics["eval_recall_accuracy"][-1] == result["scores"]["recall_accuracy"]
    params, _, _, saved = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    model = TaskModel(make_task("copy", **saved["task_options"]), "lstm", 5, backend="numpy")
    assert {k: v.shape for k, v in params.items()} == {k: v.shape for k, v in model.params.items()}


def test_traces_at_start_and_end_are_the_models_lag_profiles(tmp_path):
    """traces/start and traces/end equal traces taken directly of the initial and the saved model."""
    import importlib
    tracer = importlib.import_module("rnnvanish.tracer.trace")
    from rnnvanish.tasks.traces import equal_length_inputs

    out = tmp_path / "run"
    tiny = [a for a in TINY if a != "--no-trace"]
    assert main(["task", "temporal_order", "--length", "10", "--cell", "lstm", "--out", str(out), *tiny]) == 0
    assert {"start.npz", "end.npz", "lag_profiles.png"} <= {p.name for p in (out / "traces").iterdir()}
    start, end = (tracer.Trace.load(out / "traces" / f"{w}.npz") for w in ("start", "end"))

    params, _, _, saved = load_checkpoint(out / "checkpoint.npz")
    config = TaskConfig.from_dict(saved)
    task, model, _, _ = build(config)
    inputs = equal_length_inputs(task, 10, start.B)
    assert inputs.shape == (10, start.B)
    np.testing.assert_allclose(start.grad_h, tracer.trace(model, inputs, jacobians=False).grad_h, rtol=1e-12)
    model.set_params(params)
    np.testing.assert_allclose(end.grad_h, tracer.trace(model, inputs, jacobians=False).grad_h, rtol=1e-12)
    assert not np.allclose(start.grad_h, end.grad_h)                # training changed the flow


def test_equal_length_inputs_switch_jitter_off():
    from rnnvanish.tasks.traces import equal_length_inputs
    x = equal_length_inputs(make_task("adding"), 20, 50)
    assert x.shape == (20, 50, 2) and np.all(x[-1, :, 1] == -1.0)  # every sequence ends on the last row


def test_ctrl_c_stops_training_but_saves_the_run(tmp_path, monkeypatch):
    """Ctrl-C in the middle of training stops after that step and saves a checkpoint to resume from."""
    import os
    import signal

    from rnnvanish.tasks.objective import TaskObjective

    config = TaskConfig(task="adding", length=8, cell="tanh", hidden=3, batch=2, steps=50, eval_every=5,
                        eval_size=8, stop_at=None, backend="numpy")
    real, calls = TaskObjective.next_batch, {"n": 0}

    def interrupting(self):
        calls["n"] += 1
        if calls["n"] == 7:
            os.kill(os.getpid(), signal.SIGINT)                    # what Ctrl-C sends
        return real(self)

    monkeypatch.setattr(TaskObjective, "next_batch", interrupting)
    result = train_task(config, tmp_path / "run")
    assert result["stopped"] == "interrupted" and result["steps"] == 7
    assert read_metrics(tmp_path / "run" / "metrics.csv")["step"].tolist() == [0, 5]
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz")[2] == 7
