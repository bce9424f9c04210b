"""Packed per-step products (rnnvanish.kernels.recurrent, "packed products" and "panels of
columns") and the passes around the recurrence that split across threads
(rnnvanish.kernels.output).

The packing is held to its layout (panel p of MR rows holds A[p MR + r, k] at k MR + r, the
last panel padded with zeros); the packed product to a float64 product at every remainder of
rows (M mod MR) and columns (tiles of two vectors, one vector, single columns), and it must not
write past the rows it is given. Panels of columns likewise: their layout (panel q of NR
columns holds W[k, q NR + j] at k NR + j), read from rows or through a transposed view, and
their product at every remainder of rows (M mod 4) and columns, written only where it belongs.
The split passes must give the same bits as their one-thread form, whatever the number of
threads, and match their definitions.
"""
import math

import numba
import numpy as np
import pytest

from conftest import assert_close
from rnnvanish import reference
from rnnvanish.clip import _sum_squares
from rnnvanish.kernels import output as output_kernels
from rnnvanish.kernels import recurrent as R
from rnnvanish.threads import limit_threads

MR = R.MR
TWO_THREADS = numba.config.NUMBA_NUM_THREADS >= 2


@numba.njit
def _packed(A, columns):
    """A packed from its rows, or (columns) from the columns of a C-contiguous A^T."""
    M, K = A.shape
    P = np.zeros(R._packed_size(M, K), dtype=A.dtype)
    if columns:
        R._pack_columns(P, 0, np.ascontiguousarray(A.T), 0, M)
    else:
        R._pack_rows(P, 0, A, 0, M)
    return P


@numba.njit
def _pack_and_multiply(A, x, columns):
    """A @ x through the packed product, in the first M rows of an (M + 2, N) array."""
    M = A.shape[0]
    out = np.full((M + 2, x.shape[1]), 7.0, dtype=A.dtype)   # two rows past the product: untouched
    R._packed_dot(_packed(A, columns), M, x, out[:M])
    return out


def _layout(A):
    """The packed layout by its definition, in Python."""
    M, K = A.shape
    panels = -(-M // MR)
    P = np.zeros(panels * MR * K, dtype=A.dtype)
    for q in range(M):
        for k in range(K):
            P[q // MR * MR * K + k * MR + q % MR] = A[q, k]
    return P


@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
@pytest.mark.parametrize("M,K", [(1, 1), (5, 3), (6, 4), (7, 2), (13, 5)])
def test_packing_follows_its_layout(M, K, columns):
    A = np.random.default_rng(M * 10 + K).standard_normal((M, K))
    assert np.array_equal(_packed(A, columns), _layout(A))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (5, 3, 8), (6, 40, 16), (7, 2, 17), (13, 17, 24), (12, 40, 32),
                                   (64, 33, 40), (20, 9, 3), (9, 64, 9)])
def test_the_packed_product_equals_a_product(M, K, N, columns, dtype):
    """Every remainder of rows (M mod 6) and of columns (tiles of 16/8 float32 or 8/4 float64
    columns, then single ones); the rows past M keep their contents."""
    rng = np.random.default_rng(M * 1000 + K * 10 + N)
    A, x = rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)
    out = _pack_and_multiply(A, x, columns)
    exact = A.astype(np.float64) @ x.astype(np.float64)
    scale = np.abs(A).astype(np.float64) @ np.abs(x).astype(np.float64)
    tol = 1e-13 if dtype == np.float64 else 2e-6
    assert np.all(np.abs(out[:M] - exact) <= tol * (scale + 1e-30))
    assert np.all(out[M:] == 7.0)



@numba.njit
def _gate_columns(W, G, j0, j1):
    m, H = j1 - j0, W.shape[1] // G
    P = np.zeros(R._packed_size(G * m, W.shape[0]), dtype=W.dtype)
    R._pack_gate_columns(P, W, G, j0, j1)
    return P


