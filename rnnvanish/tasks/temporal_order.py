"""The temporal order problem (Hochreiter & Schmidhuber 1997, "Long Short-Term Memory",
Section 5.6, Experiment 6a: two relevant, widely separated symbols).

Eight symbols, one input unit each: a, b, c, d, X, Y, B, E. As published for length 100:
the sequence starts with E and ends with B (the "trigger symbol" that asks for the answer);
every other element is drawn from {a, b, c, d}, except the elements at positions t1 and t2,
which are X or Y; the length is random between 100 and 110, t1 between 10 and 20, t2
between 50 and 60. The class, given at the last step, is the order of the two: XX -> Q,
XY -> R, YX -> S, YY -> U (classes 0..3 here). A sequence is classified correctly when the
final absolute error of every output unit is below 0.3.

Scaling with T (the paper fixes T = 100): positions are 1-based as in the paper, the length
is uniform on [T, T + T//10], t1 on [T//10, T//5] and t2 on [T//2, 3T//5] (exactly 10..20
and 50..60 at T = 100), with t1 >= 2 so that E stays first; T >= 10.

The criterion read for a softmax output: the paper's output units are independent sigmoids;
here the four outputs are softmax probabilities p, and a sequence is solved when
max_k |p_k - onehot_k| < 0.3 (the target class gets p > 0.7). `accuracy` is the plain argmax
score. Baseline: guessing, accuracy 1/4 and loss ln 4; a uniform output solves nothing.
"""
import math

import numpy as np

from .base import (Task, TaskBatch, answer_mask, as_rng, check_sizes, classification_scores,
                   jittered_lengths, valid_rows)

SYMBOLS = ("a", "b", "c", "d", "X", "Y", "B", "E")
TOKEN = {s: i for i, s in enumerate(SYMBOLS)}
CLASSES = ("XX", "XY", "YX", "YY")          # the paper's Q, R, S, U
TOLERANCE = 0.3


def relevant_windows(length):
    """1-based inclusive ranges ((t1_lo, t1_hi), (t2_lo, t2_hi)) for minimal length T."""
    return (max(2, length // 10), max(2, length // 5)), (length // 2, 3 * length // 5)


def temporal_order_batch(batch, length, rng, *, jitter=True):
    """A batch of Experiment 6a: inputs (T, B) int64 over SYMBOLS, targets (T, B) int64.

    The class (0 XX, 1 XY, 2 YX, 3 YY) is the target at the last step of each sequence.
    info: {"t1", "t2"} 0-based rows of the two relevant symbols, {"classes"} (B,).
    """
    check_sizes("temporal_order", batch, length, 10)
    rng = as_rng(rng)
    lengths = jittered_lengths(length, batch, rng, jitter)
    T_max = int(lengths.max())
    cols = np.arange(batch)
    (lo1, hi1), (lo2, hi2) = relevant_windows(length)

    inputs = rng.integers(TOKEN["a"], TOKEN["d"] + 1, size=(T_max, batch))  # distractors
    inputs[0, :] = TOKEN["E"]
    inputs[lengths - 1, cols] = TOKEN["B"]
    t1 = rng.integers(lo1, hi1 + 1, size=batch) - 1                         # 1-based -> row
    t2 = rng.integers(lo2, hi2 + 1, size=batch) - 1
    first_is_Y = rng.integers(0, 2, size=batch)
    second_is_Y = rng.integers(0, 2, size=batch)
    inputs[t1, cols] = TOKEN["X"] + first_is_Y
    inputs[t2, cols] = TOKEN["X"] + second_is_Y
    inputs[~valid_rows(lengths, T_max)] = 0

    classes = 2 * first_is_Y + second_is_Y
    mask = answer_mask(lengths, T_max)
    targets = np.zeros((T_max, batch), dtype=np.int64)
    targets[lengths - 1, cols] = classes
    info = {"t1": t1, "t2": t2, "classes": classes}
    return TaskBatch(inputs.astype(np.int64), targets, mask, lengths, info)


class TemporalOrderTask(Task):
    name = "temporal_order"
    kind = "classification"
    input_kind = "tokens"
    input_size = len(SYMBOLS)
    output_size = len(CLASSES)
    default_length = 100
    min_length = 10
    reference = "Hochreiter & Schmidhuber (1997), Long Short-Term Memory, Experiment 6a"
    criterion = "a sequence is solved when every output's final absolute error is below 0.3"
    options = {"jitter": True}
    generator = staticmethod(temporal_order_batch)

    def evaluate(self, predictions, batch):
        """predictions: logits (T, B, 4), read at the last step of each sequence.

        Returns {"loss": cross-entropy, "accuracy": argmax, "solved": the published 0.3
        criterion on the softmax probabilities}.
        """
        log_p, target, scores = classification_scores(predictions, batch, self.output_size, self.name)
        onehot = np.eye(self.output_size)[target]
        scores["solved"] = float((np.abs(np.exp(log_p) - onehot).max(axis=1) < TOLERANCE).mean())
        return scores

    def baseline(self, length=None):
        """Guessing uniformly over the four classes."""
        return {"loss": math.log(4.0), "accuracy": 0.25, "solved": 0.0}
