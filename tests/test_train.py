"""`rnnvanish train` and the Trainer: run folder contents, metrics against definitions, clipping,
non-finite handling, budgets, tracing hooks, and one-line errors that leave files untouched.

Tiny corpora and models; the CLI runs in-process through rnnvanish.cli.main. The kernels come from
$RNNVANISH_BACKEND (numba by default).
"""
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_close, make_lm_trainer
from rnnvanish.training import runfolder as rf
from rnnvanish.cli import main
from rnnvanish.data import TokenStream, Vocab, split_train_val
from rnnvanish.errors import NonFiniteError
from rnnvanish.model import LanguageModel
from rnnvanish.training.language import EVAL_COLUMNS
from rnnvanish.training.runfolder import columns_around
from rnnvanish.training.settings import LM_FORGET_BIAS, LM_INIT_B, LanguageConfig

TEXT = "the cat sat on the mat. a dog ran to the cat. " * 40
SMALL = ["--hidden", "8", "--window", "6", "--batch", "3", "--no-progress"]
COLUMNS = columns_around("tokens", EVAL_COLUMNS)
CHART = "training.png"
SHAKESPEARE = Path("/work/shared/data/tinyshakespeare.txt")


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def train(capsys, *argv):
    """(exit status, stdout, stderr) of `rnnvanish train ARGV`."""
    try:
        code = main(["train", *map(str, argv)])
    except SystemExit as exit_:                  # argparse rejects a flag value
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder):
    """Every file under `folder`: bytes and modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def make_trainer(text=TEXT, **changes):
    return make_lm_trainer(text, **changes)


# ----------------------------------------------------------------------------------------------
# The run folder
# ----------------------------------------------------------------------------------------------

def test_run_folder_contents_and_metrics_follow_their_definitions(capsys, corpus, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = train(capsys, corpus, *SMALL, "--steps", 12, "--eval-every", 6, "--log-every", 3,
                              "--sample-every", 6, "--sample-length", 20, "--out", out)
    assert code == 0, err
    for name in (rf.CONFIG, rf.METRICS, rf.CHECKPOINT, rf.BEST, rf.SAMPLES, CHART):
        assert (out / name).is_file(), f"{name} missing; folder has {sorted(p.name for p in out.iterdir())}"
    assert not list(out.glob(".*tmp*")), "temporary files left behind"

    config = json.loads((out / rf.CONFIG).read_text())
    for key in LanguageConfig.names():
        assert key in config, f"config.json lacks the setting {key}"
    assert config["hidden"] == 8 and config["window"] == 6 and config["steps"] == 12
    assert Vocab.from_dict(config["vocab"]) == Vocab.build(TEXT)
    assert config["corpus"]["chars"] == len(TEXT) and config["model"]["hidden_size"] == 8

    header = (out / rf.METRICS).read_text().splitlines()[0].split(",")
    assert tuple(header) == COLUMNS
    m = rf.read_metrics(out / rf.METRICS)
    assert m["step"].tolist() == [3, 6, 9, 12]
    assert m["tokens"].tolist() == [s * 6 * 3 for s in (3, 6, 9, 12)]
    evaluated = np.isfinite(m["val_loss"])
    assert evaluated.tolist() == [False, True, False, True]
    assert_close(m["val_bits"][evaluated], m["val_loss"][evaluated] / math.log(2), name="val_bits")
    assert_close(m["val_ppl"][evaluated], np.exp(m["val_loss"][evaluated]), name="val_ppl")
    assert (m["skipped"] == 0).all() and (m["lr"] == LanguageConfig().lr).all()
    assert np.all(np.diff(m["elapsed"]) >= 0) and np.all(m["tokens_per_s"] > 0)

    assert "step 6 | loss " in stdout and "bits/char" in stdout and "tok/s" in stdout
    assert "run folder" in stdout and str(out) in stdout
    samples = (out / rf.SAMPLES).read_text()
    assert samples.count("=== step ") == 2


def test_first_rows_equal_losses_computed_from_the_definition(tmp_path):
    """Row 1's train loss = the fresh model's loss on window 1 (streams b*L..), and the update is Adam's."""
    t = make_trainer(log_every=1, eval_every=1000, val_frac=0.1, clip_norm=None)
    text_ids = Vocab.build(TEXT).encode(TEXT)
    train_ids = text_ids[:len(text_ids) - round(len(text_ids) * 0.1)]
    B, T = 3, 6
    L = len(train_ids) // B
    x = np.stack([train_ids[b * L:b * L + T] for b in range(B)], axis=1)          # (T, B)
    y = np.stack([train_ids[b * L + 1:b * L + T + 1] for b in range(B)], axis=1)
    fresh = LanguageModel("lstm", len(t.objective.vocab), 8, seed=0, forget_bias=LM_FORGET_BIAS, init_b=LM_INIT_B)
    expected, grads, _, _ = fresh.loss_and_grads(x, y, None)
    rows = []

    class Rows:
        def on_step(self, *a): pass
        def on_sample(self, *a): pass
        def on_checkpoint(self, *a): pass
        def on_row(self, trainer, row, evaluated): rows.append(row)

    t.run(Rows(), should_stop=lambda: t.step >= 1)
    assert rows[0]["train_loss"] == expected, (rows[0]["train_loss"], expected)
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads.values()))
    assert_close(rows[0]["grad_norm"], norm, name="grad_norm")
    # Adam's first step moves every parameter with a nonzero gradient by lr * g / (|g| + eps)
    for k, p in t.model.params.items():
        step = fresh.params[k] - 2e-3 * grads[k] / (np.abs(grads[k]) + 1e-8)
        assert_close(p, step, rtol=1e-9, atol=1e-15, name=k)


