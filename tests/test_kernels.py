"""The Numba kernels against the NumPy reference: every output, final state, gradient and norm.

float64 must agree within 1e-10 and float32 within 1e-4 (relative to the largest entry).
Every kernel is compiled once per dtype and reused by all the cases below.
"""
import numba
import numpy as np
import pytest

from conftest import assert_close
from rnnvanish import kernels, reference
from rnnvanish.kernels import recurrent as recurrent_kernels
from rnnvanish.cells import make_cell
from rnnvanish.model import LanguageModel

RTOL = {np.float64: 1e-10, np.float32: 1e-4}
DTYPES = [np.float64, np.float32]
CONFIGS = [("tanh", {"activation": "tanh"}), ("tanh", {"activation": "sigmoid"}), ("tanh", {"activation": "relu"}),
           ("lstm", {}), ("gru", {"reset_after": True}), ("gru", {"reset_after": False})]
IDS = ["tanh", "sigmoid", "relu", "lstm", "gru-after", "gru-before"]
GATES = {"tanh": 1, "lstm": 4, "gru": 3}
H = 5


def assert_same(actual, expected, dtype, label):
    """Every named array of `expected` is in `actual` with its dtype and within the dtype's tolerance."""
    assert list(actual) == list(expected), f"{label}: results {list(actual)} != {list(expected)}"
    for name, value in expected.items():
        assert np.asarray(actual[name]).dtype == np.asarray(value).dtype, (
            f"{label} {name}: dtype {np.asarray(actual[name]).dtype} != {np.asarray(value).dtype}")
        assert_close(actual[name], value, rtol=RTOL[dtype], name=f"{label} {name}")


def kernel_case(cell, options, T, B, dtype, seed, H=H):
    """Random arguments for a cell's forward and backward kernels (saturating inputs included)."""
    rng = np.random.default_rng(seed)
    G = GATES[cell]

    def normal(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)
    case = {"xw": normal(T, B, G * H, scale=1.5), "W_hh": normal(H, G * H, scale=0.6),
            "h0": normal(B, H, scale=0.5), "dh": normal(T, B, H), "dh_T": normal(B, H)}
    if cell == "lstm":
        case["c0"], case["dc_T"] = normal(B, H), normal(B, H)
    if cell == "gru":
        case["b_hh"] = normal(G * H, scale=0.5)
    return case


def forward_backward(module, cell, options, case, truncate):
    """Every result of the cell's forward and backward kernels in `module`, by name."""
    c = case
    if cell == "tanh":
        act = reference.ACTIVATIONS[options["activation"]]
        h = module.tanh_forward(c["xw"], c["h0"], c["W_hh"], act)
        da, dh0, norms = module.tanh_backward(c["dh"], c["dh_T"], h, c["W_hh"], act, truncate)
        return {"h": h, "da": da, "dh0": dh0, "norms": norms}
    if cell == "lstm":
        h, cs, gates = module.lstm_forward(c["xw"], c["h0"], c["c0"], c["W_hh"])
        da, dh0, dc0, norms_h, norms_c = module.lstm_backward(c["dh"], c["dh_T"], c["dc_T"], h, cs, gates,
                                                               c["W_hh"], truncate)
        return {"h": h, "c": cs, "gates": gates, "da": da, "dh0": dh0, "dc0": dc0,
                "norms_h": norms_h, "norms_c": norms_c}
    ra = options["reset_after"]
    h, gates, hn = module.gru_forward(c["xw"], c["h0"], c["W_hh"], c["b_hh"], ra)
    dax, dah, dh0, norms = module.gru_backward(c["dh"], c["dh_T"], h, gates, hn, c["W_hh"], ra, truncate)
    return {"h": h, "gates": gates, "hn": hn, "dax": dax, "dah": dah, "dh0": dh0, "norms": norms}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("T,B", [(1, 1), (1, 3), (7, 1), (7, 3)])
@pytest.mark.parametrize("truncate", [0, 1, 3])
@pytest.mark.parametrize("cell,options", CONFIGS, ids=IDS)
def test_recurrence_kernels_equal_the_reference(cell, options, truncate, T, B, dtype):
    case = kernel_case(cell, options, T, B, dtype, seed=100 * T + 10 * B + truncate)
    expected = forward_backward(reference, cell, options, case, truncate)
    actual = forward_backward(kernels, cell, options, case, truncate)
    assert_same(actual, expected, dtype, f"{cell} {options} T={T} B={B} truncate={truncate}")


