"""The gradient tracer against definitions: step Jacobians and the lag profile against central
finite differences, contributions against truncated BPTT, product norms against explicit
products and the Pascanu et al. bound, decay and growth regimes, LSTM vs tanh, files."""
import json

import numpy as np
import pytest

from conftest import assert_close
from rnnvanish.cells import make_cell
from rnnvanish.errors import RnnvanishError
from rnnvanish.model import LanguageModel
from rnnvanish.tracer import (Trace, dense_inputs, load_training_traces, record_training_trace, step_jacobians,
                              trace, unit_directions)
from rnnvanish.tracer.jacobians import Chain, step_chain
from rnnvanish.tracer.products import exact_log_norms, largest_eigenvalues, singular_values_to_end, sketch_log_norms

CELLS = [("tanh", {}), ("tanh", {"activation": "sigmoid"}), ("tanh", {"activation": "relu"}),
         ("lstm", {}), ("gru", {}), ("gru", {"reset_after": False})]
IDS = ["tanh", "sigmoid", "relu", "lstm", "gru", "gru-before"]


def tiny_cell(name, options, H=5, I=3, seed=1, **kw):
    kw.setdefault("init_hh", "normal:0.6")
    cell = make_cell(name, I, H, seed=seed, backend="numpy", **kw, **options)
    rng = np.random.default_rng(seed + 100)
    for key in ("b_h", "b_xh", "b_hh"):                      # nonzero biases reach every term
        if key in cell.params:
            cell.params[key] += 0.3 * rng.standard_normal(cell.params[key].shape)
    return cell


def tiny_inputs(T=4, B=2, I=3, seed=0):
    return np.random.default_rng(seed).standard_normal((T, B, I))


def random_state(cell, B, seed=5):
    rng = np.random.default_rng(seed)
    return tuple(0.5 * rng.standard_normal((B, cell.hidden_size)) for _ in cell.state_names)


def run_from(cell, x, state):
    """The final carry after feeding x (T, B, I) from `state`, stacked: h (and c)."""
    _, state_T, _ = cell.forward(x, state)
    return np.concatenate(state_T, axis=1)


def central_jacobian(f, s0, eps=1e-6):
    """d f / d s at s0 by central differences, columns = input coordinates."""
    cols = []
    for j in range(s0.size):
        d = np.zeros_like(s0)
        d[j] = eps
        cols.append((f(s0 + d) - f(s0 - d)) / (2 * eps))
    return np.stack(cols, axis=1)


# --------------------------------------------------------------------------- step Jacobians

@pytest.mark.parametrize("name,options", CELLS, ids=IDS)
def test_step_jacobians_match_finite_differences(name, options):
    cell = tiny_cell(name, options)
    x = tiny_inputs()
    state = random_state(cell, 2)
    _, _, cache = cell.forward(x, state)
    b, H = 1, cell.hidden_size
    J = step_jacobians(cell, cache, b)
    n = 2 * H if name == "lstm" else H
    assert J.shape == (4, n, n)
    for t in range(1, 5):
        s_prev = np.concatenate([cache["h"][t - 1, b]] + ([cache["c"][t - 1, b]] if name == "lstm" else []))

        def step(s):
            parts = tuple(p[None, :] for p in np.split(s, len(cell.state_names)))
            return run_from(cell, x[t - 1:t, b:b + 1], parts)[0]

        assert_close(J[t - 1], central_jacobian(step, s_prev), rtol=1e-7, atol=1e-9, name=f"J_{t}")


# --------------------------------------------------------------------------- lag profile