def test_clip_norm_caps_what_the_optimiser_sees(tmp_path):
    t = make_trainer(clip_norm=1e-3, log_every=4, eval_every=4)
    rows = []
    hooks = types.SimpleNamespace(on_step=lambda *a: None, on_sample=lambda *a: None,
                                  on_checkpoint=lambda *a: None, on_row=lambda tr, r, e: rows.append(r))
    t.run(hooks, should_stop=lambda: t.step >= 8)
    assert [r["clipped_frac"] for r in rows] == [1.0, 1.0]
    assert all(r["grad_norm"] > 0.1 for r in rows)
    # each step's norm becomes c * N / (N + eps) with eps = 1e-6 (PyTorch's guard): c within eps / N
    assert_close([r["grad_norm_clipped"] for r in rows], [1e-3, 1e-3], rtol=1e-5, name="clipped norm")

    t = make_trainer(clip_norm=None, clip_value=None, log_every=4, eval_every=4)
    rows.clear()
    t.run(hooks, should_stop=lambda: t.step >= 4)
    assert rows[0]["clipped_frac"] == 0.0 and rows[0]["grad_norm_clipped"] == rows[0]["grad_norm"]


def test_cells_options_and_word_level(capsys, corpus, tmp_path):
    for i, extra in enumerate((["--cell", "tanh", "--activation", "relu", "--truncate", "3"],
                               ["--cell", "gru", "--reset-before", "--dtype", "float32"],
                               ["--level", "word", "--vocab-size", "6", "--optimizer", "sgd", "--lr", "0.5"])):
        out = tmp_path / f"run{i}"
        code, _, err = train(capsys, corpus, *SMALL, "--steps", 4, "--eval-every", 2, "--quiet", "--out", out, *extra)
        assert code == 0, err
        config = json.loads((out / rf.CONFIG).read_text())
        assert config["model"]["cell"] == extra[1] if extra[0] == "--cell" else True
    assert config["vocab"]["level"] == "word" and config["vocab"]["unk"] == "<unk>"
    assert len(config["vocab"]["tokens"]) == 6
    gru = json.loads((tmp_path / "run1" / rf.CONFIG).read_text())["model"]
    assert gru["reset_after"] is False and gru["dtype"] == "float32"
    assert json.loads((tmp_path / "run0" / rf.CONFIG).read_text())["truncate"] == 3


