"""Recurrent dropout and zoneout inside the recurrence (`CellMasks`), on both backends.

Central differences (float64, relative error <= 1e-7) for every cell with each kind of mask,
T in {1, 7}, B in {1, 3}, truncate in {None, 3}: every parameter, the initial carry and the
dense input (cache["dx"]). The Numba kernels equal the reference on the same grid. Without
masks the cells call the kernels exactly as before; zoneout of all ones freezes the state
and its lag profile; zoneout at evaluation (d = p) is the expectation of the update.
"""
import numpy as np
import pytest

from conftest import CELL_CONFIGS, CELL_IDS, assert_close
from rnnvanish import kernels, reference
from rnnvanish.cells import CellMasks, make_cell
from rnnvanish.gradcheck import numerical_gradient, relative_error, states_in_cache

I, H, P = 3, 5, 0.3
RTOL = {np.float64: 1e-10, np.float32: 1e-4}
KINDS = ["recurrent", "zoneout", "both"]


def random_cell(name, options, seed=0, backend="numpy", dtype=np.float64):
    rng = np.random.default_rng(seed)
    cell = make_cell(name, I, H, seed=seed, backend=backend, dtype=dtype, **options)
    for p in cell.params.values():
        p += rng.normal(0.0, 0.4, p.shape).astype(dtype)      # non-zero biases, off the initialiser's values
    return cell


def random_masks(kind, T, B, seed, dtype=np.float64, zoneout_value=None):
    """0 or 1/(1-P) recurrent dropout; 0/1 zoneout (or the constant `zoneout_value`); each mask
    holds both values, so neither is the identity nor all zeros."""
    rng = np.random.default_rng(seed + 1000)
    m = d = None
    if kind in ("recurrent", "both"):
        m = (rng.random((B, H)) >= P) / (1.0 - P)
        m[0, :2] = 0.0, 1.0 / (1.0 - P)
        m = m.astype(dtype)
    if kind in ("zoneout", "both"):
        if zoneout_value is None:
            d = (rng.random((T, B, H)) < P).astype(dtype)
            d[0, 0, :2] = 1.0, 0.0
        else:
            d = np.full((T, B, H), zoneout_value, dtype=dtype)
    return CellMasks(recurrent=m, zoneout=d)


def window_masks(masks, start, stop):
    """The masks of steps start+1..stop: the recurrent mask is per sequence, zoneout per step."""
    if masks is None:
        return None
    d = None if masks.zoneout is None else masks.zoneout[start:stop]
    return CellMasks(recurrent=masks.recurrent, zoneout=d)


def masked_objective(cell, x, state0, masks, R, R_T, truncate, fixed):
    """E_k = sum_s <R_s, h_s> (+ <R_T, state_T> at s = T) where the loss at step s sees at most
    k steps back: from the fixed state of step s - k, with the masks of its steps."""
    T = len(x)
    k = T if truncate is None or truncate >= T else truncate
    total = 0.0
    if k == T:
        h, state_T, _ = cell.forward(x, state0, masks)
        total += (R * h[1:]).sum()
        return total + sum((r * s).sum() for r, s in zip(R_T, state_T))
    for s in range(1, T + 1):
        start = max(s - k, 0)
        h, state_s, _ = cell.forward(x[start:s], state0 if start == 0 else fixed[start], window_masks(masks, start, s))
        total += (R[s - 1] * h[-1]).sum()
        if s == T:
            total += sum((r * st).sum() for r, st in zip(R_T, state_s))
    return total