@pytest.mark.parametrize("name,options", CELLS, ids=IDS)
def test_lag_profile_matches_finite_differences(name, options):
    """||dE_T/dh_k|| (and dc_k) with E_T = u_b . h_T, perturbing the state at step k and re-running."""
    cell = tiny_cell(name, options)
    T, B, H = 4, 2, cell.hidden_size
    x = tiny_inputs(T, B)
    state = random_state(cell, B)
    tr = trace(cell, x, state=state, seed=3, jacobians=False)
    u = unit_directions(B, H, seed=3)
    _, _, cache = cell.forward(x, state)
    for b in range(B):
        for k in range(T + 1):
            h_k, parts = cache["h"][k, b], [cache["h"][k, b]]
            if name == "lstm":
                parts.append(cache["c"][k, b])

            def loss(s):
                carry = tuple(p[None, :] for p in np.split(s, len(parts)))
                h_T = run_from(cell, x[k:, b:b + 1], carry)[0, :H] if k < T else s[:H]
                return np.array([u[b] @ h_T])

            grad = central_jacobian(loss, np.concatenate(parts))[0]
            assert abs(tr.grad_h[b, T - k] - np.linalg.norm(grad[:H])) <= 1e-7 * max(1.0, np.linalg.norm(grad)), \
                f"seq {b} step {k}: traced {tr.grad_h[b, T - k]:.10g}, fd {np.linalg.norm(grad[:H]):.10g}"
            if name == "lstm":
                # dE_T/dc_k as backprop defines it: h_k = o_k tanh(c_k) moves with c_k (for k >= 1)
                o_k = cache["gates"][k - 1, b, 3 * H:] if k >= 1 else None

                def loss_c(c):
                    h = o_k * np.tanh(c) if k >= 1 else h_k
                    return loss(np.concatenate([h, c]))

                dc = central_jacobian(loss_c, cache["c"][k, b])[0]
                assert abs(tr.grad_c[b, T - k] - np.linalg.norm(dc)) <= 1e-7 * max(1.0, np.linalg.norm(dc)), \
                    f"seq {b} step {k}: traced dc {tr.grad_c[b, T - k]:.10g}, fd {np.linalg.norm(dc):.10g}"


@pytest.mark.parametrize("name,options", CELLS, ids=IDS)
def test_lag_profile_agrees_with_cell_backward_over_the_batch(name, options):
    """The per-sequence norms combine to the kernel's batch norms for the same loss at T."""
    cell = tiny_cell(name, options, H=6)
    T, B = 7, 3
    x = tiny_inputs(T, B)
    tr = trace(cell, x, seed=2, jacobians=False)
    u = unit_directions(B, 6, seed=2)
    _, _, cache = cell.forward(x)
    dstate = (u, np.zeros_like(u)) if name == "lstm" else (u,)
    _, _, norms = cell.backward(None, cache, dstate)
    assert_close(np.sqrt((tr.grad_h ** 2).sum(axis=0)), norms["h"][::-1], rtol=1e-12, name="batch norms h")
    if name == "lstm":
        assert_close(np.sqrt((tr.grad_c ** 2).sum(axis=0)), norms["c"][::-1], rtol=1e-12, name="batch norms c")


@pytest.mark.parametrize("name,options", CELLS, ids=IDS)
def test_contributions_are_the_terms_of_truncated_bptt(name, options):
    """Term k of dE_T/dW_hh = (gradient truncated to T-k+1 steps) - (truncated to T-k steps)."""
    cell = tiny_cell(name, options)
    T = 5
    x = tiny_inputs(T, 1)
    state = random_state(cell, 1)
    tr = trace(cell, x, state=state, seed=4, jacobians=False)
    u = unit_directions(1, cell.hidden_size, seed=4)
    _, _, cache = cell.forward(x, state)
    dstate = (u, np.zeros_like(u)) if name == "lstm" else (u,)
    dW = [np.zeros_like(cell.params["W_hh"])]
    for m in range(1, T + 1):
        grads, _, _ = cell.backward(None, cache, dstate, truncate=m if m < T else None)
        dW.append(grads["W_hh"])
    expected = np.array([np.linalg.norm(dW[lag + 1] - dW[lag]) for lag in range(T)])
    assert_close(tr.contribution[0], expected, rtol=1e-10, atol=1e-14, name="contribution by lag")


def test_trace_of_a_language_model_with_carried_state_and_corners():
    model = LanguageModel("lstm", vocab_size=7, hidden_size=4, seed=0, backend="numpy")
    ids = np.random.default_rng(0).integers(0, 7, size=(6, 2))
    state = random_state(model.cell, 2)
    tr = trace(model, ids, state=state, jacobians=True)
    direct = trace(model.cell, ids, state=state, jacobians=True)
    assert_close(tr.grad_h, direct.grad_h, rtol=0, name="LM vs its cell")
    assert tr.grad_h.shape == (2, 7) and tr.contribution.shape == (2, 6) and tr.jacobian_log10.shape == (6, 6)
    assert np.allclose(tr.grad_h[:, 0], 1.0)                 # unit directions
    one = trace(make_cell("tanh", 3, 4, backend="numpy"), tiny_inputs(1, 1), jacobians=True)   # T = 1, B = 1
    assert one.grad_h.shape == (1, 2) and one.jacobian_log10.shape == (1, 1)
    with pytest.raises(RnnvanishError):
        trace(model, ids, sequence=2)
    with pytest.raises(RnnvanishError):
        trace(model, np.zeros((0, 2), dtype=np.int64))


