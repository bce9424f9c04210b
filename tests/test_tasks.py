"""The long-range tasks against their published definitions, computed again from the inputs."""
import math

import numpy as np
import pytest

from conftest import assert_close

from rnnvanish.errors import RnnvanishError
from rnnvanish.tasks import (TASKS, adding_batch, copy_memory_batch, latch_batch, make_task,
                             temporal_order_batch)
from rnnvanish.tasks.temporal_order import TOKEN


def assert_equal(actual, expected, what):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    bad = np.argwhere(actual != expected)
    assert len(bad) == 0, (
        f"{what}: {len(bad)} entries differ, first at {tuple(bad[0])}: "
        f"{actual[tuple(bad[0])]} != {expected[tuple(bad[0])]}\n"
        f"  actual   {actual.ravel()[:8]}\n  expected {expected.ravel()[:8]}"
    )


def expected_answer_mask(lengths, T):
    mask = np.zeros((T, len(lengths)), dtype=bool)
    for b, n in enumerate(lengths):
        mask[n - 1, b] = True
    return mask


# ---------------------------------------------------------------- lengths and masks

@pytest.mark.parametrize("generator, T", [(adding_batch, 40), (temporal_order_batch, 30)])
def test_jittered_lengths_lie_in_T_to_T_plus_tenth_and_pad_on_the_right(generator, T):
    batch = generator(200, T, np.random.default_rng(0))
    lengths = batch.lengths
    assert lengths.min() >= T and lengths.max() <= T + T // 10, lengths[:10]
    assert len(np.unique(lengths)) > 1, "lengths never vary"
    assert batch.mask.shape == (lengths.max(), 200)
    assert_equal(batch.mask, expected_answer_mask(lengths, lengths.max()), "answer mask")
    past_end = np.arange(lengths.max())[:, None] >= lengths[None, :]
    assert not np.any(batch.inputs[past_end]), "padding inputs are not zero"
    assert not np.any(batch.targets[past_end]), "padding targets are not zero"


@pytest.mark.parametrize("generator, T", [(adding_batch, 40), (temporal_order_batch, 30)])
def test_without_jitter_every_answer_is_at_the_last_row(generator, T):
    batch = generator(16, T, np.random.default_rng(1), jitter=False)
    assert_equal(batch.lengths, np.full(16, T), "lengths")
    assert batch.mask[-1].all() and batch.mask.sum() == 16


def test_copy_and_latch_lengths_and_masks():
    copy = copy_memory_batch(3, 7, np.random.default_rng(0))
    assert copy.inputs.shape == (27, 3) and copy.mask.all()
    assert_equal(copy.lengths, np.full(3, 27), "copy lengths")
    latch = latch_batch(3, 9, np.random.default_rng(0))
    assert latch.inputs.shape == (9, 3, 1)
    assert_equal(latch.mask, expected_answer_mask([9, 9, 9], 9), "latch mask")


# ---------------------------------------------------------------- adding problem

@pytest.mark.parametrize("T", [6, 12, 100])
def test_adding_markers_as_published(T):
    batch = adding_batch(300, T, np.random.default_rng(T))
    n2 = T // 2 - 1
    n1 = min(10, n2)
    for b in range(batch.B):
        n = batch.lengths[b]
        value, marker = batch.inputs[:n, b, 0], batch.inputs[:n, b, 1]
        marked = np.flatnonzero(marker == 1.0)
        assert len(marked) == 2, f"sequence {b}: {len(marked)} marked pairs"
        assert marked.min() < n1, f"sequence {b}: no mark among the first {n1} pairs: {marked}"
        assert marked.max() < n2, f"sequence {b}: mark beyond the first {n2} pairs: {marked}"
        assert marker[n - 1] == -1.0, f"sequence {b}: last marker {marker[n - 1]}"
        assert marker[0] == (1.0 if 0 in marked else -1.0), f"sequence {b}: first marker {marker[0]}"
        rest = np.setdiff1d(np.arange(1, n - 1), marked)
        assert not np.any(marker[rest]), f"sequence {b}: stray markers"
        if 0 in marked:
            assert value[0] == 0.0, f"sequence {b}: marked first pair keeps value {value[0]}"
        assert np.all(np.abs(value) <= 1.0)
    assert np.abs(batch.inputs[:, :, 0]).max() > 0.9, "values do not cover [-1, 1]"


