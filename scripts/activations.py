"""Lesson 3: nine activation functions, their derivatives and the supremum of each derivative.

sup f' is the gamma of the chain-product bound: sigmoid passes back at most 1/4 per layer, tanh,
ReLU, leaky ReLU, ELU and softplus at most 1, GELU and SiLU a little more, SELU up to about 1.76.

    python scripts/activations.py --out lessons_activations.png
    python scripts/activations.py --names sigmoid tanh relu     # the first three only
"""
import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons import ACTIVATIONS, activation_curves
from rnnvanish.lessons.activations import LABELS
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_activations


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="lessons_activations.png", help="PNG or SVG to write (default: %(default)s)")
    parser.add_argument("--range", type=float, default=4.0, help="plot a in [-R, R] (default: %(default)s)")
    parser.add_argument("--names", nargs="+", default=list(ACTIVATIONS), choices=list(ACTIVATIONS),
                        metavar="NAME", help="activations to draw (default: all nine)")
    args = parser.parse_args(argv)

    a, curves = activation_curves(np.linspace(-args.range, args.range, 1601), args.names)
    for name, (f, df, bound) in curves.items():
        print(f"{name:10s} sup f' = {bound:.6f}   max f' on the grid {df.max():.6f}   min f' {df.min():.4f}")
    print(save_figure(plot_activations(a, curves, LABELS), args.out))


if __name__ == "__main__":
    main()
