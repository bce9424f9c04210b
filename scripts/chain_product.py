"""Lesson 1: a factor applied once per time step. 0.8^n vanishes, 1.2^n explodes.

    python scripts/chain_product.py --out chain_product.png
"""
import argparse
import sys
from pathlib import Path

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons import chain_product
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_chain_product


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="chain_product.png", help="PNG or SVG to write (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=50, help="number of factors n (default: %(default)s)")
    parser.add_argument("--factors", type=float, nargs="+", default=[0.8, 1.2],
                        help="the per-step factors (default: 0.8 1.2)")
    args = parser.parse_args(argv)

    n, products = chain_product(args.factors, args.steps)
    for a, values in products.items():
        print(f"{a:g}^{args.steps} = {values[-1]:.3g}")
    print(save_figure(plot_chain_product(n, products), args.out))


if __name__ == "__main__":
    main()
