"""Lesson 3: sigmoid, tanh and ReLU and their derivatives, bounded by 1/4, 1 and 1.

    python scripts/activations.py --out activations.png
"""
import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons import activation_curves
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_activations


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="activations.png", help="PNG or SVG to write (default: %(default)s)")
    parser.add_argument("--range", type=float, default=5.0, help="plot a in [-R, R] (default: %(default)s)")
    args = parser.parse_args(argv)

    a, curves = activation_curves(np.linspace(-args.range, args.range, 1001))
    for name, (f, df, bound) in curves.items():
        print(f"{name}: max f' on the grid {df.max():.4f} (bound {bound:g})")
    print(save_figure(plot_activations(a, curves), args.out))


if __name__ == "__main__":
    main()
