"""Checking BPTT gradients against central finite differences, truncation included.

With `truncate = k`, BPTT computes the exact gradient of the *truncated objective*

    E_k(theta, state_0) = sum_s E_s( cell^(s - start_s)(theta; x_{start_s+1..s}, state*_{start_s}) ),
    start_s = max(s - k, 0),

where state*_t is the state of the untruncated forward pass, held fixed (a stop-gradient),
except state*_0 = state_0 which is an input and gets its gradient. This module builds that
objective explicitly, window by window, and differentiates it numerically in float64:

    dE/dtheta_i ~ (E(theta_i + eps) - E(theta_i - eps)) / (2 eps)

The relative error per tensor is ||analytic - numeric|| / (||analytic|| + ||numeric||).
"""
import numpy as np

from .model import LanguageModel


def relative_error(analytic, numeric):
    """||a - n|| / (||a|| + ||n||); 0 when both are exactly zero."""
    denom = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if denom == 0.0 else float(np.linalg.norm(analytic - numeric) / denom)


def states_in_cache(cell, cache):
    """The carry at every step t = 0..T as a list of tuples (from a forward cache)."""
    parts = [cache[name] for name in cell.state_names]
    return [tuple(p[t].copy() for p in parts) for t in range(cache["T"] + 1)]


def truncated_objective(cell, x, state0, step_loss, truncate, fixed):
    """E_k as defined above. `step_loss(s, h_s, state_s)` is the loss at step s (1-based);
    `fixed` the carry at every step from the unperturbed forward pass."""
    T = len(x)
    k = T if truncate is None or truncate >= T else truncate
    if k == T:                                      # every chain starts at state_0: one pass
        h, _, cache = cell.forward(x, state0)
        states = states_in_cache(cell, cache)
        return sum(step_loss(s, h[s], states[s]) for s in range(1, T + 1))
    total = 0.0
    for s in range(1, T + 1):
        start = max(s - k, 0)
        h, state_s, _ = cell.forward(x[start:s], state0 if start == 0 else fixed[start])
        total += step_loss(s, h[-1], state_s)
    return total


