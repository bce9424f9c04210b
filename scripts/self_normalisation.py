"""Lesson 7: self-normalisation. SELU layers with LeCun-normal weights keep mean 0 and variance 1
through 100 layers from standardised inputs; a skip connection, ordinary dropout, or Glorot-uniform
weights where fan-in and fan-out differ break it, and AlphaDropout keeps it.

    python scripts/self_normalisation.py --out lessons_self_normalisation.png
    python scripts/self_normalisation.py --quick --out small.png
"""
import argparse
import sys
from pathlib import Path

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons.selu import SELU_VARIANTS, selu_layer_stats
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_self_normalisation


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="lessons_self_normalisation.png", help="PNG or SVG to write (default: %(default)s)")
    parser.add_argument("--layers", type=int, default=100, help="depth L (default: %(default)s)")
    parser.add_argument("--width", type=int, default=256, help="units per layer (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=256, help="inputs (default: %(default)s)")
    parser.add_argument("--dropout", type=float, default=0.2, help="dropout rate p (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="8 layers of width 32 on 32 inputs")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.width, args.batch = 8, 32, 32

    results = {}
    for label, options in SELU_VARIANTS.items():
        label = label.replace("0.2", f"{args.dropout:g}")
        if args.quick and "widths" in options:
            options = {**options, "widths": (32, 8)}
        results[label] = selu_layer_stats(args.layers, args.width, args.batch, p=args.dropout,
                                          rng=args.seed, **options)
    for label, r in results.items():
        print(f"{label:52s} layer {args.layers}: mean {r['mean'][-1]:+.3g}  variance {r['var'][-1]:.3g}")
    print(save_figure(plot_self_normalisation(results), args.out))


if __name__ == "__main__":
    main()
