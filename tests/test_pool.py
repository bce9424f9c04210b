"""One pool of threads (rnnvanish.kernels.pool): OpenBLAS's jobs on Numba's threads, and the
recurrences split across them.

The split kernels are held to the NumPy reference like every kernel (float64 within 1e-10,
float32 within 1e-4 of the largest entry), at sizes whose parts are and are not equal and are
and are not multiples of the transposes' 8 x 8 blocks and of the products' tiles; the shared pool's products to NumPy's;
and a training run on two threads must end (OpenBLAS's jobs wait for each other, so a job
left without a thread would hang it).
"""
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from conftest import assert_close
from rnnvanish import kernels, reference
from rnnvanish.kernels import NO_TOKENS, _rows_of, pool
from rnnvanish.kernels import recurrent as recurrent_kernels
from rnnvanish.threads import limit_threads

RTOL = {np.float64: 1e-10, np.float32: 1e-4}
TWO_THREADS = numba.config.NUMBA_NUM_THREADS >= 2


def lstm_case(T, B, H, dtype, seed):
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)
    return {"xw": normal(T, B, 4 * H, scale=1.5), "W_hh": normal(H, 4 * H, scale=0.6), "h0": normal(B, H, scale=0.5),
            "c0": normal(B, H), "dh": normal(T, B, H), "dh_T": normal(B, H), "dc_T": normal(B, H)}


def pair_results(forward, backward, c):
    h, c_, gates = forward(c["xw"], c["h0"], c["c0"], c["W_hh"])
    da, dh0, dc0, norms_h, norms_c = backward(c["dh"], c["dh_T"], c["dc_T"], h, c_, gates, c["W_hh"])
    return {"h": h, "c": c_, "gates": gates, "da": da, "dh0": dh0, "dc0": dc0, "norms_h": norms_h,
            "norms_c": norms_c}


def split_forward(parts):
    return lambda xw, h0, c0, W_hh: recurrent_kernels._lstm_forward_split(*_rows_of(xw), h0, c0, W_hh, parts)


def split_backward(parts):
    return lambda dh, dh_T, dc_T, h, c, gates, W_hh: recurrent_kernels._lstm_backward_split(
        dh, dh_T, dc_T, c, gates, W_hh, parts, *NO_TOKENS)[:5]


