"""Charts of the gradient tracer (data from `rnnvanish.tracer`).

    plot_lag_profiles(traces)          ||dE_T/dh_k|| against lag, one curve per configuration,
                                       median with 10-90 % band, the tanh bound dashed
    plot_jacobian_heatmap(trace)       log10 ||dh_t/dh_k||_2 for every pair t > k
    plot_jacobian_heatmaps(traces)     the same side by side on one colour scale
    plot_training_traces(history)      the lag profile over training: heatmap + selected steps

Each function takes the data, an optional `ax` (or `axes`) and returns the figure; none calls
`show()`. Save with `rnnvanish.plots.save_figure` (PNG or SVG by the file's suffix).
"""
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from . import add_legend, cell_colour, new_axes, plt

COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray")

QUANTITY_LABELS = {
    "h": ("‖∂E$_T$/∂h$_k$‖  (fraction of the signal at step T, log scale)",
          "How much of the error signal at step T reaches step k"),
    "c": ("‖∂E$_T$/∂c$_k$‖  (LSTM cell state, log scale)",
          "Error signal reaching the LSTM cell state c$_k$"),
    "contribution": ("‖h$_{k-1}^{\\top}$ da$_k$‖$_F$  (term of ∂E$_T$/∂W$_{hh}$, log scale)",
                     "Each step's term in the gradient of W$_{hh}$, by lag"),
}


# the base b of each cell's bound b^lag on the signal (the tanh family's by default)
BOUND_NAMES = {None: "γ σ$_{max}$(W$_{hh}$)", "indrnn": "max |u$_i$|", "lru": "max |λ$_j$|"}


def _positive(values):
    """Values for a log axis: zeros and non-finite entries become NaN (gaps, not -inf)."""
    v = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(v) & (v > 0), v, np.nan)


def _power_of_ten(x, _pos=None):
    return f"10$^{{{x:.0f}}}$" if float(x).is_integer() else f"10$^{{{x:.1f}}}$"


def _decade_ticks():
    """Colour-bar ticks on whole decades of log10 values."""
    return MaxNLocator(nbins=8, integer=True)


def _decay_text(factor):
    if not np.isfinite(factor):
        return ""
    return f" — ×{factor:.3g} per step"


def plot_lag_profiles(traces, ax=None, quantity="h", bound=True, band=True, title=None):
    """Signal against lag for several traces on one log-scale chart.

    `traces` is a Trace or a list of them (one curve each, labelled by `trace.label`). For a
    tanh-family RNN the Pascanu et al. bound (gamma sigma_max(W_hh))^lag is drawn dashed in the
    curve's colour. `quantity` is "h", "c" (LSTM traces only; others are skipped) or
    "contribution".
    """
    traces = [traces] if not isinstance(traces, (list, tuple)) else list(traces)
    fig, ax = new_axes(ax, figsize=(8.0, 5.0))
    y_label, default_title = QUANTITY_LABELS[quantity]
    seen = []
    colours = _curve_colours(traces)
    for tr, colour in zip(traces, colours):
        data = {"h": tr.grad_h, "c": tr.grad_c, "contribution": tr.contribution}[quantity]
        if data is None:
            continue
        median, low, high = tr.profile(quantity)
        lags = np.arange(median.size)
        decay = tr.decay_per_step if quantity == "h" else float("nan")
        ax.plot(lags, _positive(median), color=colour, lw=2.0, label=f"{tr.label}{_decay_text(decay)}")
        if band and tr.B > 1:
            ax.fill_between(lags, _positive(low), _positive(high), color=colour, alpha=0.18, lw=0)
        seen.append(_positive(np.concatenate([low, high, median])))
        b = tr.bound if quantity == "h" and bound else None
        if b is not None:
            ax.plot(tr.lags, _positive(b), color=colour, lw=1.3, ls="--",
                    label=f"  bound ({BOUND_NAMES.get(tr.meta.get('cell'), BOUND_NAMES[None])})$^{{lag}}$ = "
                          f"{tr.bound_base:.3g}$^{{lag}}$")
    ax.set_yscale("log")
    _fit_log_limits(ax, seen)
    if quantity != "contribution":
        ax.axhline(1.0, color="0.45", lw=0.8, ls=":")                # the signal at T itself
    T_max = max((tr.T for tr in traces), default=1)
    ax.set_xlim(0, T_max)
    ax.set_xlabel("lag t − k  (steps back from the loss at the last step T)")
    ax.set_ylabel(y_label)
    ax.set_title(title or default_title)
    ax.grid(True, which="major", alpha=0.3)
    if seen:
        add_legend(ax, beside=len(ax.get_legend_handles_labels()[1]) > 8, size=(11.5, 5.5),
                   loc="best", fontsize=8.5, framealpha=0.9)
    if band and any(tr.B > 1 for tr in traces):
        B = traces[0].B
        ax.annotate(f"lines: median over {B} sequences; bands: 10–90 %", xy=(0.99, 0.01), xycoords="axes fraction",
                    ha="right", va="bottom", fontsize=7.5, color="0.35")
    return fig


