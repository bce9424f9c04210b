"""Charts of the long-range tasks: one run's learning curves, and a sweep's success rate by length."""
import numpy as np
from matplotlib.ticker import FuncFormatter, MaxNLocator

from . import add_legend, cell_colour, new_axes, plt

BASELINE_STYLE = {"color": "0.35", "linestyle": "--", "linewidth": 1.2}


def _finite(x, y):
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


# The partial-credit score drawn beside "solved", when the task reports one (first found).
PARTIAL_SCORES = {"recall_accuracy": "symbols recalled", "accuracy": "argmax accuracy"}
LOSS_HEADROOM = 5.0       # the loss axis stops at this many times the baseline: the story is below it


def plot_task_run(metrics, baseline, title=None, stop_at=None, axes=None):
    """Loss (top) and held-out success rate (bottom) against training step, baselines dashed.

    metrics: {"step", "elapsed", "train_loss", "eval_loss", "eval_solved", ...} arrays, one
    entry per evaluation (as in metrics.csv). A copy task's `eval_recall_accuracy` (or a
    classification task's `eval_accuracy`) is drawn beside the success rate, with its chance
    level from `baseline` when given. baseline: the task's {"loss", "solved", ...}. The top
    axis is also marked in wall-clock time when the elapsed times increase.
    axes: two axes to draw on (None: a new figure).
    """
    if axes is None:
        fig, axes = plt.subplots(2, 1, figsize=(7.0, 6.0), sharex=True, layout="constrained")
    fig = axes[0].figure
    ax_loss, ax_solved = axes
    step = np.asarray(metrics["step"], dtype=float)
    dots = {"marker": "o", "markersize": 2.5} if step.size <= 60 else {}     # dots only while they stay apart

    x, y = _finite(step, np.asarray(metrics["train_loss"], dtype=float))
    ax_loss.plot(x, y, color="tab:blue", alpha=0.45, linewidth=1.0, label="training (mean since last point)")
    x, y = _finite(step, np.asarray(metrics["eval_loss"], dtype=float))
    ax_loss.plot(x, y, color="tab:blue", linewidth=1.6, label="held-out", **dots)
    ax_loss.axhline(baseline["loss"], **BASELINE_STYLE, label=f"baseline {baseline['loss']:.3g}")
    ax_loss.set_yscale("log")
    if y.size and y.max() > LOSS_HEADROOM * baseline["loss"] > 0:
        low = min(np.nanmin(y), baseline["loss"]) / 1.5
        ax_loss.set_ylim(low, LOSS_HEADROOM * baseline["loss"])
    ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax_loss.yaxis.set_minor_formatter(FuncFormatter(_minor_label))
    ax_loss.set_ylabel("loss")
    ax_loss.legend(loc="best", fontsize="small")
    ax_loss.grid(True, which="major", alpha=0.3)

    x, y = _finite(step, 100.0 * np.asarray(metrics["eval_solved"], dtype=float))
    ax_solved.plot(x, y, color="tab:orange", linewidth=1.6, label="held-out solved", **dots)
    ax_solved.axhline(100.0 * baseline["solved"], **BASELINE_STYLE, label=f"baseline {100 * baseline['solved']:.1f}%")
    partial = next((name for name in PARTIAL_SCORES if f"eval_{name}" in metrics), None)
    if partial is not None:
        x, y = _finite(step, 100.0 * np.asarray(metrics[f"eval_{partial}"], dtype=float))
        ax_solved.plot(x, y, color="tab:purple", linewidth=1.3, label=f"held-out {PARTIAL_SCORES[partial]}")
        if partial in baseline:
            ax_solved.axhline(100.0 * baseline[partial], color="tab:purple", linestyle="--", linewidth=1.0,
                              alpha=0.7, label=f"chance {100 * baseline[partial]:.1f}%")
    if stop_at is not None:
        ax_solved.axhline(100.0 * stop_at, color="tab:green", linestyle=":", linewidth=1.2,
                          label=f"target {100 * stop_at:g}%")
    ax_solved.set_ylim(-3, 103)
    ax_solved.set_ylabel("held-out score (%)")
    ax_solved.set_xlabel("training step")
    ax_solved.legend(loc="best", fontsize="small")
    ax_solved.grid(True, alpha=0.3)

    _time_axis(ax_loss, step, np.asarray(metrics["elapsed"], dtype=float))
    if title:
        fig.suptitle(title)
    return fig


def _minor_label(v, _pos=None):
    """Label the minor ticks of a log axis at 2, 3 and 5 times a power of ten only."""
    mantissa = v / 10.0 ** np.floor(np.log10(v)) if v > 0 else 0.0
    return f"{v:g}" if any(abs(mantissa - m) < 1e-6 for m in (2.0, 3.0, 5.0)) else ""