def test_adding_target_is_computed_from_the_marked_values():
    batch = adding_batch(50, 30, np.random.default_rng(5))
    expected = np.zeros(batch.B)
    for b in range(batch.B):
        value, marker = batch.inputs[:, b, 0], batch.inputs[:, b, 1]
        expected[b] = 0.5 + value[marker == 1.0].sum() / 4.0
    targets_at_answer = batch.targets[batch.lengths - 1, np.arange(batch.B), 0]
    assert_close(targets_at_answer, expected, rtol=0, atol=1e-15, name="adding targets")
    placed = np.zeros(batch.mask.shape)
    placed[batch.lengths - 1, np.arange(batch.B)] = expected
    assert_close(batch.targets[batch.mask][:, 0], placed[batch.mask], rtol=0, atol=1e-15, name="adding targets at the mask")


@pytest.mark.parametrize("T, n", [(12, 100_000), (100, 40_000)])
def test_adding_baseline_closed_form_matches_sampling(T, n):
    task = TASKS["adding"]
    batch = task.generate(n, T, rng=np.random.default_rng(7))
    sampled = task.evaluate(np.full((batch.T, batch.B, 1), 0.5), batch)
    closed = task.baseline(T)
    # standard errors: MSE ~ 0.04 / sqrt(n) * 1.2, solved ~ 0.36 / sqrt(n); allow five of them
    assert_close(sampled["loss"], closed["loss"], rtol=0, atol=5 * 0.05 / math.sqrt(n), name=f"baseline MSE at T={T}")
    assert_close(sampled["solved"], closed["solved"], rtol=0, atol=5 * 0.36 / math.sqrt(n), name=f"baseline solved at T={T}")


def test_adding_criterion_on_hand_made_predictions():
    task = TASKS["adding"]
    batch = task.generate(4, 20, rng=3)
    predictions = batch.targets.copy()
    errors = np.array([0.039, -0.039, 0.041, -0.5])
    predictions[batch.lengths - 1, np.arange(4), 0] += errors
    scores = task.evaluate(predictions, batch)
    assert scores["solved"] == 0.5
    assert_close(scores["loss"], np.mean(errors ** 2), rtol=0, atol=1e-12, name="adding loss")
    assert_close(task.evaluate(predictions[:, :, 0], batch)["loss"], np.mean(errors ** 2), rtol=0, atol=1e-12, name="(T, B) form")


# ---------------------------------------------------------------- copy memory

def test_copy_layout_and_targets_from_inputs():
    T = 15
    batch = copy_memory_batch(20, T, np.random.default_rng(2))
    x, y = batch.inputs, batch.targets
    assert x.dtype == np.int64 and y.dtype == np.int64
    data = x[:10]
    assert data.min() >= 1 and data.max() <= 8, "data symbols outside 1..8"
    assert not np.any(x[10:10 + T - 1]), "blanks after the data are not blank"
    assert np.all(x[10 + T - 1] == 9), "delimiter missing"
    assert not np.any(x[10 + T:]), "blanks after the delimiter are not blank"
    assert not np.any(y[:T + 10]), "targets before the recall are not blank"
    assert_equal(y[T + 10:], data, "recalled symbols")


def test_copy_memoryless_baseline_equals_closed_form():
    task = TASKS["copy"]
    T = 30
    batch = task.generate(64, T, rng=4)
    logits = np.full((T + 20, 64, 10), -1e4)
    logits[:T + 10, :, 0] = 0.0            # blank, surely
    logits[T + 10:, :, 1:9] = 0.0          # then a uniform guess over the 8 categories
    scores = task.evaluate(logits, batch)
    assert_close(scores["loss"], 10 * math.log(8) / (T + 20), rtol=0, atol=1e-12, name="memoryless loss")
    assert_close(task.baseline(T)["loss"], 10 * math.log(8) / (T + 20), rtol=0, atol=1e-15, name="baseline formula")


def test_copy_criterion_on_hand_made_predictions():
    task = TASKS["copy"]
    batch = task.generate(2, 5, rng=0)
    logits = 10.0 * np.eye(10)[batch.targets]           # (25, 2, 10), perfect recall
    assert task.evaluate(logits, batch)["solved"] == 1.0
    wrong = batch.targets.copy()
    wrong[-1, 0] = wrong[-1, 0] % 8 + 1                  # another category at one step
    scores = task.evaluate(10.0 * np.eye(10)[wrong], batch)
    assert scores["solved"] == 0.5
    assert_close(scores["recall_accuracy"], 19 / 20, rtol=0, atol=1e-15, name="recall accuracy")


