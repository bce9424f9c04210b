"""Checkpoints: exact round trips, clear errors for bad files, and resuming that reproduces an
uninterrupted run bit for bit (after a clean stop, Ctrl-C, or kill -9 of the process).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnnvanish.training import runfolder as rf
from rnnvanish.training.checkpoint import (find_checkpoint, load_checkpoint, model_from_checkpoint,
                                  save_checkpoint)
from conftest import TEXT, cli, make_lm_trainer
from rnnvanish.data import Vocab, split_train_val
from rnnvanish.errors import RnnvanishError
from rnnvanish.model import LanguageModel
from rnnvanish.training.engine import TrainHooks
from rnnvanish.training.language import EVAL_COLUMNS
from rnnvanish.training.runfolder import columns_around

REPO = Path(__file__).resolve().parent.parent
COLUMNS = columns_around("tokens", EVAL_COLUMNS)
TIMELESS = [c for c in COLUMNS if c not in rf.TIME_COLUMNS]
SMALL = ["--hidden", "8", "--window", "5", "--batch", "3", "--log-every", "4", "--eval-every", "8",
         "--sample-every", "16", "--sample-length", "12"]


def make_trainer(**changes):
    return make_lm_trainer(TEXT, **{"window": 5, "log_every": 4, "eval_every": 8, "sample_every": 16,
                                    "sample_length": 12, **changes})


class Keep(TrainHooks):
    """Keeps the last checkpoint and the samples a run hands out."""

    def __init__(self):
        self.checkpoint, self.samples = None, []

    def on_sample(self, trainer, step, text):
        self.samples.append((step, text))

    def on_checkpoint(self, trainer, checkpoint, best):
        self.checkpoint = checkpoint


def assert_same_bits(a, b, name):
    """Bitwise equality (NaN equal to NaN) with the first differing entries on failure."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{name}: shape {a.shape} != {b.shape}"
    differ = a.view(np.uint64) != b.view(np.uint64)
    if differ.any():
        idx = np.argwhere(differ)[:5]
        raise AssertionError(f"{name}: {int(differ.sum())} entries differ, first at {idx.tolist()}: "
                             f"{[(a[tuple(i)], b[tuple(i)]) for i in idx]}; largest difference "
                             f"{np.nanmax(np.abs(a - b)):.3e}")


def timeless(metrics):
    return np.stack([metrics[c] for c in TIMELESS], axis=1)


# ----------------------------------------------------------------------------------------------
# The file
# ----------------------------------------------------------------------------------------------

def test_round_trip_is_exact(tmp_path):
    t = make_trainer()
    t.run(Keep(), should_stop=lambda: t.step >= 10)
    ckpt = t.checkpoint("test")
    path = save_checkpoint(tmp_path / "c.npz", ckpt)
    back = load_checkpoint(path)
    assert back.step == 10 and back.meta["reason"] == "test"
    assert back.meta["data"] == t.objective.stream.state_dict() and back.vocab == t.objective.vocab
    assert set(back.params) == set(t.model.params)
    for k, p in t.model.params.items():
        assert_same_bits(back.params[k], p, k)
    for k, v in t.optimizer.state_dict().items():
        assert np.array_equal(back.optimizer_state[k], v), k
    for got, want in zip(back.state, t.state):
        assert_same_bits(got, want, "carried state")
    assert_same_bits(back.metrics, rf.metrics_table(t.rows, COLUMNS), "metrics")
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"], "temporary file left behind"


def test_model_from_checkpoint_rebuilds_the_same_function(tmp_path):
    t = make_trainer(cell="tanh", activation="sigmoid")
    t.run(Keep(), should_stop=lambda: t.step >= 3)
    ckpt = t.checkpoint()
    ckpt.meta["config"] = t.config_dict()
    save_checkpoint(tmp_path / "c.npz", ckpt)
    model, vocab = model_from_checkpoint(load_checkpoint(tmp_path / "c.npz"), backend=t.model.backend)
    ids = vocab.encode("a stitch in time")[:, None]
    assert model.loss(ids[:-1], ids[1:])[0] == t.model.loss(ids[:-1], ids[1:])[0]
    assert model.cell.activation == "sigmoid"