class FeatureMajor:
    """The feature-major twins under the public names, so forward_backward can call them."""
    tanh_forward = staticmethod(recurrent_kernels._tanh_forward_fm)
    tanh_backward = staticmethod(recurrent_kernels._tanh_backward_fm)
    lstm_forward = staticmethod(recurrent_kernels._lstm_forward_fm)
    lstm_backward = staticmethod(recurrent_kernels._lstm_backward_fm)
    gru_forward = staticmethod(recurrent_kernels._gru_forward_fm)
    gru_backward = staticmethod(recurrent_kernels._gru_backward_fm)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("T,B,H_", [(1, 8, 5), (7, 9, 5), (7, 17, 11), (4, 32, 16)])
@pytest.mark.parametrize("truncate", [0, 3])
@pytest.mark.parametrize("cell,options", CONFIGS, ids=IDS)
def test_feature_major_kernels_equal_the_reference(cell, options, truncate, T, B, H_, dtype):
    """The feature-major twins (state (H, B)) in both dtypes, at sizes that are and are not
    multiples of the transposes' 8 x 8 blocks."""
    case = kernel_case(cell, options, T, B, dtype, seed=100 * T + 10 * B + truncate, H=H_)
    expected = forward_backward(reference, cell, options, case, truncate)
    actual = forward_backward(FeatureMajor, cell, options, case, truncate)
    assert_same(actual, expected, dtype, f"{cell} {options} T={T} B={B} H={H_} truncate={truncate}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("T,B,H_", [(1, 1, 5), (1, 8, 5), (7, 9, 5), (7, 17, 11), (4, 32, 16)])
@pytest.mark.parametrize("truncate", [0, 1, 3])
def test_the_lstm_feature_major_pair_equals_the_reference(truncate, T, B, H_, dtype):
    """lstm_forward_fm / lstm_backward_fm (caches c^T, gates^T kept between the passes): every
    result against the reference's pair, and the caches are the transposes of lstm_forward's."""
    c = kernel_case("lstm", {}, T, B, dtype, seed=7 * T + B + truncate, H=H_)
    results = {}
    for name, module in (("reference", reference), ("kernels", kernels)):
        h, cT, gT = module.lstm_forward_fm(c["xw"], c["h0"], c["c0"], c["W_hh"])
        da, dh0, dc0, norms_h, norms_c = module.lstm_backward_fm(c["dh"], c["dh_T"], c["dc_T"], cT, gT, c["W_hh"],
                                                                  truncate)
        results[name] = {"h": h, "cT": cT, "gT": gT, "da": da, "dh0": dh0, "dc0": dc0,
                         "norms_h": norms_h, "norms_c": norms_c}
    assert_same(results["kernels"], results["reference"], dtype, f"lstm fm pair T={T} B={B} H={H_} truncate={truncate}")
    _, cs, gates = reference.lstm_forward(c["xw"], c["h0"], c["c0"], c["W_hh"])
    assert np.array_equal(results["reference"]["cT"], cs.transpose(0, 2, 1))
    assert np.array_equal(results["reference"]["gT"], gates.transpose(0, 2, 1))
    expected = forward_backward(reference, "lstm", {}, c, truncate)
    for name in ("da", "dh0", "dc0", "norms_h", "norms_c"):
        assert_close(results["reference"][name], expected[name], rtol=1e-12 if dtype == np.float64 else 1e-5,
                     name=name)


def test_an_lstm_cell_keeps_its_caches_feature_major_where_the_rule_says():
    """The LSTM cell calls the pair at float32 batches from the threshold (and not with masks or
    on the reference): forward, backward and the tracer's views of the caches match the NumPy
    backend."""
    B = recurrent_kernels.FEATURE_MAJOR_BATCH + 1
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, B, 4)).astype(np.float32)
    dh = rng.standard_normal((6, B, 10)).astype(np.float32)
    runs = {}
    for backend in ("numba", "numpy"):
        cell = make_cell("lstm", 4, 10, dtype=np.float32, backend=backend, seed=0)
        h, state, cache = cell.forward(x)
        grads, dstate, norms = cell.backward(dh, cache, truncate=3)
        runs[backend] = (h, state, cache, grads, dstate, norms)
    assert "fm" in runs["numba"][2] and "fm" not in runs["numpy"][2]

    def named(run):
        h, state, cache, grads, dstate, norms = run
        return {"h": h, "h_T": state[0], "c_T": state[1], **{f"cache {k}": cache[k] for k in ("c", "gates")},
                **{f"d{k}": v for k, v in grads.items()}, "dh0": dstate[0], "dc0": dstate[1],
                **{f"norms {k}": v for k, v in norms.items()}}
    fast, slow = named(runs["numba"]), named(runs["numpy"])
    assert list(fast) == list(slow)
    for name, value in slow.items():
        assert_close(fast[name], value, rtol=1e-4, name=name)


