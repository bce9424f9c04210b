"""Lesson 6: initialisation x activation in a deep MLP. The recommended pairs (Glorot + tanh,
He + the ReLU family, LeCun + SELU) against mismatches: variance of activations and gradients
by layer, and the fraction of dead ReLU units by layer.

    python scripts/init_activation.py --out lessons_init_activation.png
    python scripts/init_activation.py --quick --out small.png     # 6 layers of 32, in a blink
"""
import sys
from pathlib import Path

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons import INIT_PAIRS, deep_mlp_variances
from rnnvanish.lessons.mlp import mlp_script_arguments
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_init_activation


def main(argv=None):
    args = mlp_script_arguments(__doc__, "lessons_init_activation.png", 100)(argv)

    results = {label: deep_mlp_variances(label, args.layers, args.width, args.batch, rng=args.seed)
               for label in INIT_PAIRS}
    print(f"{'set-up':26s} {'Var(h_L)':>9s} {'Var(dE/dh_0)':>13s} {'dead at L':>10s}")
    for label, r in results.items():
        print(f"{label:26s} {r['var_h'][-1]:9.3g} {r['var_dh'][0]:13.3g} {r['dead'][-1]:10.1%}")
    print(save_figure(plot_init_activation(results), args.out))


if __name__ == "__main__":
    main()