def gradient_errors(cell, T, B, masks, truncate, seed):
    """Relative errors of every analytic gradient (parameters, initial carry, dense input)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, B, I))
    state0 = tuple(rng.normal(0, 0.5, (B, H)) for _ in cell.state_names)
    R = rng.normal(size=(T, B, H))
    R_T = tuple(rng.normal(size=(B, H)) for _ in cell.state_names)
    _, _, cache = cell.forward(x, state0, masks)
    fixed = states_in_cache(cell, cache)
    grads, dstate0, _ = cell.backward(R, cache, R_T, truncate=truncate)

    def objective():
        return masked_objective(cell, x, state0, masks, R, R_T, truncate, fixed)

    rows = [(name, grads[name], numerical_gradient(objective, p, 1e-5)) for name, p in cell.params.items()]
    rows += [(f"{n}0", ds, numerical_gradient(objective, s, 1e-5)) for n, s, ds in zip(cell.state_names, state0, dstate0)]
    rows.append(("x", cache["dx"], numerical_gradient(objective, x, 1e-5)))
    return [(name, relative_error(a, n), float(np.abs(a).max())) for name, a, n in rows]


# --------------------------------------------------------------------------- exact gradients

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("truncate", [None, 3])
@pytest.mark.parametrize("T,B", [(1, 1), (1, 3), (7, 1), (7, 3)])
@pytest.mark.parametrize("name,options", CELL_CONFIGS, ids=CELL_IDS)
def test_masked_gradients_match_finite_differences(name, options, T, B, truncate, kind):
    cell = random_cell(name, options, seed=T + 10 * B)
    masks = random_masks(kind, T, B, seed=T + 10 * B)
    for pname, err, magnitude in gradient_errors(cell, T, B, masks, truncate, seed=3 * T + B):
        assert magnitude > 0.0, f"{pname}: gradient is identically zero, the check would be empty"
        assert err <= 1e-7, f"{pname}: relative error {err:.2e}"


@pytest.mark.parametrize("name,options", CELL_CONFIGS, ids=CELL_IDS)
def test_gradients_at_evaluation_zoneout_and_without_masks(name, options):
    """d = p everywhere (c~_t and c_t differ in every unit) and no masks at all: the same check."""
    cell = random_cell(name, options, seed=4)
    for masks in (random_masks("both", 7, 3, seed=4, zoneout_value=P), None):
        for pname, err, _ in gradient_errors(cell, 7, 3, masks, 3, seed=5):
            assert err <= 1e-7, f"{pname} ({'d = p' if masks else 'no masks'}): relative error {err:.2e}"


def test_the_check_catches_a_missing_identity_path(monkeypatch):
    """The check can fail: drop zoneout's identity path d_t dE/dh_t from the backward pass."""
    from rnnvanish.reference import recurrent

    monkeypatch.setattr(recurrent, "_zoneout_back", lambda g, d_t: ((1.0 - d_t) * g, 0.0 * g))
    cell = random_cell("gru", {}, seed=1)
    errors = {n: e for n, e, _ in gradient_errors(cell, 5, 2, random_masks("zoneout", 5, 2, seed=1), None, seed=1)}
    assert errors["W_hh"] > 1e-4 and errors["h0"] > 1e-4


def test_token_input_has_no_input_gradient():
    cell = random_cell("lstm", {})
    _, _, cache = cell.forward(np.array([[0, 2], [1, 1]]), masks=random_masks("both", 2, 2, seed=0))
    cell.backward(np.ones((2, 2, H)), cache)
    assert cache["dx"] is None


# --------------------------------------------------------------------------- Numba against the reference

def kernel_results(module, name, options, case, truncate, m, d):
    """Every result of the cell's masked forward and backward kernels in `module`, by name.
    A mask that is off goes in as an empty array."""
    c = case
    m = np.empty((0, 0), c["xw"].dtype) if m is None else m
    zoneout = d is not None
    d = np.empty((0, 0, 0), c["xw"].dtype) if d is None else d
    if name == "tanh":
        act = reference.ACTIVATIONS[options.get("activation", "tanh")]
        extra = (np.zeros_like(c["dh"]),) if zoneout else ()
        h = module.tanh_forward(c["xw"], c["h0"], c["W_hh"], act, m, d, *extra)
        da, dh0, norms = module.tanh_backward(c["dh"], c["dh_T"], h, c["W_hh"], act, truncate, m, d, *extra)
        return {"h": h, "da": da, "dh0": dh0, "norms": norms, **({"h_new": extra[0]} if zoneout else {})}
    if name == "lstm":
        h, cs, gates = module.lstm_forward(c["xw"], c["h0"], c["c0"], c["W_hh"], m, d)
        da, dh0, dc0, norms_h, norms_c = module.lstm_backward(c["dh"], c["dh_T"], c["dc_T"], h, cs, gates, c["W_hh"],
                                                               truncate, m, d)
        return {"h": h, "c": cs, "gates": gates, "da": da, "dh0": dh0, "dc0": dc0, "norms_h": norms_h,
                "norms_c": norms_c}
    ra = options.get("reset_after", True)
    h, gates, hn = module.gru_forward(c["xw"], c["h0"], c["W_hh"], c["b_hh"], ra, m, d)
    dax, dah, dh0, norms = module.gru_backward(c["dh"], c["dh_T"], h, gates, hn, c["W_hh"], ra, truncate, m, d)
    return {"h": h, "gates": gates, "hn": hn, "dax": dax, "dah": dah, "dh0": dh0, "norms": norms}