# Parts of equal and unequal sizes; units per part below, at and past a panel (24 float32, 12
# float64 columns) and not multiples of a vector; batches not multiples of a row tile (4).
SPLIT_SIZES = [(1, 1, 5, 2), (7, 3, 5, 2), (7, 9, 11, 3), (4, 32, 16, 2), (3, 8, 37, 2), (2, 17, 64, 4),
               (3, 6, 100, 2)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("T,B,H,parts", SPLIT_SIZES)
def test_the_split_lstm_pair_equals_the_reference(T, B, H, parts, dtype):
    """_lstm_forward_split / _lstm_backward_split against the reference's lstm_forward /
    lstm_backward (no truncation): every output, cache, gradient and norm. Without a second
    thread the parts run one after the other: the same results."""
    c = lstm_case(T, B, H, dtype, seed=T * 100 + B * 10 + parts)
    expected = pair_results(reference.lstm_forward, lambda *a: reference.lstm_backward(*a, 0), c)
    actual = pair_results(split_forward(parts), split_backward(parts), c)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        assert_close(actual[name], value, rtol=RTOL[dtype], name=f"{name} T={T} B={B} H={H} parts={parts}")


def token_case(T, B, H, V, dtype, seed):
    c = lstm_case(T, B, H, dtype, seed)
    rng = np.random.default_rng(seed + 1)
    return {**c, "ids": rng.integers(0, V, (T, B)), "V": V,
            "W_xh": (1.5 * rng.standard_normal((V, 4 * H))).astype(dtype),
            "b": (0.5 * rng.standard_normal(4 * H)).astype(dtype)}


def token_results(forward, backward, c):
    h, c_, gates = forward(c["ids"], c["W_xh"], c["b"], c["h0"], c["c0"], c["W_hh"])
    results = backward(c["ids"], c["V"], c["dh"], c["dh_T"], c["dc_T"], h, c_, gates, c["W_hh"], 0)
    names = ("da", "dh0", "dc0", "norms_h", "norms_c", "dW_xh", "dW_hh", "db")
    return {"h": h, "c": c_, "gates": gates, **dict(zip(names, results))}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("T,B,H,parts", SPLIT_SIZES)
def test_the_split_lstm_on_tokens_equals_the_reference(T, B, H, parts, dtype):
    """The split pair on token inputs (x_t W_xh + b read from W_xh + b's rows; dW_xh and db
    summed during the backward walk) against the reference's lstm_forward_tokens /
    lstm_backward_tokens, tokens repeating within and across steps."""
    c = token_case(T, B, H, 3, dtype, seed=T * 100 + B * 10 + parts)
    expected = token_results(reference.lstm_forward_tokens, reference.lstm_backward_tokens, c)

    def forward(ids, W_xh, b, h0, c0, W_hh):
        return recurrent_kernels._lstm_forward_split(W_xh + b, ids, h0, c0, W_hh, parts)

    def backward(ids, V, dh, dh_T, dc_T, h, c_, gates, W_hh, truncate):
        da, dh0, dc0, norms_h, norms_c, dW_xh, db = recurrent_kernels._lstm_backward_split(
            dh, dh_T, dc_T, c_, gates, W_hh, parts, ids, V)
        return da, dh0, dc0, norms_h, norms_c, dW_xh, reference.outer_sum(h[:-1], da), db
    actual = token_results(forward, backward, c)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        assert_close(actual[name], value, rtol=RTOL[dtype], name=f"{name} T={T} B={B} H={H} parts={parts}")


@pytest.mark.parametrize("B", [1, 16])
def test_the_public_token_pair_equals_the_reference_on_one_thread(B):
    """Unsplit (one thread), the token pair runs its composition of the public kernels: the
    reference's results, in the (B, .) steps (B 1) and the feature-major ones (B 16)."""
    c = token_case(4, B, 12, 5, np.float64, seed=B)
    expected = token_results(reference.lstm_forward_tokens, reference.lstm_backward_tokens, c)
    with limit_threads(1, "numba"):
        actual = token_results(kernels.lstm_forward_tokens, kernels.lstm_backward_tokens, c)
    for name, value in expected.items():
        assert_close(actual[name], value, rtol=1e-10, name=f"{name} B={B}")


@pytest.mark.skipif(not TWO_THREADS, reason="Numba has one thread here")
def test_the_token_pair_with_truncation_on_two_threads_equals_the_reference():
    """A truncated backward walk keeps the unsplit kernel after the split forward (its caches in
    the (B, .) layout): the reference's results."""
    c = token_case(6, 16, 80, 7, np.float32, seed=4)
    h, c_, gates = reference.lstm_forward_tokens(c["ids"], c["W_xh"], c["b"], c["h0"], c["c0"], c["W_hh"])
    expected = reference.lstm_backward_tokens(c["ids"], c["V"], c["dh"], c["dh_T"], c["dc_T"], h, c_, gates,
                                              c["W_hh"], 3)
    with limit_threads(2, "numba"):
        h, c_, gates = kernels.lstm_forward_tokens(c["ids"], c["W_xh"], c["b"], c["h0"], c["c0"], c["W_hh"])
        actual = kernels.lstm_backward_tokens(c["ids"], c["V"], c["dh"], c["dh_T"], c["dc_T"], h, c_, gates,
                                              c["W_hh"], 3)
    names = ("da", "dh0", "dc0", "norms_h", "norms_c", "dW_xh", "dW_hh", "db")
    for name, a, e in zip(names, actual, expected):
        assert_close(a, e, rtol=1e-4, name=name)


@pytest.mark.skipif(not TWO_THREADS, reason="Numba has one thread here")
def test_the_public_lstm_kernels_split_on_two_threads():
    """Inside limit_threads(2) (where the pool is shared) a float32 window of 80 units at B 16
    is not feature-major, and the public lstm_* and token kernels give the reference's
    results; with one thread it is feature-major again."""
    c = token_case(5, 16, 80, 7, np.float32, seed=3)
    expected = token_results(reference.lstm_forward_tokens, reference.lstm_backward_tokens, c)
    plain = pair_results(reference.lstm_forward, lambda *a: reference.lstm_backward(*a, 0), c)
    assert kernels.feature_major(np.float32, 16, 80)
    with limit_threads(2, "numba"):
        assert kernels.feature_major(np.float32, 16, 80) == (pool.PARTS == 1)
        tokens = token_results(kernels.lstm_forward_tokens, kernels.lstm_backward_tokens, c)
        public = pair_results(kernels.lstm_forward, lambda *a: kernels.lstm_backward(*a, 0), c)
    for name, value in expected.items():
        assert_close(tokens[name], value, rtol=1e-4, name=f"tokens {name}")
    for name, value in plain.items():
        assert_close(public[name], value, rtol=1e-4, name=f"lstm {name}")


def rnn_case(cell, T, B, H, dtype, seed):
    rng = np.random.default_rng(seed)
    G = 1 if cell == "tanh" else 3

    def normal(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)
    return {"xw": normal(T, B, G * H, scale=1.5), "W_hh": normal(H, G * H, scale=0.6), "h0": normal(B, H, scale=0.5),
            "b_hh": normal(G * H, scale=0.5), "dh": normal(T, B, H), "dh_T": normal(B, H)}


def rnn_results(module, cell, act, c, split_parts=None):
    """Every result of the tanh RNN's or the reset-after GRU's pair, whole (module's public
    kernels) or split into `split_parts` (recurrent's split twins)."""
    k = recurrent_kernels
    if cell == "tanh":
        if split_parts:
            h = k._tanh_forward_fm_split(*_rows_of(c["xw"]), c["h0"], c["W_hh"], act, split_parts)
            da, dh0, norms = k._tanh_backward_fm_split(c["dh"], c["dh_T"], h, c["W_hh"], act, split_parts,
                                                       *NO_TOKENS)[:3]
        else:
            h = module.tanh_forward(c["xw"], c["h0"], c["W_hh"], act)
            da, dh0, norms = module.tanh_backward(c["dh"], c["dh_T"], h, c["W_hh"], act, 0)
        return {"h": h, "da": da, "dh0": dh0, "norms": norms}
    if split_parts:
        h, gates, hn = k._gru_forward_split(*_rows_of(c["xw"]), c["h0"], c["W_hh"], c["b_hh"], split_parts)
        dax, dah, dh0, norms = k._gru_backward_split(c["dh"], c["dh_T"], h, gates, hn, c["W_hh"], split_parts,
                                                     *NO_TOKENS)[:4]
    else:
        h, gates, hn = module.gru_forward(c["xw"], c["h0"], c["W_hh"], c["b_hh"], True)
        dax, dah, dh0, norms = module.gru_backward(c["dh"], c["dh_T"], h, gates, hn, c["W_hh"], True, 0)
    return {"h": h, "gates": gates, "hn": hn, "dax": dax, "dah": dah, "dh0": dh0, "norms": norms}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("T,B,H,parts", [(1, 1, 5, 2), (7, 3, 5, 2), (7, 9, 11, 3), (4, 32, 16, 2), (3, 8, 37, 2)])
@pytest.mark.parametrize("cell,act", [("tanh", "tanh"), ("tanh", "sigmoid"), ("tanh", "relu"), ("gru", None)])
def test_the_split_tanh_and_gru_pairs_equal_the_reference(cell, act, T, B, H, parts, dtype):
    """The split tanh RNN (every activation) and reset-after GRU against the reference (no truncation)."""
    code = reference.ACTIVATIONS[act] if act else None
    c = rnn_case(cell, T, B, H, dtype, seed=T * 100 + B * 10 + parts)
    expected = rnn_results(reference, cell, code, c)
    actual = rnn_results(None, cell, code, c, split_parts=parts)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        assert_close(actual[name], value, rtol=RTOL[dtype], name=f"{cell} {act} {name} T={T} B={B} H={H} parts={parts}")


@pytest.mark.skipif(not TWO_THREADS, reason="Numba has one thread here")
@pytest.mark.parametrize("cell,act", [("tanh", "tanh"), ("gru", None)])
def test_the_public_tanh_and_gru_kernels_split_on_two_threads(cell, act):
    """kernels.tanh_* and gru_* inside limit_threads(2) (split where the pool is shared, float32
    at B 16): the reference's results."""
    code = reference.ACTIVATIONS[act] if act else None
    c = rnn_case(cell, 5, 16, 80, np.float32, seed=3)
    expected = rnn_results(reference, cell, code, c)
    with limit_threads(2, "numba"):
        assert kernels._split_parts(c["xw"], 80, ()) == pool.PARTS    # float32, B 16, no masks: split when shared
        actual = rnn_results(kernels, cell, code, c)
    for name, value in expected.items():
        assert_close(actual[name], value, rtol=1e-4, name=f"{cell} {name}")


def tanh_token_case(T, B, H, V, dtype, seed):
    c = rnn_case("tanh", T, B, H, dtype, seed)
    rng = np.random.default_rng(seed + 1)
    return {**c, "ids": rng.integers(0, V, (T, B)), "V": V, "W_xh": (1.5 * rng.standard_normal((V, H))).astype(dtype),
            "b": (0.5 * rng.standard_normal(H)).astype(dtype)}


def tanh_token_results(forward, backward, c, act, truncate=0):
    h = forward(c["ids"], c["W_xh"], c["b"], c["h0"], c["W_hh"], act)
    results = backward(c["ids"], c["V"], c["dh"], c["dh_T"], h, c["W_hh"], act, truncate)
    return {"h": h, **dict(zip(("da", "dh0", "norms", "dW_xh", "dW_hh", "db"), results))}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("T,B,H,parts", SPLIT_SIZES)
def test_the_split_tanh_rnn_on_tokens_equals_the_reference(T, B, H, parts, dtype):
    """The tanh RNN's split pair on token inputs (x_t W_xh + b gathered from W_xh + b's rows as
    the steps go; dW_xh and db summed during the backward walk) against the reference's
    tanh_forward_tokens / tanh_backward_tokens, tokens repeating within and across steps."""
    code = reference.ACTIVATIONS["tanh"]
    c = tanh_token_case(T, B, H, 3, dtype, seed=T * 100 + B * 10 + parts)
    expected = tanh_token_results(reference.tanh_forward_tokens, reference.tanh_backward_tokens, c, code)

    def forward(ids, W_xh, b, h0, W_hh, act):
        return recurrent_kernels._tanh_forward_fm_split(W_xh + b, ids, h0, W_hh, act, parts)

    def backward(ids, V, dh, dh_T, h, W_hh, act, truncate):
        da, dh0, norms, dW_xh, db = recurrent_kernels._tanh_backward_fm_split(dh, dh_T, h, W_hh, act, parts, ids, V)
        return da, dh0, norms, dW_xh, reference.outer_sum(h[:-1], da), db
    actual = tanh_token_results(forward, backward, c, code)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        assert_close(actual[name], value, rtol=RTOL[dtype], name=f"{name} T={T} B={B} H={H} parts={parts}")


def gru_token_case(T, B, H, V, dtype, seed):
    c = rnn_case("gru", T, B, H, dtype, seed)
    rng = np.random.default_rng(seed + 1)
    return {**c, "ids": rng.integers(0, V, (T, B)), "V": V,
            "W_xh": (1.5 * rng.standard_normal((V, 3 * H))).astype(dtype),
            "b": (0.5 * rng.standard_normal(3 * H)).astype(dtype)}


def gru_token_results(forward, backward, c, reset_after=True, truncate=0):
    h, gates, hn = forward(c["ids"], c["W_xh"], c["b"], c["h0"], c["W_hh"], c["b_hh"], reset_after)
    results = backward(c["ids"], c["V"], c["dh"], c["dh_T"], h, gates, hn, c["W_hh"], reset_after, truncate)
    names = ("dax", "dah", "dh0", "norms", "dW_xh", "dW_hh", "db_x", "db_h")
    return {"h": h, "gates": gates, "hn": hn, **dict(zip(names, results))}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("T,B,H,parts", SPLIT_SIZES)
def test_the_split_gru_on_tokens_equals_the_reference(T, B, H, parts, dtype):
    """The reset-after GRU's split pair on token inputs (x_t W_xh + b_xh gathered as the steps
    go; dW_xh, db_x and db_h's n block summed during the backward walk) against the
    reference's gru_forward_tokens / gru_backward_tokens."""
    c = gru_token_case(T, B, H, 3, dtype, seed=T * 100 + B * 10 + parts)
    expected = gru_token_results(reference.gru_forward_tokens, reference.gru_backward_tokens, c)

    def forward(ids, W_xh, b_xh, h0, W_hh, b_hh, reset_after):
        return recurrent_kernels._gru_forward_split(W_xh + b_xh, ids, h0, W_hh, b_hh, parts)

    def backward(ids, V, dh, dh_T, h, gates, hn, W_hh, reset_after, truncate):
        dax, dah, dh0, norms, dW_xh, db_x, db_h = recurrent_kernels._gru_backward_split(
            dh, dh_T, h, gates, hn, W_hh, parts, ids, V)
        return dax, dah, dh0, norms, dW_xh, reference.outer_sum(h[:-1], dah), db_x, db_h
    actual = gru_token_results(forward, backward, c)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        assert_close(actual[name], value, rtol=RTOL[dtype], name=f"{name} T={T} B={B} H={H} parts={parts}")


@pytest.mark.parametrize("cell,reset_after,threads,truncate", [
    ("tanh", True, 1, 0), ("tanh", True, 2, 0), ("tanh", True, 2, 3),
    ("gru", True, 1, 0), ("gru", False, 1, 0), ("gru", True, 2, 0), ("gru", True, 2, 3), ("gru", False, 2, 0)])
def test_the_public_tanh_and_gru_token_pairs_equal_the_reference(cell, reset_after, threads, truncate):
    """kernels.<cell>_forward_tokens / <cell>_backward_tokens, float32, B 16, 80 units: split on
    two threads where the pool is shared (a truncated walk and the reset-before GRU keep the
    unsplit composition), the composition on one; the reference's results every way."""
    if threads == 2 and not TWO_THREADS:
        pytest.skip("Numba has one thread here")
    if cell == "tanh":
        c = tanh_token_case(6, 16, 80, 7, np.float32, seed=threads + truncate)

        def results(m):
            return tanh_token_results(m.tanh_forward_tokens, m.tanh_backward_tokens, c, m.ACTIVATIONS["tanh"],
                                      truncate)
    else:
        c = gru_token_case(6, 16, 80, 7, np.float32, seed=threads + truncate)

        def results(m):
            return gru_token_results(m.gru_forward_tokens, m.gru_backward_tokens, c, reset_after, truncate)
    expected = results(reference)
    with limit_threads(threads, "numba"):
        actual = results(kernels)
    for name, value in expected.items():
        assert_close(actual[name], value, rtol=1e-4, name=f"{cell} {name} threads={threads} truncate={truncate}")


@pytest.mark.parametrize("bad", [5, -1])
@pytest.mark.parametrize("cell", ["tanh", "lstm", "gru"])
def test_a_token_out_of_the_vocabulary_is_refused_by_the_split_pairs(cell, bad):
    """Every split forward and backward checks its token ids against its rows (V = 5)."""
    k = recurrent_kernels
    make = {"tanh": tanh_token_case, "lstm": token_case, "gru": gru_token_case}[cell]
    c = make(3, 4, 8, 5, np.float64, seed=1)
    ids = c["ids"].copy()
    ids[1, 2] = bad
    G = {"tanh": 1, "lstm": 4, "gru": 3}[cell]
    h, gates = np.zeros((4, 4, 8)), np.zeros((3, 4, G * 8))
    X = c["W_xh"] + c["b"]
    calls = {"tanh": (lambda: k._tanh_forward_fm_split(X, ids, c["h0"], c["W_hh"], 0, 2),
                      lambda: k._tanh_backward_fm_split(c["dh"], c["dh_T"], h, c["W_hh"], 0, 2, ids, 5)),
             "lstm": (lambda: k._lstm_forward_split(X, ids, c["h0"], c["c0"], c["W_hh"], 2),
                      lambda: k._lstm_backward_split(c["dh"], c["dh_T"], c["dc_T"], h, gates, c["W_hh"], 2, ids, 5)),
             "gru": (lambda: k._gru_forward_split(X, ids, c["h0"], c["W_hh"], c["b_hh"], 2),
                     lambda: k._gru_backward_split(c["dh"], c["dh_T"], h, gates, np.zeros((3, 4, 8)), c["W_hh"], 2,
                                                   ids, 5))}
    for call in calls[cell]:
        with pytest.raises(IndexError):
            call()


def test_parts_split_only_a_shared_pool_and_enough_units(monkeypatch):
    monkeypatch.setattr(pool, "PARTS", 1)
    assert pool.parts(1024) == 1
    monkeypatch.setattr(pool, "PARTS", 2)
    assert pool.parts(2 * pool.SPLIT_MIN_HIDDEN) == 2
    assert pool.parts(2 * pool.SPLIT_MIN_HIDDEN - 1) == 1


@pytest.mark.skipif(not TWO_THREADS, reason="Numba has one thread here")
def test_two_threads_share_one_pool_and_products_stay_exact():
    """Inside limit_threads(2) SciPy's OpenBLAS runs its jobs on Numba's threads (where this
    OpenBLAS and threading layer allow it); its products equal NumPy's; after the block the
    callback is gone and nesting restores the outer block's state."""
    from scipy.linalg import blas
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 500))
    with limit_threads(2, "numba"):
        shared = pool.PARTS
        if shared == 1:
            pytest.skip(f"no shared pool here (threading layer {numba.threading_layer()})")
        assert shared == 2
        for _ in range(3):
            assert_close(blas.dgemm(1.0, a, b), a @ b, rtol=1e-12, name="dgemm on the shared pool")
        with limit_threads(1, "numba"):
            assert pool.PARTS == 1                   # one thread: not shared inside
        with limit_threads(2, "numba"):
            assert pool.PARTS == 2
        assert pool.PARTS == 2
        assert_close(blas.dgemm(1.0, a, b), a @ b, rtol=1e-12, name="dgemm after a nested block")
    assert pool.PARTS == 1
    assert_close(blas.dgemm(1.0, a, b), a @ b, rtol=1e-12, name="dgemm after the block")