@numba.njit
def _runs_feature_major(x, dropout, zoneout):
    return recurrent_kernels._feature_major(x, dropout, zoneout)


@numba.njit
def _gru_runs_feature_major(x, dropout, zoneout):
    return recurrent_kernels._gru_feature_major(x, dropout, zoneout)


def test_the_feature_major_rule():
    """The rule the drivers dispatch on: float32 or float64, a batch of FEATURE_MAJOR_BATCH or
    more, no masks; the GRU's unsplit drivers in float32 only."""
    assert recurrent_kernels.FEATURE_MAJOR_DTYPES == ("float32", "float64")
    assert recurrent_kernels.GRU_UNSPLIT_DTYPES == ("float32",)
    B = recurrent_kernels.FEATURE_MAJOR_BATCH
    for dtype in (np.float32, np.float64):
        for batch, dropout, zoneout, expected in [
                (B, False, False, True), (4 * B, False, False, True), (B - 1, False, False, False),
                (1, False, False, False), (B, True, False, False), (B, False, True, False)]:
            x = np.zeros((3, batch, 2), dtype=dtype)
            assert _runs_feature_major(x, dropout, zoneout) == expected, (dtype, batch, dropout, zoneout)
            gru = expected and dtype == np.float32
            assert _gru_runs_feature_major(x, dropout, zoneout) == gru, (dtype, batch, dropout, zoneout)
            if not (dropout or zoneout):                  # the same rule for Python callers
                assert kernels.feature_major(dtype, batch) == expected and not reference.feature_major(dtype, batch)
    assert not _runs_feature_major(np.zeros((3, 4 * B, 2), dtype=np.int64), False, False)


@pytest.mark.parametrize("cell,options", CONFIGS, ids=IDS)
def test_float32_batches_from_the_threshold_run_feature_major(cell, options):
    """In float32 from FEATURE_MAJOR_BATCH streams on, the public kernels return exactly what the
    feature-major twins do (bit for bit: the same code runs). Below it they run the (B, H) steps,
    whose sums may or may not round the same way, depending on the machine's BLAS kernels: that
    side is held by the rule above and by the reference."""
    batch = recurrent_kernels.FEATURE_MAJOR_BATCH
    case = kernel_case(cell, options, 6, batch, np.float32, seed=batch, H=24)
    public = forward_backward(kernels, cell, options, case, 0)
    twin = forward_backward(FeatureMajor, cell, options, case, 0)
    for name in public:
        assert np.array_equal(public[name], twin[name]), f"{cell} B={batch} {name}"


def test_truncation_changes_the_gradient():
    """The truncated and untruncated walks differ, so the test above can tell them apart."""
    case = kernel_case("tanh", {}, 7, 2, np.float64, seed=1)
    full = forward_backward(kernels, "tanh", {"activation": "tanh"}, case, 0)
    cut = forward_backward(kernels, "tanh", {"activation": "tanh"}, case, 1)
    assert np.abs(full["da"] - cut["da"]).max() > 1e-3
    assert np.abs(full["norms"] - cut["norms"]).max() > 1e-3


@pytest.mark.parametrize("activation,f,span", [("tanh", np.tanh, 700.0),
                                               ("sigmoid", lambda a: 1.0 / (1.0 + np.exp(-a)), 700.0),
                                               ("relu", lambda a: np.maximum(a, 0.0), 700.0)])
def test_activations_to_a_few_ulp(activation, f, span):
    """h_1 = f(xw) when h_0 = 0: the kernel's tanh/sigmoid (plain arithmetic) against NumPy's, entry by entry."""
    mags = np.concatenate([[0.0], np.logspace(-12, np.log10(span), 400)])
    a = np.concatenate([-mags[::-1], mags])
    xw = a.reshape(1, 1, -1)
    h = kernels.tanh_forward(xw, np.zeros((1, a.size)), np.zeros((a.size, a.size)), reference.ACTIVATIONS[activation])
    np.testing.assert_array_max_ulp(h[1, 0], f(a), maxulp=4)


