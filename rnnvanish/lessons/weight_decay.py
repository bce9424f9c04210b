"""Does weight decay restrain exploding gradients? A tanh RNN started above the edge of stability.

A small, self-contained tanh RNN with a linear readout learns to recall its input from `delay`
steps back (T steps, inputs x_t ~ N(0, 1), targets x_{t-delay}):

    a_t = x_t @ W_xh + h_{t-1} @ W_hh + b_h          # (B, H)
    h_t = tanh(a_t)
    y_t = h_t @ W_hy + b_y                           # (B, I)
    E   = mean over t >= delay and the batch of 1/2 ||y_t - x_{t-delay}||^2

W_hh starts at spectral radius rho > 1, where the gradient through time can grow like
rho^(t-k). Training is plain SGD on E + lambda/2 (||W_xh||^2 + ||W_hh||^2 + ||W_hy||^2), so each
step shrinks the weights by a factor (1 - lr lambda) before the data gradient moves them; with
clipping, the data gradient is scaled to global norm <= c first (`rnnvanish.clip`).
"""
import numpy as np

from ..clip import clip_by_global_norm, global_norm

WEIGHTS = ("W_xh", "W_hh", "W_hy")                            # decayed; the biases are not


def spectral_radius(W):
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def init_rnn(H=32, I=1, rho=1.3, input_scale=0.3, rng=None):
    """Parameters with W_hh ~ N(0, 1/H) rescaled to spectral radius exactly rho, W_xh ~ N(0, input_scale^2).

    A weak input leaves the recurrent part in charge: a strong one saturates the units and
    tanh' then damps the product of Jacobians whatever rho is."""
    rng = np.random.default_rng(rng)
    W_hh = rng.standard_normal((H, H)) / np.sqrt(H)
    return {
        "W_xh": input_scale * rng.standard_normal((I, H)),
        "W_hh": W_hh * rho / spectral_radius(W_hh),
        "b_h": np.zeros(H),
        "W_hy": rng.standard_normal((H, I)) / np.sqrt(H),
        "b_y": np.zeros(I),
    }


def recall_batch(T, B, I=1, rng=None):
    """x (T, B, I) ~ N(0, 1); the target at t is x_{t - delay} (taken by the loss)."""
    return np.random.default_rng(rng).standard_normal((T, B, I))


def rnn_loss_and_grads(params, x, delay):
    """(E, grads, hs): the recall loss and its exact gradient by BPTT (full, no truncation)."""
    T, B, _ = x.shape
    H = params["W_hh"].shape[0]
    h = np.zeros((T + 1, B, H))                               # h[0] = h_prev = 0
    for t in range(T):
        h[t + 1] = np.tanh(x[t] @ params["W_xh"] + h[t] @ params["W_hh"] + params["b_h"])   # (B, H)
    y = h[1:] @ params["W_hy"] + params["b_y"]                # (T, B, I)
    scored = np.arange(T) >= delay                            # steps that have a target
    err = np.zeros_like(y)
    err[scored] = y[scored] - x[: T - delay]
    n = scored.sum() * B
    E = 0.5 * np.sum(err ** 2) / n
    dy = err / n                                              # dE/dy_t
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    grads["W_hy"] = np.einsum("tbh,tbi->hi", h[1:], dy)       # y_t = h_t @ W_hy + b_y
    grads["b_y"] = dy.sum(axis=(0, 1))
    dh_next = np.zeros((B, H))
    for t in reversed(range(T)):
        dh = dy[t] @ params["W_hy"].T + dh_next               # from the readout and from step t+1
        da = dh * (1.0 - h[t + 1] ** 2)                       # through tanh
        grads["W_xh"] += x[t].T @ da                          # accumulate: shared over time
        grads["W_hh"] += h[t].T @ da
        grads["b_h"] += da.sum(axis=0)
        dh_next = da @ params["W_hh"].T                       # back into h_{t-1}
    return E, grads, h


def train_rnn(rho=1.3, weight_decay=0.0, clip=None, steps=400, lr=0.05, T=50, B=16, H=32, delay=5, input_scale=0.3,
              rng=0, blowup=1e6):
    """One SGD run; returns per-step arrays {"step", "loss", "grad_norm" (data gradient, before
    clipping), "radius" (of W_hh after the step)} and {"diverged": the step at which the
    loss passed `blowup` or stopped being finite, or None}.
    The initial weights and the batches depend on `rng` only, so runs that differ in
    weight decay or clipping see the same data."""
    rng_init, rng_data = np.random.default_rng([rng, 0]), np.random.default_rng([rng, 1])
    params = init_rnn(H, 1, rho, input_scale, rng_init)
    log = {"step": [], "loss": [], "grad_norm": [], "radius": []}
    diverged = None
    for step in range(1, steps + 1):
        E, grads, _ = rnn_loss_and_grads(params, recall_batch(T, B, rng=rng_data), delay)
        if not np.isfinite(E) or E > blowup:
            diverged = step
            break
        log["step"].append(step)
        log["loss"].append(E)
        log["grad_norm"].append(global_norm(grads))
        if clip is not None:
            clip_by_global_norm(grads, clip)
        for k in params:
            decay = weight_decay * params[k] if k in WEIGHTS else 0.0   # d/dW of lambda/2 ||W||^2
            params[k] -= lr * (grads[k] + decay)
        log["radius"].append(spectral_radius(params["W_hh"]))
    out = {k: np.asarray(v) for k, v in log.items()}
    out["diverged"] = diverged
    return out


def weight_decay_study(rhos=(1.1, 1.5, 2.0, 3.0), decays=(0.0, 1e-3, 1e-2, 1e-1), clip=1.0,
                       clip_decays=(0.0, 1e-1), steps=600, **options):
    """{rho: {label: run}}: each weight decay without clipping, then clipping at global norm
    `clip` with each of `clip_decays`. Every run of one rho starts from the same weights."""
    study = {}
    for rho in rhos:
        runs = {f"weight decay {wd:g}": train_rnn(rho, wd, None, steps, **options) for wd in decays}
        for wd in clip_decays:
            runs[f"clip at {clip:g} + weight decay {wd:g}"] = train_rnn(rho, wd, clip, steps, **options)
        study[rho] = runs
    return study
