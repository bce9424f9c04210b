"""The adding problem (Hochreiter & Schmidhuber 1997, "Long Short-Term Memory", Neural
Computation 9(8), Section 5.4, Experiment 4).

Each step is a pair (value, marker). As published:
- the value is uniform on [-1, 1];
- sequence lengths are random between the minimal length T and T + T/10 (here: integers
  uniform on [T, T + T//10]);
- exactly two pairs are marked with 1.0: first one of the first ten pairs (its value is X1),
  then one of the first T/2 - 1 pairs that is still unmarked (its value is X2);
- every other marker is 0.0, except the first and the last pair, whose markers are -1.0
  (a marked first pair keeps its 1.0; the last pair is never marked);
- "in the rare case where the first pair of the sequence gets marked", its value is set to
  zero. The paper names X1 there because its procedure makes that the usual case; here the
  rule applies to whichever marked pair sits first (X2 can land there too when X1 does not);
- the target, given only at the last step, is 0.5 + (X1 + X2) / 4.0 (the sum scaled into
  [0, 1]); a sequence is processed correctly when the absolute error there is below 0.04.

For short test sequences the "first ten" become the first min(10, T//2 - 1) pairs, so the
task needs T >= 6.

Baseline: predicting the mean target 0.5 always. With p0 = P(first pair marked) =
1/n1 + (1 - 1/n1) / (n2 - 1), n1 = min(10, n2), n2 = T//2 - 1, the sum S = X1 + X2 has
Var S = (2 - p0) / 3, so
    MSE = Var S / 16 = (2 - p0) / 48                 (0.0392 at T = 100, -> 0.0396 for large T)
and with a = 4 * 0.04 = 0.16 (P(|X1 + X2| < a) = a - a^2/4 for two uniforms; = a when one is 0)
    solved = (1 - p0) (a - a^2 / 4) + p0 a           (~0.154 at T = 100).
"""
import numpy as np

from .base import (Task, TaskBatch, answer_mask, as_rng, check_sizes, jittered_lengths,
                   masked_outputs, valid_rows)

TOLERANCE = 0.04     # published: absolute error at the sequence end below 0.04


def _marked_ranges(length):
    """(n1, n2): X1 among the first n1 pairs, X2 among the first n2 pairs."""
    n2 = length // 2 - 1
    return min(10, n2), n2


def adding_batch(batch, length, rng, *, jitter=True):
    """A batch of the adding problem. inputs (T, B, 2) = (value, marker); targets (T, B, 1).

    `length` is the minimal length T; with `jitter` (published) each sequence is T to
    T + T//10 long, right-padded with zeros. info: {"X1_step", "X2_step"} (B,) each.
    """
    check_sizes("adding", batch, length, 6)
    rng = as_rng(rng)
    lengths = jittered_lengths(length, batch, rng, jitter)
    T_max = int(lengths.max())
    cols = np.arange(batch)
    n1, n2 = _marked_ranges(length)

    value = rng.uniform(-1.0, 1.0, size=(T_max, batch))     # (T, B)
    marker = np.zeros((T_max, batch))
    marker[0, :] = -1.0
    marker[lengths - 1, cols] = -1.0

    step1 = rng.integers(0, n1, size=batch)
    # X2: uniform over the first n2 pairs except step1 (draw from n2 - 1 slots, skip step1)
    step2 = rng.integers(0, n2 - 1, size=batch)
    step2 = step2 + (step2 >= step1)
    marker[step1, cols] = 1.0
    marker[step2, cols] = 1.0
    value[0, (step1 == 0) | (step2 == 0)] = 0.0

    inside = valid_rows(lengths, T_max)
    value[~inside] = 0.0
    marker[~inside] = 0.0
    inputs = np.stack([value, marker], axis=-1)             # (T, B, 2)

    mask = answer_mask(lengths, T_max)
    targets = np.zeros((T_max, batch, 1))
    targets[lengths - 1, cols, 0] = 0.5 + (value[step1, cols] + value[step2, cols]) / 4.0
    return TaskBatch(inputs, targets, mask, lengths, {"X1_step": step1, "X2_step": step2})


class AddingTask(Task):
    name = "adding"
    kind = "regression"
    input_kind = "dense"
    input_size = 2
    output_size = 1
    default_length = 100
    min_length = 6
    reference = "Hochreiter & Schmidhuber (1997), Long Short-Term Memory, Experiment 4"
    criterion = "a sequence is solved when |prediction - target| < 0.04 at its last step"
    options = {"jitter": True}
    generator = staticmethod(adding_batch)

    def evaluate(self, predictions, batch):
        """predictions (T, B, 1) or (T, B), read at the mask (the last step of each sequence).

        Returns {"loss": mean squared error, "solved": fraction with |error| < 0.04,
        "mean_abs_error"}.
        """
        error = (masked_outputs(predictions, batch, 1, self.name) - batch.targets[batch.mask])[:, 0]
        return {
            "loss": float(np.mean(error ** 2)),
            "solved": float(np.mean(np.abs(error) < TOLERANCE)),
            "mean_abs_error": float(np.mean(np.abs(error))),
        }

    def baseline(self, length=None):
        """Scores of always predicting the mean target 0.5 (closed forms in the module doc)."""
        length = self.default_length if length is None else length
        n1, n2 = _marked_ranges(length)
        p0 = 1.0 / n1 + (1.0 - 1.0 / n1) / (n2 - 1)
        a = 4.0 * TOLERANCE
        return {
            "prediction": 0.5,
            "loss": (2.0 - p0) / 48.0,
            "solved": (1.0 - p0) * (a - a * a / 4.0) + p0 * a,
        }