def test_tanh_of_infinities_and_nan():
    a = np.array([[[np.inf, -np.inf, np.nan, 30.0, -30.0]]])
    h = kernels.tanh_forward(a, np.zeros((1, 5)), np.zeros((5, 5)), kernels.TANH)
    np.testing.assert_array_equal(h[1, 0], np.tanh(a[0, 0]))


def test_activation_codes_match_the_reference():
    assert (kernels.TANH, kernels.SIGMOID, kernels.RELU) == (reference.TANH, reference.SIGMOID, reference.RELU)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("T,B", [(1, 1), (7, 3)])
def test_softmax_xent_and_embed_backward_equal_the_reference(T, B, dtype):
    rng = np.random.default_rng(T + B)
    V = 11
    y = (3 * rng.standard_normal((T, B, V))).astype(dtype)
    targets = rng.integers(0, V, (T, B))
    loss_k, dy_k = kernels.softmax_xent(y, targets)
    loss_r, dy_r = reference.softmax_xent(y, targets)
    assert_close(loss_k, loss_r, rtol=RTOL[dtype], name="loss")
    assert_close(dy_k, dy_r, rtol=RTOL[dtype], name="dy")
    da = rng.standard_normal((T, B, 6)).astype(dtype)
    ids = np.zeros((T, B), dtype=np.int64) if B == 1 else targets       # repeated rows must accumulate
    assert_close(kernels.embed_backward(ids, da, V), reference.embed_backward(ids, da, V), rtol=RTOL[dtype],
                 name="dW_xh")


@pytest.mark.parametrize("module", [kernels, reference], ids=["numba", "numpy"])
@pytest.mark.parametrize("bad", [-1, 11])
def test_out_of_range_ids_raise(bad, module):
    y, ids = np.zeros((2, 1, 11)), np.array([[3], [bad]])
    with pytest.raises(IndexError):
        module.softmax_xent(y, ids)
    with pytest.raises(IndexError):
        module.embed_backward(ids, np.zeros((2, 1, 4)), 11)
    with pytest.raises(IndexError):
        module.input_rows(ids, np.zeros((11, 4)), np.zeros(4))
    with pytest.raises(IndexError):
        module.output_layer(np.zeros((3, 1, 4)), ids, np.zeros((4, 11)), np.zeros(11))
    with pytest.raises(IndexError):
        module.window_grads(ids, np.zeros((3, 1, 4)), np.zeros((2, 1, 4)), np.zeros((2, 1, 4)), 11)


# --------------------------------------------------------------------------- the twin contract

def _public_functions(module):
    """Names of the public functions a module defines itself (jitted or not)."""
    return {name for name, obj in vars(module).items()
            if not name.startswith("_") and callable(obj) and not isinstance(obj, type)
            and getattr(obj, "__module__", None) == module.__name__}


def _arguments(function):
    import inspect
    return list(inspect.signature(getattr(function, "py_func", function)).parameters)


def test_the_two_backends_expose_the_same_names_with_the_same_arguments():
    from rnnvanish.kernels import optim as k_optim, output as k_output, recurrent as k_recurrent, tokens as k_tokens
    from rnnvanish.reference import optim as r_optim, output as r_output, recurrent as r_recurrent, tokens as r_tokens
    assert set(kernels.__all__) == set(reference.__all__)
    for name in reference.__all__:
        assert hasattr(kernels, name) and hasattr(reference, name), name
    for k_module, r_module in ((k_recurrent, r_recurrent), (k_output, r_output), (k_optim, r_optim),
                               (k_tokens, r_tokens)):
        defined = _public_functions(k_module)
        assert defined == _public_functions(r_module) - {"sigmoid", "activate", "activate_grad"}, k_module.__name__
        assert defined <= set(kernels.__all__), k_module.__name__
        for name in defined:
            assert _arguments(getattr(k_module, name)) == _arguments(getattr(r_module, name)), name
    assert kernels.ACTIVATIONS == reference.ACTIVATIONS


