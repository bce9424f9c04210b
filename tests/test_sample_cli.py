"""`rnnvanish sample`: text from a checkpoint or run folder, reproducible by seed, greedy decoding
checked against a step-by-step argmax, the unknown-symbol policies, and one-line errors."""

import numpy as np
import pytest

from rnnvanish.training import runfolder as rf
from rnnvanish.training.checkpoint import load_checkpoint, model_from_checkpoint
from conftest import cli
from rnnvanish.cli import main

TEXT = "one fish two fish red fish blue fish. " * 40


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained run (char level), made once for the module."""
    folder = tmp_path_factory.mktemp("sample")
    corpus = folder / "corpus.txt"
    corpus.write_text(TEXT)
    code = main(["train", str(corpus), "--hidden", "12", "--window", "8", "--batch", "4", "--steps", "30",
                 "--eval-every", "10", "--lr", "0.01", "--quiet", "--out", str(folder / "run")])
    assert code == 0
    return folder / "run"


def greedy(model, prime_ids, n):
    """Argmax continuation computed by re-running the whole sequence from h_0 each time."""
    seq = list(prime_ids)
    for _ in range(n):
        y, _, _ = model.forward(np.array(seq)[:, None])        # (len, 1, V)
        seq.append(int(np.argmax(y[-1, 0])))
    return seq[len(prime_ids):]


def test_prime_is_echoed_and_length_counts_generated_symbols(capsys, run):
    code, out, err = cli(capsys, "sample", run, "--prime", "one fish", "--length", 25, "--seed", 3)
    assert code == 0 and err == ""
    assert out.startswith("one fish")
    body = out[len("one fish"):]
    assert len(body) in (25, 26) and (len(body) == 25 or body.endswith("\n"))


def test_same_seed_same_text_other_seed_other_text(capsys, run):
    texts = [cli(capsys, "sample", run, "--prime", "red", "--length", 60, "--seed", s, "--temperature", 1.5)[1]
             for s in (1, 1, 2)]
    assert texts[0] == texts[1] and texts[0] != texts[2]


def test_temperature_zero_is_greedy(capsys, run):
    code, out, _ = cli(capsys, "sample", run, "--prime", "two f", "--length", 15, "--temperature", 0)
    assert code == 0
    model, vocab = model_from_checkpoint(load_checkpoint(run / rf.BEST), backend="numpy")
    expected = "two f" + vocab.decode(greedy(model, vocab.encode("two f"), 15))
    assert out.rstrip("\n") == expected.rstrip("\n"), (out, expected)


def test_best_by_default_latest_with_last(capsys, run):
    best, last = load_checkpoint(run / rf.BEST), load_checkpoint(run / rf.CHECKPOINT)
    assert last.step == 30
    args = ("sample", run, "--prime", "blue", "--length", 40, "--temperature", 0)
    from_folder_best, from_folder_last = cli(capsys, *args)[1], cli(capsys, *args, "--last")[1]
    assert from_folder_best == cli(capsys, "sample", run / rf.BEST, *args[2:])[1]
    assert from_folder_last == cli(capsys, "sample", run / rf.CHECKPOINT, *args[2:])[1]
    if best.step != last.step:
        assert from_folder_best != from_folder_last


def test_unknown_symbols_policies(capsys, run):
    code, out, err = cli(capsys, "sample", run, "--prime", "red Qfish€", "--length", 5)
    assert code == 0 and out.startswith("red fish")
    assert "warning" in err and "'Q'" in err and "'€'" in err and len(err.strip().splitlines()) == 1

    code, out, err = cli(capsys, "sample", run, "--prime", "red Q", "--length", 5, "--unknown", "replace")
    assert code == 0 and "'Q'" in err
    vocab = load_checkpoint(run / rf.BEST).vocab
    assert out.startswith("red " + vocab.tokens[vocab.replacement_id])

    code, out, err = cli(capsys, "sample", run, "--prime", "red Q", "--unknown", "error")
    assert code == 2 and out == "" and "'Q'" in err and "Traceback" not in err

    code, out, err = cli(capsys, "sample", run, "--prime", "QQZ", "--length", 5)
    assert code == 2 and "no symbol of the prime" in err


def test_word_level_model(capsys, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    assert main(["train", str(corpus), "--level", "word", "--hidden", "8", "--window", "6", "--batch", "2",
                 "--steps", "6", "--quiet", "--out", str(tmp_path / "w")]) == 0
    capsys.readouterr()
    code, out, err = cli(capsys, "sample", tmp_path / "w", "--prime", "red fish cat", "--length", 10)
    assert code == 0 and out.startswith("red fish ") and "'cat'" in err


@pytest.mark.parametrize("case", ["missing", "garbage", "empty folder", "bad length", "bad temperature"])
def test_errors_are_one_line(capsys, run, tmp_path, case):
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 not really")
    (tmp_path / "empty").mkdir()
    argv = {"missing": [tmp_path / "nope.npz"], "garbage": [tmp_path / "garbage.npz"],
            "empty folder": [tmp_path / "empty"], "bad length": [run, "--length", 0],
            "bad temperature": [run, "--temperature", -1]}[case]
    code, out, err = cli(capsys, "sample", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
