"""Clipping against its definitions (and PyTorch's clip_grad_norm_), and the non-finite diagnosis."""
import math

import numpy as np
import pytest

from conftest import assert_close

from rnnvanish.clip import (NONFINITE_POLICIES, check_finite, clip_by_global_norm, clip_by_norm,
                            clip_by_value, find_nonfinite, global_norm)
from rnnvanish.errors import NonFiniteError, RnnvanishError


def make_grads(scale=1.0, seed=0):
    """A small gradient dict with the tanh RNN's keys and shapes (I=3, H=5, V=4)."""
    rng = np.random.default_rng(seed)
    shapes = {"W_xh": (3, 5), "W_hh": (5, 5), "b_h": (5,), "W_hy": (5, 4), "b_y": (4,)}
    return {name: scale * rng.standard_normal(shape) for name, shape in shapes.items()}


def copy(grads):
    return {name: g.copy() for name, g in grads.items()}


def flat(grads):
    return np.concatenate([g.ravel() for g in grads.values()])


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_global_norm_is_the_norm_of_everything():
    grads = make_grads()
    expected = math.sqrt(sum(float(np.sum(g ** 2)) for g in grads.values()))
    assert global_norm(grads) == pytest.approx(expected, rel=1e-14)
    assert global_norm({k: g.astype(np.float32) for k, g in grads.items()}) == pytest.approx(expected, rel=1e-6)
    assert global_norm({}) == 0.0


def test_clip_by_value():
    grads = make_grads(scale=2.0)
    before = copy(grads)
    arrays = list(grads.values())
    n_changed = clip_by_value(grads, 1.5)
    assert n_changed == sum(int(np.sum(np.abs(g) > 1.5)) for g in before.values()) > 0
    for name, g in grads.items():
        expected = np.where(before[name] > 1.5, 1.5, np.where(before[name] < -1.5, -1.5, before[name]))
        assert_close(g, expected, rtol=0, each=True, name=f"clipped {name}")
    assert all(a is b for a, b in zip(arrays, grads.values())), "clip_by_value must work in place"
    assert cosine(flat(grads), flat(before)) < 1 - 1e-6, "value clipping should change the direction"
    assert clip_by_value(grads, 1.5) == 0


def test_clip_by_norm_per_tensor():
    grads = make_grads(scale=1.0)
    grads["b_y"] *= 0.01                      # stays below the threshold
    before = copy(grads)
    max_norm, eps = 1.0, 1e-6
    norms = clip_by_norm(grads, max_norm, eps=eps)
    for name, g in grads.items():
        norm = math.sqrt(float(np.sum(before[name] ** 2)))
        assert norms[name] == pytest.approx(norm, rel=1e-14)
        expected = before[name] * (max_norm / (norm + eps)) if norm + eps > max_norm else before[name]
        assert_close(g, expected, 1e-13, each=True, name=f"clipped {name}")
        assert cosine(g.ravel(), before[name].ravel()) == pytest.approx(1.0, abs=1e-12)
    assert np.array_equal(grads["b_y"], before["b_y"]), "a tensor under the threshold must be left as it is"
    assert np.linalg.norm(grads["W_hh"]) == pytest.approx(max_norm, rel=1e-5)


def test_clip_by_global_norm():
    grads = make_grads(scale=3.0)
    before = copy(grads)
    max_norm, eps = 2.0, 1e-6
    total = math.sqrt(float(np.sum(flat(before) ** 2)))
    assert clip_by_global_norm(grads, max_norm, eps=eps) == pytest.approx(total, rel=1e-14)
    for name, g in grads.items():
        assert_close(g, before[name] * (max_norm / (total + eps)), 1e-13, each=True, name=f"clipped {name}")
    assert global_norm(grads) == pytest.approx(max_norm, rel=1e-5)
    assert cosine(flat(grads), flat(before)) == pytest.approx(1.0, abs=1e-12), "direction must be kept"


def test_clip_by_global_norm_leaves_small_and_nonfinite_gradients():
    grads = make_grads(scale=0.01)
    before = copy(grads)
    assert clip_by_global_norm(grads, 5.0) == pytest.approx(global_norm(before), rel=1e-14)
    assert all(np.array_equal(grads[k], before[k]) for k in grads)
    grads["W_hh"][1, 2] = np.nan
    before = copy(grads)
    assert math.isnan(clip_by_global_norm(grads, 5.0))
    assert all(np.array_equal(grads[k], before[k], equal_nan=True) for k in grads)


@pytest.mark.parametrize("scale", [0.01, 3.0])
def test_clip_by_global_norm_matches_torch(scale):
    torch = pytest.importorskip("torch")
    grads = make_grads(scale=scale, seed=1)
    params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for p, g in zip(params, grads.values()):
        p.grad = torch.from_numpy(g.copy())
    torch_total = float(torch.nn.utils.clip_grad_norm_(params, max_norm=2.0))
    total = clip_by_global_norm(grads, 2.0)
    assert total == pytest.approx(torch_total, rel=1e-13)
    for (name, g), p in zip(grads.items(), params):
        assert_close(g, p.grad.numpy(), 1e-13, each=True, name=f"{name} vs torch")


CLIPPERS = [clip_by_value, clip_by_norm, clip_by_global_norm]


@pytest.mark.parametrize("clip", CLIPPERS)
@pytest.mark.parametrize("threshold", [0, -1, float("nan"), float("inf"), "abc"])
def test_bad_thresholds_are_rejected(clip, threshold):
    grads = make_grads()
    before = copy(grads)
    with pytest.raises(RnnvanishError, match="clip threshold must be a positive number"):
        clip(grads, threshold)
    assert all(np.array_equal(grads[k], before[k]) for k in grads)


def test_threshold_message_quotes_the_value():
    with pytest.raises(RnnvanishError, match=r"^clip threshold must be a positive number, got -1$"):
        clip_by_global_norm(make_grads(), -1)


def test_find_nonfinite():
    grads = make_grads()
    assert find_nonfinite(grads) == []
    grads["W_hh"][2, 3] = np.nan
    grads["W_hh"][4, 0] = np.inf
    grads["b_y"][1] = -np.inf
    assert find_nonfinite(grads) == [("W_hh", 2, (2, 3)), ("b_y", 1, (1,))]


def test_check_finite_policies():
    grads = make_grads()
    assert check_finite(grads, loss=2.3, step=4) is True
    assert set(NONFINITE_POLICIES) == {"raise", "skip"}
    with pytest.raises(RnnvanishError, match="policy"):
        check_finite(grads, policy="ignore")
    grads["W_hh"][0, 1] = np.nan
    grads["W_hh"][3, 3] = np.nan
    before = copy(grads)
    assert check_finite(grads, step=4, policy="skip") is False
    assert all(np.array_equal(grads[k], before[k], equal_nan=True) for k in grads)
    assert check_finite(make_grads(), loss=float("inf"), policy="skip") is False


def test_nonfinite_error_explains_what_happened():
    grads = make_grads()
    grads["W_hh"][0, 1] = np.nan
    grads["W_hh"][3, 3] = np.inf
    with pytest.raises(NonFiniteError) as info:
        check_finite(grads, loss=float("nan"), step=17)
    message = str(info.value)
    assert isinstance(info.value, RnnvanishError)
    for part in ("step 17", "loss is nan", "W_hh", "2 of 25", "(0, 1)", "learning rate", "--clip-norm"):
        assert part in message, f"{part!r} missing from: {message}"
    norm_W_xh = f"{np.linalg.norm(grads['W_xh']):.3g}"
    assert "W_xh" in message and norm_W_xh in message, f"finite norm {norm_W_xh} missing from: {message}"