def kernel_case(name, T, B, dtype, seed):
    rng = np.random.default_rng(seed)
    G = {"tanh": 1, "lstm": 4, "gru": 3}[name]

    def normal(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)
    return {"xw": normal(T, B, G * H, scale=1.5), "W_hh": normal(H, G * H, scale=0.6), "h0": normal(B, H, scale=0.5),
            "c0": normal(B, H), "dh": normal(T, B, H), "dh_T": normal(B, H), "dc_T": normal(B, H),
            "b_hh": normal(G * H, scale=0.5)}


def assert_same(actual, expected, dtype, label):
    assert list(actual) == list(expected), label
    for key, value in expected.items():
        assert actual[key].dtype == value.dtype, f"{label} {key}: dtype {actual[key].dtype} != {value.dtype}"
        assert_close(actual[key], value, rtol=RTOL[dtype], name=f"{label} {key}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", KINDS + ["evaluation"])
@pytest.mark.parametrize("truncate", [0, 3])
@pytest.mark.parametrize("T,B", [(1, 1), (1, 3), (7, 1), (7, 3)])
@pytest.mark.parametrize("name,options", CELL_CONFIGS, ids=CELL_IDS)
def test_masked_kernels_equal_the_reference(name, options, T, B, truncate, kind, dtype):
    case = kernel_case(name, T, B, dtype, seed=T + 10 * B + truncate)
    masks = (random_masks("both", T, B, seed=T, dtype=dtype, zoneout_value=P) if kind == "evaluation"
             else random_masks(kind, T, B, seed=T, dtype=dtype))
    expected = kernel_results(reference, name, options, case, truncate, masks.recurrent, masks.zoneout)
    actual = kernel_results(kernels, name, options, case, truncate, masks.recurrent, masks.zoneout)
    assert_same(actual, expected, dtype, f"{name} {options} {kind} T={T} B={B} truncate={truncate}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("truncate", [None, 3])
@pytest.mark.parametrize("name,options", CELL_CONFIGS, ids=CELL_IDS)
def test_masked_cells_equal_on_both_backends(name, options, truncate, kind, dtype):
    """Through the cells: outputs, weight, state and input gradients, norms; dense and token input."""
    T, B = 7, 3
    fast, slow = (random_cell(name, options, seed=2, backend=b, dtype=dtype) for b in ("numba", "numpy"))
    masks = random_masks(kind, T, B, seed=2, dtype=dtype)
    rng = np.random.default_rng(6)
    for x in (rng.standard_normal((T, B, I)).astype(dtype), rng.integers(0, I, (T, B))):
        state = tuple(rng.normal(0, 0.5, (B, H)).astype(dtype) for _ in fast.state_names)
        dh = rng.standard_normal((T, B, H)).astype(dtype)
        results = []
        for cell in (fast, slow):
            h, state_T, cache = cell.forward(x, state, masks)
            grads, dstate0, norms = cell.backward(dh, cache, state, truncate=truncate)
            results.append({"h": h, **{f"state_T{i}": s for i, s in enumerate(state_T)},
                            **{f"d{k}": g for k, g in grads.items()},
                            **{f"dstate0_{i}": s for i, s in enumerate(dstate0)},
                            **{f"norms_{k}": n for k, n in norms.items()},
                            **({} if cache["dx"] is None else {"dx": cache["dx"]})})
        assert_same(results[0], results[1], dtype, f"{name} {options} {kind} input {x.dtype} truncate={truncate}")


def test_the_masks_helpers_are_twins():
    from rnnvanish.kernels import recurrent as k_recurrent
    from rnnvanish.reference import recurrent as r_recurrent
    for name in ("_or_empty", "_drop", "_zoneout", "_zoneout_back", "_lstm_new_c"):
        assert callable(getattr(k_recurrent, name, None)) and callable(getattr(r_recurrent, name, None)), name


# --------------------------------------------------------------------------- without masks, all ones, evaluation

@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name,options", CELL_CONFIGS, ids=CELL_IDS)
def test_without_masks_the_kernels_get_todays_arguments(name, options, backend, monkeypatch):
    """masks None or CellMasks() call the kernels with exactly the arguments of the unmasked cell,
    and masks that change nothing (m = 1, d = 0) give the same numbers."""
    cell = random_cell(name, options, seed=8, backend=backend)
    module = cell._kernels()
    calls = []
    for kernel in (f"{name}_forward", f"{name}_backward"):
        original = getattr(module, kernel)

        def recording(*args, _original=original, _kernel=kernel):
            calls.append((_kernel, len(args)))
            return _original(*args)
        monkeypatch.setattr(module, kernel, recording)
    today = {"tanh_forward": 4, "tanh_backward": 6, "lstm_forward": 4, "lstm_backward": 8, "gru_forward": 5,
             "gru_backward": 8}
    rng = np.random.default_rng(9)
    x, dh = rng.normal(size=(7, 3, I)), rng.normal(size=(7, 3, H))
    state = tuple(rng.normal(0, 0.5, (3, H)) for _ in cell.state_names)
    ones = CellMasks(recurrent=np.ones((3, H)), zoneout=np.zeros((7, 3, H)))
    runs = []
    for masks in (None, CellMasks(), ones):
        calls.clear()
        h, state_T, cache = cell.forward(x, state, masks)
        grads, dstate0, norms = cell.backward(dh, cache, state, truncate=3)
        if masks is not ones:
            assert all(n == today[k] for k, n in calls), calls
        runs.append([h, *state_T, *grads.values(), *dstate0, *norms.values(), cache["dx"]])
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(runs[0], runs[2]):
        assert_close(b, a, rtol=1e-14)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name,options", CELL_CONFIGS, ids=CELL_IDS)
def test_zoneout_of_all_ones_freezes_the_state_and_the_lag_profile(name, options, backend):
    """d = 1: h_t = h_{t-1} (and c_t = c_{t-1}) exactly; from one loss at T the gradient reaches
    every step undiminished. Without zoneout the same profile decays."""
    T, B = 12, 2
    cell = random_cell(name, options, seed=3, backend=backend)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(T, B, I))
    state = tuple(rng.normal(0, 0.5, (B, H)) for _ in cell.state_names)
    dstate = tuple(rng.normal(size=(B, H)) for _ in cell.state_names)
    frozen = CellMasks(recurrent=random_masks("recurrent", T, B, 3).recurrent, zoneout=np.ones((T, B, H)))
    profiles = {}
    for label, masks in (("frozen", frozen), ("free", None)):
        h, _, cache = cell.forward(x, state, masks)
        grads, dstate0, norms = cell.backward(None, cache, dstate)
        profiles[label] = norms
        if label == "frozen":
            for part, s0 in zip(cell.state_names, state):
                np.testing.assert_array_equal(cache[part], np.broadcast_to(s0, (T + 1, B, H)))
            for part in norms:
                np.testing.assert_array_equal(norms[part], np.full(T + 1, norms[part][-1]))
            np.testing.assert_array_equal(grads["W_hh"], 0.0)
            for ds0, ds in zip(dstate0, dstate):
                np.testing.assert_array_equal(ds0, ds)
    assert np.abs(profiles["free"]["h"] - profiles["free"]["h"][-1]).max() > 1e-3 * profiles["free"]["h"][-1]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name,options", CELL_CONFIGS, ids=CELL_IDS)
