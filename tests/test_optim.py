"""Optimisers against their update rules and torch.optim; state round trips; schedules; errors."""
import math

import numpy as np
import pytest

from conftest import assert_close

from rnnvanish.errors import RnnvanishError
from rnnvanish.optim import LR_SCHEDULES, OPTIMIZERS, make_optimizer, make_schedule


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return {"W_hh": rng.standard_normal((3, 4)), "b_h": rng.standard_normal(4)}


def grad_of(params):
    """Gradient of a small non-quadratic loss, so every step sees a different gradient."""
    return {k: np.tanh(p) + 0.3 * p ** 2 - 0.5 for k, p in params.items()}


# ----------------------------------------------------------------------------- independent rules
# Each rule maps (p, g, state, t, lr, hyper) -> (new p, new state) without touching its inputs.

def rule_sgd(p, g, s, t, lr, h):
    return p - lr * g, s


def rule_momentum(p, g, s, t, lr, h):
    buf = g if t == 1 else h["momentum"] * s["buf"] + g
    return p - lr * buf, {"buf": buf}


def rule_nesterov(p, g, s, t, lr, h):
    buf = g if t == 1 else h["momentum"] * s["buf"] + g
    return p - lr * (g + h["momentum"] * buf), {"buf": buf}


def rule_adagrad(p, g, s, t, lr, h):
    total = s.get("sum", 0.0) + g ** 2
    return p - lr * g / (np.sqrt(total) + h["eps"]), {"sum": total}


def rule_rmsprop(p, g, s, t, lr, h):
    a = h["alpha"]
    avg = a * s.get("avg", 0.0) + (1 - a) * g ** 2
    return p - lr * g / (np.sqrt(avg) + h["eps"]), {"avg": avg}


def rule_adam(p, g, s, t, lr, h):
    b1, b2 = h["beta1"], h["beta2"]
    m = b1 * s.get("m", 0.0) + (1 - b1) * g
    v = b2 * s.get("v", 0.0) + (1 - b2) * g ** 2
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + h["eps"]), {"m": m, "v": v}


# name -> (rule, hyperparameters given to both sides)
RULES = {
    "sgd": (rule_sgd, {}),
    "momentum": (rule_momentum, {"momentum": 0.8}),
    "nesterov": (rule_nesterov, {"momentum": 0.8}),
    "adagrad": (rule_adagrad, {"eps": 1e-10}),
    "rmsprop": (rule_rmsprop, {"alpha": 0.9, "eps": 1e-8}),
    "adam": (rule_adam, {"beta1": 0.8, "beta2": 0.95, "eps": 1e-8}),
}


def test_every_optimizer_has_a_rule():
    assert set(RULES) == set(OPTIMIZERS)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize("name", sorted(RULES))
def test_optimizer_follows_its_rule(name, weight_decay):
    rule, hyper = RULES[name]
    lr, n_steps = 0.05, 6
    params = make_params()
    opt = make_optimizer(name, params, lr, weight_decay=weight_decay, **hyper)
    expected = {k: p.copy() for k, p in params.items()}
    state = {k: {} for k in params}
    for t in range(1, n_steps + 1):
        opt.step(grad_of(params))
        for k in expected:
            g = grad_of({k: expected[k]})[k] + weight_decay * expected[k]
            expected[k], state[k] = rule(expected[k], g, state[k], t, lr, hyper)
    for k in params:
        assert_close(params[k], expected[k], 1e-12, 1e-14, each=True, name=f"{name} {k} after {n_steps} steps")
    assert opt.t == n_steps


@pytest.mark.parametrize("name", sorted(RULES))
def test_a_learning_rate_factor_is_the_rule_at_lr_times_the_factor(name):
    """A parameter with factor f follows its rule at lr * f under a schedule; the others at lr."""
    rule, hyper = RULES[name]
    params = make_params()
    opt = make_optimizer(name, params, 0.05, weight_decay=0.02, lr_factors={"W_hh": 0.1}, **hyper)
    expected = {k: p.copy() for k, p in params.items()}
    state = {k: {} for k in params}
    for t, lr in enumerate((0.05, 0.03, 0.01, 0.04), start=1):
        opt.step(grad_of(params), lr)
        for k in expected:
            g = grad_of({k: expected[k]})[k] + 0.02 * expected[k]
            expected[k], state[k] = rule(expected[k], g, state[k], t, lr * (0.1 if k == "W_hh" else 1.0), hyper)
    for k in params:
        assert_close(params[k], expected[k], 1e-12, 1e-14, each=True, name=f"{name} {k} with a factor on W_hh")


