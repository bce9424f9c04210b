"""`rnnvanish bench`: training-step and generation tokens/s of every cell on numba, numpy and torch.

Prints one table row per configuration with the ratios numba/torch and numba/numpy, the
model's GFLOP/s and its share of the peak this machine reaches on a large matrix product;
then the time of one full gradient trace per cell (T 200, H 128, B 32, one thread), the compile
time of the kernels and the time a warm process takes to its first step.
The grid runs in `--rounds` passes (default 3), each configuration's implementations one
after the other in each; a figure is its implementation's fastest round
(rnnvanish.bench.run_grid).
`--layers 1 2 3` adds stacked models to the grid (torch: `num_layers`); the rows then name
their layers. `--stacked` runs only the two stacked-LSTM configurations of STACKED against
torch and prints the ratios numba/torch.
`--json FILE` writes one record per measurement (see rnnvanish.bench.RECORD_KEYS).
"""
import os

from ..choices import CLASSIC_CELLS, DTYPES
from ..errors import RnnvanishError
from ._args import positive_float, positive_int

FULL_GRID = {"hidden": [64, 128, 512], "batch": [1, 32], "dtype": ["float64", "float32"], "threads": [1, 2]}
QUICK_GRID = {"hidden": [128], "batch": [1, 32], "dtype": ["float64", "float32"], "threads": [1]}
# --stacked: a 2-layer LSTM, batched in float32 on both cores and one stream in float64 on one:
# (cell, H, B, dtype, threads, layers)
STACKED = [("lstm", 256, 32, "float32", 2, 2), ("lstm", 128, 1, "float64", 1, 2)]
# The run a user starts first: `rnnvanish train --hidden 256 --dtype float32 --threads 2`, a
# character-level LSTM at B 32 and window 64. (cell, H, B, T, dtype, threads, layers)
FLAGSHIP = ("lstm", 256, 32, 64, "float32", 2, 1)
BENCH_CELLS = CLASSIC_CELLS                           # the cells torch.nn has, to compare with
GRID_FLAGS = ("quick", "cells", "hidden", "batch", "dtype", "threads", "layers")


def add_arguments(p):
    g = p.add_argument_group("grid (default: the full grid; --quick for a small one)")
    g.add_argument("--quick", action="store_true",
                   help="H 128, B 1 and 32, both dtypes, 1 thread, 0.3 s per measurement")
    g.add_argument("--stacked", action="store_true",
                   help="only a 2-layer LSTM against torch's num_layers=2: B 32, H 256, float32, 2 threads "
                        "and B 1, H 128, float64, 1 thread; prints the ratios numba/torch")
    g.add_argument("--flagship", action="store_true",
                   help="only the flagship line: LSTM, H 256, B 32, T 64, float32, 2 threads, beside torch "
                        "(the full grid ends with it too)")
    g.add_argument("--cells", nargs="+", choices=BENCH_CELLS,
                   help="cells to measure (default: all three; the cells PyTorch also has)")
    g.add_argument("--layers", nargs="+", type=positive_int, metavar="L",
                   help="numbers of stacked layers (default: 1)")
    g.add_argument("--hidden", nargs="+", type=positive_int, help="hidden sizes H (default: 64 128 512)")
    g.add_argument("--batch", nargs="+", type=positive_int, help="batch sizes B (default: 1 32)")
    g.add_argument("--dtype", nargs="+", choices=DTYPES, help="dtypes (default: both)")
    g.add_argument("--threads", nargs="+", type=positive_int, help="thread counts (default: 1 2)")
    g.add_argument("--window", type=positive_int, default=25, help="window length T (default: 25)")
    g.add_argument("--vocab", type=positive_int, default=65, help="vocabulary size V (default: 65)")
    g.add_argument("--impls", nargs="+", choices=("numba", "numpy", "torch"), default=None,
                   help="implementations (default: numba, numpy, and torch when importable)")
    m = p.add_argument_group("measurement")
    m.add_argument("--min-time", type=positive_float, default=None,
                   help="seconds of timed repeats per measurement, after warm-up (default: 1, --quick 0.3)")
    m.add_argument("--rounds", type=positive_int, default=None,
                   help="passes over the grid, each measuring the peak and every implementation of every "
                        "configuration for min-time / rounds seconds; a figure is its fastest round, so a slow "
                        "spell of a shared machine slows one round, and every implementation of it alike "
                        "(default: 3, --quick 1)")
    m.add_argument("--no-startup", action="store_true",
                   help="skip the compile-time and warm-start probes (two fresh Python processes)")
    m.add_argument("--no-trace", action="store_true",
                   help="skip timing a full gradient trace per cell (T 200, H 128, B 32)")
    m.add_argument("--json", metavar="FILE", help="write one JSON record per measurement to FILE")
    m.add_argument("--no-progress", action="store_true", help="no progress bar")