# --------------------------------------------------------------------------- Jacobian products

def explicit_log_norms(J):
    """log10 ||J_t ... J_{k+1}||_2 by the definition, pair by pair."""
    T = J.shape[0]
    out = np.full((T, T), np.nan)
    for k in range(T):
        for t in range(k + 1, T + 1):
            P = np.eye(J.shape[1])
            for j in range(k + 1, t + 1):
                P = J[j - 1] @ P
            out[t - 1, k] = np.log10(np.linalg.norm(P, 2))
    return out


@pytest.mark.parametrize("name,options", CELLS, ids=IDS)
def test_exact_product_norms_match_explicit_products(name, options):
    cell = tiny_cell(name, options)
    _, _, cache = cell.forward(tiny_inputs(6, 1))
    J = step_jacobians(cell, cache, 0)
    got, expected = exact_log_norms(J), explicit_log_norms(J)
    t, k = np.tril_indices(6)
    assert_close(got[t, k], expected[t, k], rtol=1e-10, name="log10 norms")
    assert np.isnan(got[np.triu_indices(6, 1)]).all()


@pytest.mark.parametrize("name", ["gru", "lstm"])      # the LSTM's products use its diagonal blocks
def test_singular_values_to_the_end_match_an_svd_of_the_product(name):
    cell = tiny_cell(name, {}, H=6)
    _, _, cache = cell.forward(tiny_inputs(9, 1))
    J = step_jacobians(cell, cache, 0)
    lags = np.array([1, 3, 9])
    got = singular_values_to_end(J, lags, count=3)
    for i, lag in enumerate(lags):
        P = np.eye(J.shape[1])
        for j in range(9 - lag + 1, 10):
            P = J[j - 1] @ P
        assert_close(got[i], np.log10(np.linalg.svd(P, compute_uv=False)[:3]), rtol=1e-10, name=f"sv lag {lag}")


@pytest.mark.parametrize("init,activation", [("orthogonal", "tanh"), ("normal:1.0", "tanh"),
                                             ("glorot_uniform", "sigmoid"), ("normal:0.3", "relu")])
def test_tanh_family_jacobian_norms_lie_under_the_bound(init, activation):
    """||dh_t/dh_k||_2 <= (gamma sigma_max(W_hh))^(t-k) for every pair (Pascanu et al. 2013)."""
    cell = make_cell("tanh", 3, 8, init_hh=init, activation=activation, seed=2, backend="numpy")
    x = tiny_inputs(20, 3)
    tr = trace(cell, x, method="exact")
    base = cell.gamma * np.linalg.norm(cell.params["W_hh"], 2)
    assert tr.bound_base == pytest.approx(base, rel=1e-12)
    t, k = np.tril_indices(20)
    lag = t + 1 - k
    measured, bound = tr.jacobian_log10[t, k], lag * np.log10(base)
    excess = measured - bound
    assert np.all(excess <= 1e-10), (f"{np.sum(excess > 1e-10)} pairs above the bound; worst by "
                                     f"{excess.max():.3g} decades at lag {lag[np.argmax(excess)]}")
    # the lag profile obeys the same bound, sequence by sequence
    assert np.all(tr.grad_h <= tr.bound[None, :] * (1 + 1e-10))


@pytest.mark.parametrize("name", ["tanh", "lstm", "gru"])
def test_sketch_is_a_close_lower_bound_and_exact_at_full_rank(name):
    cell = make_cell(name, 3, 12, seed=3, backend="numpy")
    _, _, cache = cell.forward(tiny_inputs(25, 1))
    J = step_jacobians(cell, cache, 0)
    exact = exact_log_norms(J)
    t, k = np.tril_indices(25)
    sketch = sketch_log_norms(J, rank=4, sweeps=2)
    gap = exact[t, k] - sketch[t, k]                        # decades below the exact norm
    assert gap.min() >= -1e-5, f"sketch above the exact norm by {-gap.min():.2g} decades"
    assert gap.max() <= np.log10(2.0), f"sketch more than a factor 2 low somewhere ({10 ** gap.max():.3g})"
    full = sketch_log_norms(J, rank=J.shape[1], sweeps=1)    # a full basis sees every direction
    assert_close(full[t, k], exact[t, k], rtol=0, atol=1e-3, name="sketch at full rank (float32)")


