"""Lesson 5: one gradient clipped by value and by norm. Only clipping by norm keeps its direction.

    python scripts/clip_value_vs_norm.py --out clip_value_vs_norm.png
"""
import argparse
import sys
from pathlib import Path

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons import clip_demo
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_clipping


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="clip_value_vs_norm.png", help="PNG or SVG to write (default: %(default)s)")
    parser.add_argument("--gradient", type=float, nargs=2, default=[4.0, 1.0], metavar=("G1", "G2"),
                        help="the 2-D gradient (default: 4 1)")
    parser.add_argument("--threshold", type=float, default=1.0, help="clipping threshold c (default: %(default)s)")
    args = parser.parse_args(argv)

    demo = clip_demo(args.gradient, args.threshold)
    print(f"by value: {demo['by_value']}, turned {demo['angle_by_value']:.1f} degrees")
    print(f"by norm:  {demo['by_norm']}, turned {demo['angle_by_norm']:.1f} degrees")
    print(save_figure(plot_clipping(demo), args.out))


if __name__ == "__main__":
    main()
