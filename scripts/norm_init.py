"""Lesson 8: batch norm and layer norm in a deep MLP at initialisation, before and after the
activation: variance of activations and gradients by layer (ReLU units, Glorot weights, the
mismatch whose signal halves every layer without normalisation).

    python scripts/norm_init.py --out lessons_norm_init.png
    python scripts/norm_init.py --quick --out small.png
"""
import sys
from pathlib import Path

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons.activations import ACTIVATIONS
from rnnvanish.lessons.mlp import SCHEMES
from rnnvanish.lessons.norm import NORM_SETUPS, norm_variances
from rnnvanish.lessons.mlp import mlp_script_arguments
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_norm_variances


def main(argv=None):
    def choices(parser):
        parser.add_argument("--activation", default="relu", choices=list(ACTIVATIONS), help="f (default: %(default)s)")
        parser.add_argument("--init", default="glorot", choices=SCHEMES, help="weight initialisation (default: %(default)s)")
    args = mlp_script_arguments(__doc__, "lessons_norm_init.png", 50, choices)(argv)

    results = {label: norm_variances(label, args.activation, args.init, args.layers, args.width, args.batch,
                                     rng=args.seed) for label in NORM_SETUPS}
    for label, r in results.items():
        print(f"{label:22s} Var(h_L) {r['var_h'][-1]:9.3g}   Var(dE/dh_0) {r['var_dh'][0]:9.3g}   "
              f"x{r['back_factor']:.3f} per layer back")
    title = (f"Normalisation at initialisation: {args.layers} layers of {args.width} {args.activation} units, "
             f"{args.init} weights, batch {args.batch}, inputs x ~ N(0, 1)")
    print(save_figure(plot_norm_variances(results, title), args.out))


if __name__ == "__main__":
    main()
