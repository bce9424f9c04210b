"""Lesson 2: the derivative of an iterated map is a product of derivatives (the chain rule).

For f(x) = r x (1 - x), d f^n / d x0 = prod_k f'(x_k). At r = 3.5 the orbit settles on a
stable 4-cycle and the product shrinks geometrically; at r = 3.9 (chaos) it explodes.

    python scripts/logistic_map.py --out logistic_map.png
"""
import argparse
import sys
from pathlib import Path

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons import logistic_orbit
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_logistic


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="logistic_map.png", help="PNG or SVG to write (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=60, help="iterations n (default: %(default)s)")
    parser.add_argument("--x0", type=float, default=0.2, help="starting point in [0, 1] (default: %(default)s)")
    parser.add_argument("--r", type=float, nargs="+", default=[3.5, 3.9],
                        help="growth rates to compare (default: 3.5 3.9)")
    args = parser.parse_args(argv)

    orbits = {f"r = {r:g}": logistic_orbit(args.x0, args.steps, r) for r in args.r}
    for label, (x, dx) in orbits.items():
        print(f"{label}: x_{args.steps} = {x[-1]:.4f}, |d x_n / d x_0| = {abs(dx[-1]):.3g}")
    print(save_figure(plot_logistic(orbits), args.out))


if __name__ == "__main__":
    main()