@pytest.mark.skipif(not TWO_THREADS, reason="Numba has one thread here")
@pytest.mark.parametrize("truncate", [0, 3])
def test_the_public_pair_splits_on_two_threads_and_equals_the_reference(truncate):
    """kernels.lstm_forward / lstm_backward inside limit_threads(2) in float64: split where the
    pool is shared (truncated backward walks keep the unsplit kernel), the reference's results."""
    c = lstm_case(6, 16, 96, np.float64, seed=5)
    expected = pair_results(reference.lstm_forward, lambda *a: reference.lstm_backward(*a, truncate), c)
    with limit_threads(2, "numba"):
        assert pool.parts(96) in (1, 2)
        actual = pair_results(kernels.lstm_forward, lambda *a: kernels.lstm_backward(*a, truncate), c)
    for name, value in expected.items():
        assert_close(actual[name], value, rtol=1e-10, name=name)


TRAIN_ON_TWO_THREADS = r"""
import sys, numpy as np
from rnnvanish.model import LanguageModel
from rnnvanish.optim import Adam
from rnnvanish.clip import clip_by_global_norm
from rnnvanish.threads import limit_threads
from rnnvanish.kernels import pool
model = LanguageModel("lstm", 30, 80, dtype=np.float32, layers=2)
opt = Adam(model.params, lr=2e-3, backend=model.backend)
rng = np.random.default_rng(0)
x, y = rng.integers(0, 30, (20, 16)), rng.integers(0, 30, (20, 16))
state, losses = None, []
with limit_threads(2, "numba"):
    split = pool.parts(80)
    for _ in range(12):
        loss, grads, state, _ = model.loss_and_grads(x, y, state)
        clip_by_global_norm(grads, 5.0)
        opt.step(grads)
        losses.append(loss)
print(split, losses[0], losses[-1])
"""