@pytest.mark.parametrize("name,options", CELLS, ids=IDS)
def test_chain_products_equal_dense_products(name, options):
    cell = tiny_cell(name, options)
    _, _, cache = cell.forward(tiny_inputs(T=5), None)
    chain = step_chain(cell, cache, 1)
    J = step_jacobians(cell, cache, 1)
    assert (chain.H is not None) == (name == "lstm")                  # the LSTM keeps its blocks
    found = Chain(J)                                                     # a dense J: the blocks found again
    assert found.H == chain.H
    Z = np.random.default_rng(3).standard_normal((3, J.shape[1]))
    for t in range(J.shape[0]):
        for transpose in (False, True):
            want = Z @ (J[t].T if transpose else J[t])
            for c in (chain, found, Chain(chain, dtype=np.float64)):
                assert_close(c.times(t, Z, np.empty_like(Z), transpose), want, rtol=1e-12, name=f"t={t}")
    stack = np.random.default_rng(4).standard_normal((J.shape[0], 2, J.shape[1]))
    for transpose in (False, True):
        want = stack @ (J.transpose(0, 2, 1) if transpose else J)
        assert_close(chain.stack_times(stack, transpose), want, rtol=1e-12, name="stack")


def test_largest_eigenvalues_by_squaring_match_lapack():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((500, 6, 6))
    G = A @ A.transpose(0, 2, 1)
    G[0] = 0.0
    expected = np.linalg.eigvalsh(G)[:, -1]
    got = largest_eigenvalues(G)
    assert got[0] == 0.0
    ratio = got[1:] / expected[1:]                          # a Rayleigh quotient never exceeds lambda_max
    assert np.all(ratio <= 1 + 1e-12) and np.all(ratio >= 1 - 3e-3), \
        f"ratio to LAPACK's lambda_max in [{ratio.min():.6f}, {ratio.max():.6f}]; first {got[1:4]} vs {expected[1:4]}"


# --------------------------------------------------------------------------- regimes

def test_contracting_tanh_rnn_decays_at_least_geometrically():
    """gamma sigma_max(W_hh) < 1: each step back shrinks the signal by at least that factor."""
    cell = make_cell("tanh", 4, 16, init_hh="glorot_uniform", radius=0.5, seed=1, backend="numpy")
    base = cell.gamma * np.linalg.norm(cell.params["W_hh"], 2)
    assert base < 1
    x, _ = dense_inputs(40, 8, 4, seed=1)
    tr = trace(cell, x, jacobians=False)
    ratio = tr.grad_h[:, 1:] / tr.grad_h[:, :-1]
    assert np.all(ratio <= base * (1 + 1e-10)), f"largest per-step ratio {ratio.max():.4g} > bound {base:.4g}"
    assert tr.decay_per_step <= base


def test_orthogonal_recurrence_above_radius_one_grows_with_small_inputs():
    cell = make_cell("tanh", 4, 16, init_hh="orthogonal", radius=1.5, seed=1, backend="numpy")
    x, _ = dense_inputs(25, 8, 4, scale=1e-7, seed=1)
    tr = trace(cell, x, jacobians=False)
    lags = np.arange(26)
    assert np.all(np.diff(tr.grad_h, axis=1) > 0), "the signal should grow at every step back"
    low = tr.grad_h[:, 1:] / 1.3 ** lags[1:]
    assert np.all(low >= 1), f"signal below 1.3^lag by a factor {low.min():.3g} at lag {np.argmin(low.min(0)) + 1}"
    assert 1.3 < tr.decay_per_step <= 1.5 * (1 + 1e-9)


