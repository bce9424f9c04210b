"""Charts of the error signal across time and depth (data from `rnnvanish.tracer.depth`).

    plot_depth_heatmaps(traces)   log10 of the median ||dE_T/dh^(l)_{T-lag}||: lag across, layer
                                  up, one panel per configuration on one colour scale
    plot_depth_bottom(traces)     the signal reaching the bottom layer against lag, one curve per
                                  configuration (median and 10-90 % band)

Each takes the data and optional axes and returns the figure; none calls `show()`.
"""
import numpy as np
from matplotlib.colors import Normalize

from . import new_axes, plt
from .trace import COLOURS


def _log10(values):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)


def plot_depth_heatmaps(traces, axes=None, title=None):
    """One lag x layer heatmap per trace, a shared log colour scale (decades below the probe's 1)."""
    traces = list(traces)
    if axes is None:
        fig, axes = plt.subplots(1, len(traces), figsize=(4.2 * len(traces) + 1.2, 3.4 + 0.25 * traces[0].layers),
                                 squeeze=False, constrained_layout=True)
        axes = axes[0]
    fig = axes[0].figure
    logs = [_log10(tr.median()) for tr in traces]
    finite = np.concatenate([v[np.isfinite(v)] for v in logs]) if logs else np.array([0.0])
    low = max(np.floor(finite.min()) if finite.size else -6.0, -12.0)
    norm = Normalize(vmin=low, vmax=max(0.0, np.ceil(finite.max()) if finite.size else 0.0))
    for ax, tr, values in zip(axes, traces, logs):
        image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis", norm=norm,
                          extent=(-0.5, tr.T + 0.5, 0.5, tr.layers + 0.5), interpolation="nearest")
        ax.set_xlabel("lag T − k (steps back in time)")
        ax.set_ylabel("layer (1 = bottom)")
        ax.set_yticks(range(1, tr.layers + 1))
        ax.set_title(tr.label, fontsize=10)
    bar = fig.colorbar(image, ax=list(axes), shrink=0.9)
    bar.set_label("log$_{10}$ ‖∂E$_T$/∂h$_k^{(l)}$‖ (median)")
    fig.suptitle(title or "The error signal from the top layer's last step, across time and depth")
    return fig


def plot_depth_bottom(traces, ax=None, title=None):
    """The signal reaching the bottom layer (layer 1) against lag, one curve per configuration."""
    fig, ax = new_axes(ax, figsize=(7.5, 4.6))
    for colour, tr in zip(COLOURS * 4, traces):
        med, q10, q90 = tr.bottom()
        lags = np.arange(tr.T + 1)
        ax.semilogy(lags, med, color=colour, label=f"{tr.label}: {med[0]:.2g} at lag 0")
        ax.fill_between(lags, np.maximum(q10, 1e-300), np.maximum(q90, 1e-300), color=colour, alpha=0.15, lw=0)
    ax.set_xlabel("lag T − k (steps back in time)")
    ax.set_ylabel("‖∂E$_T$/∂h$_k^{(1)}$‖ at the bottom layer (log scale)")
    ax.set_title(title or "How much of the signal at the top's last step reaches the bottom layer", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return fig
