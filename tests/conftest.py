"""What the tests share: one comparison that says what differs, the in-process command line, the
cell configurations and tiny builders of language-model and task trainers."""
import numpy as np
import pytest

CELL_CONFIGS = [("tanh", {}), ("tanh", {"activation": "sigmoid"}), ("tanh", {"activation": "relu"}),
                ("lstm", {}), ("gru", {}), ("gru", {"reset_after": False})]
CELL_IDS = ["tanh", "tanh-sigmoid", "tanh-relu", "lstm", "gru", "gru-reset-before"]
TEXT = "a stitch in time saves nine; many hands make light work. " * 30


def assert_close(actual, expected, rtol=1e-10, atol=0.0, name="array", each=False):
    """|actual - expected| <= atol + rtol * max|expected| everywhere (with `each`, rtol times each
    entry's own |expected|), with a readable failure: the worst entry and the first ones."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    if not expected.size:
        return
    diff = np.abs(actual - expected)
    scale = np.abs(expected) if each else np.abs(expected).max()
    excess = diff - (atol + rtol * scale)
    if not np.all(excess <= 0):
        worst = np.unravel_index(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)), diff.shape)
        raise AssertionError(
            f"{name}: difference {diff[worst]:.3e} at {worst} exceeds atol {atol:g} + rtol {rtol:g} of "
            f"{'|expected| there' if each else 'max |expected|'} (largest difference {np.nanmax(diff):.3e})\n"
            f"  actual   first entries: {actual.ravel()[:5]}\n"
            f"  expected first entries: {expected.ravel()[:5]}")


def cli(capsys, *argv):
    """Run the `rnnvanish` command in-process: (exit code, stdout, stderr)."""
    from rnnvanish.cli import main
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def lm_config(**changes):
    """A tiny language-model configuration (H 8, window 6, batch 3)."""
    from rnnvanish.training.settings import LanguageConfig
    return LanguageConfig(**{"hidden": 8, "window": 6, "batch": 3, **changes})


def make_lm_trainer(text=TEXT, **changes):
    """A Trainer of a fresh language model on `text` (vocabulary built from it)."""
    from rnnvanish.data import Vocab
    from rnnvanish.training.engine import Trainer
    from rnnvanish.training.language import LanguageObjective, build_model, encode_corpus

    config = lm_config(**changes)
    vocab = Vocab.build(text)
    vocab, train_ids, val_ids, _ = encode_corpus(config, text, vocab)
    return Trainer(config, build_model(config, len(vocab)), LanguageObjective(config, vocab, train_ids, val_ids))


def make_task_trainer(**changes):
    """A Trainer of a fresh task model (adding, T 8, H 4, batch 4, 20 held-out sequences)."""
    from rnnvanish.tasks.objective import TaskConfig, make_trainer
    return make_trainer(TaskConfig(**{"task": "adding", "length": 8, "hidden": 4, "batch": 4, "eval_every": 3,
                                      "eval_size": 20, "stop_at": None, "steps": 6, **changes}))


@pytest.fixture
def corpus(tmp_path):
    """A small UTF-8 text file."""
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def one_blas_thread():
    """One BLAS thread for a test module of large NumPy products: on a busy two-core machine one
    thread is many times faster than two fighting for the cores."""
    from rnnvanish.threads import limit_threads
    with limit_threads(1, "numpy"):
        yield