def test_a_factor_of_one_changes_no_bit():
    plain, scaled = make_params(), make_params()
    a = make_optimizer("adam", plain, 0.05)
    b = make_optimizer("adam", scaled, 0.05, lr_factors={"W_hh": 1.0, "b_h": 1.0})
    for _ in range(3):
        a.step(grad_of(plain))
        b.step(grad_of(scaled))
    for k in plain:
        assert np.array_equal(plain[k], scaled[k]), k


@pytest.mark.parametrize("factors, match", [({"W_xh": 0.1}, "no parameter named 'W_xh'"),
                                            ({"W_hh": 0.0}, "factor of W_hh must be positive"),
                                            ({"W_hh": math.nan}, "factor of W_hh must be positive")])
def test_learning_rate_factor_errors(factors, match):
    with pytest.raises(RnnvanishError, match=match):
        make_optimizer("adam", make_params(), 0.05, lr_factors=factors)


TORCH_CASES = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": 0.8}),
    "nesterov": ("SGD", {"momentum": 0.8, "nesterov": True}),
    "adagrad": ("Adagrad", {"eps": 1e-10}),
    "rmsprop": ("RMSprop", {"alpha": 0.9, "eps": 1e-8}),
    "adam": ("Adam", {"betas": (0.8, 0.95), "eps": 1e-8}),
}


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_optimizer_matches_torch(name):
    torch = pytest.importorskip("torch")
    cls_name, torch_kw = TORCH_CASES[name]
    lr, wd, n_steps = 0.05, 0.01, 10
    params = make_params(seed=1)
    torch_params = {k: torch.tensor(p.copy(), dtype=torch.float64, requires_grad=True) for k, p in params.items()}
    opt = make_optimizer(name, params, lr, weight_decay=wd, **RULES[name][1])
    torch_opt = getattr(torch.optim, cls_name)(list(torch_params.values()), lr=lr, weight_decay=wd, **torch_kw)
    for _ in range(n_steps):
        opt.step(grad_of(params))
        torch_grads = grad_of({k: p.detach().numpy() for k, p in torch_params.items()})
        for k, p in torch_params.items():
            p.grad = torch.from_numpy(torch_grads[k])
        torch_opt.step()
    for k in params:
        assert_close(params[k], torch_params[k].detach().numpy(), 1e-12, 1e-14, each=True, name=f"{name} {k} vs torch")


def test_step_is_in_place_and_leaves_grads_alone():
    params = make_params()
    W_hh = params["W_hh"]                       # the model keeps this very array
    before = W_hh.copy()
    grads = grad_of(params)
    grads_before = {k: g.copy() for k, g in grads.items()}
    make_optimizer("adam", params, 0.1, weight_decay=0.1).step(grads)
    assert params["W_hh"] is W_hh and not np.array_equal(W_hh, before)
    assert all(np.array_equal(grads[k], grads_before[k]) for k in grads)


def test_lr_override_applies_to_one_step():
    params, ref = make_params(), make_params()
    opt = make_optimizer("sgd", params, 0.1)
    g = grad_of(params)
    opt.step(g, lr=0.5)
    assert_close(params["W_hh"], ref["W_hh"] - 0.5 * g["W_hh"], 1e-12, 1e-14, each=True, name="step with lr=0.5")
    assert opt.lr == 0.1


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_round_trip_continues_bit_for_bit(name, tmp_path):
    k = 4
    straight = make_params()
    opt = make_optimizer(name, straight, 0.05, weight_decay=0.01)
    for _ in range(2 * k):
        opt.step(grad_of(straight))

    first = make_params()
    opt = make_optimizer(name, first, 0.05, weight_decay=0.01)
    for _ in range(k):
        opt.step(grad_of(first))
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    with np.load(tmp_path / "opt.npz") as f:
        saved = {key: f[key] for key in f.files}
    resumed = {key: p.copy() for key, p in first.items()}
    opt = make_optimizer(name, resumed, 0.05, weight_decay=0.01)
    opt.load_state_dict(saved)
    for _ in range(k):
        opt.step(grad_of(resumed))
    for key in straight:
        assert np.array_equal(resumed[key], straight[key]), (
            f"{name} {key}: resumed run differs from the straight run by "
            f"{np.abs(resumed[key] - straight[key]).max():.3e}")
    assert opt.t == 2 * k


def test_state_dict_layout():
    params = make_params()
    opt = make_optimizer("adam", params, 0.1)
    opt.step(grad_of(params))
    d = opt.state_dict()
    assert set(d) == {"optimizer", "step", "m/W_hh", "v/W_hh", "m/b_h", "v/b_h"}
    assert d["step"].shape == () and int(d["step"]) == 1 and str(d["optimizer"]) == "adam"
    d["m/W_hh"][:] = 7.0                         # a copy, not the live buffer
    assert not np.any(opt.state["m"]["W_hh"] == 7.0)