@pytest.mark.parametrize("G,H,j0,j1", [(4, 10, 0, 10), (4, 10, 3, 8), (3, 7, 2, 7), (1, 13, 5, 12)])
def test_a_parts_gate_columns_are_its_units_rows_of_w_transposed(G, H, j0, j1):
    """Packed rows g m + i = column g H + j0 + i of W (K, G H): the part's rows of W^T."""
    W = np.random.default_rng(G * H + j0).standard_normal((6, G * H))
    rows = np.concatenate([W[:, g * H + j0:g * H + j1].T for g in range(G)])
    assert np.array_equal(_gate_columns(W, G, j0, j1), _layout(rows))


# --------------------------------------------------------------------------- panels of columns

@numba.njit
def _panels(A, c0, n, transposed):
    """Columns c0 .. c0 + n of A in panels of columns, read from A itself or (transposed)
    through the transposed view of a C-contiguous A^T (the backward's reading)."""
    K = A.shape[0]
    P = np.zeros(R._panels_size(n, K, A), dtype=A.dtype)
    R._pack_panels(P, np.ascontiguousarray(A.T).T if transposed else A, c0, n)
    return P


def _panels_layout(A, c0, n):
    """Panels of NR columns by their definition: panel q holds A[k, c0 + q NR + j] at k NR + j."""
    NR = R.PANEL_VECTORS * 32 // A.itemsize
    K = A.shape[0]
    P = np.zeros(-(-n // NR) * NR * K, dtype=A.dtype)
    for j in range(n):
        for k in range(K):
            P[j // NR * NR * K + k * NR + j % NR] = A[k, c0 + j]
    return P


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("transposed", [False, True], ids=["rows", "transposed"])
@pytest.mark.parametrize("K,c0,n", [(1, 0, 1), (3, 2, 7), (9, 0, 24), (17, 5, 30), (8, 1, 49), (40, 3, 12)])
def test_panels_of_columns_follow_their_layout(K, c0, n, transposed, dtype):
    A = np.random.default_rng(K * 100 + n).standard_normal((K, c0 + n + 3)).astype(dtype)
    assert np.array_equal(_panels(A, c0, n, transposed), _panels_layout(A, c0, n))


@numba.njit
def _panel_multiply(A, W, o0, ldo):
    """A @ W through the panel product, into columns o0 .. o0 + N of a (M, ldo) array of 7s."""
    M, N = A.shape[0], W.shape[1]
    out = np.full((M, ldo), 7.0, dtype=A.dtype)
    R._panel_dot(A, _panels(W, 0, N, False), N, out.reshape(-1), o0, ldo)
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (3, 5, 8), (4, 40, 24), (5, 2, 17), (9, 17, 25), (32, 33, 52),
                                   (7, 9, 3), (13, 64, 60)])
def test_the_panel_product_equals_a_product(M, K, N, dtype):
    """Every remainder of rows (M mod 4) and of columns (panels of three, two, one vectors,
    then single columns); the product lands in its columns of a wider array, whose other
    entries keep their contents."""
    rng = np.random.default_rng(M * 1000 + K * 10 + N)
    A, W = rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)
    out = _panel_multiply(A, W, 3, N + 5)
    exact = A.astype(np.float64) @ W.astype(np.float64)
    scale = np.abs(A).astype(np.float64) @ np.abs(W).astype(np.float64)
    tol = 1e-13 if dtype == np.float64 else 2e-6
    assert np.all(np.abs(out[:, 3:3 + N] - exact) <= tol * (scale + 1e-30))
    assert np.all(out[:, :3] == 7.0) and np.all(out[:, 3 + N:] == 7.0)

# --------------------------------------------------------------------------- split passes