def _grid(args):
    """The configurations (cell, H, B, T, dtype, threads, layers) the flags ask for."""
    if args.stacked or args.flagship:
        given = [f"--{flag}" for flag in GRID_FLAGS if getattr(args, flag)]
        if args.stacked and args.flagship:
            given.append("--flagship")
        if given:
            what = "--stacked runs its own two configurations" if args.stacked else "--flagship runs one configuration"
            raise RnnvanishError(f"{what}; drop {', '.join(given)}")
        if args.flagship:
            return []
        return [(cell, H, B, args.window, dtype, threads, L) for cell, H, B, dtype, threads, L in STACKED]
    base = QUICK_GRID if args.quick else FULL_GRID
    pick = {key: getattr(args, key) or values for key, values in base.items()}
    return [(cell, H, B, args.window, dtype, threads, L)
            for threads in pick["threads"] for dtype in pick["dtype"] for cell in args.cells or BENCH_CELLS
            for L in args.layers or [1] for H in pick["hidden"] for B in pick["batch"]]


def _fmt(value, unit=""):
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M{unit}"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k{unit}"
    return f"{value:.0f}{unit}"


def _ratio(a, b):
    """a / b as "1.15x" (two decimals below 10, where a target such as 1.2x is read), "12.4x" above."""
    if a is None or b is None:
        return "-"
    r = a / b
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


def table(records):
    """The results as text: one row per configuration, columns per implementation and the ratios.

    A column L names the layers when a stacked model is among the records."""
    rows = {}
    for r in records:
        key = (r["cell"], r["layers"], r["hidden"], r["batch"], r["dtype"], r["threads"])
        rows.setdefault(key, {})[r["impl"]] = r
    stacked = any(r["layers"] != 1 for r in records)
    head = (f"{'cell':5} {'L':>2} " if stacked else f"{'cell':5} ") + (
        f"{'H':>4} {'B':>3} {'dtype':7} {'thr':>3} | {'numba':>8} {'numpy':>8} {'torch':>8} "
        f"{'/torch':>7} {'/numpy':>7} | {'GFLOP/s':>7} {'peak':>5} | "
        f"{'gen numba':>9} {'gen torch':>9} {'/torch':>7}")
    lines = ["training step (forward, backward, clip, Adam), tokens/s; generation tokens/s at B = 1"
             + ("; L layers (torch: num_layers)" if stacked else ""), head, "-" * len(head)]
    for (cell, L, H, B, dtype, threads), by_impl in rows.items():
        tok = {i: (by_impl[i]["train_tok_s"] if i in by_impl else None) for i in ("numba", "numpy", "torch")}
        gen = {i: (by_impl[i]["gen_tok_s"] if i in by_impl else None) for i in ("numba", "torch")}
        lead = by_impl.get("numba") or by_impl.get("numpy") or by_impl.get("torch")
        lines.append(
            (f"{cell:5} {L:>2} " if stacked else f"{cell:5} ")
            + f"{H:>4} {B:>3} {dtype:7} {threads:>3} | {_fmt(tok['numba']):>8} {_fmt(tok['numpy']):>8} "
            f"{_fmt(tok['torch']):>8} {_ratio(tok['numba'], tok['torch']):>7} "
            f"{_ratio(tok['numba'], tok['numpy']):>7} | "
            f"{lead['gflops']:>7.2f} {100 * lead['peak_fraction']:>4.0f}% | {_fmt(gen['numba']):>9} "
            f"{_fmt(gen['torch']):>9} {_ratio(gen['numba'], gen['torch']):>7}")
    lines.append("GFLOP/s and peak: of the numba run (matrix products only; peak = the fastest of repeated large "
                 "matrix products, same dtype and threads)")
    return "\n".join(lines)


def stacked_summary(records):
    """One line per configuration: the ratios numba/torch of training and (B = 1) generation."""
    by_config = {}
    for r in records:
        by_config.setdefault((r["cell"], r["layers"], r["hidden"], r["batch"], r["dtype"], r["threads"]),
                             {})[r["impl"]] = r
    lines = []
    for (cell, L, H, B, dtype, threads), by_impl in by_config.items():
        nb, th = by_impl.get("numba"), by_impl.get("torch")
        if nb is None or th is None:
            continue
        parts = [f"training {_ratio(nb['train_tok_s'], th['train_tok_s'])}"]
        if B == 1:
            parts.append(f"generation {_ratio(nb['gen_tok_s'], th['gen_tok_s'])}")
        lines.append(f"{L}-layer {cell}, B {B}, H {H}, {dtype}, {threads} thread{'s' if threads > 1 else ''}: "
                     f"numba / torch {', '.join(parts)}")
    return "\n".join(lines)


