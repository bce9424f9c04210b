"""`rnnvanish gradcheck`: BPTT gradients against central finite differences (float64)."""
from ..choices import ACTIVATIONS, BACKENDS, CELLS
from ..errors import RnnvanishError
from ._args import nonneg_int, optional_truncate, positive_float, positive_int, probability

CELL_CHOICES = (*CELLS, "all")
# the expRNN is checked with each nonlinearity (the gradient on A goes through expm either way)
EXPRNN_CONFIGS = [(f"exprnn/{n}", "exprnn", {"nonlinearity": n}) for n in ("modrelu", "tanh")]


def add_arguments(p):
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=CELL_CHOICES, default="all",
                   help="cell to check; 'all' checks every cell, activation and GRU form (default: all)")
    g.add_argument("--activation", choices=ACTIVATIONS, default=None,
                   help="activation of the tanh RNN (default: all three when --cell all, else tanh)")
    g.add_argument("--reset-before", action="store_true",
                   help="GRU: the reset gate acts before the recurrent product (Cho et al. 2014)")
    g.add_argument("--hidden", type=positive_int, default=None,
                   help="hidden size H (default: 5; 6 for the LRU, whose H must be even)")
    g.add_argument("--vocab", type=positive_int, default=6, help="vocabulary size V (default: 6)")
    d = p.add_argument_group("depth and regularisation (masks drawn once and held fixed)")
    d.add_argument("--layers", type=positive_int, default=1, help="stacked layers (default: 1)")
    d.add_argument("--dropout", type=probability, default=0.0, help="dropout between layers and before the readout")
    d.add_argument("--variational", action="store_true", help="one dropout mask per sequence, recurrent state too")
    d.add_argument("--zoneout", type=probability, default=0.0, help="zoneout probability")
    d.add_argument("--residual", action="store_true", help="residual connections between layers")
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
        configs += [(name, name, {}) for name in CELLS if name not in ("tanh", "lstm", "gru", "exprnn")]
        return configs + EXPRNN_CONFIGS
    if args.activation is not None and args.cell != "tanh":
        raise RnnvanishError(f"--activation applies to the tanh cell only, not {args.cell}")
    if args.reset_before and args.cell != "gru":
        raise RnnvanishError(f"--reset-before applies to the gru cell only, not {args.cell}")
    if args.cell == "tanh":
        a = args.activation or "tanh"
        return [(f"tanh/{a}", "tanh", {"activation": a})]
    if args.cell == "gru":
        form = "reset-before" if args.reset_before else "reset-after"
        return [(f"gru/{form}", "gru", {"reset_after": not args.reset_before})]
    if args.cell == "exprnn":
        return list(EXPRNN_CONFIGS)                                      # both nonlinearities
    return [(args.cell, args.cell, {})]                                 # the cells without options of their own


def run(args):
    from ..gradcheck import check_language_model, check_stacked_language_model
    from ..stack import Stack, depth_summary

    k = args.truncate
    if args.hidden is None:
        args.hidden = 6 if args.cell == "lru" else 5                  # the LRU carries H/2 complex units
    configs = configurations(args)                                     # a misplaced cell option fails before any output
    print(f"gradient check: float64, central differences (eps {args.eps:g}), T={args.window} B={args.batch} "
          f"H={args.hidden} V={args.vocab}, truncate={'none' if k is None else k}, tolerance {args.tolerance:g}")
    if k is not None and k >= args.window:
        print(f"note: truncate={k} >= window={args.window}, so truncation has no effect here: "
              "this checks the full-window gradient")
    depth = {"layers": args.layers, "dropout": args.dropout, "variational": args.variational,
             "zoneout": args.zoneout, "residual": args.residual}
    Stack("tanh", args.vocab, args.hidden, **depth)                    # bad depth settings fail before any work
    stacked = args.layers > 1 or args.dropout or args.zoneout or args.residual
    if stacked:
        print(f"stack: {depth_summary(**depth)}")
    worst = 0.0
    failed = []
    for label, cell, options in configs:
        common = dict(hidden=args.hidden, window=args.window, batch=args.batch, truncate=k, vocab=args.vocab,
                      seed=args.seed, backend=args.backend, eps=args.eps, **options)
        rows = (check_stacked_language_model(cell, **{**depth, **common}) if stacked
                else check_language_model(cell, **common))
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