def _interp(v, xp, fp):
    """Piecewise-linear through (xp, fp), extended along the end segments (so it stays invertible)."""
    v = np.asarray(v, dtype=float)
    inside = np.interp(v, xp, fp)
    left = fp[0] + (v - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0])
    right = fp[-1] + (v - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return np.where(v < xp[0], left, np.where(v > xp[-1], right, inside))


def _time_axis(ax, step, elapsed):
    """A top axis in wall-clock time, mapped from steps by interpolating the logged (step, time) pairs."""
    x, t = _finite(step, elapsed)
    if len(x) < 2 or np.any(np.diff(x) <= 0) or np.any(np.diff(t) <= 0):
        return
    unit, scale = next((u, s) for u, s, upto in (("seconds", 1.0, 120.0), ("minutes", 60.0, 7200.0),
                                                 ("hours", 3600.0, np.inf)) if t[-1] <= upto)
    t = t / scale
    top = ax.secondary_xaxis("top", functions=(lambda s: _interp(s, x, t), lambda u: _interp(u, t, x)))
    ticks = MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10]).tick_values(0.0, t[-1])
    top.set_xticks(ticks[(ticks >= 0) & (ticks <= t[-1] * 1.001)])
    top.set_xlabel(f"wall-clock {unit}")


def plot_sweep(summary, baseline, title=None, ax=None):
    """Held-out success rate against sequence length, one line per cell, baseline dashed.

    summary: rows {"cell", "length", "mean", "min", "max", "values"} (fraction solved, one row
    per cell and length; `values` the seeds' results). baseline: {length: baseline solved}.
    The line is the mean over seeds, the band spans the lowest to the highest seed, the dots
    are the seeds.
    """
    fig, ax = new_axes(ax)
    cells = list(dict.fromkeys(r["cell"] for r in summary))
    seeds = {cell: max(len(r["values"]) for r in summary if r["cell"] == cell) for cell in cells}
    shared = len(set(seeds.values())) == 1 and len(cells) > 1          # say the seeds once, not per line
    for cell in cells:
        rows = sorted((r for r in summary if r["cell"] == cell), key=lambda r: r["length"])
        L = np.array([r["length"] for r in rows], dtype=float)
        color = cell_colour(cell)
        n_seeds = seeds[cell]
        label = (cell if shared else f"{cell}: mean of {n_seeds} seeds, band min to max" if n_seeds > 1
                 else f"{cell}: one seed")
        line, = ax.plot(L, [100 * r["mean"] for r in rows], marker="o", color=color, linewidth=1.8, label=label)
        ax.fill_between(L, [100 * r["min"] for r in rows], [100 * r["max"] for r in rows],
                        color=line.get_color(), alpha=0.15, linewidth=0)
        for r in rows:
            ax.scatter(np.full(len(r["values"]), r["length"]), 100 * np.asarray(r["values"]), s=10,
                       color=line.get_color(), alpha=0.6, zorder=3)
    lengths = sorted(baseline)
    ax.plot(lengths, [100 * baseline[L] for L in lengths], **BASELINE_STYLE, label="baseline")
    if len(lengths) > 1 and lengths[-1] / lengths[0] >= 8:
        ax.set_xscale("log")
    ax.set_xticks(lengths)
    ax.set_xticklabels([str(L) for L in lengths])
    ax.minorticks_off()
    ax.set_ylim(-3, 103)
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("held-out sequences solved (%)")
    ax.grid(True, alpha=0.3)
    note = None
    if shared:
        n = seeds[cells[0]]
        note = f"mean of {n} seeds,\nband min to max,\ndots: the seeds" if n > 1 else "one seed each"
    add_legend(ax, beside=len(cells) > 5, size=(8.5, 4.5), fontsize="small", title=note, title_fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


def plot_training_effect(traces, title=None, axes=None):
    """Lag profiles of the same model before and after training (`rnnvanish.tracer` Traces).

    Drawn with `rnnvanish.plots.trace.plot_lag_profiles`: ||dE_T/dh_{T-l}|| on the left and,
    for an LSTM, ||dE_T/dc_{T-l}|| on the right. axes: one axes per panel (None: a new figure).
    """
    from .trace import plot_lag_profiles

    quantities = ["h", "c"] if all(tr.grad_c is not None for tr in traces) else ["h"]
    if axes is None:
        width = 8.0 if len(quantities) == 1 else 13.0
        fig, axes = plt.subplots(1, len(quantities), figsize=(width, 5.0), layout="constrained", squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    if len(quantities) == 1:
        plot_lag_profiles(traces, ax=axes[0], quantity="h", title=title)
        return fig
    for ax, quantity in zip(axes, quantities):
        plot_lag_profiles(traces, ax=ax, quantity=quantity, title=f"signal reaching {quantity}$_{{T-l}}$")
    if title:
        fig.suptitle(title)
    return fig