def _curve_colours(traces):
    """One colour per trace: each cell's own colour (`Cell.colour`, the same on every chart) when
    the traces are of different cells, else the cycle COLOURS in order."""
    cells = [tr.meta.get("cell") for tr in traces]
    own = [cell_colour(c) for c in cells]
    if len(set(cells)) == len(cells) and all(own) and len(set(own)) == len(own):
        return own
    return [COLOURS[i % len(COLOURS)] for i in range(len(traces))]


def _fit_log_limits(ax, arrays, margin=0.3):
    """y-limits around the measured data only (a bound may run off the chart)."""
    values = np.concatenate([a[np.isfinite(a)] for a in arrays]) if arrays else np.zeros(0)
    if values.size == 0:
        return
    lo, hi = np.log10(values.min()), np.log10(values.max())
    lo, hi = min(lo, -0.1), max(hi, 0.1)                              # always show the level 1
    pad = margin + 0.04 * (hi - lo)
    ax.set_ylim(10 ** (lo - pad), 10 ** (hi + pad))
    # Ticks on every d-th decade, counted from 10^0 so that the level 1 is always labelled.
    step = max(1, int(np.ceil((hi - lo + 2 * pad) / 9)))
    decades = np.arange(np.ceil((lo - pad) / step) * step, hi + pad + 1e-9, step)
    ax.yaxis.set_major_locator(FixedLocator(10.0 ** decades))
    if step > 1:
        ax.yaxis.set_minor_locator(NullLocator())


def _heatmap_limits(log_values):
    """(vmin, vmax) in log10 units around 0, so that a norm of 1 is the white middle.

    Each side spans at least a quarter of the other: a product that grows by 1.5 while others
    shrink by 10^-14 stays pale red instead of taking the darkest red of a tiny range."""
    finite = np.concatenate([v[np.isfinite(v)] for v in log_values]) if log_values else np.zeros(0)
    if finite.size == 0:
        return -1.0, 1.0
    vmin, vmax = min(float(finite.min()), 0.0), max(float(finite.max()), 0.0)
    span = max(-vmin, vmax, 0.5)
    return min(vmin, -0.25 * span), max(vmax, 0.25 * span)


