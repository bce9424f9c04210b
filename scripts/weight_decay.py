"""Lesson 10: does weight decay restrain exploding gradients? A tanh RNN learning to recall its
input from a few steps back, started with W_hh at spectral radius 1.1 to 3, trained by SGD with
weight decay 0 and a few values above, and with clipping by global norm.

    python scripts/weight_decay.py --out lessons_weight_decay.png
    python scripts/weight_decay.py --quick --out small.png
"""
import argparse
import sys
from pathlib import Path

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons.weight_decay import weight_decay_study
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_weight_decay


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="lessons_weight_decay.png", help="PNG or SVG to write (default: %(default)s)")
    parser.add_argument("--rho", type=float, nargs="+", default=[1.1, 1.5, 2.0, 3.0],
                        help="starting spectral radii of W_hh (default: 1.1 1.5 2 3)")
    parser.add_argument("--decay", type=float, nargs="+", default=[0.0, 1e-3, 1e-2, 1e-1],
                        help="weight decays lambda without clipping (default: 0 0.001 0.01 0.1)")
    parser.add_argument("--clip", type=float, default=1.0, help="global-norm clipping threshold (default: %(default)s)")
    parser.add_argument("--clip-decay", type=float, nargs="+", default=[0.0, 0.1],
                        help="weight decays used with clipping (default: 0 0.1)")
    parser.add_argument("--steps", type=int, default=600, help="SGD steps (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate (default: %(default)s)")
    parser.add_argument("--T", type=int, default=50, help="sequence length (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=32, help="hidden units H (default: %(default)s)")
    parser.add_argument("--delay", type=int, default=5, help="recall x from this many steps back (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="two radii, 15 steps of T = 8")
    args = parser.parse_args(argv)
    if args.quick:
        args.rho, args.steps, args.T, args.hidden = [1.5, 3.0], 15, 8, 8

    study = weight_decay_study(args.rho, args.decay, args.clip, args.clip_decay, args.steps, lr=args.lr,
                               T=args.T, H=args.hidden, delay=args.delay, rng=args.seed)
    for rho, runs in study.items():
        for label, r in runs.items():
            g, n = r["grad_norm"], len(r["grad_norm"])
            print(f"rho {rho:<4g} {label:32s} |g| first {g[0]:9.3g} max {g.max():9.3g} last quarter median "
                  f"{sorted(g[-(n // 4 or 1):])[(n // 4 or 1) // 2]:9.3g}   radius {r['radius'][0]:.3g} -> "
                  f"{r['radius'][-1]:.3g}   loss {r['loss'][0]:.3f} -> {r['loss'][-10:].mean():.4f}"
                  + (f"   diverged at {r['diverged']}" if r["diverged"] else ""))
    settings = (f"H = {args.hidden}, T = {args.T}, recall x$_{{t-{args.delay}}}$, batch 16, SGD lr {args.lr:g}, "
                f"{args.steps} steps, weights decayed: W_xh, W_hh, W_hy; clipping by global norm at {args.clip:g}")
    print(save_figure(plot_weight_decay(study, settings), args.out))


if __name__ == "__main__":
    main()