def test_copy_vocabulary_follows_the_options():
    task = make_task("copy", n_data=3, n_categories=4)
    batch = task.generate(5, 6, rng=0)
    assert task.input_size == task.output_size == 6
    assert batch.inputs.shape == (12, 5) and np.all(batch.inputs[3 + 5] == 5)


# ---------------------------------------------------------------- temporal order

@pytest.mark.parametrize("T", [10, 100])
def test_temporal_order_structure_and_class_from_inputs(T):
    batch = temporal_order_batch(200, T, np.random.default_rng(T))
    lo1, hi1 = max(2, T // 10), max(2, T // 5)
    lo2, hi2 = T // 2, 3 * T // 5
    for b in range(batch.B):
        n = batch.lengths[b]
        seq = batch.inputs[:n, b]
        assert seq[0] == TOKEN["E"] and seq[-1] == TOKEN["B"], f"sequence {b}: ends {seq[0]}, {seq[-1]}"
        relevant = np.flatnonzero((seq == TOKEN["X"]) | (seq == TOKEN["Y"]))
        assert len(relevant) == 2, f"sequence {b}: {len(relevant)} X/Y symbols"
        t1, t2 = relevant + 1                                 # 1-based, as in the paper
        assert lo1 <= t1 <= hi1 and lo2 <= t2 <= hi2, f"sequence {b}: t1={t1}, t2={t2}"
        others = np.delete(seq[1:-1], relevant - 1)
        assert np.all((others >= TOKEN["a"]) & (others <= TOKEN["d"])), f"sequence {b}: stray symbol"
        order = "".join("X" if seq[t] == TOKEN["X"] else "Y" for t in relevant)
        expected = {"XX": 0, "XY": 1, "YX": 2, "YY": 3}[order]
        assert batch.targets[n - 1, b] == expected, f"sequence {b}: class {batch.targets[n - 1, b]} for {order}"
    assert set(np.unique(batch.targets[batch.mask])) == {0, 1, 2, 3}


def test_temporal_order_criterion_on_hand_made_predictions():
    task = TASKS["temporal_order"]
    batch = task.generate(2, 20, rng=1)
    classes = batch.targets[batch.mask]

    def logits_with_p_true(p):
        # softmax with p on the true class and (1 - p)/3 on each other class
        y = np.full((batch.T, 2, 4), math.log((1 - p) / 3))
        y[batch.lengths - 1, np.arange(2), classes] = math.log(p)
        return y

    good, near = task.evaluate(logits_with_p_true(0.75), batch), task.evaluate(logits_with_p_true(0.65), batch)
    assert good["solved"] == 1.0 and near["solved"] == 0.0 and near["accuracy"] == 1.0
    assert_close(good["loss"], -math.log(0.75), rtol=0, atol=1e-12, name="cross-entropy")


def test_uniform_guess_scores_match_the_classification_baselines():
    for name, T in (("temporal_order", 20), ("latch", 20)):
        task = TASKS[name]
        batch = task.generate(20_000, T, rng=11)
        scores = task.evaluate(np.zeros((batch.T, batch.B, task.output_size)), batch)
        base = task.baseline(T)
        assert_close(scores["loss"], base["loss"], rtol=0, atol=1e-12, name=f"{name} uniform loss")
        assert scores["solved"] == base["solved"] == 0.0
        # argmax of equal logits is class 0, right for a fraction 1/C of balanced classes
        assert_close(scores["accuracy"], base["accuracy"], rtol=0, atol=5 * 0.5 / math.sqrt(20_000), name=f"{name} accuracy")


# ---------------------------------------------------------------- latch

def test_latch_signal_noise_and_targets():
    batch = latch_batch(4000, 12, np.random.default_rng(3), n_signal=3, noise_std=0.5)
    u = batch.inputs[:, :, 0]
    classes = batch.targets[-1]
    assert_equal(u[:3], np.broadcast_to(np.where(classes == 1, 1.0, -1.0), (3, 4000)), "latched signal")
    noise = u[3:]
    assert_close(noise.std(), 0.5, rtol=0, atol=0.01, name="noise standard deviation")
    assert_close(noise.mean(), 0.0, rtol=0, atol=0.01, name="noise mean")
    assert_close(classes.mean(), 0.5, rtol=0, atol=0.03, name="class balance")
    default = latch_batch(4000, 12, np.random.default_rng(3))
    assert_close(default.inputs[1:, :, 0].var(), 0.2, rtol=0, atol=0.01, name="default noise variance (0.2, as published)")


def test_latch_criterion_on_hand_made_predictions():
    task = make_task("latch")
    batch = task.generate(2, 5, rng=2)
    classes = batch.targets[-1]
    for p, solved in ((0.85, 1.0), (0.75, 0.0)):
        y = np.zeros((5, 2, 2))
        y[-1, np.arange(2), classes] = math.log(p)
        y[-1, np.arange(2), 1 - classes] = math.log(1 - p)
        scores = task.evaluate(y, batch)
        assert scores["solved"] == solved and scores["accuracy"] == 1.0, (p, scores)


# ---------------------------------------------------------------- shared behaviour

@pytest.mark.parametrize("name", sorted(TASKS))
def test_same_seed_same_batch_other_seed_other_batch(name):
    task = TASKS[name]
    a, b, c = (task.generate(3, 20, rng=seed) for seed in (9, 9, 10))
    for field in ("inputs", "targets", "mask", "lengths"):
        assert_equal(getattr(a, field), getattr(b, field), f"{name} {field} with the same seed")
    assert not np.array_equal(a.inputs, c.inputs), f"{name}: another seed gave the same inputs"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_metadata_matches_its_batches(name):
    task = TASKS[name]
    batch = task.generate(1, task.min_length, rng=0)          # the corners: B = 1, shortest T
    if task.input_kind == "dense":
        assert batch.inputs.ndim == 3 and batch.inputs.shape[2] == task.input_size
    else:
        assert batch.inputs.dtype == np.int64 and batch.inputs.max() < task.input_size
    if task.kind == "classification":
        assert batch.targets.dtype == np.int64 and batch.targets.max() < task.output_size
    assert batch.mask.shape == batch.inputs.shape[:2] and batch.mask.dtype == bool
    assert task.baseline()["loss"] > 0


def test_unknown_names_options_and_bad_sizes_are_user_errors():
    with pytest.raises(RnnvanishError, match="adding, copy, temporal_order, latch, parity"):
        make_task("addition")
    with pytest.raises(RnnvanishError, match="noise_std"):
        make_task("latch", noise=0.1)
    with pytest.raises(RnnvanishError, match=">= 6"):
        TASKS["adding"].generate(2, 5)
    with pytest.raises(RnnvanishError, match="batch size"):
        TASKS["copy"].generate(0, 5)
    batch = TASKS["temporal_order"].generate(2, 20, rng=0)
    with pytest.raises(RnnvanishError, match="shape"):
        TASKS["temporal_order"].evaluate(np.zeros((batch.T, 2, 3)), batch)


# --------------------------------------------------------------------------- running parity

def test_parity_targets_are_the_running_xor_of_the_bits():
    b = TASKS["parity"].generate(64, 30, rng=3)
    bits = b.inputs
    assert bits.shape == (30, 64) and set(np.unique(bits)) == {0, 1} and b.mask.all()
    for col in range(64):
        p = 0
        for t in range(30):
            p ^= int(bits[t, col])
            assert b.targets[t, col] == p


def test_parity_scores_follow_their_definitions():
    task = TASKS["parity"]
    b = task.generate(40, 12, rng=0)
    perfect = np.where(np.arange(2)[None, None, :] == b.targets[:, :, None], 5.0, -5.0)     # (T, B, 2)
    s = task.evaluate(perfect, b)
    assert s["solved"] == 1.0 and s["accuracy"] == 1.0 and s["last_accuracy"] == 1.0
    wrong_last = perfect.copy()
    wrong_last[-1, :20] = -wrong_last[-1, :20]                 # the first 20 sequences miss only their last answer
    s = task.evaluate(wrong_last, b)
    assert s["solved"] == 0.5 and s["last_accuracy"] == 0.5 and s["accuracy"] == pytest.approx(1 - 20 / (40 * 12))
    guess = task.evaluate(np.zeros_like(perfect), b)
    assert guess["loss"] == pytest.approx(math.log(2)) == pytest.approx(task.baseline(12)["loss"])
    assert task.baseline(12)["solved"] == 0.5 ** 12
