"""Charts of the normalisation and weight-decay lessons (data from `rnnvanish.lessons.norm`,
`.normtrain` and `.weight_decay`). Every function returns the figure and never calls `show()`."""
import numpy as np

from .. import plt
from .deep import _panels

NORM_STYLE = {
    "no normalisation": dict(color="0.25", ls="-"),
    "batch norm before f": dict(color="tab:blue", ls="-"),
    "batch norm after f": dict(color="tab:blue", ls="--"),
    "layer norm before f": dict(color="tab:orange", ls="-"),
    "layer norm after f": dict(color="tab:orange", ls="--"),
}


def _style(label, i):
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return dict(NORM_STYLE.get(label, dict(color=colours[i % len(colours)], ls="-")), lw=1.7)


def _smooth(values, window):
    """Running mean over `window` steps (shorter at the start), for noisy per-step curves."""
    values = np.asarray(values, float)
    c = np.cumsum(np.insert(values, 0, 0.0))
    k = np.arange(1, len(values) + 1)
    lo = np.maximum(0, k - window)
    return (c[k] - c[lo]) / (k - lo)


def plot_norm_variances(results, title=None, axes=None):
    """Left: Var(h_l); right: Var(dE/dh_l) (both log), one line per normalisation set-up.

    `results` maps a set-up label to the dict of `lessons.norm.norm_variances`.
    """
    fig, (ax_h, ax_g) = _panels(axes, 2, (13.0, 5.4))
    for i, (label, r) in enumerate(results.items()):
        style = _style(label, i)
        ax_h.semilogy(r["layers_h"], r["var_h"], **style)
        ax_g.semilogy(r["layers_dh"], r["var_dh"], **style,
                      label=f"{label}: Var(h$_L$) {r['var_h'][-1]:.2g}, Var(∂E/∂h$_0$) {r['var_dh'][0]:.2g}, "
                            f"×{r['back_factor']:.2f} per layer back")
    n_layers = results[next(iter(results))]["layers_h"][-1]
    ax_h.set_title("Forward: variance of the activations h$_l$")
    ax_h.set_ylabel("Var(h$_l$) (log scale)")
    ax_h.set_xlabel("layer l (1 = first hidden layer)")
    ax_g.set_title("Backward: variance of ∂E/∂h$_l$ (1 at the top)")
    ax_g.set_ylabel("Var(∂E/∂h$_l$) (log scale)")
    ax_g.set_xlabel(f"layer l (0 = input, {n_layers} = top)")
    for ax in (ax_h, ax_g):
        ax.axhline(1.0, color="0.3", lw=0.8, ls=":")
        ax.set_xlim(0, n_layers)
        ax.grid(True, which="major", alpha=0.3)
    if axes is None:
        fig.suptitle(title or "Normalisation in a deep MLP at initialisation")
        fig.legend(*ax_g.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8.5)
    else:
        ax_g.legend(fontsize=7)
    return fig


def plot_norm_training(runs, sweep, title=None, smooth=10, axes=None):
    """Three panels: ||dE/dW_1|| by step (log), training loss by step, and the test accuracy after
    training against the batch size (log 2), every batch size seeing the same number of examples.

    `runs` maps a set-up label to `lessons.normtrain.train_norm_mlp`'s dict; `sweep` is the dict
    of `lessons.normtrain.batch_size_sweep` (may be empty).
    """
    fig, (ax_g, ax_l, ax_b) = _panels(axes, 3, (16.0, 5.4))
    for i, (label, r) in enumerate(runs.items()):
        style = _style(label, i)
        ax_g.semilogy(r["step"], r["grad_norm_first"], **style, alpha=0.9)
        ax_l.plot(r["step"], _smooth(r["loss"], smooth), **style,
                  label=f"{label}: test accuracy {r['test_acc'][-1]:.0%} at the end")
    for i, (label, s) in enumerate(sweep.items()):
        ax_b.semilogx(s["batch"], 100 * s["test_acc"], marker="o", ms=4, base=2, **_style(label, i), label=label)
    ax_g.set_title("Gradient reaching the first layer")
    ax_g.set_ylabel("‖∂E/∂W$_1$‖ (log scale)")
    ax_l.set_title(f"Training loss (running mean over {smooth} steps)")
    ax_l.set_ylabel("cross-entropy E (nats)")
    for ax in (ax_g, ax_l):
        ax.set_xlabel("SGD step")
        ax.grid(True, which="major", alpha=0.3)
    ax_b.set_title("Batch size: the same number of examples for each")
    ax_b.set_xlabel("batch size B (log scale)")
    ax_b.set_ylabel("test accuracy after training (%)")
    ax_b.grid(True, which="major", alpha=0.3)
    if sweep:
        ax_b.legend(fontsize=8.5)
    if axes is None:
        fig.suptitle(title or "A short training run with and without normalisation")
        fig.legend(*ax_l.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8.5)
    else:
        ax_l.legend(fontsize=7)
    return fig


def plot_weight_decay(study, settings="", axes=None):
    """One row per starting spectral radius rho: the data gradient's norm (log), W_hh's spectral
    radius, and the training loss (log), one line per run (weight decay alone solid, with clipping
    dashed). `study` is `lessons.weight_decay.weight_decay_study`'s {rho: {label: run}}."""
    rhos = list(study)
    if axes is None:
        fig, axes = plt.subplots(len(rhos), 3, figsize=(15.0, 3.0 * len(rhos) + 1.2), layout="constrained",
                                 squeeze=False, sharex=True)
    fig = axes[0][0].figure
    labels = list(study[rhos[0]])
    decays = [lab for lab in labels if not lab.startswith("clip")]
    shades = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(decays)))
    colours = dict(zip(decays, shades))
    clip_colours = dict(zip([lab for lab in labels if lab.startswith("clip")], ["tab:red", "tab:orange", "tab:pink"]))
    for row, rho in zip(axes, rhos):
        ax_g, ax_r, ax_l = row
        for label, r in study[rho].items():
            style = dict(color=colours.get(label, clip_colours.get(label)), lw=1.5,
                         ls="--" if label.startswith("clip") else "-")
            end = f", diverged at step {r['diverged']}" if r["diverged"] else ""
            ax_g.semilogy(r["step"], r["grad_norm"], **style, alpha=0.85)
            ax_r.plot(r["step"], r["radius"], **style, label=label + end)
            ax_l.semilogy(r["step"], _smooth(r["loss"], 10), **style)
        ax_r.axhline(1.0, color="0.3", lw=0.8, ls=":")
        ax_r.set_yscale("log")
        ax_g.set_ylabel(f"start ρ(W$_{{hh}}$) = {rho:g}\n‖∂E/∂θ‖ (log scale)")
        ax_r.set_ylabel("ρ(W$_{hh}$) (log scale)")
        ax_l.set_ylabel("loss E (log scale)")
        for ax in row:
            ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_title("Norm of the data gradient, before clipping")
    axes[0][1].set_title("Spectral radius of W$_{hh}$ after each step (1 dotted)")
    axes[0][2].set_title("Training loss (running mean over 10 steps)")
    for ax in axes[-1]:
        ax.set_xlabel("SGD step")
    if fig is not None and len(fig.axes) == 3 * len(rhos):
        fig.suptitle("Weight decay against exploding gradients: a tanh RNN started above the edge of stability"
                     + (f"\n{settings}" if settings else ""))
        fig.legend(*axes[0][1].get_legend_handles_labels(), loc="outside lower center", ncol=len(labels),
                   fontsize=8.5)
    return fig
