"""The language model: loss against an independent computation, sampling, state carrying."""
import math

import numpy as np
import pytest

from conftest import assert_close
from rnnvanish.model import LanguageModel, bits_per_token, perplexity, sample_from_logits


def test_loss_equals_mean_cross_entropy_computed_directly():
    rng = np.random.default_rng(0)
    V, T, B = 7, 5, 3
    model = LanguageModel("gru", V, 6, seed=1, backend="numpy")
    x, y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    loss, _ = model.loss(x, y)
    h, _, _ = model.cell.forward(x)
    total = 0.0
    for t in range(T):
        for b in range(B):
            logits = h[t + 1, b] @ model.params["W_hy"] + model.params["b_y"]
            total += math.log(np.exp(logits).sum()) - logits[y[t, b]]
    assert loss == pytest.approx(total / (T * B), rel=1e-12)
    assert bits_per_token(loss) == pytest.approx(loss / math.log(2))
    assert perplexity(loss) == pytest.approx(math.exp(loss))


def test_fresh_model_loss_is_near_uniform():
    rng = np.random.default_rng(1)
    model = LanguageModel("lstm", 50, 16, seed=0, backend="numpy")
    loss, _ = model.loss(rng.integers(0, 50, (20, 4)), rng.integers(0, 50, (20, 4)))
    assert abs(loss - math.log(50)) < 0.1


def test_carried_state_makes_two_windows_equal_one():
    rng = np.random.default_rng(2)
    model = LanguageModel("lstm", 5, 4, seed=0, backend="numpy")
    x, y = rng.integers(0, 5, (8, 2)), rng.integers(0, 5, (8, 2))
    whole, _ = model.loss(x, y)
    first, state = model.loss(x[:3], y[:3])
    second, _ = model.loss(x[3:], y[3:], state)
    assert (3 * first + 5 * second) / 8 == pytest.approx(whole, rel=1e-12)


def test_params_are_shared_with_the_cell():
    model = LanguageModel("tanh", 5, 4, backend="numpy")
    assert model.params["W_hh"] is model.cell.params["W_hh"]
    assert set(model.params) == {"W_xh", "W_hh", "b_h", "W_hy", "b_y"}
    with pytest.raises(ValueError, match="shape"):
        model.set_params({**model.params, "W_hh": np.zeros((2, 2))})


def test_sampling_is_deterministic_and_greedy_is_argmax():
    model = LanguageModel("gru", 9, 8, seed=3, backend="numpy")
    for p in model.params.values():
        p += np.random.default_rng(0).normal(0, 0.5, p.shape)
    a = model.sample([1, 2], 30, temperature=1.0, rng=5)
    b = model.sample([1, 2], 30, temperature=1.0, rng=5)
    assert np.array_equal(a, b) and a.min() >= 0 and a.max() < 9
    greedy = model.sample([4], 6, temperature=0.0, rng=0)
    token, state = 4, None                     # step the greedy chain by hand
    for n in range(6):
        h, state, _ = model.cell.forward(np.array([[token]]), state)
        token = int(np.argmax(h[-1, 0] @ model.params["W_hy"] + model.params["b_y"]))
        assert greedy[n] == token


def test_sample_from_logits_follows_the_distribution():
    y = np.log(np.array([0.1, 0.2, 0.7]))
    rng = np.random.default_rng(0)
    draws = np.array([sample_from_logits(y, 1.0, u) for u in rng.random(20000)])
    assert_close(np.bincount(draws, minlength=3) / draws.size, [0.1, 0.2, 0.7], atol=0.015, rtol=0, name="freq")
    cold = np.array([sample_from_logits(y, 0.25, u) for u in rng.random(5000)])
    assert (cold == 2).mean() > 0.95        # low temperature sharpens towards the argmax
    with pytest.raises(ValueError):
        LanguageModel("tanh", 3, 2, backend="numpy").sample([0], 3, temperature=-1)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("cell,options", [("tanh", {}), ("lstm", {}), ("gru", {"reset_after": False})])
def test_a_window_and_a_sample_are_the_backends_kernel_calls(cell, options, backend, monkeypatch):
    """One code path on both backends: a window is three kernel calls, the cell's token pair
    around the output layer, generation one."""
    from rnnvanish.backend import get_kernels
    kernels = get_kernels(backend)
    calls = []
    for name in ("input_rows", f"{cell}_forward", "output_layer", f"{cell}_backward", "window_grads",
                 f"{cell}_generate", "softmax_xent", f"{cell}_forward_tokens", f"{cell}_backward_tokens"):
        def recorded(*args, _name=name, _kernel=getattr(kernels, name)):
            calls.append(_name)
            return _kernel(*args)
        monkeypatch.setattr(kernels, name, recorded)
    model = LanguageModel(cell, 6, 4, seed=0, backend=backend, **options)
    rng = np.random.default_rng(0)
    loss, grads, _, _ = model.loss_and_grads(rng.integers(0, 6, (5, 2)), rng.integers(0, 6, (5, 2)), truncate=2)
    assert calls == [f"{cell}_forward_tokens", "output_layer", f"{cell}_backward_tokens"]
    assert math.isfinite(loss) and set(grads) == set(model.params)
    calls.clear()
    assert model.sample([3], 4, rng=1).shape == (4,)
    assert calls == [f"{cell}_generate"]
