"""NumPy reference of the language model's pieces around the recurrence, written to be read.

Twins of `rnnvanish.kernels.output`: the input side of a window (`input_rows`), the output
layer with its loss, forward and backward (`output_layer`, `softmax_xent`), the weight
gradients of a window (`window_grads`, `embed_backward`), and the same three for dense inputs
(`dense_rows`, `outer_sum`, `back_rows`).

    xw[t, b] = W_xh[x_t[b]] + b           # (B, GH): a row of W_xh, no one-hot product
    y_t = h_t W_hy + b_y                  # (B, V) logits
    E = mean over t, b of -log softmax(y_t)[target]
Legend: T steps, B batch, H hidden, V vocabulary, GH = G*H the gate width.
Token ids index arrays here: every id is checked first (IndexError), as in the kernels.
"""
import numpy as np


def _check_ids(ids, V):
    """Raise IndexError unless every id of ids (T, B) lies in [0, V)."""
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        raise IndexError("token id out of range of the vocabulary")


def softmax_xent(y, targets):
    """Mean softmax cross-entropy over all T*B positions and its gradient on the logits.

    y (T, B, V) logits, targets (T, B) ints. Returns (loss in nats per token, dy (T, B, V))."""
    T, B, V = y.shape
    _check_ids(targets, V)
    z = y - y.max(axis=2, keepdims=True)                      # shift for a stable exp
    log_p = z - np.log(np.exp(z).sum(axis=2, keepdims=True))
    tt, bb = np.meshgrid(np.arange(T), np.arange(B), indexing="ij")
    loss = -log_p[tt, bb, targets].mean()
    dy = np.exp(log_p)                                        # dE/dy = (p - onehot) / (T B)
    dy[tt, bb, targets] -= 1.0
    dy /= T * B
    return loss, dy


def embed_backward(ids, da, V):
    """dW_xh for token inputs: row ids[t, b] of W_xh receives da[t, b] (rows repeat: accumulate)."""
    _check_ids(ids, V)
    dW = np.zeros((V, da.shape[2]), dtype=da.dtype)
    np.add.at(dW, ids.reshape(-1), da.reshape(-1, da.shape[2]))
    return dW


def output_layer(h, targets, W_hy, b_y):
    """The output layer and its loss, forward and backward, in one call.

    h (T+1, B, H) as a cell returns it (h[0], the carried-in state, has no loss), targets (T, B).
    Returns (loss, dh (T, B, H), dW_hy (H, V), db_y (V,)): dh is the gradient on h_1..h_T that
    the recurrence's backward takes."""
    T1, B, H = h.shape
    T, V = T1 - 1, W_hy.shape[1]
    _check_ids(targets, V)
    h_flat = h[1:].reshape(T * B, H)                          # rows h_t[b], t = 1..T
    y = h_flat @ W_hy + b_y                                   # (T B, H) @ (H, V) -> (T B, V)
    loss, dy = softmax_xent(y.reshape(T, B, V), targets)      # dE/dy, the mean over T B positions
    dy = dy.reshape(T * B, V)
    dW_hy = h_flat.T @ dy                                     # sum_t h_t^T dy_t: (H, T B) @ (T B, V)
    db_y = dy.sum(axis=0)
    dh = dy @ W_hy.T                                          # backprop into h_t from y_t: (T B, V) @ (V, H)
    return loss, dh.reshape(T, B, H), dW_hy, db_y


def input_rows(ids, W_xh, b):
    """xw[t, b] = W_xh[ids[t, b]] + b: the input term of token ids (T, B), as (T, B, GH)."""
    _check_ids(ids, W_xh.shape[0])
    return W_xh[ids] + b


def window_grads(ids, h, da_x, da_h, V):
    """The weight gradients of one window as whole-window products.

        dW_xh = sum_t onehot(x_t)^T da_x[t]     a scatter-add into rows (embed_backward)
        dW_hh = sum_t h_{t-1}^T da_h[t]         one (H, T B) x (T B, GH) product
        db_x = sum_t,b da_x[t, b];  db_h = sum_t,b da_h[t, b]
    da_x is the gradient on the input-side pre-activations, da_h on the recurrent-side ones
    (the same array except for the GRU). Returns (dW_xh (V, GH), dW_hh (H, GH), db_x, db_h)."""
    T, B, GH = da_h.shape
    H = h.shape[2]
    dW_xh = embed_backward(ids, da_x, V)
    dW_hh = h[:T].reshape(T * B, H).T @ da_h.reshape(T * B, GH)   # (H, T B) @ (T B, GH) -> (H, GH)
    db_x = da_x.sum(axis=(0, 1))
    db_h = da_h.sum(axis=(0, 1))
    return dW_xh, dW_hh, db_x, db_h


# --------------------------------------------------------------------------- dense inputs
# A layer above the first (or a task's input) reads dense rows: its input term, the gradient on
# those rows and the window's weight gradients are whole-window products.

def dense_rows(x, W, b):
    """xw[t, b] = x[t, b] W + b: the input term of dense inputs x (T, B, I), as (T, B, GH)."""
    return x @ W + b                                          # (T, B, I) @ (I, GH)


def outer_sum(a, da):
    """sum over t and b of a[t, b]^T da[t, b]: a weight's gradient over a window, (K, GH)."""
    return a.reshape(-1, a.shape[2]).T @ da.reshape(-1, da.shape[2])   # (K, T B) @ (T B, GH)


def back_rows(da, W):
    """da[t, b] W^T: the gradient on the rows x[t, b] that xw = x W read, (T, B, K)."""
    return da @ W.T                                           # (T, B, GH) @ (GH, K)
