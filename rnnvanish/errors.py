"""The one error type of rnnvanish: bad input that reaches the user as one clear line.

The library raises `RnnvanishError` for a bad setting, file or checkpoint; the command line
prints its message and exits with status 2 (3 for a run stopped by `NonFiniteError` or
`DivergenceError`), never with a traceback. It is a `ValueError`, so library code that
catches ValueError for bad arguments catches it too.
"""


import math


class RnnvanishError(ValueError):
    """Bad input from the user: a flag value, a file, a checkpoint. The CLI prints it and exits 2."""


class TrainingStopped(RnnvanishError):
    """Training cannot go on; the message carries the diagnosis. The CLI exits 3."""


class NonFiniteError(TrainingStopped):
    """A loss, gradient or parameter became NaN or infinite."""


class DivergenceError(TrainingStopped):
    """The smoothed training loss rose far above the untrained model's loss."""


def positive_number(value, what: str) -> float:
    """`value` as a finite, strictly positive float, or RnnvanishError naming `what`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RnnvanishError(f"{what} must be a positive number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise RnnvanishError(f"{what} must be a positive number, got {number:g}")
    return number