def test_load_state_dict_errors():
    params = make_params()
    adam_state = make_optimizer("adam", params, 0.1).state_dict()
    with pytest.raises(RnnvanishError, match="unexpected"):
        make_optimizer("sgd", params, 0.1).load_state_dict(adam_state)
    momentum_state = make_optimizer("momentum", params, 0.1).state_dict()
    with pytest.raises(RnnvanishError, match="momentum"):
        make_optimizer("nesterov", params, 0.1).load_state_dict(momentum_state)
    bad_shape = dict(adam_state, **{"m/W_hh": np.zeros((4, 3))})
    with pytest.raises(RnnvanishError, match="shape"):
        make_optimizer("adam", params, 0.1).load_state_dict(bad_shape)


def test_grad_mismatch_errors():
    params = make_params()
    opt = make_optimizer("sgd", params, 0.1)
    with pytest.raises(RnnvanishError, match="missing"):
        opt.step({"W_hh": np.zeros((3, 4))})
    with pytest.raises(RnnvanishError, match="shape"):
        opt.step({"W_hh": np.zeros((4, 3)), "b_h": np.zeros(4)})


@pytest.mark.parametrize("name, lr, kw, match", [
    ("lbfgs", 0.1, {}, "sgd, momentum, nesterov, adagrad, rmsprop, adam"),
    ("sgd", 0.0, {}, "learning rate must be positive"),
    ("adam", -1e-3, {}, "learning rate must be positive"),
    ("adam", float("nan"), {}, "learning rate"),
    ("sgd", 0.1, {"momentum": 0.9}, "does not take momentum"),
    ("momentum", 0.1, {"momentum": 1.5}, "momentum"),
    ("adam", 0.1, {"beta2": 1.0}, "beta2"),
    ("rmsprop", 0.1, {"weight_decay": -0.1}, "weight decay"),
])
def test_make_optimizer_errors(name, lr, kw, match):
    with pytest.raises(RnnvanishError, match=match):
        make_optimizer(name, make_params(), lr, **kw)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_make_optimizer_passes_the_backend_to_adam_alone(name, monkeypatch):
    from rnnvanish import kernels, reference
    monkeypatch.delenv("RNNVANISH_BACKEND", raising=False)
    for backend, kernel in (("numba", kernels.adam_update), ("numpy", reference.adam_update),
                            (None, kernels.adam_update)):
        opt = make_optimizer(name, make_params(), 0.1, backend=backend)
        assert getattr(opt, "_kernel", None) is (kernel if name == "adam" else None), (name, backend)
    monkeypatch.setenv("RNNVANISH_BACKEND", "numpy")
    expected = reference.adam_update if name == "adam" else None
    assert getattr(make_optimizer(name, make_params(), 0.1), "_kernel", None) is expected
    with pytest.raises(RnnvanishError, match="unknown backend"):
        make_optimizer(name, make_params(), 0.1, backend="cuda")


# ----------------------------------------------------------------------------- schedules

S, BASE = 12, 0.2