def test_default_corpus_default_folder_and_epochs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = train(capsys, *SMALL, "--steps", 2, "--eval-windows", 1, "--sample-length", 5)
    assert code == 0, err
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.endswith("-lstm")
    assert json.loads((runs[0] / rf.CONFIG).read_text())["corpus"]["source"] == "default"   # corpora/ beside the package

    text = "abcdefghij" * 10                     # 100 chars, no validation: 3 streams of 33
    (tmp_path / "c.txt").write_text(text)
    code, _, err = train(capsys, tmp_path / "c.txt", *SMALL, "--epochs", 2, "--val-frac", 0, "--quiet",
                         "--out", tmp_path / "ep")
    assert code == 0, err
    m = rf.read_metrics(tmp_path / "ep" / rf.METRICS)
    assert m["step"][-1] == 2 * TokenStream(np.arange(100), 3, 6).windows_per_epoch
    assert np.isnan(m["val_loss"]).all()


def test_max_time_stops_the_session(capsys, corpus, tmp_path):
    code, out, err = train(capsys, corpus, *SMALL, "--max-time", 0.3, "--eval-every", 10 ** 6, "--out", tmp_path / "r")
    assert code == 0, err
    assert "time budget" in out
    m = rf.read_metrics(tmp_path / "r" / rf.METRICS)
    assert np.isfinite(m["val_loss"][-1])       # the end of a budget always evaluates


# ----------------------------------------------------------------------------------------------
# Non-finite losses and gradients
# ----------------------------------------------------------------------------------------------

def test_absurd_learning_rate_stops_with_a_diagnosis_and_keeps_the_checkpoint(capsys, corpus, tmp_path):
    out = tmp_path / "r"
    code, _, err = train(capsys, corpus, "--hidden", 16, "--window", 8, "--batch", 4, "--cell", "tanh",
                         "--activation", "relu", "--lr", "1e6", "--clip-norm", "none", "--steps", 50,
                         "--eval-every", 1, "--divergence", "off", "--quiet", "--out", out)
    assert code == 3, err
    assert "non-finite" in err and "step" in err and "learning rate" in err.lower() and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "checkpoint" in err
    from rnnvanish.training.checkpoint import load_checkpoint
    ckpt = load_checkpoint(out / rf.CHECKPOINT)
    assert all(np.isfinite(p).all() for p in ckpt.params.values())
    assert f"(step {ckpt.step})" in err


def test_a_diverging_run_stops_within_a_few_steps_and_is_never_best(capsys, corpus, tmp_path):
    """A healthy run, resumed at learning rate 1e6 without clipping: the loss explodes long before it
    turns NaN. The guard stops the run at once, names the step, the losses, the norms and the
    learning rate; checkpoint.npz and best.npz stay those of the last healthy evaluation."""
    out = tmp_path / "r"
    assert train(capsys, corpus, *SMALL, "--steps", 8, "--eval-every", 4, "--quiet", "--out", out)[0] == 0
    before = snapshot(out)
    code, _, err = train(capsys, "--resume", out, "--lr", "1e6", "--clip-norm", "none", "--steps", 200,
                         "--eval-every", 1, "--quiet")
    assert code == 3, err
    assert "diverged at step" in err and "learning rate 1e+06" in err.lower() and "--divergence off" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    step = int(err.split("diverged at step ")[1].split(":")[0])
    assert 8 < step <= 32
    for name in (rf.CHECKPOINT, rf.BEST):
        assert before[out / name][0] == (out / name).read_bytes(), f"{name} was replaced by a diverged model"
    m = rf.read_metrics(out / rf.METRICS)
    assert np.nanmax(m["val_loss"]) < 2 * math.log(len(set(TEXT)))      # no diverged evaluation was kept

    # a fresh run at that rate stops at its first evaluation, before anything is saved as best
    code, _, err = train(capsys, corpus, *SMALL, "--optimizer", "sgd", "--lr", "1e6", "--clip-norm", "none",
                         "--steps", 50, "--eval-every", 1, "--quiet", "--out", tmp_path / "fresh")
    assert code == 3 and "diverged at step 1" in err and not (tmp_path / "fresh" / rf.BEST).exists()
    # with the guard off it runs to the end and keeps a useless model as its best: what the guard prevents
    code, _, err = train(capsys, corpus, *SMALL, "--optimizer", "sgd", "--lr", "1e6", "--clip-norm", "none",
                         "--steps", 50, "--eval-every", 1, "--divergence", "off", "--quiet", "--out", tmp_path / "o")
    assert code == 0 and err == ""
    assert rf.read_metrics(tmp_path / "o" / rf.METRICS)["val_loss"].min() > 100 * math.log(len(set(TEXT)))