def test_the_recurrences_share_their_step_helpers():
    """The drivers read alike: the same private helpers, by name, in both files."""
    from rnnvanish.kernels import recurrent as k_recurrent
    from rnnvanish.reference import recurrent as r_recurrent
    for name in ("_walks", "_add_loss_grad", "_step_norms", "_gru_split", "_draw_token", "_logits", "_input_row",
                 "_tanh_step", "_tanh_step_back", "_lstm_step", "_lstm_step_back", "_gru_step", "_gru_step_back"):
        assert callable(getattr(k_recurrent, name, None)) and callable(getattr(r_recurrent, name, None)), name
    for T in (1, 2, 7):
        for truncate in (0, 1, 3, 7, 9):
            assert k_recurrent._walks(T, truncate) == r_recurrent._walks(T, truncate), (T, truncate)


def test_kernels_take_no_objects_from_the_rest_of_the_package():
    """No kernel module imports the cells or the model (they take arrays and sizes only)."""
    import ast
    import pathlib
    for path in pathlib.Path(kernels.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert not any(part in ("cells", "model") for part in name.split(".")), f"{path.name} imports {name}"


def lm_case(cell, T, B, dtype, seed, V=9):
    """Token ids, targets and the arrays of one window: xw's weights, h from a forward pass, da."""
    rng = np.random.default_rng(seed)
    GH = GATES[cell] * H

    def normal(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)
    ids = rng.integers(0, V, (T, B))
    if B == 1:
        ids[:] = ids[0]                                      # repeated rows must accumulate
    return {"ids": ids, "targets": rng.integers(0, V, (T, B)), "W_xh": normal(V, GH), "b": normal(GH),
            "h": normal(T + 1, B, H), "W_hy": normal(H, V, scale=0.8), "b_y": normal(V),
            "da_x": normal(T, B, GH), "da_h": normal(T, B, GH), "V": V}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("T,B", [(1, 1), (1, 3), (7, 1), (7, 3)])
@pytest.mark.parametrize("cell", ["tanh", "lstm", "gru"])
def test_window_pieces_equal_the_reference(cell, T, B, dtype):
    """input_rows, output_layer and window_grads: every result, dtype included."""
    c = lm_case(cell, T, B, dtype, seed=10 * T + B)
    results = {}
    for name, module in (("numba", kernels), ("numpy", reference)):
        xw = module.input_rows(c["ids"], c["W_xh"], c["b"])
        loss, dh, dW_hy, db_y = module.output_layer(c["h"], c["targets"], c["W_hy"], c["b_y"])
        dW_xh, dW_hh, db_x, db_h = module.window_grads(c["ids"], c["h"], c["da_x"], c["da_h"], c["V"])
        results[name] = {"xw": xw, "loss": np.float64(loss), "dh": dh, "dW_hy": dW_hy, "db_y": db_y,
                         "dW_xh": dW_xh, "dW_hh": dW_hh, "db_x": db_x, "db_h": db_h}
    assert_same(results["numba"], results["numpy"], dtype, f"{cell} T={T} B={B}")
    r = results["numpy"]
    assert r["xw"].shape == (T, B, GATES[cell] * H) and r["dh"].shape == (T, B, H)
    np.testing.assert_array_equal(r["xw"][0, 0], c["W_xh"][c["ids"][0, 0]] + c["b"])
    assert_close(r["dW_hh"], np.einsum("tbi,tbj->ij", c["h"][:T], c["da_h"]), rtol=RTOL[dtype], name="dW_hh")


def test_output_layer_is_the_softmax_of_the_logits():
    """output_layer's loss and dh against softmax_xent on y = h W_hy + b_y, done by hand."""
    c = lm_case("tanh", 4, 2, np.float64, seed=3)
    y = c["h"][1:] @ c["W_hy"] + c["b_y"]
    loss, dy = reference.softmax_xent(y, c["targets"])
    for module in (kernels, reference):
        loss_m, dh, dW_hy, db_y = module.output_layer(c["h"], c["targets"], c["W_hy"], c["b_y"])
        assert_close(loss_m, loss, name="loss")
        assert_close(dh, dy @ c["W_hy"].T, name="dh")
        assert_close(dW_hy, np.einsum("tbh,tbv->hv", c["h"][1:], dy), name="dW_hy")
        assert_close(db_y, dy.sum(axis=(0, 1)), name="db_y")


def generate(module, cell, options, p, token, state, uniforms, temperature):
    """The cell's generation loop in `module`."""
    if cell == "tanh":
        return module.tanh_generate(token, state[0], p["W_xh"], p["b"], p["W_hh"], p["W_hy"], p["b_y"],
                                    reference.ACTIVATIONS[options["activation"]], uniforms, temperature)
    if cell == "lstm":
        return module.lstm_generate(token, state[0], state[1], p["W_xh"], p["b"], p["W_hh"], p["W_hy"], p["b_y"],
                                    uniforms, temperature)
    return module.gru_generate(token, state[0], p["W_xh"], p["b"], p["W_hh"], p["b_hh"], options["reset_after"],
                               p["W_hy"], p["b_y"], uniforms, temperature)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("cell,options", CONFIGS, ids=IDS)
def test_generation_kernels_draw_the_reference_tokens(cell, options, dtype):
    """The same uniforms give the same token ids, at every temperature."""
    rng = np.random.default_rng(21)
    V, GH = 13, GATES[cell] * H
    p = {"W_xh": rng.normal(0, 1.0, (V, GH)), "b": rng.normal(0, 0.3, GH), "W_hh": rng.normal(0, 0.6, (H, GH)),
         "b_hh": rng.normal(0, 0.3, GH), "W_hy": rng.normal(0, 1.5, (H, V)), "b_y": rng.normal(0, 0.5, V)}
    p = {k: a.astype(dtype) for k, a in p.items()}
    state = tuple(rng.normal(0, 0.5, (1, H)).astype(dtype) for _ in range(2 if cell == "lstm" else 1))
    uniforms = rng.random(80)
    for temperature in (1.0, 0.6, 0.0):
        drawn = {name: generate(module, cell, options, p, 4, state, uniforms, dtype(temperature))
                 for name, module in (("numba", kernels), ("numpy", reference))}
        assert drawn["numba"].dtype == drawn["numpy"].dtype == np.int64
        np.testing.assert_array_equal(drawn["numba"], drawn["numpy"], err_msg=f"{cell} temperature {temperature}")
        if temperature == 1.0:
            assert len(set(drawn["numpy"].tolist())) > 3             # a real draw, not a constant


def test_generation_is_the_forward_pass_one_token_at_a_time():
    """The reference loop's greedy tokens are the argmax of the logits of tanh_forward's states."""
    rng = np.random.default_rng(5)
    V = 7
    W_xh, b, W_hh = rng.normal(0, 1, (V, H)), rng.normal(0, 0.3, H), rng.normal(0, 0.6, (H, H))
    W_hy, b_y = rng.normal(0, 1.5, (H, V)), rng.normal(0, 0.5, V)
    h0 = rng.normal(0, 0.5, (1, H))
    drawn = reference.tanh_generate(2, h0, W_xh, b, W_hh, W_hy, b_y, reference.TANH, np.zeros(6), 0.0)
    fed = np.concatenate([[2], drawn[:-1]]).reshape(-1, 1)
    h = reference.tanh_forward(W_xh[fed] + b, h0, W_hh, reference.TANH)
    np.testing.assert_array_equal(drawn, np.argmax(h[1:, 0] @ W_hy + b_y, axis=1))


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_adam_update_equals_the_reference_bit_for_bit(dtype, layout):
    rng = np.random.default_rng(12)
    start = rng.standard_normal((6, 5)).astype(dtype)
    runs = {}
    for name, module in (("numba", kernels), ("numpy", reference)):
        p, m, v = (np.array(a, dtype=dtype, order=layout) for a in (start, np.zeros_like(start), np.zeros_like(start)))
        grad_rng = np.random.default_rng(13)
        for t in range(1, 6):
            module.adam_update(p, grad_rng.standard_normal(p.shape).astype(dtype), m, v, 0.01, 0.8, 0.99, 1e-6, t)
        runs[name] = p, m, v
    assert not np.array_equal(runs["numpy"][0], start)
    for name, a, b in zip(("p", "m", "v"), runs["numba"], runs["numpy"]):
        assert a.dtype == b.dtype == dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)


