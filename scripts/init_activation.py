"""Lesson 6: initialisation x activation in a deep MLP. The recommended pairs (Glorot + tanh,
He + the ReLU family, LeCun + SELU) against mismatches: variance of activations and gradients
by layer, and the fraction of dead ReLU units by layer.

    python scripts/init_activation.py --out lessons_init_activation.png
    python scripts/init_activation.py --quick --out small.png     # 6 layers of 32, in a blink
"""
import argparse
import sys
from pathlib import Path

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons import INIT_PAIRS, deep_mlp_variances
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_init_activation


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="lessons_init_activation.png", help="PNG or SVG to write (default: %(default)s)")
    parser.add_argument("--layers", type=int, default=100, help="depth L (default: %(default)s)")
    parser.add_argument("--width", type=int, default=256, help="units per layer (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=256, help="random inputs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="6 layers of width 32 on 32 inputs")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.width, args.batch = 6, 32, 32

    results = {label: deep_mlp_variances(label, args.layers, args.width, args.batch, rng=args.seed)
               for label in INIT_PAIRS}
    print(f"{'set-up':26s} {'Var(h_L)':>9s} {'Var(dE/dh_0)':>13s} {'dead at L':>10s}")
    for label, r in results.items():
        print(f"{label:26s} {r['var_h'][-1]:9.3g} {r['var_dh'][0]:13.3g} {r['dead'][-1]:10.1%}")
    print(save_figure(plot_init_activation(results), args.out))


if __name__ == "__main__":
    main()
