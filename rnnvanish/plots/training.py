"""Charts of a training run, from its metrics table (runfolder.read_metrics or Trainer.rows).

    plot_loss        training loss and validation loss in bits per symbol against step
                     (a second axis on the right reads the same curves in nats)
    plot_grad_norms  global gradient norm before and after clipping, log scale, with the
                     clipping threshold and the skipped (non-finite) steps marked
    plot_clipping    share of steps clipped per interval, and the learning rate when it changes
    plot_training    the three stacked on one shared step axis

`metrics` is a mapping from column name to a 1-D array (NaN where a value is missing), or a
list of row dicts. Every function takes an optional `ax` (or `axes`) and returns the figure.
"""
import math

import numpy as np
from matplotlib.ticker import FuncFormatter

from . import new_axes, plt

LN2 = math.log(2.0)
TRAIN_COLOR, VAL_COLOR, RAW_COLOR, CLIPPED_COLOR, LR_COLOR = "#4c72b0", "#dd8452", "#c44e52", "#55a868", "#8172b3"


def as_columns(metrics) -> dict:
    """{column: float array} from a mapping of columns or a list of row dicts."""
    if isinstance(metrics, (list, tuple)):
        names = list(metrics[0]) if metrics else ["step"]
        return {k: np.array([float(r.get(k, np.nan)) for r in metrics], dtype=np.float64) for k in names}
    return {k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}


def _column(m, name):
    return m.get(name, np.full(m["step"].shape, np.nan))


def _finite(x, y):
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _minor_label(ax, v):
    """Label minor log ticks: all of them within one decade, the 2s and 5s within three, none beyond."""
    lo, hi = ax.get_ylim()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else math.inf
    leading = round(v / 10 ** math.floor(math.log10(v) + 1e-9)) if v > 0 else 0
    if decades < 1 or (decades < 3 and leading in (2, 5)):
        return f"{v:g}"
    return ""


def plot_loss(metrics, ax=None, unit="char"):
    """Training loss (per interval) and validation loss (per evaluation), bits per symbol."""
    m = as_columns(metrics)
    fig, ax = new_axes(ax)
    step = m["step"]
    x, y = _finite(step, _column(m, "train_loss") / LN2)
    ax.plot(x, y, color=TRAIN_COLOR, lw=1.2, label="training (mean over interval)")
    x, y = _finite(step, _column(m, "val_bits"))
    if x.size:
        ax.plot(x, y, "o-", color=VAL_COLOR, lw=1.6, ms=3.5, label="validation")
        best = int(np.argmin(y))
        ax.annotate(f"best {y[best]:.3f}", (x[best], y[best]), xytext=(-4, 7), textcoords="offset points",
                    ha="right", fontsize=8, color=VAL_COLOR)
    ax.set_ylabel(f"loss (bits/{unit})")
    nats = ax.secondary_yaxis("right", functions=(lambda b: b * LN2, lambda n: n / LN2))
    nats.set_ylabel(f"nats/{unit}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    return fig


def plot_grad_norms(metrics, ax=None, clip_norm=None):
    """Mean global gradient norm per interval before and after clipping, on a log axis."""
    m = as_columns(metrics)
    fig, ax = new_axes(ax)
    step = m["step"]
    x, y = _finite(step, _column(m, "grad_norm"))
    x2, y2 = _finite(step, _column(m, "grad_norm_clipped"))
    never = np.array_equal(y, y2)
    if x2.size and not never:
        ax.plot(x2, y2, color=CLIPPED_COLOR, lw=1.6, label="after clipping", zorder=2)
    # "before" on top, thinner: it shows wherever clipping made the two differ
    ax.plot(x, y, color=RAW_COLOR, lw=0.9, label="before clipping" + (" (= after: never clipped)" if never else ""),
            zorder=3)
    if clip_norm:
        ax.axhline(clip_norm, color="0.4", ls="--", lw=0.8, label=f"threshold {clip_norm:g}")
    skipped = _column(m, "skipped")
    bad = np.isfinite(skipped) & (skipped > 0)
    if bad.any():
        for s in step[bad]:
            ax.axvline(s, color="black", lw=0.6, alpha=0.5)
        ax.plot([], [], color="black", lw=0.6, alpha=0.5, label=f"skipped steps ({int(skipped[bad].sum())})")
    if (y > 0).any() or (y2 > 0).any():
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: _minor_label(ax, v)))
    ax.set_ylabel("global gradient norm")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize=8, framealpha=0.8)
    return fig


def plot_clipping(metrics, ax=None):
    """The share of steps whose gradient was clipped, per interval; the learning rate if it varies."""
    m = as_columns(metrics)
    fig, ax = new_axes(ax)
    x, y = _finite(m["step"], _column(m, "clipped_frac"))
    ax.fill_between(x, 0, y, step="pre", color=CLIPPED_COLOR, alpha=0.35, lw=0)
    ax.step(x, y, where="pre", color=CLIPPED_COLOR, lw=1.0)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share clipped")
    if y.size and not y.any():
        ax.text(0.5, 0.5, "no step was clipped", transform=ax.transAxes, ha="center", va="center",
                fontsize=9, color="0.4")
    ax.grid(alpha=0.3)
    xl, lr = _finite(m["step"], _column(m, "lr"))
    if lr.size and np.ptp(lr) > 0:
        twin = ax.twinx()
        twin.plot(xl, lr, color=LR_COLOR, lw=1.0)
        twin.set_ylabel("learning rate", color=LR_COLOR)
        twin.tick_params(axis="y", colors=LR_COLOR)
    return fig


def plot_training(metrics, axes=None, title=None, unit="char", clip_norm=None):
    """Loss, gradient norms and clipping, stacked over one step axis; returns the figure."""
    m = as_columns(metrics)
    if axes is None:
        fig, axes = plt.subplots(3, 1, figsize=(8.0, 8.0), sharex=True, layout="constrained",
                                 gridspec_kw={"height_ratios": [3, 2, 1]})
    else:
        fig = axes[0].figure
    plot_loss(m, ax=axes[0], unit=unit)
    plot_grad_norms(m, ax=axes[1], clip_norm=clip_norm)
    plot_clipping(m, ax=axes[2])
    axes[2].set_xlabel("step (one window of truncated BPTT each)")
    if title:
        axes[0].set_title(title, fontsize=10)
    return fig