# --------------------------------------------------------------------------- through the cells and the model

def _perturbed(obj, seed):
    rng = np.random.default_rng(seed)
    for p in obj.params.values():
        p += rng.normal(0.0, 0.4, p.shape).astype(p.dtype)     # off the initialiser's values, non-zero biases


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("truncate", [None, 1, 3])
@pytest.mark.parametrize("cell,options", CONFIGS, ids=IDS)
def test_cells_give_the_same_weight_gradients(cell, options, truncate, dtype):
    T, B, I = 7, 3, 4
    fast, slow = (make_cell(cell, I, H, seed=3, dtype=dtype, backend=b, **options) for b in ("numba", "numpy"))
    _perturbed(fast, 9)
    _perturbed(slow, 9)
    rng = np.random.default_rng(4)
    for x in (rng.standard_normal((T, B, I)).astype(dtype), rng.integers(0, I, (T, B))):
        state = tuple(rng.normal(0, 0.5, (B, H)).astype(dtype) for _ in fast.state_names)
        dh = rng.standard_normal((T, B, H)).astype(dtype)
        results = []
        for c in (fast, slow):
            h, state_T, cache = c.forward(x, state)
            grads, dstate0, norms = c.backward(dh, cache, state, truncate=truncate)
            results.append({"h": h, **{f"state_T{i}": s for i, s in enumerate(state_T)},
                            **{f"d{k}": g for k, g in grads.items()},
                            **{f"dstate0_{i}": s for i, s in enumerate(dstate0)},
                            **{f"norms_{k}": n for k, n in norms.items()}})
        assert_same(results[0], results[1], dtype, f"{cell} {options} input {x.dtype} truncate={truncate}")


