"""Charts of the first lessons (data from `rnnvanish.lessons`).

Each function takes the data, an optional `ax` (or a pair `axes` for two-panel charts) and
returns the figure; none calls `show()`. Save with `rnnvanish.plots.save_figure`.
"""
import numpy as np

from .. import new_axes, plt

GROW, SHRINK = "tab:red", "tab:blue"


def _pair(axes, figsize=(11.0, 4.3)):
    """(fig, (ax_left, ax_right)): the given pair, or a new figure with two panels."""
    if axes is not None:
        return axes[0].figure, axes
    fig, axes = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    return fig, axes


def plot_chain_product(n, products, ax=None):
    """One line per factor a: a^n against n on a log scale, with the level 1 marked."""
    fig, ax = new_axes(ax)
    for a, values in products.items():
        colour = GROW if a > 1 else SHRINK
        ax.semilogy(n, values, color=colour, lw=2, label=f"{a:g}$^n$  (ends at {values[-1]:.2g})")
    ax.axhline(1.0, color="0.4", lw=0.8, ls="--")
    ax.set_title("One factor per time step: the chain rule's product vanishes or explodes")
    ax.set_xlabel("steps back in time n (number of factors)")
    ax.set_ylabel("product of the factors (dimensionless, log scale)")
    ax.set_xlim(n[0], n[-1])
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left")
    return fig


def plot_logistic(orbits, axes=None):
    """Left: the orbits x_n; right: |d x_n / d x_0| on a log scale.

    `orbits` maps a label (e.g. "r = 3.5") to (x, dx) from `lessons.logistic_orbit`.
    """
    fig, (ax_x, ax_d) = _pair(axes)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (label, (x, dx)), colour in zip(orbits.items(), colours):
        n = np.arange(len(x))
        ax_x.plot(n, x, "-o", ms=2.5, lw=0.8, color=colour, label=label)
        ax_d.semilogy(n, np.abs(dx), lw=1.8, color=colour,
                      label=f"{label}: ends at {abs(dx[-1]):.1e}")
    ax_x.set_title(f"Iterates of f(x) = r x (1 − x) from x$_0$ = {x[0]:g}")
    ax_x.set_xlabel("iteration n")
    ax_x.set_ylabel("x$_n$ (dimensionless)")
    ax_x.set_ylim(0, 1.14)                                   # headroom for the legend
    ax_d.axhline(1.0, color="0.4", lw=0.8, ls="--")
    ax_d.set_title("Chain rule: |d x$_n$ / d x$_0$| = |∏ f′(x$_k$)|")
    ax_d.set_xlabel("iteration n")
    ax_d.set_ylabel("|derivative of the n-fold composition| (log scale)")
    for ax in (ax_x, ax_d):
        ax.set_xlim(0, len(x) - 1)
        ax.grid(True, alpha=0.3)
    ax_x.legend(loc="upper center", ncol=len(orbits), fontsize=9)
    ax_d.legend(loc="upper left", fontsize=9)
    return fig


