"""The cells' BPTT against central differences and against an explicit per-loss truncation."""
import numpy as np
import pytest

from conftest import assert_close
from rnnvanish.cells import GRU, LSTM, TanhRNN, make_cell
from rnnvanish.gradcheck import numerical_gradient, relative_error, states_in_cache, truncated_objective

CONFIGS = [("tanh", {"activation": "tanh"}), ("tanh", {"activation": "sigmoid"}), ("tanh", {"activation": "relu"}),
           ("lstm", {}), ("gru", {"reset_after": True}), ("gru", {"reset_after": False})]
IDS = ["tanh", "sigmoid", "relu", "lstm", "gru-after", "gru-before"]
I, H = 3, 5


def random_cell(name, options, seed=0, backend="numpy"):
    rng = np.random.default_rng(seed)
    cell = make_cell(name, I, H, seed=seed, backend=backend, **options)
    for p in cell.params.values():
        p += rng.normal(0.0, 0.4, p.shape)      # non-zero biases, off the initialiser's values
    return cell


def linear_losses(cell, T, B, seed):
    """E = sum_t <R_t, h_t> + <R_T', state_T>: dh = R, dstate_T = R_T'."""
    rng = np.random.default_rng(seed + 100)
    x = rng.normal(size=(T, B, I))
    state0 = tuple(rng.normal(0, 0.5, (B, H)) for _ in cell.state_names)
    R = rng.normal(size=(T, B, H))
    R_T = tuple(rng.normal(size=(B, H)) for _ in cell.state_names)
    return x, state0, R, R_T


@pytest.mark.parametrize("name,options", CONFIGS, ids=IDS)
@pytest.mark.parametrize("truncate", [None, 1, 3])
@pytest.mark.parametrize("T,B", [(1, 1), (7, 3), (4, 2)])
def test_dense_input_gradients_match_finite_differences(name, options, truncate, T, B):
    cell = random_cell(name, options)
    x, state0, R, R_T = linear_losses(cell, T, B, seed=T * 10 + B)
    _, _, cache = cell.forward(x, state0)
    fixed = states_in_cache(cell, cache)

    def step_loss(s, h_s, state_s):
        e = (R[s - 1] * h_s).sum()
        if s == T:                               # the final-state loss joins the last step
            e += sum((r * st).sum() for r, st in zip(R_T, state_s))
        return e

    def objective():
        return truncated_objective(cell, x, state0, step_loss, truncate, fixed)

    grads, dstate0, _ = cell.backward(R, cache, R_T, truncate=truncate)
    for pname, p in cell.params.items():
        err = relative_error(grads[pname], numerical_gradient(objective, p, 1e-5))
        assert err < 1e-7, f"{pname}: relative error {err:.2e}"
    for s0, ds0 in zip(state0, dstate0):
        err = relative_error(ds0, numerical_gradient(objective, s0, 1e-5))
        assert err < 1e-7, f"initial state: relative error {err:.2e}"


@pytest.mark.parametrize("name,options", CONFIGS, ids=IDS)
@pytest.mark.parametrize("truncate", [1, 2, 3])
def test_truncation_equals_sum_of_per_loss_windows(name, options, truncate):
    """truncate=k: the gradient is the sum, over losses s, of a full BPTT through the k-step
    sub-window ending at s that starts from the (fixed) state at step s-k."""
    T, B = 6, 2
    cell = random_cell(name, options, seed=3)
    x, state0, R, _ = linear_losses(cell, T, B, seed=7)
    _, _, cache = cell.forward(x, state0)
    fixed = states_in_cache(cell, cache)
    grads, dstate0, norms = cell.backward(R, cache, None, truncate=truncate)

    expected = {k: np.zeros_like(v) for k, v in cell.params.items()}
    expected_d0 = [np.zeros((B, H)) for _ in cell.state_names]
    for s in range(1, T + 1):
        start = max(s - truncate, 0)
        _, _, sub = cell.forward(x[start:s], state0 if start == 0 else fixed[start])
        dh = np.zeros((s - start, B, H))
        dh[-1] = R[s - 1]                        # only the loss at step s
        g, d0, _ = cell.backward(dh, sub, None, truncate=None)
        for k in expected:
            expected[k] += g[k]
        if start == 0:
            for acc, d in zip(expected_d0, d0):
                acc += d
    for k in expected:
        assert_close(grads[k], expected[k], rtol=1e-12, name=k)
    for got, want in zip(dstate0, expected_d0):
        assert_close(got, want, rtol=1e-12, atol=1e-15, name="dstate0")
    # and truncation really changes something when the window is longer than k
    full, _, _ = cell.backward(R, cache, None, truncate=None)
    assert not np.allclose(full["W_hh"], grads["W_hh"], rtol=1e-6)


