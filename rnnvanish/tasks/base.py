"""What every long-range task shares: the batch layout, argument checks and the masked loss.

Layout (time-major, like every array in rnnvanish):

    inputs   (T, B, I) float64  dense tasks (adding, latch)
             (T, B)    int64    token tasks (copy, temporal order); I is then the vocabulary size
    targets  (T, B, O) float64  regression (adding)
             (T, B)    int64    classification: the class index at each step
    mask     (T, B)    bool     True where the loss counts
    lengths  (B,)      int64    true length of each sequence

Sequences of different lengths are **right-padded**: sequence b occupies rows
0 .. lengths[b]-1 and its answer sits at row lengths[b]-1, where the mask marks it. Padding
rows hold zeros (inputs, targets) and mask False. Right padding is exact for a recurrent net
read forwards: the output at step t depends only on inputs 0..t, so whatever follows the end
of a sequence cannot change its answer. (Left padding would put the answer at the last row
for everyone, but would feed the padding through the recurrent state before the sequence
starts, changing h_t.) A loss or tracer that wants the answer at row T-1 for every sequence
asks the generator for equal lengths (`jitter=False`).

The loss of a batch is the mean over masked entries:

    E = (1 / #mask) * sum_{(t, b) in mask} E_{t,b}
    E_{t,b} = (y_{t,b} - target_{t,b})^2                 regression (squared error summed over O)
    E_{t,b} = -log softmax(y_{t,b})[target_{t,b}]        classification (y are logits)
"""
from dataclasses import dataclass, field

import numpy as np

from ..errors import RnnvanishError


@dataclass(frozen=True)
class TaskBatch:
    """One batch of a task: `inputs`, `targets`, `mask`, `lengths` (shapes above).

    `info` carries the ground truth behind the batch (marker positions, symbol positions,
    classes) for inspection and charts; it is never needed to train.
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def T(self):
        return self.mask.shape[0]

    @property
    def B(self):
        return self.mask.shape[1]

    @property
    def last_step(self):
        """Row of each sequence's last element, `lengths - 1`, shape (B,)."""
        return self.lengths - 1


def as_rng(rng):
    """A numpy Generator from a Generator, an int seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise RnnvanishError(f"rng must be a numpy Generator or an integer seed, got {type(rng).__name__}")


def check_whole(task, label, value, low):
    """Reject a count that is not a whole number >= low, in one sentence."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise RnnvanishError(f"{task}: {label} must be a whole number >= {low}, got {value!r}")


def check_sizes(task, batch, length, min_length):
    """Reject a batch size or length that cannot build the task."""
    check_whole(task, "batch size", batch, 1)
    check_whole(task, "length", length, min_length)


def jittered_lengths(length, batch, rng, jitter):
    """Lengths uniform on the integers [T, T + T//10] (the 'T to T + T/10' of Hochreiter &
    Schmidhuber 1997), or all exactly T when `jitter` is False."""
    if not jitter:
        return np.full(batch, length, dtype=np.int64)
    return rng.integers(length, length + length // 10 + 1, size=batch).astype(np.int64)


def answer_mask(lengths, T_max):
    """(T_max, B) bool, True only at row lengths[b]-1 of each column."""
    mask = np.zeros((T_max, len(lengths)), dtype=bool)
    mask[lengths - 1, np.arange(len(lengths))] = True
    return mask


def valid_rows(lengths, T_max):
    """(T_max, B) bool, True on the rows a sequence occupies (t < lengths[b])."""
    return np.arange(T_max)[:, None] < lengths[None, :]


def log_softmax(y):
    """log softmax over the last axis, shifted by the max so exp never overflows."""
    z = y - y.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def masked_outputs(predictions, batch, output_size, name):
    """The predictions at the masked entries, shape (N, O), after checking the layout.

    A regression task with O = 1 also accepts (T, B) predictions.
    """
    y = np.asarray(predictions, dtype=np.float64)
    if y.ndim == 2 and output_size == 1:
        y = y[:, :, None]
    expected = (batch.T, batch.B, output_size)
    if y.shape != expected:
        raise RnnvanishError(
            f"{name}: predictions must have shape (T, B, O) = {expected}, got {tuple(y.shape)}"
        )
    return y[batch.mask]                                     # (N, O), rows in (t, b) order


def classification_scores(logits, batch, output_size, name):
    """Masked-entry log-probabilities (N, C), targets (N,) and the usual scores.

    Returns (log_p, target, scores) with scores = {"loss": mean cross-entropy in nats,
    "accuracy": fraction whose argmax is the target}.
    """
    log_p = log_softmax(masked_outputs(logits, batch, output_size, name))
    target = batch.targets[batch.mask]                       # (N,)
    n = np.arange(len(target))
    scores = {
        "loss": float(-log_p[n, target].mean()),
        "accuracy": float((log_p.argmax(axis=1) == target).mean()),
    }
    return log_p, target, scores


class Task:
    """A long-range task of the literature: a generator, its success criterion and baseline.

    Subclasses set the class attributes, `generator` (the module-level function) and
    implement `evaluate(predictions, batch) -> dict` and `baseline(length) -> dict`.
    Options (keyword arguments of the generator besides batch, length, rng) are fixed when
    the task object is made: `make_task("latch", noise_std=0.2)`.
    """

    name = ""
    kind = ""             # "regression" or "classification"
    input_kind = ""       # "dense" (inputs (T, B, I) float) or "tokens" (inputs (T, B) int64)
    input_size = 0        # I: features per step, or vocabulary size for tokens
    output_size = 0       # O: regression outputs, or number of classes
    default_length = 100  # T of the paper's best-known setting
    min_length = 1
    reference = ""        # the paper, for help texts and charts
    criterion = ""        # the published success criterion, one line
    options = {}          # option name -> default
    generator = None      # staticmethod f(batch, length, rng, **options) -> TaskBatch

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            valid = ", ".join(self.options) or "none"
            raise RnnvanishError(f"task {self.name!r} has no option {unknown[0]!r}; its options: {valid}")
        self.settings = {**self.options, **options}

    def generate(self, batch, length=None, rng=None):
        """A TaskBatch of `batch` sequences of (minimal) length `length` (default: the paper's)."""
        length = self.default_length if length is None else length
        return self.generator(batch, length, rng, **self.settings)

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return f"{type(self).__name__}({opts})"