def plot_jacobian_heatmap(trace, ax=None, limits=None, colorbar=True):
    """log10 ||ds_t/ds_k||_2 for every pair t > k: rows t (up), columns k; blue shrinks, red grows.

    `limits` (vmin, vmax) in log10 units shares one colour scale between several panels."""
    fig, ax = new_axes(ax, figsize=(6.2, 5.2))
    L = trace.jacobian_log10
    if L is None:
        ax.text(0.5, 0.5, "no Jacobians in this trace", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    T = L.shape[0]
    vmin, vmax = limits or _heatmap_limits([L])
    norm = TwoSlopeNorm(vmin=vmin, vcenter=0.0, vmax=vmax)
    shown = np.where(np.isneginf(L), vmin, L)                          # an exactly zero product: darkest blue
    image = ax.imshow(np.ma.masked_invalid(shown), origin="lower", cmap="RdBu_r", norm=norm,
                      extent=(-0.5, T - 0.5, 0.5, T + 0.5), interpolation="nearest", aspect="auto")
    ax.set_xlabel("from step k")
    ax.set_ylabel("to step t")
    state = trace.meta.get("jacobian_state", "h")
    symbol = "(h, c)" if state != "h" else "h"
    method = {"sketch": "  (sketch: lower bound)", "exact": "  (exact)"}.get(trace.meta.get("jacobian_method"), "")
    ax.set_title(f"{trace.label}{method}", fontsize=10)
    if colorbar:
        bar = fig.colorbar(image, ax=ax, format=FuncFormatter(_power_of_ten), ticks=_decade_ticks())
        bar.set_label(f"‖∂{symbol}$_t$/∂{symbol}$_k$‖$_2$  (log scale; blue shrinks, red grows)")
    return fig


def plot_jacobian_heatmaps(traces, axes=None, title=None):
    """One heatmap per trace, side by side, on one shared colour scale with one colour bar."""
    traces = [traces] if not isinstance(traces, (list, tuple)) else list(traces)
    if axes is None:
        n = len(traces)
        fig, axes = plt.subplots(1, n, figsize=(0.6 + 4.2 * n, 4.6), layout="constrained", squeeze=False)
        axes = list(axes[0])
    else:
        fig = axes[0].figure
    limits = _heatmap_limits([tr.jacobian_log10 for tr in traces if tr.jacobian_log10 is not None])
    for tr, ax in zip(traces, axes):
        plot_jacobian_heatmap(tr, ax=ax, limits=limits, colorbar=False)
    for ax in axes[1:]:
        ax.set_ylabel("")
    images = [ax.images[0] for ax in axes if ax.images]
    if images:
        bar = fig.colorbar(images[-1], ax=axes, format=FuncFormatter(_power_of_ten), shrink=0.95,
                           ticks=_decade_ticks())
        bar.set_label("‖∂s$_t$/∂s$_k$‖$_2$  (log scale; blue shrinks, red grows)")
    lstm = any(tr.meta.get("jacobian_state", "h") != "h" for tr in traces)
    state = "s = h" + (", and s = (h, c) for the LSTM" if lstm else "")
    fig.suptitle(title or f"Norm of the Jacobian product ∂s$_t$/∂s$_k$ = ∏$_{{j=k+1..t}}$ ∂s$_j$/∂s$_{{j-1}}$ "
                          f"for one sequence ({state})")
    return fig


def plot_training_traces(history, axes=None, n_lines=5, title=None):
    """Left: median ||dE_T/dh_{T-lag}|| as a heatmap over (lag, training step); right: the
    profile at a few steps, early to late. `history` is a `TrainingTraces`."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12.5, 4.8), layout="constrained")
    else:
        fig = axes[0].figure
    ax_map, ax_lines = axes
    steps, lags = history.steps, history.lags
    with np.errstate(divide="ignore", invalid="ignore"):
        log_h = np.log10(_positive(history.grad_h))
    finite = log_h[np.isfinite(log_h)]
    vmin = float(finite.min()) if finite.size else -1.0
    vmax = max(float(finite.max()) if finite.size else 0.0, 0.0)
    step_edges = _edges(steps)
    lag_edges = np.arange(lags.size + 1) - 0.5
    mesh = ax_map.pcolormesh(lag_edges, step_edges, np.ma.masked_invalid(log_h), cmap="viridis",
                             vmin=vmin, vmax=vmax, shading="flat")
    bar = fig.colorbar(mesh, ax=ax_map, format=FuncFormatter(_power_of_ten), ticks=_decade_ticks())
    bar.set_label("median ‖∂E$_T$/∂h$_{T-lag}$‖ (log colour scale)")
    ax_map.set_xlabel("lag  (steps back from the last step T of the window)")
    ax_map.set_ylabel("training step")
    ax_map.set_title("Gradient signal by lag over training")

    picks = np.unique(np.linspace(0, len(steps) - 1, min(n_lines, len(steps))).round().astype(int))
    cmap = plt.get_cmap("viridis")
    for j, i in enumerate(picks):
        colour = cmap(j / max(len(picks) - 1, 1) * 0.9)
        label = f"step {steps[i]}" + _decay_text(history.decay_per_step[i])
        ax_lines.plot(lags, _positive(history.grad_h[i]), color=colour, lw=1.8, label=label)
    ax_lines.set_yscale("log")
    _fit_log_limits(ax_lines, [_positive(history.grad_h[picks])])
    ax_lines.axhline(1.0, color="0.45", lw=0.8, ls=":")
    ax_lines.set_xlim(0, lags[-1])
    ax_lines.set_xlabel("lag  (steps back from the last step T of the window)")
    ax_lines.set_ylabel("median ‖∂E$_T$/∂h$_{T-lag}$‖ (log scale)")
    ax_lines.set_title("The lag profile at selected steps")
    ax_lines.grid(True, which="major", alpha=0.3)
    ax_lines.legend(loc="best", fontsize=8.5)
    if title:
        fig.suptitle(title)
    return fig


def _edges(centres):
    """Cell edges around sorted centres (midpoints; the end cells as wide as their neighbour)."""
    c = np.asarray(centres, dtype=np.float64)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])