@pytest.mark.parametrize("name,options", CONFIGS, ids=IDS)
def test_norms_are_gradient_norms_on_every_hidden_state(name, options):
    """Without truncation, norms['h'][k] = ||dE/dh_k||: compare with finite differences on h_k
    by perturbing the state carried into a window that starts at k."""
    T, B = 5, 2
    cell = random_cell(name, options, seed=5)
    x, state0, R, R_T = linear_losses(cell, T, B, seed=11)
    h, _, cache = cell.forward(x, state0)
    fixed = states_in_cache(cell, cache)
    _, _, norms = cell.backward(R, cache, R_T)
    for k in range(T + 1):
        start_state = [s.copy() for s in fixed[k]]

        def tail_loss(through_h=False):
            state = list(start_state)
            if through_h and k >= 1:
                # c_k is a node of the graph: h_k = o_k * tanh(c_k) moves with it
                o_k = cache["gates"][k - 1][:, 3 * H:]
                state[0] = o_k * np.tanh(state[1])
            hh, st, _ = cell.forward(x[k:], tuple(state)) if k < T else (None, tuple(state), None)
            e = 0.0 if hh is None else (R[k:] * hh[1:]).sum()
            e += (R[k - 1] * state[0]).sum() if k >= 1 else 0.0   # the loss on h_k itself
            return e + sum((r * s).sum() for r, s in zip(R_T, st))

        g_h = numerical_gradient(tail_loss, start_state[0], 1e-6)
        assert abs(np.linalg.norm(g_h) - norms["h"][k]) < 1e-6 * max(1.0, norms["h"][k]), f"step {k}"
        if "c" in norms:
            g_c = numerical_gradient(lambda: tail_loss(through_h=True), start_state[1], 1e-6)
            assert abs(np.linalg.norm(g_c) - norms["c"][k]) < 1e-6 * max(1.0, norms["c"][k]), f"c step {k}"


def test_token_input_equals_one_hot_dense_input():
    rng = np.random.default_rng(0)
    V, T, B = 6, 5, 3
    for name in ("tanh", "lstm", "gru"):
        cell = make_cell(name, V, H, seed=1, backend="numpy")
        ids = rng.integers(0, V, (T, B))
        onehot = np.eye(V)[ids]
        h_ids, _, c_ids = cell.forward(ids)
        h_dense, _, c_dense = cell.forward(onehot)
        assert_close(h_ids, h_dense, rtol=1e-13, name=f"{name} h")
        R = rng.normal(size=(T, B, H))
        g_ids, _, _ = cell.backward(R, c_ids)
        g_dense, _, _ = cell.backward(R, c_dense)
        for k in g_ids:
            assert_close(g_ids[k], g_dense[k], rtol=1e-12, name=f"{name} {k}")


def test_float32_runs_in_float32_and_agrees_with_float64():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 2, I))
    for cls in (TanhRNN, LSTM, GRU):
        c64 = cls(I, H, seed=2, backend="numpy")
        c32 = cls(I, H, seed=2, dtype="float32", backend="numpy")
        h64, _, _ = c64.forward(x)
        h32, _, cache = c32.forward(x)
        assert h32.dtype == np.float32
        assert_close(h32, h64, rtol=1e-5, atol=1e-6, name=cls.__name__)
        grads, _, _ = c32.backward(np.ones((4, 2, H), np.float32), cache)
        assert all(g.dtype == np.float32 for g in grads.values())


def test_lstm_forget_bias_and_gru_two_biases():
    lstm = LSTM(3, 4, forget_bias=1.0, backend="numpy")
    assert_close(lstm.params["b_h"][4:8], np.ones(4), name="forget bias")
    assert np.all(lstm.params["b_h"][:4] == 0) and np.all(lstm.params["b_h"][8:] == 0)
    gru = GRU(3, 4, backend="numpy")
    assert set(gru.params) == {"W_xh", "W_hh", "b_xh", "b_hh"}
    assert gru.params["W_xh"].shape == (3, 12) and gru.params["W_hh"].shape == (4, 12)


def test_radius_scales_each_recurrent_block():
    cell = LSTM(3, 6, radius=0.7, seed=0, backend="numpy")
    for g in range(4):
        block = cell.params["W_hh"][:, g * 6:(g + 1) * 6]
        assert abs(np.abs(np.linalg.eigvals(block)).max() - 0.7) < 1e-10


def test_bad_arguments_are_rejected():
    cell = TanhRNN(3, 4, backend="numpy")
    with pytest.raises(ValueError, match="activation"):
        TanhRNN(3, 4, activation="softsign")
    with pytest.raises(ValueError, match="shape"):
        cell.forward(np.zeros((2, 1, 5)))
    with pytest.raises(ValueError, match="token ids"):
        cell.forward(np.array([[3]]))
    _, _, cache = cell.forward(np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match="truncate"):
        cell.backward(np.zeros((2, 1, 4)), cache, truncate=0)
    with pytest.raises(ValueError, match="unknown cell"):
        make_cell("rnn", 3, 4)
    with pytest.raises(ValueError, match="dtype"):
        TanhRNN(3, 4, dtype="float16")