def test_lstm_with_forget_bias_one_keeps_more_signal_at_lag_50_than_a_tanh_rnn(capsys):
    H, T, B = 32, 60, 16
    x, _ = dense_inputs(T, B, 8, scale=1.0, seed=0)
    kept = {}
    for name in ("tanh", "lstm"):
        cell = make_cell(name, 8, H, seed=0, backend="numpy", **({"forget_bias": 1.0} if name == "lstm" else {}))
        kept[name] = trace(cell, x, jacobians=False).signal_at(50)
    factor = kept["lstm"] / kept["tanh"]
    with capsys.disabled():
        print(f"\n  signal left at lag 50 (median, H={H}, unit-scale inputs): LSTM {kept['lstm']:.3g}, "
              f"tanh RNN {kept['tanh']:.3g}, factor {factor:.3g}")
    assert factor > 10, f"LSTM keeps only {factor:.3g} times the tanh RNN's signal at lag 50"


# --------------------------------------------------------------------------- files

def test_save_load_round_trip_and_tidy_csv(tmp_path):
    cell = make_cell("lstm", 3, 5, seed=0, backend="numpy")
    tr = trace(cell, tiny_inputs(8, 3), label="lstm test", info={"note": "round trip"})
    npz, csv = tr.save(tmp_path / "t")
    assert npz.name == "t.npz" and csv.name == "t.csv"
    back = Trace.load(npz)
    for name in ("grad_h", "grad_c", "contribution", "jacobian_log10", "sv_lags", "sv_log10"):
        np.testing.assert_array_equal(getattr(back, name), getattr(tr, name), err_msg=name)
    assert {k: v for k, v in back.meta.items() if k not in ("format", "version")} == json.loads(json.dumps(tr.meta))
    assert back.label == "lstm test"
    lines = csv.read_text().splitlines()
    assert lines[0] == "quantity,lag,k,t,value,q10,q90"
    rows = [line.split(",") for line in lines[1:]]
    by_quantity = {}
    for r in rows:
        by_quantity.setdefault(r[0], []).append(r)
    assert len(by_quantity["grad_h"]) == 9 and len(by_quantity["grad_c"]) == 9
    assert len(by_quantity["contribution"]) == 8 and len(by_quantity["jacobian"]) == 8 * 9 // 2
    median = tr.profile("h")[0]
    assert_close(np.array([float(r[4]) for r in by_quantity["grad_h"]]), median, rtol=1e-5, name="csv medians")
    for r in by_quantity["jacobian"]:
        assert int(r[1]) == int(r[3]) - int(r[2]) >= 1


def test_load_rejects_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(RnnvanishError, match="does not exist"):
        Trace.load(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(RnnvanishError, match="corrupt"):
        Trace.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(RnnvanishError, match="not an rnnvanish trace"):
        Trace.load(tmp_path / "other.npz")


def test_training_traces_are_recorded_and_gathered_by_step(tmp_path):
    model = LanguageModel("tanh", vocab_size=6, hidden_size=5, seed=0, backend="numpy")
    rng = np.random.default_rng(0)
    folder = tmp_path / "run" / "traces"
    for step, T in ((20, 7), (0, 5), (10, 7)):
        state = random_state(model.cell, 3, seed=step)
        path = record_training_trace(model, rng.integers(0, 6, size=(T, 3)), state, step, folder)
        assert path.name == f"lag_{step:08d}.npz"
        model.params["W_hh"] *= 1.1                          # the weights change between traces
    history = load_training_traces(tmp_path / "run")         # the run folder works too
    assert list(history.steps) == [0, 10, 20]
    assert history.grad_h.shape == (3, 8) and history.contribution.shape == (3, 7)
    assert np.isnan(history.grad_h[0, 6:]).all() and np.isfinite(history.grad_h[1]).all()
    step10 = Trace.load(folder / "lag_00000010.npz")
    assert_close(history.grad_h[1], step10.profile("h")[0], rtol=0, name="gathered median")
    assert history.grad_c is None and history.decay_per_step.shape == (3,)
    with pytest.raises(RnnvanishError, match="no training traces"):
        load_training_traces(tmp_path)


def test_numba_backend_traces_the_same(monkeypatch):
    x = tiny_inputs(9, 2)
    for name in ("tanh", "lstm", "gru"):
        a = trace(make_cell(name, 3, 5, seed=0, backend="numpy"), x)
        b = trace(make_cell(name, 3, 5, seed=0, backend="numba"), x)
        assert_close(b.grad_h, a.grad_h, rtol=1e-10, name=f"{name} grad_h")
        assert_close(b.jacobian_log10[np.tril_indices(9)], a.jacobian_log10[np.tril_indices(9)], rtol=1e-10,
                     name=f"{name} jacobians")
