"""Long-range dependency tasks of the literature, as published, with their success criteria.

    name             paper                                        kind            inputs
    adding           Hochreiter & Schmidhuber 1997, Exp. 4        regression      (T, B, 2) float
    copy             Arjovsky, Shah & Bengio 2016                 classification  (T+20, B) tokens
    temporal_order   Hochreiter & Schmidhuber 1997, Exp. 6a       classification  (T, B) tokens
    latch            Bengio, Simard & Frasconi 1994               classification  (T, B, 1) float
    parity           running parity (Sarrof et al. 2024)           classification  (T, B) tokens

Every task object has `generate(batch, length, rng) -> TaskBatch`, `evaluate(predictions,
batch) -> dict` (with "loss" and "solved", the published criterion), `baseline(length) ->
dict` (the same scores for the trivial strategy), and `kind`, `input_kind`, `input_size`,
`output_size`, `default_length`, `reference`, `criterion`. The generators are also plain
functions: `adding_batch(batch, length, rng, *, jitter=True)` and so on.
See `rnnvanish.tasks.base` for the layout of a batch, the padding and the loss.

    >>> task = make_task("adding")
    >>> b = task.generate(32, 100, rng=0)
    >>> b.inputs.shape[1:], int(b.mask.sum())
    ((32, 2), 32)
"""
from ..errors import RnnvanishError
from .adding import AddingTask, adding_batch
from .base import Task, TaskBatch
from .copy_memory import CopyMemoryTask, copy_memory_batch
from .latch import LatchTask, latch_batch
from .parity import ParityTask, parity_batch
from .temporal_order import TemporalOrderTask, temporal_order_batch

_TASK_TYPES = {cls.name: cls for cls in (AddingTask, CopyMemoryTask, TemporalOrderTask, LatchTask, ParityTask)}

# name -> task object with the published settings
TASKS = {name: cls() for name, cls in _TASK_TYPES.items()}


def make_task(name, **options):
    """A task by name, with its options (e.g. `make_task("latch", noise_std=0.5)`)."""
    if name not in _TASK_TYPES:
        raise RnnvanishError(f"unknown task {name!r}; choose one of {', '.join(_TASK_TYPES)}")
    return _TASK_TYPES[name](**options)


__all__ = [
    "TASKS", "make_task", "Task", "TaskBatch",
    "AddingTask", "CopyMemoryTask", "TemporalOrderTask", "LatchTask", "ParityTask",
    "adding_batch", "copy_memory_batch", "temporal_order_batch", "latch_batch", "parity_batch",
]