@pytest.mark.skipif(not TWO_THREADS, reason="Numba has one thread here")
def test_a_two_thread_training_run_ends_and_learns():
    """Twelve steps of a 2-layer LSTM on two threads in a fresh process end within the time
    limit (no job of OpenBLAS's left waiting for a thread) and lower the loss."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", TRAIN_ON_TWO_THREADS], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    split, first, last = done.stdout.split()
    assert int(split) in (1, 2)
    assert float(last) < float(first)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("size,parts", [(1, 2), (1001, 2), (40000, 3)])
def test_the_split_adam_pass_gives_the_same_bits(size, parts, dtype):
    """_adam_pass_split against _adam_pass: every entry's update is the same, so the bits are."""
    from rnnvanish.kernels import optim as k_optim
    rng = np.random.default_rng(size)
    p, g, m = (rng.standard_normal(size).astype(dtype) for _ in range(3))
    v = rng.random(size).astype(dtype)
    s = np.dtype(dtype).type
    scalars = (s(0.9), s(0.1), s(0.999), s(0.001), s(0.01), s(0.3), s(1e-8), s(0.7))
    whole = [a.copy() for a in (p, g, m, v)]
    split = [a.copy() for a in (p, g, m, v)]
    k_optim._adam_pass(*whole, *scalars)
    k_optim._adam_pass_split(*split, *scalars, parts)
    for name, a, b in zip("pgmv", whole, split):
        assert np.array_equal(a, b), name
    assert not np.array_equal(whole[0], p)                  # the pass did move the parameters