def _bad_files(tmp_path):
    t = make_trainer()
    good = save_checkpoint(tmp_path / "good.npz", t.checkpoint())
    raw = good.read_bytes()
    files = {"garbage": b"this is not a zip file at all", "empty": b"", "truncated": raw[:len(raw) // 2]}
    for name, data in files.items():
        (tmp_path / f"{name}.npz").write_bytes(data)
    np.savez(tmp_path / "nometa.npz", x=np.zeros(3))
    for name, change in (("foreign", {"format": "other"}), ("version", {"version": 99})):
        with np.load(good) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["meta"] = np.array(json.dumps({**json.loads(str(arrays["meta"])), **change}))
        np.savez(tmp_path / f"{name}.npz", **arrays)
    return ["garbage", "empty", "truncated", "nometa", "foreign", "version"]


def test_bad_files_raise_one_clear_error(tmp_path):
    for name in _bad_files(tmp_path):
        with pytest.raises(RnnvanishError) as info:
            load_checkpoint(tmp_path / f"{name}.npz")
        assert str(tmp_path / f"{name}.npz") in str(info.value), name
        assert "\n" not in str(info.value)
    with pytest.raises(RnnvanishError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.npz")


def test_mismatched_parameters_are_refused(tmp_path):
    t = make_trainer()
    ckpt = t.checkpoint()
    ckpt.meta["config"] = t.config_dict()
    ckpt.params["W_hh"] = np.zeros((3, 3))
    save_checkpoint(tmp_path / "c.npz", ckpt)
    with pytest.raises(RnnvanishError, match="W_hh"):
        model_from_checkpoint(load_checkpoint(tmp_path / "c.npz"))
    ckpt.params = {k: v for k, v in t.model.params.items()}
    ckpt.meta["vocab"] = Vocab.build("xyz").to_dict()
    save_checkpoint(tmp_path / "d.npz", ckpt)
    with pytest.raises(RnnvanishError, match="vocabulary"):
        model_from_checkpoint(load_checkpoint(tmp_path / "d.npz"))


def test_find_checkpoint_prefers_best_in_a_run_folder(tmp_path):
    (tmp_path / rf.CHECKPOINT).write_bytes(b"")
    assert find_checkpoint(tmp_path) == tmp_path / rf.CHECKPOINT
    (tmp_path / rf.BEST).write_bytes(b"")
    assert find_checkpoint(tmp_path) == tmp_path / rf.BEST
    assert find_checkpoint(tmp_path, prefer_best=False) == tmp_path / rf.CHECKPOINT
    with pytest.raises(RnnvanishError):
        find_checkpoint(tmp_path / "nothing")


# ----------------------------------------------------------------------------------------------
# Resuming in the library: stop anywhere, continue, get the same numbers
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stop_at", [8, 11])      # at a checkpoint, and mid-interval (a Ctrl-C)
def test_restore_continues_bit_for_bit(stop_at):
    whole = make_trainer(steps=24)
    keep_whole = Keep()
    whole.run(keep_whole)

    first = make_trainer(steps=24)
    keep = Keep()
    assert first.run(keep, should_stop=lambda: first.step >= stop_at) == "interrupted"
    second = make_trainer(steps=24)
    second.restore(keep.checkpoint)
    keep_second = Keep()
    assert second.run(keep_second) == "steps"

    assert_same_bits(rf.metrics_table(second.rows, COLUMNS)[:, [COLUMNS.index(c) for c in TIMELESS]],
                     rf.metrics_table(whole.rows, COLUMNS)[:, [COLUMNS.index(c) for c in TIMELESS]], "metrics")
    for k in whole.model.params:
        assert_same_bits(second.model.params[k], whole.model.params[k], k)
    assert keep.samples + keep_second.samples == keep_whole.samples


# ----------------------------------------------------------------------------------------------
# Resuming from the command line
# ----------------------------------------------------------------------------------------------

def snapshot(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_resume_after_a_finished_budget_matches_one_long_run(capsys, corpus, tmp_path):
    assert cli(capsys, "train", corpus, *SMALL, "--steps", 32, "--quiet", "--out", tmp_path / "whole")[0] == 0
    assert cli(capsys, "train", corpus, *SMALL, "--steps", 16, "--quiet", "--out", tmp_path / "split")[0] == 0
    code, out, err = cli(capsys, "train", "--resume", tmp_path / "split", "--steps", 32, "--no-progress")
    assert code == 0, err
    assert "resuming" in out and "from step 16" in out
    whole, split = rf.read_metrics(tmp_path / "whole" / rf.METRICS), rf.read_metrics(tmp_path / "split" / rf.METRICS)
    assert_same_bits(timeless(split), timeless(whole), "metrics")
    assert (tmp_path / "split" / rf.SAMPLES).read_text() == (tmp_path / "whole" / rf.SAMPLES).read_text()
    config = json.loads((tmp_path / "split" / rf.CONFIG).read_text())
    assert [s["at_step"] for s in config["sessions"]] == [0, 16] and config["sessions"][1]["changed"] == {"steps": 32}


def _spawn(args, cwd, command="train"):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "rnnvanish", command, *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_checkpoint(proc, path, timeout=60.0):
    """Poll until `path` holds a checkpoint; the process must still be running then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and proc.poll() is None:
            return
        if proc.poll() is not None:
            pytest.fail(f"training ended before it could be stopped: {proc.stderr.read().decode()}")
        time.sleep(0.01)
    proc.kill()
    pytest.fail("no checkpoint appeared")


@pytest.mark.parametrize("how", ["kill -9", "Ctrl-C"])
def test_a_killed_or_interrupted_run_resumes_to_the_same_metrics(capsys, corpus, tmp_path, how):
    run = tmp_path / "run"
    # A first process fills the kernels' on-disk cache, so that every process below runs the same
    # compiled code (one compiled fresh next to other specialisations may round differently in
    # the last bit).
    warm = _spawn([corpus, *SMALL, "--steps", 1, "--quiet", "--out", tmp_path / "warm"], cwd=tmp_path)
    assert warm.wait(timeout=300) == 0, warm.stderr.read().decode()
    proc = _spawn([corpus, *SMALL, "--steps", 100000, "--quiet", "--out", run], cwd=tmp_path)
    _wait_for_checkpoint(proc, run / rf.CHECKPOINT)
    time.sleep(0.2)                               # let it write rows past the checkpoint
    if how == "kill -9":
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    else:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130, proc.stderr.read().decode()
    stopped_at = load_checkpoint(run / rf.CHECKPOINT).step
    assert stopped_at < 400, "the run went too far to compare cheaply"
    steps = (stopped_at // 16 + 2) * 16           # past the stop, on a sample/eval boundary
    # Resume and the uninterrupted run in fresh processes too, as a user would: a process that has
    # already compiled other specialisations of the kernels (as this test process has) may pick
    # another of them and round differently in the last bit.
    for args in (["--resume", run, "--steps", steps, "--quiet"],
                 [corpus, *SMALL, "--steps", steps, "--quiet", "--out", tmp_path / "whole"]):
        done = _spawn(args, cwd=tmp_path)
        assert done.wait(timeout=300) == 0, done.stderr.read().decode()
    resumed, whole = rf.read_metrics(run / rf.METRICS), rf.read_metrics(tmp_path / "whole" / rf.METRICS)
    assert_same_bits(timeless(resumed), timeless(whole), "metrics")
    assert (run / rf.SAMPLES).read_text() == (tmp_path / "whole" / rf.SAMPLES).read_text()
    a, b = load_checkpoint(run / rf.CHECKPOINT), load_checkpoint(tmp_path / "whole" / rf.CHECKPOINT)
    for k in a.params:
        assert_same_bits(a.params[k], b.params[k], k)


def test_bad_resumes_are_refused_and_touch_nothing(capsys, corpus, tmp_path):
    run = tmp_path / "run"
    assert cli(capsys, "train", corpus, *SMALL, "--steps", 8, "--quiet", "--out", run)[0] == 0
    other = tmp_path / "other"
    assert cli(capsys, "train", corpus, *SMALL, "--hidden", 5, "--steps", 8, "--quiet", "--out", other)[0] == 0
    good = (run / rf.CHECKPOINT).read_bytes()
    cases = {
        "budget reached": ([], "already reached"),
        "changed model": (["--steps", 20, "--hidden", 9], "--hidden cannot change"),
        "changed corpus file": (["--steps", 20], "changed"),
        "truncated checkpoint": (["--steps", 20], "corrupt or truncated"),
        "checkpoint of another model": (["--steps", 20], "does not match"),
        "no such run": (["--steps", 20], "no run folder"),
    }
    for case, (extra, words) in cases.items():
        target = run
        if case == "changed corpus file":
            corpus.write_text(TEXT.replace("nine", "ten!"))
        if case == "truncated checkpoint":
            corpus.write_text(TEXT)
            (run / rf.CHECKPOINT).write_bytes(good[:len(good) // 3])
        if case == "checkpoint of another model":
            (run / rf.CHECKPOINT).write_bytes((other / rf.CHECKPOINT).read_bytes())
        if case == "no such run":
            target = tmp_path / "nothing"
        before = snapshot(tmp_path)
        code, _, err = cli(capsys, "train", "--resume", target, *extra)
        assert code == 2, f"{case}: {err}"
        assert words in err and len(err.strip().splitlines()) == 1, f"{case}: {err}"
        assert snapshot(tmp_path) == before, case


TASK_SMALL = ["--length", 12, "--hidden", 6, "--batch", 4, "--eval-every", 8, "--eval-size", 30, "--stop-at", "none",
              "--no-trace", "--quiet"]
TRAINING_COLUMNS = ["step", "sequences", "train_loss", "eval_loss", "eval_solved", "eval_mean_abs_error", "grad_norm",
                    "grad_norm_clipped", "clipped_frac", "lr", "skipped"]


def test_a_killed_task_run_resumes_to_the_same_metrics(tmp_path):
    """kill -9 in the middle of a task run, then --resume: the metrics' training columns and the
    weights equal those of a run that was never stopped, bit for bit (the sequence generator's
    state travels in the checkpoint)."""
    run = tmp_path / "run"
    warm = _spawn(["adding", *TASK_SMALL, "--steps", 1, "--out", tmp_path / "warm"], cwd=tmp_path, command="task")
    assert warm.wait(timeout=300) == 0, warm.stderr.read().decode()
    proc = _spawn(["adding", *TASK_SMALL, "--steps", 100000, "--out", run], cwd=tmp_path, command="task")
    _wait_for_checkpoint(proc, run / rf.CHECKPOINT)
    time.sleep(0.2)                               # let it write rows past the checkpoint
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    stopped_at = load_checkpoint(run / rf.CHECKPOINT).step
    assert stopped_at < 2000, "the run went too far to compare cheaply"
    steps = (stopped_at // 8 + 2) * 8 + 4         # past the stop, not on an evaluation
    for args in (["--resume", run, "--steps", steps, "--quiet"],
                 ["adding", *TASK_SMALL, "--steps", steps, "--out", tmp_path / "whole"]):
        done = _spawn(args, cwd=tmp_path, command="task")
        assert done.wait(timeout=300) == 0, done.stderr.read().decode()
    resumed, whole = rf.read_metrics(run / rf.METRICS), rf.read_metrics(tmp_path / "whole" / rf.METRICS)
    assert resumed["step"][-1] == steps and resumed["step"].size == whole["step"].size
    for column in TRAINING_COLUMNS:
        assert_same_bits(resumed[column], whole[column], column)
    a, b = load_checkpoint(run / rf.CHECKPOINT), load_checkpoint(tmp_path / "whole" / rf.CHECKPOINT)
    for k in a.params:
        assert_same_bits(a.params[k], b.params[k], k)
    result = json.loads((run / rf.RESULT).read_text())
    assert result["steps"] == steps and result["loss"] == whole["eval_loss"][-1]


@pytest.mark.parametrize("command", ["train", "task"])
def test_a_killed_stack_with_dropout_and_zoneout_resumes_exactly(corpus, tmp_path, command):
    """Two layers, dropout and zoneout: the masks come from the run's generator, whose state the
    checkpoint keeps, so kill -9 and --resume still give the uninterrupted run's numbers."""
    depth = ["--layers", 2, "--dropout", 0.2, "--zoneout", 0.1]
    if command == "train":
        first, step, columns = [corpus, *SMALL, *depth, "--quiet"], 16, TIMELESS
    else:
        first, step, columns = ["adding", *TASK_SMALL, *depth], 8, TRAINING_COLUMNS
    warm = _spawn([*first, "--steps", 1, "--out", tmp_path / "warm"], cwd=tmp_path, command=command)
    assert warm.wait(timeout=300) == 0, warm.stderr.read().decode()
    run = tmp_path / "run"
    proc = _spawn([*first, "--steps", 100000, "--out", run], cwd=tmp_path, command=command)
    _wait_for_checkpoint(proc, run / rf.CHECKPOINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    steps = (load_checkpoint(run / rf.CHECKPOINT).step // step + 2) * step
    for args in (["--resume", run, "--steps", steps, "--quiet"], [*first, "--steps", steps, "--out", tmp_path / "whole"]):
        done = _spawn(args, cwd=tmp_path, command=command)
        assert done.wait(timeout=300) == 0, done.stderr.read().decode()
    resumed, whole = rf.read_metrics(run / rf.METRICS), rf.read_metrics(tmp_path / "whole" / rf.METRICS)
    assert resumed["step"][-1] == steps
    for column in columns:
        assert_same_bits(resumed[column], whole[column], column)
