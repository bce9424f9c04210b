"""Charts. The only part of rnnvanish that imports matplotlib.

Every plotting function takes data (arrays, a trace, a metrics table) and an optional
`ax`, returns the figure, and never calls `show()`. With no display, the non-interactive
Agg backend is selected before pyplot is imported.
"""
import os
import sys

import matplotlib

if "matplotlib.pyplot" not in sys.modules and not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402


def new_axes(ax=None, figsize=(7.0, 4.5)):
    """(fig, ax): the given axes and their figure, or a fresh figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def cell_colour(cell):
    """The cell's colour on every chart (`Cell.colour` in the registry; None: matplotlib's next)."""
    from ..cells import CELLS
    return getattr(CELLS.get(cell), "colour", None)


def add_legend(ax, beside=False, size=None, **kw):
    """The axes' legend: inside, or beside the axes for a long one (inside it would hide the
    lines), a figure of these axes alone then widened to `size` (inches) to make room."""
    if not beside:
        return ax.legend(**kw)
    kw.pop("loc", None)
    legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), **kw)
    if size is not None and len(ax.figure.axes) == 1:
        ax.figure.set_size_inches(*size)
    return legend


def save_figure(fig, path, dpi=130):
    """Write PNG or SVG (by the file's suffix) atomically, then close the figure."""
    path = os.fspath(path)
    root, ext = os.path.splitext(path)
    fmt = ext.lstrip(".").lower() or "png"
    tmp = f"{root}.tmp-{os.getpid()}{ext}"
    try:
        fig.savefig(tmp, dpi=dpi, format=fmt)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        plt.close(fig)
    return path
