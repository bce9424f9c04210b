"""A short training run of the deep MLP with and without normalisation, on a synthetic task.

The task: x ~ N(0, I) in R^I, the class is the argmax of a random teacher network's C outputs
(one tanh layer of 32 units), so the classes are learnable but not linearly separable. The
student is the MLP of `lessons.norm` with a linear readout and softmax cross-entropy:

    logits = h_L @ W_out + b_out;   E = mean over the batch of -log softmax(logits)[class]

trained by plain SGD. Batch norm trains on batch statistics and is evaluated on running
averages, one example at a time; with a batch of 2, x_hat of every unit is +-1 whatever the
input, and the running averages describe a network that was never trained on them.
"""
import math

import numpy as np

from .norm import NORM_SETUPS, init_norm_mlp, norm_mlp_backward, norm_mlp_eval, norm_mlp_forward


def make_task(n_in=16, n_classes=4, n_train=2048, n_test=1024, rng=None):
    """{"x_train", "y_train", "x_test", "y_test"}: inputs N(0, 1), classes from a random teacher."""
    rng = np.random.default_rng(rng)
    W1 = rng.standard_normal((n_in, 32)) / math.sqrt(n_in)
    W2 = rng.standard_normal((32, n_classes)) / math.sqrt(32)

    def label(x):
        return np.argmax(np.tanh(2.0 * x @ W1) @ W2, axis=1)

    x_train, x_test = rng.standard_normal((n_train, n_in)), rng.standard_normal((n_test, n_in))
    return {"x_train": x_train, "y_train": label(x_train), "x_test": x_test, "y_test": label(x_test)}


def softmax_cross_entropy(logits, y):
    """(E, dE/dlogits): E = mean_b -log p_b[y_b], p = softmax(logits)."""
    z = logits - logits.max(axis=1, keepdims=True)            # shift: same softmax, no overflow
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    B = len(y)
    E = -log_p[np.arange(B), y].mean()
    dlogits = np.exp(log_p)                                   # dE/dlogits = (p - onehot(y)) / B
    dlogits[np.arange(B), y] -= 1.0
    return E, dlogits / B


def evaluate(task, params, W_out, b_out, activation, place, kind, running):
    """(test loss, test accuracy); batch norm alone uses its running averages."""
    x, y = task["x_test"], task["y_test"]
    if place != "none" and kind == "batch":
        h = norm_mlp_eval(x, params, activation, place, running)
    else:                                                     # the same computation as in training
        h = norm_mlp_forward(x, params, activation, place, kind)[0][-1]
    logits = h @ W_out + b_out
    return softmax_cross_entropy(logits, y)[0], float(np.mean(np.argmax(logits, axis=1) == y))


def train_norm_mlp(setup, task=None, activation="relu", scheme="glorot", n_layers=20, width=64, batch=64,
                   steps=300, lr=0.05, eval_every=None, rng=0):
    """Train from one seed; returns {"step", "loss", "grad_norm_first", "eval_step", "test_loss",
    "test_acc", "diverged"}: the training loss and ||dE/dW_1|| at every step, test figures
    every `eval_every` steps (default: 10 times a run) and at the end."""
    place, kind = NORM_SETUPS[setup] if isinstance(setup, str) else setup
    rng = np.random.default_rng(rng)
    task = make_task(rng=rng) if task is None else task
    n_in = task["x_train"].shape[1]
    n_classes = int(task["y_train"].max()) + 1
    params = init_norm_mlp(n_layers, width, n_in=n_in, scheme=scheme, rng=rng)
    W_out = rng.standard_normal((width, n_classes)) / math.sqrt(width)
    b_out = np.zeros(n_classes)
    running = {"mean": [np.zeros(width) for _ in range(n_layers)], "var": [np.ones(width) for _ in range(n_layers)]}
    eval_every = eval_every or max(1, steps // 10)
    log = {"step": [], "loss": [], "grad_norm_first": [], "eval_step": [], "test_loss": [], "test_acc": [],
           "diverged": False}
    n_train = len(task["y_train"])
    for step in range(1, steps + 1):
        idx = rng.integers(0, n_train, batch)
        x, y = task["x_train"][idx], task["y_train"][idx]
        hs, caches = norm_mlp_forward(x, params, activation, place, kind, running=running)
        E, dlogits = softmax_cross_entropy(hs[-1] @ W_out + b_out, y)
        dW_out = hs[-1].T @ dlogits                           # readout: logits = h_L @ W_out + b_out
        db_out = dlogits.sum(axis=0)
        grads, _ = norm_mlp_backward(dlogits @ W_out.T, hs, caches, params, activation, place)
        log["step"].append(step)
        log["loss"].append(E)
        log["grad_norm_first"].append(float(np.linalg.norm(grads["W"][0])))
        if not np.isfinite(E):
            log["diverged"] = True
            break
        for name in params:                                   # plain SGD
            for p, g in zip(params[name], grads[name]):
                p -= lr * g
        W_out -= lr * dW_out
        b_out -= lr * db_out
        if step % eval_every == 0 or step == steps:
            test_loss, test_acc = evaluate(task, params, W_out, b_out, activation, place, kind, running)
            log["eval_step"].append(step)
            log["test_loss"].append(test_loss)
            log["test_acc"].append(test_acc)
    return {k: np.asarray(v) if isinstance(v, list) else v for k, v in log.items()}


def batch_size_sweep(setups, batch_sizes, examples=12800, rng=0, **options):
    """{setup: {"batch": [...], "test_acc": [...], "test_loss": [...]}} at the end of each run;
    every run sees the same task and the same number of examples (examples // B steps)."""
    task = make_task(rng=rng)
    out = {}
    for setup in setups:
        runs = [train_norm_mlp(setup, task, batch=B, steps=max(1, examples // B), rng=rng, **options)
                for B in batch_sizes]
        out[setup] = {"batch": np.asarray(batch_sizes),
                      "test_acc": np.array([r["test_acc"][-1] if len(r["test_acc"]) else np.nan for r in runs]),
                      "test_loss": np.array([r["test_loss"][-1] if len(r["test_loss"]) else np.nan for r in runs])}
    return out
