"""The task model: exact gradients (central differences, float64), the loss as the tasks define it."""
import math

import numpy as np
import pytest

from conftest import assert_close
from rnnvanish.errors import RnnvanishError
from rnnvanish.gradcheck import numerical_gradient, relative_error
from rnnvanish.choices import cell_options
from rnnvanish.tasks.model import TaskModel, softmax_cross_entropy, squared_error
from rnnvanish.tasks import make_task

# (task, its options, length): a regression mask at each sequence's end (ragged lengths),
# a classification mask over every step, and a classification mask at the last step only.
SETTINGS = {
    "adding": ({}, 12),
    "copy": ({"n_data": 2, "n_categories": 3}, 3),
    "temporal_order": ({}, 10),
    "latch": ({}, 5),
    "parity": ({}, 6),
}


def _model_and_batch(task_name, cell, seed=0, B=3, H=4, backend="numpy"):
    options, length = SETTINGS[task_name]
    task = make_task(task_name, **options)
    model = TaskModel(task, cell, H, seed=seed, backend=backend)
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p += rng.normal(0.0, 0.3, p.shape)               # move off the initialiser's special values
    return model, task.generate(B, length, rng=seed + 1)


@pytest.mark.parametrize("task_name", list(SETTINGS))
@pytest.mark.parametrize("cell", ["tanh", "lstm", "gru"])
def test_gradients_match_central_differences(task_name, cell):
    model, batch = _model_and_batch(task_name, cell)
    loss, grads, _ = model.loss_and_grads(batch)
    assert loss == pytest.approx(model.loss(batch), rel=1e-12)
    assert set(grads) == set(model.params)
    for name, p in model.params.items():
        numeric = numerical_gradient(lambda: model.loss(batch), p, eps=1e-5)
        err = relative_error(grads[name], numeric)
        assert err <= 1e-7, (f"{task_name}/{cell} d{name}: relative error {err:.2e}; "
                             f"analytic {grads[name].ravel()[:4]}, numeric {numeric.ravel()[:4]}")


def test_ragged_adding_batch_is_really_ragged():
    """The regression case above must exercise answers at different rows."""
    _, batch = _model_and_batch("adding", "lstm")
    assert len(set(batch.lengths.tolist())) > 1


@pytest.mark.parametrize("task_name", list(SETTINGS))
def test_loss_is_the_task_loss(task_name):
    model, batch = _model_and_batch(task_name, "gru", seed=3)
    scores = model.task.evaluate(model.predict(batch.inputs), batch)
    assert model.loss(batch) == pytest.approx(scores["loss"], rel=1e-12)


def test_padding_rows_do_not_change_the_answer():
    """Right padding: appending rows after every sequence's end leaves the loss unchanged."""
    model, batch = _model_and_batch("adding", "lstm", seed=2)
    pad = 5
    inputs = np.concatenate([batch.inputs, np.random.default_rng(0).normal(size=(pad, batch.B, 2))])
    targets = np.concatenate([batch.targets, np.zeros((pad, batch.B, 1))])
    mask = np.concatenate([batch.mask, np.zeros((pad, batch.B), bool)])
    padded = type(batch)(inputs, targets, mask, batch.lengths)
    assert model.loss(padded) == pytest.approx(model.loss(batch), rel=1e-12)


def test_losses_against_their_definitions():
    rng = np.random.default_rng(4)
    y, target = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    loss, dy = squared_error(y, target)
    assert loss == pytest.approx(sum(((y[n] - target[n]) ** 2).sum() for n in range(6)) / 6)
    assert_close(dy, 2 * (y - target) / 6, name="d squared error")

    logits, classes = rng.normal(size=(5, 4)), rng.integers(0, 4, 5)
    loss, dy = softmax_cross_entropy(logits, classes)
    direct = [math.log(np.exp(logits[n]).sum()) - logits[n, classes[n]] for n in range(5)]
    assert loss == pytest.approx(np.mean(direct), rel=1e-12)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert_close(dy, (p - np.eye(4)[classes]) / 5, name="d cross-entropy")


def test_huge_logits_stay_finite():
    loss, dy = softmax_cross_entropy(np.array([[1000.0, -1000.0]]), np.array([1]))
    assert loss == pytest.approx(2000.0) and np.all(np.isfinite(dy))


def test_cell_options_reject_options_of_another_cell():
    assert cell_options("lstm", {"forget_bias": 1.0, "activation": None}) == {"forget_bias": 1.0}
    assert cell_options("gru", {"reset_before": True}) == {"reset_after": False}
    assert cell_options("lstm", {}, {"forget_bias": 3.0, "activation": "tanh"}) == {"forget_bias": 3.0}
    with pytest.raises(RnnvanishError, match="activation applies to the tanh cell only"):
        cell_options("lstm", {"activation": "relu"})
    with pytest.raises(RnnvanishError, match="forget-bias"):
        cell_options("gru", {"forget_bias": 1.0})
    with pytest.raises(RnnvanishError, match="unknown cell"):
        cell_options("rnn", {})


def test_readout_sizes_follow_the_task():
    task = make_task("copy", n_data=3, n_categories=5)
    model = TaskModel(task, "tanh", 6, backend="numpy")
    assert model.params["W_hy"].shape == (6, 7) and model.params["W_xh"].shape == (7, 6)
    assert model.config()["output_size"] == 7
