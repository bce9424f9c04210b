"""Lesson 9: a short SGD run of a deep ReLU MLP on a synthetic 4-class task, with and without
batch or layer normalisation: the gradient norm of the first layer and the loss by step, then
the test accuracy against the batch size (batch norm fails for small batches, layer norm does not).

    python scripts/norm_training.py --out lessons_norm_training.png
    python scripts/norm_training.py --quick --out small.png
"""
import argparse
import sys
from pathlib import Path

try:
    import rnnvanish  # noqa: F401
except ImportError:                                  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnvanish.lessons.norm import NORM_SETUPS
from rnnvanish.lessons.normtrain import batch_size_sweep, make_task, train_norm_mlp
from rnnvanish.plots import save_figure
from rnnvanish.plots.lessons import plot_norm_training


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="lessons_norm_training.png", help="PNG or SVG to write (default: %(default)s)")
    run = parser.add_argument_group("the training runs (Glorot weights: without normalisation the signal fades)")
    run.add_argument("--layers", type=int, default=20, help="depth L (default: %(default)s)")
    run.add_argument("--width", type=int, default=64, help="units per layer (default: %(default)s)")
    run.add_argument("--batch", type=int, default=64, help="batch size (default: %(default)s)")
    run.add_argument("--steps", type=int, default=300, help="SGD steps (default: %(default)s)")
    run.add_argument("--lr", type=float, default=0.05, help="learning rate (default: %(default)s)")
    sweep = parser.add_argument_group("the batch-size sweep (He weights, so every set-up can learn)")
    sweep.add_argument("--sweep-layers", type=int, default=10, help="depth (default: %(default)s)")
    sweep.add_argument("--batches", type=int, nargs="*", default=[2, 4, 8, 16, 32, 128],
                       help="batch sizes; none to skip the sweep (default: 2 4 8 16 32 128)")
    sweep.add_argument("--examples", type=int, default=12800, help="examples seen per run (default: %(default)s)")
    sweep.add_argument("--sweep-lr", type=float, default=0.02, help="learning rate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="a few layers and steps, a two-point sweep")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.width, args.batch, args.steps = 4, 16, 16, 20
        args.sweep_layers, args.batches, args.examples = 3, [2, 8], 64

    task = make_task(rng=args.seed)
    runs = {label: train_norm_mlp(label, task, n_layers=args.layers, width=args.width, batch=args.batch,
                                  steps=args.steps, lr=args.lr, rng=args.seed) for label in NORM_SETUPS}
    for label, r in runs.items():
        g = r["grad_norm_first"]
        print(f"{label:22s} ||dE/dW_1|| first {g[0]:8.3g} median {sorted(g)[len(g) // 2]:8.3g}   "
              f"loss {r['loss'][0]:.3f} -> {r['loss'][-1]:.3f}   test accuracy {r['test_acc'][-1]:.1%}")
    results = {}
    if args.batches:
        results = batch_size_sweep(["batch norm before f", "layer norm before f", "no normalisation"],
                                   args.batches, rng=args.seed, scheme="he", n_layers=args.sweep_layers,
                                   width=args.width, lr=args.sweep_lr, examples=args.examples)
        for label, s in results.items():
            print(f"{label:22s} " + "  ".join(f"B={b}: {a:.1%}" for b, a in zip(s["batch"], s["test_acc"])))
    title = (f"{args.layers} ReLU layers of {args.width}, Glorot weights, SGD lr {args.lr:g}, batch {args.batch}; "
             f"the sweep: {args.sweep_layers} layers, He weights, {args.examples} examples per run, lr {args.sweep_lr:g}")
    print(save_figure(plot_norm_training(runs, results, title), args.out))


if __name__ == "__main__":
    main()
