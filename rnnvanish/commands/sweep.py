"""`rnnvanish sweep TASK`: held-out success against sequence length, over cells and seeds, in parallel."""
import argparse

from ..choices import CELLS, CLASSIC_CELLS
from ._args import add_budget_arguments, duration, nonneg_int, positive_int
from .task import TASK_NAMES, add_task_training_arguments


def int_list(text):
    """`10,20,50,100` -> [10, 20, 50, 100] (positive, no repeats)."""
    values = []
    for item in text.split(","):
        try:
            value = positive_int(item)
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"lengths are positive whole numbers separated by commas: {err}") from None
        if value not in values:
            values.append(value)
    return values


def cell_list(text):
    cells = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in cells if c not in CELLS]
    if bad or not cells:
        raise argparse.ArgumentTypeError(f"cells are {', '.join(CELLS)} separated by commas, got {text!r}")
    return list(dict.fromkeys(cells))


def cell_rates(text):
    """`indrnn=5e-5,lstm=3e-3` -> {"indrnn": 5e-5, "lstm": 3e-3}."""
    rates = {}
    for item in text.split(","):
        cell, sep, value = item.strip().partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = float("nan")
        if not sep or cell not in CELLS or not (rate > 0 and rate < float("inf")):
            raise argparse.ArgumentTypeError(f"give CELL=LR pairs separated by commas, CELL one of {', '.join(CELLS)} "
                                             f"and LR a positive number, e.g. indrnn=5e-5; got {item.strip()!r}")
        rates[cell] = rate
    return rates


def add_arguments(p):
    p.add_argument("name", metavar="TASK", help=f"the task: {', '.join(TASK_NAMES)}")
    g = p.add_argument_group("grid")
    g.add_argument("--lengths", type=int_list, default=[10, 20, 50, 100],
                   help="sequence lengths, comma-separated (default: 10,20,50,100)")
    g.add_argument("--cells", type=cell_list, default=list(CLASSIC_CELLS),
                   help=f"cells, comma-separated, of {', '.join(CELLS)} (default: {','.join(CLASSIC_CELLS)})")
    g.add_argument("--seeds", type=positive_int, default=3, help="seeds per cell and length: 0..N-1 (default: 3)")
    g.add_argument("--cell-lr", type=cell_rates, default={}, metavar="CELL=LR,...",
                   help="the learning rate of some cells' runs, e.g. indrnn=5e-5 (default: --lr for every cell)")
    C = add_task_training_arguments(p)
    g = add_budget_arguments(p, C, title="budget of each run")
    g.add_argument("--max-time-per-run", type=duration, dest="max_time", metavar="TIME", help=argparse.SUPPRESS)
    r = p.add_argument_group("running")
    r.add_argument("--workers", type=nonneg_int, default=0,
                   help="processes running at once; 0 = one per core (default: 0)")
    r.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the jobs on the Dask cluster of this scheduler (e.g. tcp://host:8786) instead of "
                        "local processes; needs the dask extra: pip install \"rnnvanish[dask]\"")
    o = p.add_argument_group("output")
    o.add_argument("--out", default=None, metavar="FOLDER", help="sweep folder (default: runs/sweep-TASK)")
    o.add_argument("--overwrite", action="store_true", help="replace a sweep already in the folder")