def test_the_divergence_limit_is_a_multiple_of_the_untrained_loss():
    t = make_trainer(divergence=2.0)
    assert t.health.reference_loss == pytest.approx(math.log(len(t.objective.vocab)))
    t.health.record(1, 1.9 * t.health.reference_loss, 1.0, 1.0, 0.1)      # below 2x: carries on
    from rnnvanish.errors import DivergenceError
    with pytest.raises(DivergenceError, match="diverged at step 2"):
        t.health.record(2, 30 * t.health.reference_loss, 1.0, 1.0, 0.1)    # smoothed: 0.9*1.9 + 0.1*30 = 4.7x


def _inject_nan(trainer, at_step, name="W_hh"):
    """Make the gradient of `name` NaN on the window that becomes step `at_step`."""
    real = trainer.model.loss_and_grads

    def poisoned(*args, **kw):
        loss, grads, state, info = real(*args, **kw)
        if trainer.step + 1 == at_step:
            grads[name][0, 0] = np.nan
        return loss, grads, state, info
    trainer.model.loss_and_grads = poisoned


def test_injected_nan_raises_naming_the_gradient():
    t = make_trainer(eval_every=100)
    _inject_nan(t, 3)
    with pytest.raises(NonFiniteError) as info:
        t.run(should_stop=lambda: t.step >= 5)
    assert "step 3" in str(info.value) and "dW_hh" in str(info.value) and "step 2" in str(info.value)
    assert t.step == 2


def test_skip_policy_drops_the_step_and_counts_it():
    t = make_trainer(nonfinite="skip", log_every=2, eval_every=100)
    _inject_nan(t, 3)
    rows, before = [], {}
    hooks = types.SimpleNamespace(on_sample=lambda *a: None, on_checkpoint=lambda *a: None,
                                  on_row=lambda tr, r, e: rows.append(r),
                                  on_step=lambda tr, r: before.update({r.step: {k: p.copy() for k, p in
                                                                                 tr.model.params.items()}}))
    t.run(hooks, should_stop=lambda: t.step >= 4)
    assert [r["skipped"] for r in rows] == [0, 1]
    for k in before[2]:
        assert np.array_equal(before[2][k], before[3][k]), f"{k} changed on the skipped step"
    assert any(not np.array_equal(before[3][k], before[4][k]) for k in before[3]), "no update after the skip"


# ----------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing touched
# ----------------------------------------------------------------------------------------------