def plot_activations(a, curves, labels=None, axes=None):
    """One small panel per activation: f(a) solid, f'(a) dashed, sup f' dotted and written out.

    `curves` is the dict of `lessons.activation_curves`; `labels` maps its names to titles;
    `axes` is a flat sequence of at least len(curves) axes (default: a new grid of 3 columns).
    """
    if axes is None:
        rows = -(-len(curves) // 3)
        fig, grid = plt.subplots(rows, 3, figsize=(12.0, 3.0 * rows + 0.6), sharex=True, sharey=True,
                                 layout="constrained", squeeze=False)
        axes = grid.ravel()
        for ax in axes[len(curves):]:
            ax.set_visible(False)
        fig.suptitle("Activations f and their derivatives f′: backpropagation multiplies by f′ once per layer")
    fig = axes[0].figure
    labels = labels or {}
    for ax, (name, (f, df, bound)) in zip(axes, curves.items()):
        ax.axhline(0.0, color="0.75", lw=0.6)
        ax.axvline(0.0, color="0.75", lw=0.6)
        ax.plot(a, f, lw=2, color="tab:blue", label="f(a)")
        ax.plot(a, df, lw=2, ls="--", color="tab:red", label="f′(a): the factor passed back")
        ax.axhline(bound, color="tab:red", lw=0.9, ls=":", label="sup f′ (γ of the chain bound)")
        ax.annotate(f"sup f′ = {bound:.4g}", (a[0], bound), xytext=(3, 3), textcoords="offset points",
                    fontsize=8.5, color="tab:red")
        ax.set_title(labels.get(name, name), fontsize=10)
        ax.set_xlim(a[0], a[-1])
        ax.set_ylim(-2.0, 3.0)                                   # the lines leave the top: f grows like a
        ax.grid(True, alpha=0.3)
    visible = [ax for ax in axes if ax.get_visible()]
    for ax in visible:
        if ax.get_subplotspec() is None or ax.get_subplotspec().is_last_row() or ax is visible[-1]:
            ax.set_xlabel("pre-activation a")
        if ax.get_subplotspec() is None or ax.get_subplotspec().is_first_col():
            ax.set_ylabel("f(a), f′(a)")
    axes[0].legend(loc="upper left", fontsize=8)
    return fig


def plot_deep_mlp_variances(results, axes=None):
    """Left: Var(h_l) per layer; right: Var(dE/dh_l) per layer (both log scale); one legend
    below both panels.

    `results` maps a setup label to the dict of `lessons.deep_mlp_variances`.
    """
    fig, (ax_h, ax_g) = _pair(axes, figsize=(12.0, 5.4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (label, r), colour in zip(results.items(), colours):
        ax_h.semilogy(r["layers_h"], r["var_h"], "-o", ms=3, lw=1.6, color=colour)
        ax_g.semilogy(r["layers_dh"], r["var_dh"], "-o", ms=3, lw=1.6, color=colour,
                      label=f"{label}  (gradient variance {r['var_dh'][0]:.0e} at the input)")
    first = results[next(iter(results))]
    n_layers = first["layers_h"][-1]
    ax_h.set_title("Forward: variance of the activations h$_l$")
    ax_h.set_xlabel("layer l (1 = first hidden layer)")
    ax_h.set_ylabel("Var(h$_l$) (log scale)")
    ax_g.set_title("Backward: variance of the gradient ∂E/∂h$_l$ (1 at the top)")
    ax_g.set_xlabel(f"layer l (0 = input, {n_layers} = top)")
    ax_g.set_ylabel("Var(∂E/∂h$_l$) (log scale)")
    ax_g.axhline(1.0, color="0.4", lw=0.8, ls="--")
    for ax in (ax_h, ax_g):
        ax.set_xlim(0, n_layers)
        ax.grid(True, which="major", alpha=0.3)
    if axes is None:
        fig.suptitle(f"A deep MLP at initialisation: {n_layers} layers of {first['width']} units, "
                     f"inputs x ~ N(0, 1)")
        fig.legend(loc="outside lower center", ncol=2, fontsize=9)
    else:
        ax_g.legend(loc="best", fontsize=8)
    return fig


def plot_clipping(demo, ax=None):
    """The gradient and its two clipped versions as arrows, with the box |g_i| <= c and the
    circle ||g|| = c that the two clippings project onto."""
    g, c = demo["gradient"], demo["threshold"]
    pad = 0.35 * c
    x_lim = (min(-c, g[0]) - pad, max(c, g[0]) + pad)
    y_lim = [min(-c, g[1]) - pad, max(c, g[1]) + pad]
    # the legend goes in the corner across from the arrow's half-plane, with room made for it
    upward = g[1] >= 0
    y_lim[0 if upward else 1] += (-1.2 if upward else 1.2) * c
    aspect = (x_lim[1] - x_lim[0]) / (y_lim[1] - y_lim[0])
    fig, ax = new_axes(ax, figsize=(min(12.0, max(7.2, 1.4 + 4.0 * aspect)), 4.8))
    ax.add_patch(plt.Rectangle((-c, -c), 2 * c, 2 * c, fill=False, ls="--", lw=1.2, ec="tab:orange",
                               label=f"by value: each |g$_i$| ≤ c = {c:g}"))
    ax.add_patch(plt.Circle((0, 0), c, fill=False, ls=":", lw=1.5, ec="tab:green",
                            label=f"by norm: ‖g‖ ≤ c = {c:g}"))
    arrows = (
        (g, "0.25", 2.0, f"gradient g = ({g[0]:g}, {g[1]:g}), ‖g‖ = {np.linalg.norm(g):.2f}"),
        (demo["by_value"], "tab:orange", 2.6, f"clipped by value: turned {demo['angle_by_value']:.0f}°"),
        (demo["by_norm"], "tab:green", 2.6, f"clipped by norm: turned {demo['angle_by_norm']:.0f}°"),
    )
    for v, colour, width, label in arrows:
        ax.annotate("", xy=v, xytext=(0, 0),
                    arrowprops=dict(arrowstyle="-|>", color=colour, lw=width, mutation_scale=16))
        ax.plot([], [], color=colour, lw=width, label=label)    # legend entry for the arrow
    ax.set_xlim(*x_lim)
    ax.set_ylim(*y_lim)
    ax.set_aspect("equal")
    ax.axhline(0, color="0.7", lw=0.6)
    ax.axvline(0, color="0.7", lw=0.6)
    ax.set_title("Clipping one gradient: by norm keeps its direction, by value turns it")
    ax.set_xlabel("g$_1$ = ∂E/∂θ$_1$")
    ax.set_ylabel("g$_2$ = ∂E/∂θ$_2$")
    ax.grid(True, alpha=0.3)
    corner = ("lower " if upward else "upper ") + ("right" if g[0] >= 0 else "left")
    ax.legend(loc=corner, fontsize=9, framealpha=0.95)
    return fig


from .deep import plot_init_activation, plot_self_normalisation  # noqa: E402,F401  (below: they import the parent)
from .norm import plot_norm_training, plot_norm_variances, plot_weight_decay  # noqa: E402,F401