@pytest.mark.parametrize("name, kw, formula", [
    ("constant", {}, lambda s: BASE),
    ("step", {"step_size": 5, "gamma": 0.5}, lambda s: BASE * 0.5 ** (s // 5)),
    ("exponential", {"gamma": 0.9}, lambda s: BASE * 0.9 ** min(s, S)),
    ("exponential", {}, lambda s: BASE * 100 ** (-min(s, S) / S)),
    ("cosine", {}, lambda s: BASE * (1 + math.cos(math.pi * min(s, S) / S)) / 2),
    ("cosine", {"min_lr": 0.05}, lambda s: 0.05 + (BASE - 0.05) * (1 + math.cos(math.pi * min(s, S) / S)) / 2),
    ("linear", {}, lambda s: BASE * max(0.0, 1 - s / S)),
])
def test_schedule_formulas(name, kw, formula):
    lr_at = make_schedule(name, BASE, S, **kw)
    for s in [0, 1, 5, 6, 11, 12, 20]:
        assert lr_at(s) == pytest.approx(formula(s), rel=1e-12, abs=1e-15), f"{name} at step {s}"
    assert lr_at(0) == pytest.approx(BASE, rel=1e-15)


def test_schedule_landmarks():
    assert make_schedule("cosine", BASE, S)(S // 2) == pytest.approx(BASE / 2, rel=1e-12)
    assert make_schedule("cosine", BASE, S)(S) == pytest.approx(0.0, abs=1e-15)
    assert make_schedule("linear", BASE, S)(S // 2) == pytest.approx(BASE / 2, rel=1e-12)
    assert make_schedule("exponential", BASE, S)(S) == pytest.approx(BASE / 100, rel=1e-12)
    assert set(LR_SCHEDULES) == {"constant", "step", "exponential", "cosine", "linear"}


@pytest.mark.parametrize("name, base_lr, total, kw, match", [
    ("warmup", 0.1, 10, {}, "constant, step, exponential, cosine, linear"),
    ("cosine", 0.1, 0, {}, "total steps"),
    ("cosine", 0.1, 10, {"gamma": 0.5}, "does not take gamma"),
    ("step", 0.1, 10, {"gamma": 0.0}, "gamma"),
    ("step", 0.1, 10, {"step_size": 0}, "step_size"),
    ("linear", 0.1, 10, {"min_lr": 0.5}, "min_lr"),
    ("constant", -0.1, 10, {}, "learning rate"),
])
def test_make_schedule_errors(name, base_lr, total, kw, match):
    with pytest.raises(RnnvanishError, match=match):
        make_schedule(name, base_lr, total, **kw)


def test_schedule_rejects_negative_step():
    with pytest.raises(RnnvanishError, match="zero or more"):
        make_schedule("constant", 0.1, 10)(-1)


# -- the clipping factor inside the update ---------------------------------------------------------

@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name,weight_decay", [("adam", 0.0), ("adam", 0.1), ("sgd", 0.0), ("rmsprop", 0.01)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_scaled_step_equals_the_step_on_clipped_gradients_bit_for_bit(name, weight_decay, dtype, backend):
    """step(grads, scale=c) gives the bits of clip_by_global_norm(grads) then step(grads)."""
    from rnnvanish.clip import clip_by_global_norm, clip_coefficient, global_norm
    rng = np.random.default_rng(7)
    shapes = {"W": (5, 7), "b": (7,), "V": (3, 2, 4)}
    start = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    fused_p, plain_p = ({k: v.copy() for k, v in start.items()} for _ in range(2))
    kw = {"backend": backend} if name == "adam" else {}
    fused, plain = (make_optimizer(name, p, 1e-2, weight_decay=weight_decay, **kw) for p in (fused_p, plain_p))
    clipped_steps = 0
    for _ in range(4):
        grads = {k: (3 * rng.standard_normal(s)).astype(dtype) for k, s in shapes.items()}
        scale = clip_coefficient(global_norm(grads), 5.0)
        clipped_steps += scale < 1.0
        kept = {k: g.copy() for k, g in grads.items()}
        fused.step(grads, scale=scale)
        for k in grads:                                        # the gradients are left as they were
            np.testing.assert_array_equal(grads[k], kept[k])
        clip_by_global_norm(grads, 5.0)
        plain.step(grads)
        for k in shapes:
            np.testing.assert_array_equal(fused_p[k], plain_p[k], err_msg=f"{name} {k}")
    assert clipped_steps == 4                                  # norms about 3 sqrt(55) > 5: every step clips


def test_clip_coefficient_is_the_factor_of_clip_by_global_norm():
    from rnnvanish.clip import clip_coefficient
    assert clip_coefficient(10.0, 5.0, eps=0.0) == 0.5
    assert clip_coefficient(10.0, 5.0) == 5.0 / (10.0 + 1e-6)
    assert clip_coefficient(4.0, 5.0) == 1.0                   # under the threshold: untouched
    assert clip_coefficient(float("inf"), 5.0) == 1.0          # not finite: left for the diagnosis
    assert clip_coefficient(float("nan"), 5.0) == 1.0


def test_training_clips_inside_the_update_as_it_did_before():
    """The engine folds the global-norm factor into the update; a clip by value that changes
    nothing sends the same run through clip_by_global_norm and a plain update instead. Same
    parameters bit for bit; the logged clipped norm within rounding of the recomputed one."""
    from conftest import make_lm_trainer
    fused = make_lm_trainer(clip_norm=0.05, lr=1e-2, backend="numba")
    plain = make_lm_trainer(clip_norm=0.05, lr=1e-2, backend="numba", clip_value=1e30)
    for _ in range(4):
        a, b = fused.train_step(), plain.train_step()
        assert a.clipped and b.clipped and a.norm > 0.05       # every step clips
        assert a.norm == b.norm
        assert a.norm_clipped == pytest.approx(b.norm_clipped, rel=1e-12)
        for k, p in fused.model.params.items():
            np.testing.assert_array_equal(p, plain.model.params[k], err_msg=k)