def test_zoneout_at_evaluation_is_the_expectation(name, options, backend):
    """d = p: h_t = p h_{t-1} + (1 - p) h~_t with h~_t the unmasked step from (h_{t-1}, c_{t-1}),
    and for the LSTM c_t likewise with c~_t; the recurrent mask applies inside h~_t."""
    T, B, p = 6, 3, 0.25
    cell = random_cell(name, options, seed=5, backend=backend)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(T, B, I))
    state = tuple(rng.normal(0, 0.5, (B, H)) for _ in cell.state_names)
    m = random_masks("recurrent", T, B, 5).recurrent
    h, _, cache = cell.forward(x, state, CellMasks(recurrent=m, zoneout=np.full((T, B, H), p)))
    carry = state
    for t in range(1, T + 1):
        # One unmasked step, the recurrent mask applied by hand: only h feeds the products.
        if name == "tanh":
            new = (reference.activate(x[t - 1] @ cell.params["W_xh"] + cell.params["b_h"]
                                      + (carry[0] * m) @ cell.params["W_hh"], reference.ACTIVATIONS[cell.activation]),)
        else:
            new = one_masked_step(cell, x[t - 1], carry, m)
        expected = tuple(p * s + (1 - p) * n for s, n in zip(carry, new))
        for part, e in zip(cell.state_names, expected):
            assert_close(cache[part][t], e, rtol=1e-12, name=f"{part}_{t}")
        carry = expected


