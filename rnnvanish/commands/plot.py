"""`rnnvanish plot RUN_FOLDER`: draw every chart of a training run from its files.

    training.png      loss, gradient norms and clipping against step (from metrics.csv);
                      task.png for a task run: loss and success against the baseline
    lag_profiles.png  the gradient lag profile over training (from traces/lag_<step>.npz)
    depth.png         a stack's signal by lag and layer, first and last traced step (traces/depth_<step>.npz)
"""
from pathlib import Path


def add_arguments(p):
    import argparse
    p.add_argument("run", metavar="RUN_FOLDER", help="a run folder written by `rnnvanish train` or `rnnvanish task`")
    p.add_argument("--out", metavar="FOLDER", default=None, help="where to write the charts (default: the run folder)")
    p.add_argument("--out-dir", dest="out", help=argparse.SUPPRESS)
    p.add_argument("--format", choices=("png", "svg"), default="png", help="chart file format (default: png)")


def _training_chart(run, out_dir, fmt):
    """(path or None, note): the training chart from metrics.csv, if there is one and it can be drawn."""
    from ..training import runfolder as rf
    from ..plots import save_figure

    metrics_path = run / rf.METRICS
    if not metrics_path.is_file():
        return None, f"no {rf.METRICS}: no training chart"
    metrics = rf.read_metrics(metrics_path)
    if metrics["step"].size == 0:
        return None, f"{rf.METRICS} has no rows yet: no training chart"
    config = rf.read_json(run / rf.CONFIG) if (run / rf.CONFIG).is_file() else {}
    if isinstance(config.get("task"), dict) and "eval_loss" in metrics:
        import numpy as np

        from ..plots.tasks import plot_task_run
        evaluated = np.isfinite(metrics["eval_loss"])
        fig = plot_task_run({k: v[evaluated] for k, v in metrics.items()}, config["task"].get("baseline", {}),
                            title=f"{run.name}: {config['task'].get('name')}, T = {config.get('length')}",
                            stop_at=config.get("stop_at"))
        return save_figure(fig, out_dir / f"task.{fmt}"), None
    from ..plots.training import plot_training
    unit = "char" if config.get("level", "char") == "char" else "word"
    fig = plot_training(metrics, title=run.name, unit=unit, clip_norm=config.get("clip_norm"))
    return save_figure(fig, out_dir / f"training.{fmt}"), None


def _traces_chart(run, out_dir, fmt):
    """(path or None, note): the lag profiles over training from traces/."""
    from ..training import runfolder as rf
    from ..plots import save_figure
    from ..plots.trace import plot_training_traces
    from ..tracer import load_training_traces

    folder = run / rf.TRACES
    if not folder.is_dir() or not any(folder.glob("lag_*.npz")):
        return None, f"no {rf.TRACES}/lag_<step>.npz: no lag-profile chart (train with --trace-every N)"
    history = load_training_traces(folder)
    meta = history.meta or {}
    title = (f"{run.name}: {meta.get('cell', '?')} cell, H = {meta.get('hidden_size', '?')}, "
             f"window T = {meta.get('T', '?')}, {len(history)} traces")
    fig = plot_training_traces(history, title=title)
    return save_figure(fig, out_dir / f"lag_profiles.{fmt}"), None


def _depth_chart(run, out_dir, fmt):
    """(path or None, note): the signal across depth at the first and the last traced step."""
    from ..plots import save_figure
    from ..plots.depth import plot_depth_heatmaps
    from ..tracer.depth import DepthTrace
    from ..training import runfolder as rf

    files = sorted((run / rf.TRACES).glob("depth_*.npz")) if (run / rf.TRACES).is_dir() else []
    if not files:
        return None, None
    traces = [DepthTrace.load(p) for p in dict.fromkeys([files[0], files[-1]])]
    fig = plot_depth_heatmaps(traces, title=f"{run.name}: the error signal across time and depth during training")
    return save_figure(fig, out_dir / f"depth.{fmt}"), None


def run(args):
    from ..errors import RnnvanishError

    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise RnnvanishError(f"there is no run folder {run_dir}" if not run_dir.exists()
                             else f"{run_dir} is a file, not a run folder")
    out_dir = Path(args.out) if args.out else run_dir
    if not out_dir.is_dir():
        raise RnnvanishError(f"the output folder {out_dir} does not exist")
    written, notes = [], []
    for draw in (_training_chart, _traces_chart, _depth_chart):
        path, note = draw(run_dir, out_dir, args.format)
        if path:
            written.append(path)
        if note:
            notes.append(note)
    for note in notes:
        print(f"note: {note}")
    if not written:
        raise RnnvanishError(f"nothing to plot in {run_dir}: it has neither metrics.csv nor traces/lag_<step>.npz")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
