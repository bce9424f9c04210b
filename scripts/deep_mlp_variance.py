"""Lesson 4: variance of activations and back-propagated gradients, layer by layer, in a deep
MLP (after Glorot & Bengio 2010) for five activation / initialisation pairs.

    python scripts/deep_mlp_variance.py --out deep_mlp_variance.png
    python scripts/deep_mlp_variance.py --quick --out small.png     # 6 layers of 32, in a blink
"""
import sys
from pathlib import Path

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons import MLP_SETUPS, deep_mlp_variances
from rnnvanish.lessons.mlp import mlp_script_arguments
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_deep_mlp_variances


def main(argv=None):
    args = mlp_script_arguments(__doc__, "deep_mlp_variance.png", 30)(argv)

    results = {label: deep_mlp_variances(label, args.layers, args.width, args.batch, rng=args.seed)
               for label in MLP_SETUPS}
    for label, r in results.items():
        print(f"{label:22s} Var(h_L) {r['var_h'][-1]:.3g}   Var(dE/dh_0) {r['var_dh'][0]:.3g}")
    print(save_figure(plot_deep_mlp_variances(results), args.out))


if __name__ == "__main__":
    main()