def run(args):
    import contextlib
    from pathlib import Path

    from ..errors import RnnvanishError
    from ..tasks import make_task
    from ..tasks.objective import TaskConfig
    from ..tasks.sweep import RECORD, check_specs, default_workers, grid
    from ..training.runfolder import prepare_new
    from ..training.session import given_settings, new_config

    task = make_task(args.name)
    short = [L for L in args.lengths if L < task.min_length]
    if short:
        raise RnnvanishError(f"the {task.name} task needs lengths of at least {task.min_length}, got {short[0]}")
    base = new_config(TaskConfig, {**given_settings(args, TaskConfig), "task": task.name})
    unknown = [c for c in args.cell_lr if c not in args.cells]
    if unknown:
        raise RnnvanishError(f"--cell-lr names {unknown[0]}, which the sweep does not run (--cells {','.join(args.cells)})")
    specs = grid(base, args.lengths, args.cells, args.seeds, cell_settings={c: {"lr": lr} for c, lr in args.cell_lr.items()})
    check_specs(specs)
    folder = Path(args.out or f"runs/sweep-{task.name}")
    if (folder / RECORD).exists() and not args.overwrite:
        raise RnnvanishError(f"the folder {folder} already holds a sweep; pass --overwrite to replace it")
    if args.scheduler is not None and args.workers:
        raise RnnvanishError("--workers sizes the local process pool; "
                             "with --scheduler the cluster's workers run the jobs")
    if args.scheduler is None:
        workers = min(args.workers or default_workers(), len(specs))
        connection = contextlib.nullcontext((None, workers))
    else:
        from ..tasks.cluster import dask_executor
        connection = dask_executor(args.scheduler)
    with connection as (executor, workers):   # connected (or not) before the folder is touched
        if executor is None:
            where = f"{workers} worker{'s' if workers > 1 else ''}"
        else:
            where = f"on the Dask cluster at {args.scheduler} ({workers} job{'s' if workers != 1 else ''} at once)"
        prepare_new(folder, overwrite=True)
        return _sweep(args, task, base, specs, folder, workers, where, executor)


def _sweep(args, task, base, specs, folder, workers, where, executor):
    """Run the grid, writing the folder after each run, then the chart and the table."""
    import time

    from ..tasks.sweep import run_sweep, write_sweep
    from ..training.console import format_duration

    settings = {**base.to_dict(), "lengths": args.lengths, "cells": args.cells, "seeds": args.seeds,
                "cell_lr": args.cell_lr, "workers": workers, "scheduler": args.scheduler}
    settings.pop("length"), settings.pop("cell"), settings.pop("seed")

    budget = f"{base.steps} steps" + ("" if base.max_time is None else f" or {format_duration(base.max_time)}")
    print(f"{task.name}: {len(specs)} runs ({', '.join(args.cells)} x T = {','.join(map(str, args.lengths))} "
          f"x {args.seeds} seeds), {budget} each, {where}; folder {folder}")
    for cell, lr in args.cell_lr.items():
        print(f"  {cell} at lr {lr:g} (the others at {base.lr:g})")
    results = [None] * len(specs)
    start = time.perf_counter()

    def finished(i, result):
        results[i] = result
        done = sum(r is not None for r in results)
        extra = f" ({result['error']})" if result.get("error") else ""
        solved = "no result" if result["solved"] is None else f"solved {100 * result['solved']:.1f}%"
        print(f"[{done}/{len(specs)}] {result['cell']} T={result['length']} seed {result['seed']}: "
              f"{solved} (baseline {100 * result['baseline_solved']:.1f}%), "
              f"{result['stopped']}{extra} | {format_duration(time.perf_counter() - start)}", flush=True)
        write_sweep(folder, settings, results, chart=False)

    run_sweep(specs, executor=executor, workers=None if executor else workers, on_result=finished)
    summary = write_sweep(folder, settings, results)
    print(f"{'cell':<8}" + "".join(f"{'T=' + str(L):>10}" for L in args.lengths))
    for cell in args.cells:
        rows = {r["length"]: r for r in summary if r["cell"] == cell}
        print(f"{cell:<8}" + "".join(f"{100 * rows[L]['mean']:>9.1f}%" if L in rows else f"{'failed':>10}"
                                     for L in args.lengths))
    base_row = {r["length"]: r["baseline_solved"] for r in results}
    print(f"{'base':<8}" + "".join(f"{100 * base_row[L]:>9.1f}%" for L in args.lengths))
    failed = sum(r["stopped"] == "failed" for r in results)
    note = f"; {failed} run{'s' if failed > 1 else ''} failed (worker lost), left out" if failed else ""
    print(f"mean held-out success over {args.seeds} seed{'s' if args.seeds > 1 else ''}{note}; "
          f"took {format_duration(time.perf_counter() - start)}; wrote {folder}")
    return 0
