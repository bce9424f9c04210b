"""Charts of the deep-MLP lessons: initialisation x activation, and self-normalisation.

Data from `rnnvanish.lessons.mlp` and `rnnvanish.lessons.selu`; every function returns the
figure and never calls `show()`.
"""
import numpy as np

from .. import plt


def _panels(axes, n, figsize):
    if axes is not None:
        return axes[0].figure, list(axes)
    fig, axes = plt.subplots(1, n, figsize=figsize, layout="constrained")
    return fig, list(axes)


def _style(label, i):
    """Recommended pairs solid, mismatches dashed; one colour each from a 10-colour cycle."""
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return dict(color=colours[i % len(colours)], ls="--" if "mismatch" in label else "-", lw=1.6)


def plot_init_activation(results, floor=1e-40, axes=None):
    """Three panels against depth: Var(h_l), Var(dE/dh_l) (both log) and the fraction of dead units.

    `results` maps a set-up label ("ReLU + He", "tanh + He (mismatch)", ...) to the dict of
    `lessons.deep_mlp_variances`.
    """
    fig, (ax_h, ax_g, ax_d) = _panels(axes, 3, (15.0, 5.6))
    for i, (label, r) in enumerate(results.items()):
        style = _style(label, i)
        ax_h.semilogy(r["layers_h"], r["var_h"], **style)
        ax_g.semilogy(r["layers_dh"], r["var_dh"], **style)
        ax_d.plot(r["layers_h"], 100 * r["dead"], **style,
                  label=f"{label}: Var(h$_L$) {r['var_h'][-1]:.2g}, Var(∂E/∂h$_0$) {r['var_dh'][0]:.2g}")
    first = results[next(iter(results))]
    n_layers = first["layers_h"][-1]
    ax_h.set_title("Forward: variance of the activations h$_l$")
    ax_h.set_ylabel("Var(h$_l$) (log scale)")
    ax_h.set_xlabel("layer l (1 = first hidden layer)")
    ax_g.set_title("Backward: variance of ∂E/∂h$_l$ (1 at the top)")
    ax_g.set_ylabel("Var(∂E/∂h$_l$) (log scale)")
    ax_g.set_xlabel(f"layer l (0 = input, {n_layers} = top)")
    ax_d.set_title("Dead units: f′(a) = 0 for every input in the batch")
    ax_d.set_ylabel("dead units in layer l (%)")
    ax_d.set_xlabel("layer l")
    ax_d.set_ylim(-2, 100)
    for ax in (ax_h, ax_g):
        ax.axhline(1.0, color="0.3", lw=0.8, ls=":")
        low, high = ax.get_ylim()
        if low < floor:                                          # a vanishing curve would squash the rest
            ax.set_ylim(floor, high)
            ax.annotate(f"curves below {floor:.0e} continue off the chart (the legend has their values)",
                        (0.02, 0.02), xycoords="axes fraction", fontsize=8, color="0.3")
    for ax in (ax_h, ax_g, ax_d):
        ax.set_xlim(0, n_layers)
        ax.grid(True, which="major", alpha=0.3)
    if axes is None:
        fig.suptitle(f"Initialisation × activation: {n_layers} layers of {first['width']} units at "
                     f"initialisation, inputs x ~ N(0, 1) (solid: the recommended pairs, dashed: mismatches)")
        fig.legend(*ax_d.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8.5)
    else:
        ax_d.legend(fontsize=7)
    return fig


def _mark_exits(ax, layers, values, low, high, colour, name):
    """Where a curve leaves the window [low, high], say so at the edge it crosses."""
    outside = np.flatnonzero((values > high) | (values < low))
    if outside.size:
        k = outside[0]
        up = values[k] > high
        ax.annotate(f"{name} leaves the chart at layer {layers[k]}", (layers[k], high if up else low),
                    xytext=(6, -12 if up else 6), textcoords="offset points", fontsize=8, color=colour)


def plot_self_normalisation(results, band=(0.8, 1.25), var_window=(0.1, 10.0), mean_window=(-0.5, 0.5),
                            axes=None):
    """Left: mean of h_l; right: Var(h_l) on a log scale with the band `band` shaded. Both
    panels show a window around the fixed point (mean 0, variance 1); a curve that leaves it is
    marked where it does, and the legend gives every set-up's last values.

    `results` maps a set-up label to the dict of `lessons.selu.selu_layer_stats`.
    """
    fig, (ax_m, ax_v) = _panels(axes, 2, (13.0, 5.6))
    for i, (label, r) in enumerate(results.items()):
        style = _style(label, i)
        style["ls"] = "-" if i == 0 or "Alpha" in label else "--"
        ax_m.plot(r["layers"], r["mean"], **style)
        ax_v.semilogy(r["layers"], r["var"], **style,
                      label=f"{label}: layer {r['layers'][-1]} mean {r['mean'][-1]:+.3g}, variance {r['var'][-1]:.3g}")
        short = label.split(" + ", 1)[-1]
        _mark_exits(ax_m, r["layers"], r["mean"], *mean_window, style["color"], short)
        _mark_exits(ax_v, r["layers"], r["var"], *var_window, style["color"], short)
    n_layers = max(r["layers"][-1] for r in results.values())
    ax_v.axhspan(*band, color="tab:green", alpha=0.12, label=f"variance in [{band[0]:g}, {band[1]:g}]")
    ax_m.axhline(0.0, color="0.3", lw=0.8, ls=":")
    ax_m.set_ylim(*mean_window)
    ax_v.set_ylim(*var_window)
    ax_m.set_title("Mean of the activations h$_l$ (over units and inputs)")
    ax_m.set_ylabel("mean(h$_l$)")
    ax_v.set_title("Variance of the activations h$_l$")
    ax_v.set_ylabel("Var(h$_l$) (log scale)")
    for ax in (ax_m, ax_v):
        ax.set_xlabel("layer l (0 = the standardised input)")
        ax.set_xlim(0, n_layers)
        ax.grid(True, which="major", alpha=0.3)
    if axes is None:
        first = results[next(iter(results))]
        fig.suptitle(f"Self-normalisation: SELU layers of {first['width']} units, inputs standardised "
                     f"(mean 0, variance 1); what keeps the fixed point and what breaks it")
        fig.legend(*ax_v.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8.5)
    else:
        ax_v.legend(fontsize=7)
    return fig
