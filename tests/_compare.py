"""Comparisons that say what differs: the first entries and the largest difference."""
import numpy as np


def assert_close(actual, expected, rtol=1e-10, atol=0.0, name="array"):
    """|actual - expected| <= atol + rtol * max|expected| everywhere, with a readable failure."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    diff = np.abs(actual - expected)
    scale = np.abs(expected).max() if expected.size else 0.0
    limit = atol + rtol * scale
    if expected.size and not (diff.max() <= limit):
        worst = np.unravel_index(np.argmax(diff), diff.shape)
        raise AssertionError(
            f"{name}: largest difference {diff.max():.3e} at {worst} exceeds {limit:.3e} "
            f"(rtol {rtol:g} of max |expected| {scale:.3e})\n"
            f"  actual   first entries: {actual.ravel()[:5]}\n"
            f"  expected first entries: {expected.ravel()[:5]}")
