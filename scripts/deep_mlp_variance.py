"""Lesson 4: variance of activations and back-propagated gradients, layer by layer, in a deep
MLP (after Glorot & Bengio 2010) for five activation / initialisation pairs.

    python scripts/deep_mlp_variance.py --out deep_mlp_variance.png
    python scripts/deep_mlp_variance.py --quick --out small.png     # 6 layers of 32, in a blink
"""
import argparse
import sys
from pathlib import Path

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons import MLP_SETUPS, deep_mlp_variances
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_deep_mlp_variances


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="deep_mlp_variance.png", help="PNG or SVG to write (default: %(default)s)")
    parser.add_argument("--layers", type=int, default=30, help="depth L (default: %(default)s)")
    parser.add_argument("--width", type=int, default=256, help="units per layer (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=256, help="random inputs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="6 layers of width 32 on 32 inputs")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.width, args.batch = 6, 32, 32

    results = {label: deep_mlp_variances(label, args.layers, args.width, args.batch, rng=args.seed)
               for label in MLP_SETUPS}
    for label, r in results.items():
        print(f"{label:22s} Var(h_L) {r['var_h'][-1]:.3g}   Var(dE/dh_0) {r['var_dh'][0]:.3g}")
    print(save_figure(plot_deep_mlp_variances(results), args.out))


if __name__ == "__main__":
    main()