BAD = {
    "missing": (["{tmp}/nope.txt"], "does not exist"),
    "empty": (["{tmp}/empty.txt"], "empty"),
    "binary": (["{tmp}/binary.dat"], "binary"),
    "latin1": (["{tmp}/latin1.txt"], "UTF-8"),
    "too short": (["{tmp}/short.txt"], "too short"),
    "zero hidden": (["{corpus}", "--hidden", "0"], "--hidden"),
    "negative window": (["{corpus}", "--window", "-3"], "--window"),
    "negative clip": (["{corpus}", "--clip-norm", "-1"], "--clip-norm"),
    "negative clip value": (["{corpus}", "--clip-value", "-0.5"], "--clip-value"),
    "unknown cell": (["{corpus}", "--cell", "elman"], "--cell"),
    "unknown optimizer": (["{corpus}", "--optimizer", "lion"], "--optimizer"),
    "steps and epochs": (["{corpus}", "--steps", "3", "--epochs", "1"], "not both"),
    "schedule without length": (["{corpus}", "--lr-schedule", "cosine"], "--steps"),
    "bad init": (["{corpus}", "--init-hh", "wobbly"], "initialiser"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_and_touches_nothing(capsys, corpus, tmp_path, case):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.dat").write_bytes(bytes(range(256)) * 20)
    (tmp_path / "latin1.txt").write_bytes("caf\u00e9 cr\u00e8me br\u00fbl\u00e9e ".encode("latin-1") * 20)
    (tmp_path / "short.txt").write_text("abcdefg")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / rf.CONFIG).write_text('{"kept": true}')
    (existing / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    argv, words = BAD[case]
    argv = [a.format(tmp=tmp_path, corpus=corpus) for a in argv]
    code, out, err = train(capsys, *argv, *SMALL, "--max-time", 1, "--out", existing, "--overwrite")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert words in err, err
    assert snapshot(tmp_path) == before


def test_existing_run_folder_needs_resume_or_overwrite(capsys, corpus, tmp_path):
    out = tmp_path / "r"
    assert train(capsys, corpus, *SMALL, "--steps", 2, "--quiet", "--out", out)[0] == 0
    before = snapshot(out)
    code, _, err = train(capsys, corpus, *SMALL, "--steps", 2, "--out", out)
    assert code == 2 and "--resume" in err and "--overwrite" in err
    assert snapshot(out) == before
    (out / "notes.txt").write_text("mine")
    code, _, err = train(capsys, corpus, *SMALL, "--steps", 3, "--quiet", "--out", out, "--overwrite")
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"
    assert rf.read_metrics(out / rf.METRICS)["step"][-1] == 3


def test_unwritable_run_folder(capsys, corpus, tmp_path):
    before = snapshot(tmp_path)
    code, _, err = train(capsys, corpus, *SMALL, "--steps", 2, "--out", corpus / "run")
    assert code == 2 and "cannot write" in err and len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before


def test_help_groups_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--cell", "--activation", "--reset-before", "--forget-bias", "--hidden", "--window", "--truncate",
                 "--batch", "--optimizer", "--lr", "--lr-schedule", "--weight-decay", "--clip-value", "--clip-norm",
                 "--clip-mode", "--nonfinite", "--init-xh", "--init-hh", "--radius", "--dtype", "--backend", "--seed",
                 "--steps", "--epochs", "--max-time", "--val-frac", "--eval-every", "--eval-windows",
                 "--sample-every", "--sample-length", "--out", "--resume", "--overwrite", "--trace-every",
                 "--quiet", "--no-progress", "--level", "--vocab-size"):
        assert flag in text, f"{flag} missing from --help"
    for group in ("data:", "model:", "truncated BPTT:", "optimisation:", "logging:", "run folder:"):
        assert group in text


# ----------------------------------------------------------------------------------------------
# Tracing during training
# ----------------------------------------------------------------------------------------------

def test_trace_every_calls_the_tracer_with_the_window_and_its_state(capsys, corpus, tmp_path, monkeypatch):
    calls = []

    def record_training_trace(model, inputs, state, step, folder):
        calls.append((inputs.shape, [s.shape for s in state], step, Path(folder)))
    monkeypatch.setitem(sys.modules, "rnnvanish.tracer", types.SimpleNamespace(record_training_trace=record_training_trace))
    out = tmp_path / "r"
    code, _, err = train(capsys, corpus, *SMALL, "--steps", 7, "--trace-every", 3, "--quiet", "--out", out)
    assert code == 0, err
    assert [c[2] for c in calls] == [0, 3, 6]
    assert all(c[0] == (6, 3) and c[1] == [(3, 8), (3, 8)] and c[3] == out / "traces" for c in calls)
    assert (out / "traces").is_dir()


def test_trace_every_with_the_real_tracer_writes_files(capsys, corpus, tmp_path):
    out = tmp_path / "r"
    code, _, err = train(capsys, corpus, *SMALL, "--steps", 4, "--trace-every", 2, "--quiet", "--out", out)
    assert code == 0, err
    assert len(list((out / "traces").iterdir())) >= 2


def test_training_chart_panels():
    from rnnvanish.plots.training import plot_training
    rows = [{"step": s, "train_loss": 3.0 / s, "val_bits": (2.0 / s if s % 2 == 0 else math.nan),
             "grad_norm": 10.0 / s, "grad_norm_clipped": min(10.0 / s, 1.0), "clipped_frac": float(s < 10),
             "lr": 1e-3, "skipped": int(s == 5)} for s in range(1, 21)]
    fig = plot_training(rows, clip_norm=1.0, title="t")
    loss_ax, norm_ax, clip_ax = fig.axes[:3]
    assert norm_ax.get_yscale() == "log"
    labels = [line.get_label() for line in norm_ax.get_lines()]
    assert "before clipping" in labels and "after clipping" in labels and any("skipped" in x for x in labels)
    train_line = loss_ax.get_lines()[0]
    assert_close(train_line.get_ydata(), [3.0 / s / math.log(2) for s in range(1, 21)], name="train bits")


@pytest.mark.skipif(not SHAKESPEARE.exists(), reason="tinyshakespeare.txt is not on this machine")
def test_trains_on_tinyshakespeare(capsys, tmp_path):
    code, _, err = train(capsys, SHAKESPEARE, "--hidden", "32", "--window", "16", "--batch", "8", "--steps", 30,
                         "--eval-every", 30, "--eval-windows", 5, "--lr", "0.01", "--quiet", "--out", tmp_path / "r")
    assert code == 0, err
    m = rf.read_metrics(tmp_path / "r" / rf.METRICS)
    assert m["val_loss"][-1] < math.log(65) - 0.5     # better than uniform over the 65 symbols


@pytest.mark.parametrize("command", ["train", "task"])
def test_a_run_written_to_a_file_has_log_lines_and_no_bar(corpus, tmp_path, command):
    """`rnnvanish train ... > log 2>&1`: stderr is not a terminal, so no progress bar is drawn;
    the file holds the header, one line per evaluation, the samples and the summary."""
    import subprocess
    import sys

    args = ([str(corpus), *SMALL[:-1], "--steps", "24", "--eval-every", "8", "--sample-every", "8"] if command == "train"
            else ["latch", "--length", "8", "--hidden", "4", "--steps", "24", "--eval-every", "8", "--eval-size", "20",
                  "--stop-at", "none", "--no-trace"])
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        code = subprocess.call([sys.executable, "-m", "rnnvanish", command, *args, "--out", str(tmp_path / "r")],
                               stdout=f, stderr=subprocess.STDOUT, cwd=tmp_path)
    text = log.read_bytes().decode("utf-8")               # bytes: read_text would turn \r into \n
    assert code == 0, text
    assert "\r" not in text and "\x1b[" not in text and "%|" not in text and "it/s" not in text
    lines = text.splitlines()
    assert lines[0].startswith("training in ")
    steps = [line.split(" | ")[0] for line in lines if line.startswith("step ")]
    assert steps == (["step 8", "step 16", "step 24"] if command == "train" else ["step 0", "step 8", "step 16", "step 24"])
    assert ("--- sample at step 8" in text) == (command == "train")
    assert "run folder" in text and "reached 24 steps" in text
    # --progress draws the bar even into a file
    with open(log, "w") as f:
        subprocess.call([sys.executable, "-m", "rnnvanish", command, *args, "--out", str(tmp_path / "p"), "--progress"],
                        stdout=f, stderr=subprocess.STDOUT, cwd=tmp_path)
    assert "\r" in log.read_bytes().decode("utf-8")


def test_the_language_models_lstm_starts_at_forget_bias_zero_unless_told():
    """train's LSTM takes LM_FORGET_BIAS (0, PyTorch's) where the cell alone takes 1.0."""
    from rnnvanish.cells import LSTM
    assert LM_FORGET_BIAS == 0.0 and LSTM(3, 4).forget_bias == 1.0
    H = 8
    t = make_lm_trainer(init_b="zeros")
    assert np.all(t.model.params["b_h"][H:2 * H] == 0.0)
    told = make_lm_trainer(forget_bias=2.0, init_b="zeros")
    assert np.all(told.model.params["b_h"][H:2 * H] == 2.0)


def test_the_language_models_biases_start_drawn_as_pytorchs():
    """train's tanh, LSTM and GRU draw their biases as PyTorch does (LM_INIT_B); the weights stay
    the cell's; --forget-bias adds to the draw; the tasks and the cells alone start at zeros."""
    from rnnvanish.cells import GRU, LSTM, start_biases
    assert LM_INIT_B == "pytorch"
    H = 8
    drawn, zeros = make_lm_trainer().model.params, make_lm_trainer(init_b="zeros").model.params
    for name in ("W_xh", "W_hh", "W_hy", "b_y"):
        assert np.array_equal(drawn[name], zeros[name]), name
    b = drawn["b_h"]
    assert b.shape == (4 * H,) and np.all(np.abs(b) < 2 / np.sqrt(H)) and np.unique(b).size == b.size
    told = make_lm_trainer(forget_bias=2.0).model.params["b_h"]
    assert_close(told[H:2 * H], b[H:2 * H] + 2.0, name="forget slice")
    assert np.array_equal(told[:H], b[:H])
    assert np.all(LSTM(3, H).params["b_h"][:H] == 0.0)
    gru = GRU(3, H, init_b="pytorch")
    for name in ("b_xh", "b_hh"):
        assert np.all(np.abs(gru.params[name]) <= 1 / np.sqrt(H)) and np.any(gru.params[name] != 0)
    # the definition: the sum of two U(-1/sqrt(H), 1/sqrt(H)) draws, variance 2 / (3 H)
    many = start_biases("pytorch", 1, 400, np.random.default_rng(0), np.float64, draws=2)
    many = np.concatenate([many] + [start_biases("pytorch", 1, 400, np.random.default_rng(k), np.float64)
                                    for k in range(1, 50)])
    assert abs(many.var() - 2 / (3 * 400)) < 0.05 * 2 / (3 * 400) and abs(many.mean()) < 3e-3
    with pytest.raises(ValueError, match="init_b"):
        LSTM(3, H, init_b="ones")

def test_init_b_belongs_to_the_cells_pytorch_has(capsys, corpus, tmp_path):
    """--init-b on another cell is one line and exit 2; the tasks' biases start at zeros unless told."""
    from conftest import cli, make_task_trainer
    code, _, err = cli(capsys, "train", corpus, "--cell", "indrnn", "--init-b", "pytorch", "--batch", 2, "--window", 5,
                       "--out", tmp_path / "r")
    assert code == 2 and "--init-b applies to the tanh and lstm and gru cells only" in err and not (tmp_path / "r").exists()
    H = 4
    b = make_task_trainer(cell="lstm").model.params["b_h"]
    assert np.all(b[:H] == 0.0) and np.all(b[2 * H:] == 0.0)
    told = make_task_trainer(cell="lstm", init_b="pytorch").model.params["b_h"]
    assert np.all(np.abs(told[:H]) < 2 / np.sqrt(H)) and np.any(told[:H] != 0.0)