def numerical_gradient(f, array, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of `array` (in place)."""
    grad = np.zeros_like(array)
    for i in np.ndindex(array.shape):
        old = array[i]
        array[i] = old + eps
        f_plus = f()
        array[i] = old - eps
        f_minus = f()
        array[i] = old
        grad[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def check_language_model(cell="tanh", hidden=5, window=7, batch=3, truncate=None, vocab=6, seed=0,
                         backend=None, eps=1e-5, **cell_options):
    """Analytic vs numerical gradients of the LM's truncated loss, float64, every parameter and
    the initial carry. Parameters and the initial carry are random (non-zero biases).

    Returns a list of (name, relative error, max |analytic|)."""
    rng = np.random.default_rng(seed)
    model = LanguageModel(cell, vocab, hidden, seed=seed, dtype=np.float64, backend=backend, **cell_options)
    for p in model.params.values():
        p += rng.normal(0.0, 0.3, p.shape)          # move off the initialiser's special values
    x = rng.integers(0, vocab, size=(window, batch))
    targets = rng.integers(0, vocab, size=(window, batch))
    state0 = tuple(rng.normal(0.0, 0.5, (batch, hidden)) for _ in model.cell.state_names)

    loss, grads, _, info = model.loss_and_grads(x, targets, state0, truncate=truncate)
    _, _, cache = model.cell.forward(x, state0)
    fixed = states_in_cache(model.cell, cache)
    W_hy, b_y = model.params["W_hy"], model.params["b_y"]

    def step_loss(s, h_s, _state):
        y = h_s @ W_hy + b_y                                     # (B, V)
        z = y - y.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -log_p[np.arange(batch), targets[s - 1]].sum() / (window * batch)

    def objective():
        return truncated_objective(model.cell, x, state0, step_loss, truncate, fixed)

    rows = []
    for name, p in model.params.items():
        numeric = numerical_gradient(objective, p, eps)
        rows.append((name, relative_error(grads[name], numeric), float(np.abs(grads[name]).max())))
    for name, s0, ds0 in zip(model.cell.state_names, state0, info["dstate0"]):
        numeric = numerical_gradient(objective, s0, eps)
        rows.append((f"{name}0", relative_error(ds0, numeric), float(np.abs(ds0).max())))
    return rows


# --------------------------------------------------------------------------- stacks

def stack_truncated_outputs(stack, x, state0, masks, truncate, fixed):
    """The stack's output at every step under truncation, built window by window (see below).

    With truncation k every layer treats the gradient arriving at step t as a loss at t and sends
    it back at most k steps through its own recurrence, whatever layer it came from. That is the
    exact gradient of this nested objective: layer l's output at step t is computed by running
    the cell over the window (t-k, t] from its carry at t-k, held fixed (`fixed[l][t-k]`, the
    unperturbed forward's; the initial carry itself at 0), on inputs that are the lower layer's
    outputs at those steps, each built the same way. `masks` (a StackMasks or None) are held fixed.
    Returns out[t] (B, H) for t = 1..T (index 0 unused)."""
    T = len(x)
    k = T if truncate is None or truncate >= T else truncate
    carries = stack._split(state0)
    memo = {}

    def output(l, t):
        """The input of layer l + 1 at step t (l = -1: the stack's input)."""
        if l < 0:
            return x[t - 1]
        if (l, t) not in memo:
            start = max(t - k, 0)
            inputs = np.stack([output(l - 1, tau) for tau in range(start + 1, t + 1)])
            cell = stack.cells[l]
            cell_masks = None if masks is None else masks.cells[l]
            if cell_masks is not None:
                from .cells import CellMasks
                zone = cell_masks.zoneout
                cell_masks = CellMasks(recurrent=cell_masks.recurrent, zoneout=None if zone is None else zone[start:t])
            carry = carries[l] if start == 0 else fixed[l][start]
            h, _, _ = (cell.forward(inputs, carry) if cell_masks is None
                       else cell.forward(inputs, carry, masks=cell_masks))
            out = h[-1] + inputs[-1] if stack.residual_layers[l] else h[-1]
            drop = None if masks is None else masks.between[l]
            if drop is not None:
                out = out * (drop[t - 1] if drop.ndim == 3 else drop)
            memo[(l, t)] = out
        return memo[(l, t)]

    return [None] + [output(stack.layers - 1, t) for t in range(1, T + 1)]


def check_stacked_language_model(cell="tanh", layers=2, hidden=5, window=7, batch=3, truncate=None, vocab=6,
                                 seed=0, backend=None, eps=1e-5, dropout=0.0, variational=False, zoneout=0.0,
                                 residual=False, **cell_options):
    """`check_language_model` for a stack of layers, with dropout and zoneout masks drawn once
    and held fixed. Returns a list of (name, relative error, max |analytic|)."""
    rng = np.random.default_rng(seed)
    model = LanguageModel(cell, vocab, hidden, seed=seed, dtype=np.float64, backend=backend, layers=layers,
                          dropout=dropout, variational=variational, zoneout=zoneout, residual=residual,
                          **cell_options)
    for p in model.params.values():
        p += rng.normal(0.0, 0.3, p.shape)          # move off the initialiser's special values
    x = rng.integers(0, vocab, size=(window, batch))
    targets = rng.integers(0, vocab, size=(window, batch))
    state0 = tuple(rng.normal(0.0, 0.5, (batch, hidden)) for _ in range(len(model.cell.state_names) * layers))
    masks = model.draw_masks(window, batch, np.random.default_rng([seed, 99]))

    loss, grads, _, info = model.loss_and_grads(x, targets, state0, truncate=truncate, masks=masks)
    _, _, cache = model.stack.forward(x, state0, masks)
    fixed = [states_in_cache(c, layer_cache) for c, layer_cache in zip(model.stack.cells, cache["layers"])]
    W_hy, b_y = model.params["W_hy"], model.params["b_y"]

    def objective():
        out = stack_truncated_outputs(model.stack, x, state0, masks, truncate, fixed)
        total = 0.0
        for s in range(1, window + 1):
            y = out[s] @ W_hy + b_y                                  # (B, V)
            z = y - y.max(axis=1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            total += -log_p[np.arange(batch), targets[s - 1]].sum() / (window * batch)
        return total

    rows = []
    for name, p in model.params.items():
        numeric = numerical_gradient(objective, p, eps)
        rows.append((name, relative_error(grads[name], numeric), float(np.abs(grads[name]).max())))
    for i, (s0, ds0) in enumerate(zip(state0, info["dstate0"])):
        numeric = numerical_gradient(objective, s0, eps)
        rows.append((f"state0[{i}]", relative_error(ds0, numeric), float(np.abs(ds0).max())))
    return rows
