"""The copy memory problem (Arjovsky, Shah & Bengio 2016, "Unitary Evolution Recurrent Neural
Networks", ICML, Section 4.1; after Hochreiter & Schmidhuber 1997).

Alphabet of 10 symbols: 0 blank, 1..8 data categories, 9 delimiter. For a delay T the input
is T + 20 steps long:

    input   d_1 .. d_10   0 ... 0 (T - 1 blanks)   9   0 ... 0 (10 blanks)
    target  0  ..  0      0 ... 0                  0   d_1 .. d_10

with d_i uniform over the categories 1..8. The delimiter tells the net to start writing; the
10 data symbols must come out at the last 10 steps, T + 10 steps after they went in. The loss
is the cross-entropy averaged over all T + 20 steps (the mask is all True).

Baseline (published): a memoryless strategy that outputs blank until the delimiter has passed
and then a uniform guess over the 8 categories costs 10 ln 8 / (T + 20) nats per step.
Arjovsky et al. report the loss curve against that baseline; they state no success
threshold, so `solved` here is the fraction of sequences whose 10 symbols are all recalled
(argmax), with chance level (1/8)^10.
"""
import math

import numpy as np

from .base import Task, TaskBatch, as_rng, check_sizes, check_whole, classification_scores

BLANK = 0


def copy_memory_batch(batch, length, rng, *, n_data=10, n_categories=8):
    """A batch of the copy task with delay T = `length`: inputs and targets (T + 2 n_data, B) int64.

    Symbols: 0 blank, 1..n_categories data, n_categories + 1 delimiter.
    info: {"data": (n_data, B) the symbols to recall}.
    """
    check_sizes("copy", batch, length, 1)
    check_whole("copy", "n_data", n_data, 1)
    check_whole("copy", "n_categories", n_categories, 1)
    rng = as_rng(rng)
    delimiter = n_categories + 1
    T_total = length + 2 * n_data
    data = rng.integers(1, n_categories + 1, size=(n_data, batch))  # (n_data, B)

    inputs = np.full((T_total, batch), BLANK, dtype=np.int64)
    inputs[:n_data] = data
    inputs[n_data + length - 1] = delimiter
    targets = np.full((T_total, batch), BLANK, dtype=np.int64)
    targets[-n_data:] = data

    mask = np.ones((T_total, batch), dtype=bool)
    lengths = np.full(batch, T_total, dtype=np.int64)
    return TaskBatch(inputs, targets, mask, lengths, {"data": data})


class CopyMemoryTask(Task):
    name = "copy"
    kind = "classification"
    input_kind = "tokens"
    input_size = 10
    output_size = 10
    default_length = 100
    reference = "Arjovsky, Shah & Bengio (2016), Unitary Evolution RNNs, copying memory problem"
    criterion = "cross-entropy per step below the memoryless baseline 10 ln 8 / (T + 20)"
    options = {"n_data": 10, "n_categories": 8}
    generator = staticmethod(copy_memory_batch)

    def __init__(self, **options):
        super().__init__(**options)
        # the vocabulary follows the options: blank, the categories, the delimiter
        self.input_size = self.output_size = self.settings["n_categories"] + 2

    def evaluate(self, predictions, batch):
        """predictions: logits (T + 2 n_data, B, V).

        Returns {"loss": mean cross-entropy per step (nats), "accuracy": over all steps,
        "recall_accuracy": over the last n_data steps, "solved": fraction of sequences
        recalled without a single error}.
        """
        n_data = self.settings["n_data"]
        log_p, target, scores = classification_scores(predictions, batch, self.output_size, self.name)
        hit = (log_p.argmax(axis=1) == target).reshape(batch.T, batch.B)  # mask is all True
        scores["recall_accuracy"] = float(hit[-n_data:].mean())
        scores["solved"] = float(hit[-n_data:].all(axis=0).mean())
        return scores

    def baseline(self, length=None):
        """The memoryless strategy: loss n_data ln(n_categories) / (T + 2 n_data)."""
        length = self.default_length if length is None else length
        n_data, n_cat = self.settings["n_data"], self.settings["n_categories"]
        return {
            "loss": n_data * math.log(n_cat) / (length + 2 * n_data),
            "recall_accuracy": 1.0 / n_cat,
            "solved": (1.0 / n_cat) ** n_data,
        }