LM_CONFIGS = [("tanh", {}), ("lstm", {}), ("gru", {"reset_after": True}), ("gru", {"reset_after": False})]
LM_IDS = ["tanh", "lstm", "gru-after", "gru-before"]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("T,B", [(1, 1), (1, 3), (7, 1), (7, 3)])
@pytest.mark.parametrize("truncate", [None, 3])
@pytest.mark.parametrize("cell,options", LM_CONFIGS, ids=LM_IDS)
def test_language_model_step_on_numba_equals_the_step_on_numpy(cell, options, truncate, T, B, dtype):
    """LanguageModel.loss_and_grads: the same five kernel calls on numba and on the NumPy reference."""
    V = 9
    fast, slow = (LanguageModel(cell, V, H, seed=5, dtype=dtype, backend=b, **options) for b in ("numba", "numpy"))
    _perturbed(fast, 6)
    _perturbed(slow, 6)
    rng = np.random.default_rng(7)
    inputs, targets = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    state = tuple(rng.normal(0, 0.5, (B, H)).astype(dtype) for _ in fast.cell.state_names)
    results = []
    for model in (fast, slow):
        loss, grads, state_T, info = model.loss_and_grads(inputs, targets, state, truncate=truncate)
        results.append({"loss": np.float64(loss), **{f"d{k}": g for k, g in grads.items()},
                        **{f"state_T{i}": s for i, s in enumerate(state_T)},
                        **{f"dstate0_{i}": s for i, s in enumerate(info["dstate0"])},
                        **{f"norms_{k}": n for k, n in info["norms"].items()}})
    assert set(results[0]) >= {f"d{k}" for k in fast.params}
    assert_same(results[0], results[1], dtype, f"LM {cell} {options} truncate={truncate}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("cell,options", LM_CONFIGS, ids=LM_IDS)
def test_generation_draws_the_reference_tokens(cell, options, dtype):
    """The jitted loop and the reference loop draw the same tokens from the same seed."""
    V = 13
    fast, slow = (LanguageModel(cell, V, 8, seed=2, dtype=dtype, backend=b, **options) for b in ("numba", "numpy"))
    _perturbed(fast, 3)
    _perturbed(slow, 3)
    for temperature in (1.0, 0.6, 0.0):
        ids_fast = fast.sample([1, 4, 2], 60, temperature, rng=11)
        ids_slow = slow.sample([1, 4, 2], 60, temperature, rng=11)
        np.testing.assert_array_equal(ids_fast, ids_slow, err_msg=f"{cell} temperature {temperature}")
        if temperature == 1.0:
            assert len(set(ids_fast.tolist())) > 3                 # a real draw, not a constant


def test_the_two_copies_of_exp_agree_bit_for_bit():
    """output.py repeats recurrent.py's exp (no jitted call crosses modules): the softmax through both."""
    from rnnvanish.kernels import output, recurrent
    z = np.concatenate([-np.logspace(-12, np.log10(700.0), 300), [0.0], np.logspace(-12, np.log10(700.0), 300)])
    via_output = np.array([output._exp(v) for v in z])
    via_recurrent = np.array([recurrent._exp(v) for v in z])
    np.testing.assert_array_equal(via_output, via_recurrent)
    np.testing.assert_array_max_ulp(via_output, np.exp(z), maxulp=2)


@pytest.mark.parametrize("activation,f", [("tanh", np.tanh), ("sigmoid", lambda a: 1 / (1 + np.exp(-a)))])
def test_float32_activations_to_a_few_ulp(activation, f):
    """float32 runs its own exp (Taylor to r^7, twice the vector width): within 3 ulp of NumPy's float32."""
    mags = np.concatenate([[0.0], np.logspace(-8, np.log10(80.0), 300)])
    a = np.concatenate([-mags[::-1], mags]).astype(np.float32)
    h = kernels.tanh_forward(a.reshape(1, 1, -1), np.zeros((1, a.size), np.float32),
                             np.zeros((a.size, a.size), np.float32), reference.ACTIVATIONS[activation])
    assert h.dtype == np.float32
    np.testing.assert_array_max_ulp(h[1, 0], f(a).astype(np.float32), maxulp=3)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_adam_on_the_numba_backend_equals_the_numpy_adam_bit_for_bit(dtype, weight_decay):
    from rnnvanish.optim import Adam
    rng = np.random.default_rng(8)
    start = {"W": rng.standard_normal((6, 4)).astype(dtype), "b": rng.standard_normal(4).astype(dtype),
             "F": np.asfortranarray(rng.standard_normal((3, 5)).astype(dtype))}   # not C-contiguous: NumPy lines
    runs = {}
    for backend in ("numpy", "numba"):
        params = {k: p.copy(order="K") for k, p in start.items()}
        adam = Adam(params, lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=weight_decay, backend=backend)
        assert (adam._kernel is kernels.adam_update) == (backend == "numba")
        grad_rng = np.random.default_rng(9)
        for _ in range(4):
            adam.step({k: grad_rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()})
        runs[backend] = params, adam.state
    for k in start:
        assert not np.array_equal(runs["numba"][0][k], start[k]), k
        np.testing.assert_array_equal(runs["numba"][0][k], runs["numpy"][0][k], err_msg=k)
        for slot in ("m", "v"):
            np.testing.assert_array_equal(runs["numba"][1][slot][k], runs["numpy"][1][slot][k], err_msg=f"{slot}/{k}")


def test_keep_freed_memory_respects_the_environment(monkeypatch):
    import platform

    from rnnvanish.kernels.memory import keep_freed_memory
    monkeypatch.setenv("RNNVANISH_KEEP_MEMORY", "0")
    assert keep_freed_memory() is False
    monkeypatch.delenv("RNNVANISH_KEEP_MEMORY")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert keep_freed_memory() is False                 # the user's own malloc settings stand
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert keep_freed_memory() is True


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("T, B", [(1, 1), (7, 3)])
def test_dense_window_products_equal_their_references(dtype, rtol, T, B):
    """dense_rows, outer_sum and back_rows (a stack's upper layers, a task's dense inputs) on both
    backends, against each other and against the products written out entry by entry."""
    rng = np.random.default_rng(7)
    I, GH = 3, 8
    x = rng.standard_normal((T, B, I)).astype(dtype)
    W, b = rng.standard_normal((I, GH)).astype(dtype), rng.standard_normal(GH).astype(dtype)
    da = rng.standard_normal((T, B, GH)).astype(dtype)
    for name, args in (("dense_rows", (x, W, b)), ("outer_sum", (x, da)), ("back_rows", (da, W))):
        want = getattr(reference, name)(*args)
        got = getattr(kernels, name)(*args)
        assert got.dtype == want.dtype == dtype
        assert_close(got, want, rtol=rtol, name=name)
    t, bb = T - 1, B - 1                                     # one entry of each, by hand
    assert_close(reference.dense_rows(x, W, b)[t, bb], sum(x[t, bb, i] * W[i] for i in range(I)) + b, rtol=rtol,
                 name="dense_rows entry")
    assert_close(reference.outer_sum(x, da), sum(np.outer(x[s, c], da[s, c]) for s in range(T) for c in range(B)),
                 rtol=rtol, name="outer_sum")
    assert_close(reference.back_rows(da, W)[t, bb], W @ da[t, bb], rtol=rtol, name="back_rows entry")