def one_masked_step(cell, x_t, carry, m):
    """The LSTM's (h~, c~) or the GRU's h~ for one step from carry, products reading h * m."""
    p = cell.params
    h_prev, hm = carry[0], carry[0] * m
    if cell.name == "lstm":
        a = x_t @ p["W_xh"] + p["b_h"] + hm @ p["W_hh"]
        i, f, g, o = np.split(a, 4, axis=1)
        i, f, g, o = reference.sigmoid(i), reference.sigmoid(f), np.tanh(g), reference.sigmoid(o)
        c_new = f * carry[1] + i * g
        return o * np.tanh(c_new), c_new
    ax = x_t @ p["W_xh"] + p["b_xh"]
    W_r, W_z, W_n = np.split(p["W_hh"], 3, axis=1)
    b_r, b_z, b_n = np.split(p["b_hh"], 3)
    r = reference.sigmoid(ax[:, :H] + hm @ W_r + b_r)
    z = reference.sigmoid(ax[:, H:2 * H] + hm @ W_z + b_z)
    if cell.reset_after:
        n = np.tanh(ax[:, 2 * H:] + r * (hm @ W_n + b_n))
    else:
        n = np.tanh(ax[:, 2 * H:] + (r * hm) @ W_n + b_n)
    return ((1 - z) * n + z * h_prev,)


# --------------------------------------------------------------------------- bad masks

@pytest.mark.parametrize("masks,error", [
    (CellMasks(recurrent=np.ones((3, H + 1))), ValueError),
    (CellMasks(zoneout=np.ones((4, 3, H))), ValueError),
    (CellMasks(zoneout=np.full((5, 3, H), 1.5)), ValueError),
    (CellMasks(recurrent=np.full((3, H), np.nan)), ValueError),
    (CellMasks(recurrent=-np.ones((3, H))), ValueError),
    ({"recurrent": np.ones((3, H))}, TypeError)])
def test_bad_masks_are_refused(masks, error):
    cell = random_cell("tanh", {})
    with pytest.raises(error):
        cell.forward(np.zeros((5, 3, I)), masks=masks)


def test_masks_take_the_cells_dtype():
    cell = random_cell("gru", {}, dtype=np.float32, backend="numpy")
    h, _, cache = cell.forward(np.zeros((2, 1, I), np.float32), masks=CellMasks(np.ones((1, H)), np.zeros((2, 1, H))))
    kept = cache["masks"]
    assert isinstance(kept, CellMasks) and h.dtype == kept.recurrent.dtype == kept.zoneout.dtype == np.float32