def flagship_line(records):
    """The flagship configuration's tokens/s on numba and torch, their ratio and numba's share of peak."""
    cell, H, B, T, dtype, threads, _ = FLAGSHIP
    by_impl = {r["impl"]: r for r in records}
    nb, th = by_impl.get("numba"), by_impl.get("torch")
    parts = [f"numba {_fmt(nb['train_tok_s'])} tok/s ({100 * nb['peak_fraction']:.0f}% of peak)" if nb else None,
             f"torch {_fmt(th['train_tok_s'])} tok/s" if th else None,
             f"numba / torch {_ratio(nb['train_tok_s'], th['train_tok_s'])}" if nb and th else None]
    return (f"flagship (rnnvanish train --hidden {H} --dtype {dtype} --threads {threads}: {cell.upper()}, B {B}, "
            f"T {T}): " + ", ".join(p for p in parts if p))


def _startup_report(cells, dtypes):
    import tempfile

    from ..bench import startup_times

    pairs = [[cell, dtype] for dtype in dtypes for cell in cells]
    with tempfile.TemporaryDirectory(prefix="rnnvanish-numba-cache-") as cache:
        cold = startup_times(pairs, cache_dir=cache)
        warm = startup_times(pairs[:1], cache_dir=cache)
    lines = ["start-up (a fresh process, H 128, B 1, T 25):"]
    compile_s = ", ".join(f"{k} {v:.1f} s" for k, v in cold["first_step_s"].items())
    lines.append(f"  first training step + sample with an empty kernel cache (compiling): {compile_s}")
    lines.append(f"  warm cache: {warm['process_s']:.2f} s from starting Python to the end of its first step "
                 f"(import {warm['import_s']:.2f} s, first step {list(warm['first_step_s'].values())[0]:.2f} s)")
    return "\n".join(lines), {"cold": cold, "warm": warm}


def _trace_report(cells):
    from ..bench import trace_times

    times = trace_times(cells)
    parts = ", ".join(f"{cell} {seconds:.2f} s" for cell, (seconds, _) in times.items())
    methods = ", ".join(sorted({method for _, method in times.values()}))
    return (f"full gradient trace (lag profile, contributions, all Jacobian-product norms, singular values), "
            f"T 200, H 128, B 32, 1 thread, median of 3: {parts} (Jacobian norms: {methods})")


def _load():
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def run(args):
    import json

    from ..bench import IMPLS, run_grid, torch_available

    configs = _grid(args)
    if args.stacked:
        impls = args.impls or ["numba", "torch"]
    else:
        impls = args.impls or [i for i in IMPLS if i != "torch" or torch_available()]
    if "torch" in impls and not torch_available():
        why = "--impls torch asks for torch" if args.impls else "--stacked compares with torch"
        raise RnnvanishError(f"{why}, but PyTorch is not importable here")
    min_time = args.min_time or (0.3 if args.quick else 1.0)
    rounds = args.rounds or (1 if args.quick else 3)
    load_before = _load()
    with_flagship = args.flagship or not (args.stacked or args.quick or any(getattr(args, f) for f in GRID_FLAGS))
    # The flagship line is the grid's last configuration, so that its rounds lie a pass apart too.
    records, peaks = run_grid(configs + [FLAGSHIP] * with_flagship, impls, min_time=min_time, vocab=args.vocab,
                              progress=not args.no_progress, rounds=rounds)
    grid_size = len(configs) * len(impls)
    flagship = [r for r in records[grid_size:] if r["impl"] != "numpy"]
    records = records[:grid_size]
    if records:
        print(table(records))
    if flagship:
        print(flagship_line(flagship))
        records += flagship
    summary = stacked_summary(records) if args.stacked else ""
    if summary:
        print(summary + "\n(1.0x or more: numba at least as fast as torch)")
    print(f"machine: {os.cpu_count()} CPUs; load average {load_before} before the grid, {_load()} after "
          "(other work on the machine slows every figure, multi-threaded BLAS most)")
    print(f"each figure: the fastest of {rounds} round{'s' if rounds > 1 else ''} of {min_time / rounds:.2f} s "
          "(numpy: one round); peak (SciPy BLAS, 1024 x 1024 product, the fastest of every round): "
          + ", ".join(f"{dtype} {threads} thread{'s' if threads > 1 else ''} {gf:.1f} GFLOP/s"
                      for (dtype, threads), gf in peaks.items()))
    cells = sorted({c[0] for c in configs}, key=BENCH_CELLS.index)
    if cells and not args.stacked and not args.no_trace and "numba" in impls:
        print(_trace_report(cells))
    if cells and not args.stacked and not args.no_startup and "numba" in impls:
        print(_startup_report(cells, sorted({c[4] for c in configs}))[0])
    if args.json:
        try:
            with open(args.json, "w") as f:
                json.dump(records, f, indent=1)
        except OSError as exc:
            raise RnnvanishError(f"cannot write {args.json}: {exc.strerror}") from None
        print(f"wrote {len(records)} records to {args.json}")
    return 0
