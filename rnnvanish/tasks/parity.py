"""Running parity: the simplest task that needs a state to be *updated*, not only kept.

    inputs   b_1 .. b_T, each bit 0 or 1 (tokens)
    target   p_t = b_1 xor b_2 xor ... xor b_t     at every step t

A nonlinear recurrence solves it with one unit per flip-flop: h_t = f(h_{t-1}, b_t) flips the
state on a 1 and keeps it on a 0, and the same update serves every length. A recurrence that is
linear in its state cannot: in minGRU / minLSTM (h_t = a_t ⊙ h_{t-1} + c_t, with a_t in (0, 1)
and c_t functions of b_t alone) and the LRU (a fixed Λ) the state is a sum over the past with
positive (minGRU, minLSTM) or input-independent (LRU) weights, and a flip needs the sign of the
past to depend on the present bit. Sarrof et al. (2024) and Grazzi et al. (2025, "Unlocking
State-Tracking in Linear RNNs Through Negative Eigenvalues") prove it: a finite-precision linear
recurrence whose state transitions have eigenvalues in [0, 1] cannot compute parity at every
length; allowing eigenvalues in [-1, 1] lifts it. Remembering longer does not help: the
information is all there, in a form no readout can turn into parity once T grows.

Criterion: a sequence is solved when every one of its T answers is right (argmax). `accuracy`
is over all answers, `last_accuracy` over the answers at step T (the parity of all T bits).
Baseline: guessing, loss ln 2 per answer, accuracy 1/2, solved 2^-T.
"""
import math

import numpy as np

from .base import Task, TaskBatch, as_rng, check_sizes, classification_scores


def parity_batch(batch, length, rng):
    """A batch of running parity: inputs and targets (T, B) int64, every step answered.

    info: {"bits"} (T, B), the inputs again.
    """
    check_sizes("parity", batch, length, 1)
    rng = as_rng(rng)
    bits = rng.integers(0, 2, size=(length, batch)).astype(np.int64)
    targets = np.bitwise_xor.accumulate(bits, axis=0)        # p_t = b_1 xor ... xor b_t
    mask = np.ones((length, batch), dtype=bool)
    lengths = np.full(batch, length, dtype=np.int64)
    return TaskBatch(bits, targets, mask, lengths, {"bits": bits})


class ParityTask(Task):
    name = "parity"
    kind = "classification"
    input_kind = "tokens"
    input_size = 2
    output_size = 2
    default_length = 50
    reference = "running parity (Sarrof et al. 2024; Grazzi et al. 2025): the state must flip on every 1"
    criterion = "a sequence is solved when the parity after every one of its bits is right"
    options = {}
    generator = staticmethod(parity_batch)

    def evaluate(self, predictions, batch):
        """predictions: logits (T, B, 2).

        Returns {"loss": cross-entropy per answer, "accuracy": over all answers,
        "last_accuracy": at step T, "solved": fraction of sequences with every answer right}.
        """
        log_p, target, scores = classification_scores(predictions, batch, self.output_size, self.name)
        hit = (log_p.argmax(axis=1) == target).reshape(batch.T, batch.B)     # the mask is all True
        scores["last_accuracy"] = float(hit[-1].mean())
        scores["solved"] = float(hit.all(axis=0).mean())
        return scores

    def baseline(self, length=None):
        """Guessing: every answer right with probability 1/2."""
        length = self.default_length if length is None else length
        return {"loss": math.log(2.0), "accuracy": 0.5, "last_accuracy": 0.5, "solved": 0.5 ** length}
