"""A recurrent cell with a readout and a task loss: the model of the long-range tasks.

    h, state_T = cell(x_1..x_T, state_0)        # x_t dense (I,) or a token id
    y_t = h_t W_hy + b_y                         # (B, O), read only where the mask is True
    E   = (1 / N) sum_{(t, b) in mask} E_{t,b},  N = #mask

    E_{t,b} = sum_o (y_{t,b,o} - target_{t,b,o})^2          regression      (adding)
    E_{t,b} = -log softmax(y_{t,b})[target_{t,b}]           classification  (copy, order, latch)

This is the loss `rnnvanish.tasks` defines and `task.evaluate` reports, so the training
loss and the held-out loss are the same quantity. Every sequence starts from the zero state
and gets its gradient through the whole sequence (full BPTT: a task's answer may depend on
its first input). Right padding is harmless: a padded row is never in the mask, so it adds
nothing to E, and the outputs at the mask depend only on the rows before them.
"""
import numpy as np

from ..errors import RnnvanishError
from ..model import CellModel


# ----------------------------------------------------------------------------- the two losses
# Each takes the readout at the N masked entries, y (N, O), and their targets, and returns
# (E, dE/dy) with E the mean over the N entries.

def squared_error(y, target):
    """E = (1/N) sum_n sum_o (y_no - target_no)^2;  dE/dy = 2 (y - target) / N."""
    N = y.shape[0]
    error = y - target                                       # (N, O)
    return float((error * error).sum() / N), 2.0 * error / N


def softmax_cross_entropy(y, target):
    """E = (1/N) sum_n -log softmax(y_n)[target_n];  dE/dy = (softmax(y) - onehot) / N."""
    N = y.shape[0]
    z = y - y.max(axis=1, keepdims=True)                     # shift so exp cannot overflow
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = np.arange(N)
    dy = np.exp(log_p)
    dy[n, target] -= 1.0
    return float(-log_p[n, target].sum() / N), dy / N


LOSSES = {"regression": squared_error, "classification": softmax_cross_entropy}

class TaskModel(CellModel):
    """A cell ('tanh', 'lstm', 'gru') and a readout W_hy (H, O), b_y (O,) for one task.

    `task` is a `rnnvanish.tasks.Task` (it fixes the input size I, the output size O, whether
    inputs are tokens, and the loss). `params` holds the cell's arrays and the readout's.
    """

    def __init__(self, task, cell="lstm", hidden_size=64, *, seed=0, dtype=np.float64, backend=None,
                 init_hy="glorot_uniform", **options):
        if task.kind not in LOSSES:
            raise RnnvanishError(f"task {task.name!r} has kind {task.kind!r}; "
                                 f"a task model needs one of {', '.join(LOSSES)}")
        self.task = task
        try:
            super().__init__(cell, task.input_size, hidden_size, task.output_size, seed=seed, dtype=dtype,
                             backend=backend, init_hy=init_hy, **{k: v for k, v in options.items() if v is not None})
        except ValueError as err:                           # a bad size, dtype or initialiser
            raise RnnvanishError(str(err)) from None
        self.loss_fn = LOSSES[task.kind]

    def config(self):
        """Everything needed to rebuild the model around the same task (JSON-able)."""
        return {"task": self.task.name, "cell": self.cell_name, "hidden_size": self.hidden_size,
                "input_size": self.task.input_size, "output_size": self.output_size,
                "dtype": self.dtype.name, "seed": self.seed, **self.cell_options, **self.stack.config()}

    # -- forward / backward ---------------------------------------------------------------
    def _inputs(self, inputs):
        x = np.asarray(inputs)
        return x if np.issubdtype(x.dtype, np.integer) else x.astype(self.dtype, copy=False)

    def predict(self, inputs):
        """The readout at every step, y (T, B, O): regression values or logits (no gradients)."""
        h, _, _ = self.stack.forward(self._inputs(inputs))
        return h[1:] @ self.params["W_hy"] + self.params["b_y"]   # (T, B, O)

    def _masked_targets(self, batch):
        target = batch.targets[batch.mask]
        if self.task.kind == "regression":
            return target.reshape(-1, self.output_size).astype(self.dtype, copy=False)   # (N, O)
        return target                                                                    # (N,) ints

    def loss(self, batch):
        """E over a TaskBatch (mean over the masked entries), without gradients."""
        h, _, _ = self.stack.forward(self._inputs(batch.inputs))
        y = h[1:][batch.mask] @ self.params["W_hy"] + self.params["b_y"]   # (N, O)
        return self.loss_fn(y, self._masked_targets(batch))[0]

    def loss_and_grads(self, batch, truncate=None, masks=None):
        """E and dE/dparams over a TaskBatch, BPTT from the zero state (full, or `truncate` steps).

        Returns (loss, grads, info): grads with the keys of `params`; info["norms"] the per-step
        ||dE/dh_t|| (t = 0..T) of the top layer ("layers": every layer's) and info["h"] the
        stack's output (T+1, B, H). `masks` (from `draw_masks`) are training masks; None is evaluation.
        """
        h, _, cache = self.stack.forward(self._inputs(batch.inputs), None, masks)
        mask = batch.mask
        h_m = h[1:][mask]                                         # (N, H): h_t at the answer steps
        y = h_m @ self.params["W_hy"] + self.params["b_y"]        # (N, O)
        loss, dy = self.loss_fn(y, self._masked_targets(batch))   # start the chain rule: dE/dy (N, O)
        dy = dy.astype(self.dtype, copy=False)
        grads_y = {"W_hy": h_m.T @ dy,                            # (H, O)
                   "b_y": dy.sum(axis=0)}                         # (O,)
        dh = np.zeros(h[1:].shape, dtype=self.dtype)              # (T, B, H); zero off the mask
        dh[mask] = dy @ self.params["W_hy"].T                     # backprop into h_t from y_t
        grads, _, norms = self.stack.backward(dh, cache, None, truncate=truncate)
        grads.update(grads_y)
        return loss, grads, {"norms": norms, "h": h}