def _logits_case(R_rows, V, B, seed):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((R_rows, V)).astype(np.float32) * 3
    targets = rng.integers(0, V, (R_rows // B, B))
    return y, targets, rng.standard_normal(V).astype(np.float32)


def test_the_logits_pass_gives_the_same_bits_split_or_not():
    y, targets, b = _logits_case(640, 70, 32, 0)
    chunks = -(-y.shape[0] // output_kernels.ROWS)
    split_y, losses, sums = y.copy(), np.zeros(chunks), np.zeros((chunks, y.shape[1]), np.float32)
    output_kernels._logits_split(split_y, targets, b, losses, sums)
    one_y, one_losses, one_sums = y.copy(), np.zeros(chunks), np.zeros((chunks, y.shape[1]), np.float32)
    for c in range(chunks):
        one_losses[c] = output_kernels._logits_rows(one_y, targets, b, c * output_kernels.ROWS,
                                                    min((c + 1) * output_kernels.ROWS, y.shape[0]), one_sums[c])
    assert np.array_equal(split_y, one_y) and np.array_equal(losses, one_losses) and np.array_equal(sums, one_sums)


@pytest.mark.skipif(not TWO_THREADS, reason="needs two Numba threads")
def test_the_output_layer_above_the_split_size_equals_the_reference_on_any_thread_count():
    """T 8, B 32, V 200: 51,200 logits, above PARALLEL_MIN, so the rows split across threads."""
    rng = np.random.default_rng(3)
    T, B, H, V = 8, 32, 24, 200
    assert T * B * V >= output_kernels.PARALLEL_MIN
    h = rng.standard_normal((T + 1, B, H))
    targets = rng.integers(0, V, (T, B))
    W, b = rng.standard_normal((H, V)) * 0.3, rng.standard_normal(V) * 0.1
    expected = reference.output_layer(h, targets, W, b)
    results = []
    for threads in (1, 2):
        with limit_threads(threads, "numba"):
            results.append(output_kernels.output_layer(h, targets, W, b))
    for got in results:
        assert abs(got[0] - expected[0]) <= 1e-12 * abs(expected[0])
        for a, e, name in zip(got[1:], expected[1:], ("dh", "dW_hy", "db_y")):
            assert_close(a, e, rtol=1e-10, name=name)
    for a, b_ in zip(results[0], results[1]):
        assert np.array_equal(np.asarray(a), np.asarray(b_))


@pytest.mark.parametrize("T,B,GH", [(1, 2, 10), (3, 4, 10), (20, 32, 512)], ids=["fewer rows than V", "one thread",
                                                                                 "split"])
def test_the_input_side_passes_match_their_definitions(T, B, GH):
    """input_rows, embed_backward and the bias sums below and above PARALLEL_MIN entries; window_grads
    takes db_x from dW_xh's rows, and db_h from da_h unless it is da_x."""
    rng = np.random.default_rng(T + GH)
    V = 11
    ids = rng.integers(0, V, (T, B))
    W, bias, da = rng.standard_normal((V, GH)), rng.standard_normal(GH), rng.standard_normal((T, B, GH))
    assert (da.size >= output_kernels.PARALLEL_MIN) == (GH == 512)
    assert np.array_equal(output_kernels.input_rows(ids, W, bias), W[ids] + bias)
    dW = np.zeros((V, GH))
    for t in range(T):
        for b in range(B):
            dW[ids[t, b]] += da[t, b]                 # the same order of sums: the same bits
    assert np.array_equal(output_kernels.embed_backward(ids, da, V), dW)
    assert_close(output_kernels._column_sums(da), da.sum(axis=(0, 1)), rtol=1e-12, name="column sums")
    h = rng.standard_normal((T + 1, B, 7))
    for da_h, name in ((da, "the same array"), (2 * da, "another array"), (da.copy(), "a copy")):
        _, _, db_x, db_h = output_kernels.window_grads(ids, h, da, da_h, V)
        assert_close(db_x, da.sum(axis=(0, 1)), rtol=1e-12, name=f"db_x, {name}")
        assert_close(db_h, da_h.sum(axis=(0, 1)), rtol=1e-12, name=f"db_h, {name}")
    if V < T * B:
        assert np.array_equal(db_x, dW.sum(axis=0))    # db_x is dW_xh's row sums, in row order


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32], ids=["float32", "float64", "int32"])
def test_the_global_norms_sum_of_squares_is_its_float64_definition(dtype):
    g = (np.random.default_rng(5).standard_normal((300, 70)) * 50).astype(dtype)
    exact = math.fsum(float(v) ** 2 for v in g.ravel())
    assert abs(_sum_squares(g) - exact) <= 1e-13 * exact
    assert _sum_squares(g[:, ::3]) == pytest.approx(math.fsum(float(v) ** 2 for v in g[:, ::3].ravel()), rel=1e-13)
