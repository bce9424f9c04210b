"""`rnnvanish gradcheck`: BPTT gradients against central finite differences (float64)."""
from ..choices import ACTIVATIONS, BACKENDS, CELLS
from ._args import nonneg_int, optional_truncate, positive_float, positive_int

CELL_CHOICES = (*CELLS, "all")


def add_arguments(p):
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=CELL_CHOICES, default="all",
                   help="cell to check; 'all' checks every cell, activation and GRU form (default: all)")
    g.add_argument("--activation", choices=ACTIVATIONS, default=None,
                   help="activation of the tanh RNN (default: all three when --cell all, else tanh)")
    g.add_argument("--reset-before", action="store_true",
                   help="GRU: the reset gate acts before the recurrent product (Cho et al. 2014)")
    g.add_argument("--hidden", type=positive_int, default=5, help="hidden size H (default: 5)")
    g.add_argument("--vocab", type=positive_int, default=6, help="vocabulary size V (default: 6)")
    w = p.add_argument_group("window")
    w.add_argument("--window", type=positive_int, default=7, help="window length T (default: 7)")
    w.add_argument("--batch", type=positive_int, default=3, help="batch size B (default: 3)")
    w.add_argument("--truncate", type=optional_truncate, default=None,
                   help="per-loss BPTT horizon k2 in steps, or 'none' (default: none)")
    c = p.add_argument_group("check")
    c.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default: 0)")
    c.add_argument("--eps", type=positive_float, default=1e-5, help="finite-difference step (default: 1e-5)")
    c.add_argument("--tolerance", type=positive_float, default=1e-7,
                   help="largest relative error accepted (default: 1e-7)")
    c.add_argument("--backend", choices=BACKENDS, default=None,
                   help="kernels to check (default: $RNNVANISH_BACKEND or numba)")


def configurations(args):
    """(label, cell, options) for every configuration the flags ask for."""
    if args.cell == "all":
        acts = [args.activation] if args.activation else ["tanh", "sigmoid", "relu"]
        configs = [(f"tanh/{a}", "tanh", {"activation": a}) for a in acts]
        configs.append(("lstm", "lstm", {}))
        configs.append(("gru/reset-after", "gru", {"reset_after": True}))
        configs.append(("gru/reset-before", "gru", {"reset_after": False}))
        return configs
    if args.cell == "tanh":
        a = args.activation or "tanh"
        return [(f"tanh/{a}", "tanh", {"activation": a})]
    if args.cell == "gru":
        form = "reset-before" if args.reset_before else "reset-after"
        return [(f"gru/{form}", "gru", {"reset_after": not args.reset_before})]
    return [("lstm", "lstm", {})]


def run(args):
    from ..gradcheck import check_language_model

    k = args.truncate
    print(f"gradient check: float64, central differences (eps {args.eps:g}), T={args.window} B={args.batch} "
          f"H={args.hidden} V={args.vocab}, truncate={'none' if k is None else k}, tolerance {args.tolerance:g}")
    if k is not None and k >= args.window:
        print(f"note: truncate={k} >= window={args.window}, so truncation has no effect here: "
              "this checks the full-window gradient")
    worst = 0.0
    failed = []
    for label, cell, options in configurations(args):
        rows = check_language_model(cell, hidden=args.hidden, window=args.window, batch=args.batch, truncate=k,
                                    vocab=args.vocab, seed=args.seed, backend=args.backend, eps=args.eps, **options)
        errors = "  ".join(f"{name} {err:.1e}" for name, err, _ in rows)
        bad = [name for name, err, _ in rows if not err <= args.tolerance]
        status = "FAIL" if bad else "ok"
        print(f"{label:<17} {status:<4}  {errors}")
        worst = max([worst] + [err for _, err, _ in rows])
        failed += [f"{label}:{name}" for name in bad]
    if failed:
        print(f"FAILED: relative error above {args.tolerance:g} for {', '.join(failed)} (worst {worst:.1e})")
        return 1
    print(f"all gradients match (worst relative error {worst:.1e})")
    return 0
