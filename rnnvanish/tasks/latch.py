"""The latch / two-sequence problem (Bengio, Simard & Frasconi 1994, "Learning Long-Term
Dependencies with Gradient Descent is Difficult", IEEE Trans. Neural Networks 5(2)).

Bengio et al.'s minimal task: sequences u_1 .. u_T of two classes, where the class depends
only on the first L inputs; u_{L+1} .. u_T are noise that is irrelevant to the class but
drives the dynamics and may erase what was stored. The answer is asked at step T, so the net
must *latch* one bit for T - L steps. In their experiment the first L input values of each
class were free parameters trained along with the single recurrent unit (targets +-0.8 at
the end), which a fixed data set cannot reproduce. We follow the fixed-input version used in
Hochreiter & Schmidhuber's replications (LSTM 1997, Section 5.2; "Bridging long time lags by
weight guessing", latch variant II and the 2-sequence problem):

    u_t = +1 (class 1) or -1 (class 0)            for t = 1 .. L     (no noise)
    u_t ~ N(0, noise_std^2), noise_std^2 = 0.2     for t = L+1 .. T

L = `n_signal` is 1 for the latch problem and 3 in the 2-sequence problem of that
replication. inputs (T, B, 1) float; the class is the target at the last step (two logits).

Criterion: Bengio et al. read the class from the sign of the final output; Hochreiter &
Schmidhuber count a sequence correct when the final absolute error is below 0.2 (targets 1
and 0). Here `accuracy` is the argmax (sign) rule and `solved` the 0.2 rule on the softmax
probability of the true class (p > 0.8). Baseline: guessing, accuracy 1/2 and loss ln 2.
"""
import math

import numpy as np

from ..errors import RnnvanishError
from .base import (Task, TaskBatch, answer_mask, as_rng, check_sizes, check_whole,
                   classification_scores)

TOLERANCE = 0.2


def latch_batch(batch, length, rng, *, n_signal=1, noise_std=math.sqrt(0.2)):
    """A batch of the latch problem: inputs (T, B, 1), targets (T, B) int64 (class at row T-1).

    info: {"classes"} (B,).
    """
    check_sizes("latch", batch, length, 1)
    check_whole("latch", "n_signal", n_signal, 1)
    if n_signal > length:
        raise RnnvanishError(f"latch: n_signal ({n_signal}) cannot exceed the length ({length})")
    if not (isinstance(noise_std, (int, float)) and math.isfinite(noise_std) and noise_std >= 0):
        raise RnnvanishError(f"latch: noise_std must be a finite number >= 0, got {noise_std!r}")
    rng = as_rng(rng)
    classes = rng.integers(0, 2, size=batch)

    u = np.empty((length, batch))                            # (T, B)
    u[:n_signal] = 2.0 * classes - 1.0                       # the bit to latch, +-1
    u[n_signal:] = noise_std * rng.standard_normal((length - n_signal, batch))

    lengths = np.full(batch, length, dtype=np.int64)
    targets = np.zeros((length, batch), dtype=np.int64)
    targets[-1] = classes
    return TaskBatch(u[:, :, None], targets, answer_mask(lengths, length), lengths,
                     {"classes": classes})


class LatchTask(Task):
    name = "latch"
    kind = "classification"
    input_kind = "dense"
    input_size = 1
    output_size = 2
    default_length = 50
    reference = "Bengio, Simard & Frasconi (1994), latch problem (fixed-input form of Hochreiter & Schmidhuber)"
    criterion = "a sequence is solved when the true class gets probability > 0.8 at the last step"
    options = {"n_signal": 1, "noise_std": math.sqrt(0.2)}
    generator = staticmethod(latch_batch)

    def evaluate(self, predictions, batch):
        """predictions: logits (T, B, 2), read at the last step.

        Returns {"loss": cross-entropy, "accuracy": argmax (sign) rule, "solved": p_true > 0.8}.
        """
        log_p, target, scores = classification_scores(predictions, batch, self.output_size, self.name)
        p_true = np.exp(log_p[np.arange(len(target)), target])
        scores["solved"] = float((np.abs(1.0 - p_true) < TOLERANCE).mean())
        return scores

    def baseline(self, length=None):
        """Guessing either class."""
        return {"loss": math.log(2.0), "accuracy": 0.5, "solved": 0.0}
