"""`rnnvanish trace`: measure how the error signal fades (or grows) with distance, and chart it.

    rnnvanish trace --compare cell=tanh,lstm,gru --chart lag.png --heatmap jacobians.png
    rnnvanish trace --compare radius=0.9,1.0,1.1 --input-scale 0.1 --out traces/radius
    rnnvanish trace --checkpoint runs/my-run --corpus tinyshakespeare.txt --data-out trace.npz

`--out FOLDER` writes every output into one folder (lag.png, jacobians.png, contributions.png,
trace.npz and trace.csv); `--chart`, `--heatmap`, `--contributions` and `--data-out` name single
files instead (and take precedence over the folder's names).
"""
import argparse
import re
from pathlib import Path

from ..choices import ACTIVATIONS, BACKENDS, CELLS, NONLINEARITIES
from ._args import chrono_horizon, finite_float, init_spec, nonneg_int, positive_float, positive_int, probability

CHART_SUFFIXES = (".png", ".svg")


def add_arguments(p):
    m = p.add_argument_group("model (fresh, unless --checkpoint)")
    m.add_argument("--cell", choices=CELLS, default="tanh", help="recurrent cell (default: tanh)")
    m.add_argument("--activation", choices=ACTIVATIONS, default="tanh",
                   help="activation of the tanh-family RNN (default: tanh)")
    m.add_argument("--nonlinearity", choices=NONLINEARITIES, default=None,
                   help="expRNN: modrelu (the paper's, default) or tanh")
    m.add_argument("--init-hh", dest="init", type=init_spec, metavar="SPEC", default=None,
                   help="W_hh initialiser per gate block, e.g. orthogonal, glorot_uniform, normal:1.0 "
                        "(default: orthogonal)")
    m.add_argument("--init", dest="init", type=init_spec, help=argparse.SUPPRESS)
    m.add_argument("--radius", type=positive_float, metavar="R", default=None,
                   help="rescale each W_hh gate block to this spectral radius (default: leave it)")
    m.add_argument("--forget-bias", type=finite_float, metavar="B", default=1.0, help="LSTM forget-gate bias (default: 1.0)")
    m.add_argument("--reset-before", action="store_true", help="GRU: reset gate before the product (Cho et al. 2014)")
    m.add_argument("--chrono", type=chrono_horizon, metavar="T_MAX", default=None,
                   help="LSTM, GRU: chrono initialisation of the forget (update) gate biases, log U[1, T_MAX - 1]")
    m.add_argument("--hidden", type=positive_int, metavar="H", default=128, help="hidden size H (default: 128)")
    m.add_argument("--layers", type=positive_int, metavar="L", default=1,
                   help="stacked layers; more than one traces the signal across time and depth (default: 1)")
    m.add_argument("--residual", action="store_true", help="residual connections between layers")
    m.add_argument("--zoneout", type=probability, metavar="P", default=0.0,
                   help="zoneout probability (its expectation: the trace is in evaluation mode) (default: 0)")
    m.add_argument("--checkpoint", metavar="PATH", default=None,
                   help="trace a trained language model: a checkpoint .npz or a run folder")
    m.add_argument("--compare", metavar="KEY=V1,V2,...", default=None,
                   help="vary one setting: cell, init, radius, activation, forget-bias, layers, residual, "
                        "zoneout, chrono, nonlinearity (e.g. cell=tanh,lstm,gru or radius=0.9,1.0,1.1 or chrono=none,100)")
    i = p.add_argument_group("inputs (default: random dense vectors)")
    i.add_argument("--length", type=positive_int, metavar="T", default=100, help="sequence length T (default: 100)")
    i.add_argument("--batch", type=positive_int, metavar="B", default=32, help="number of sequences B (default: 32)")
    src = i.add_mutually_exclusive_group()
    src.add_argument("--corpus", metavar="NAME|PATH", default=None,
                     help="character windows of a built-in corpus or a UTF-8 file")
    src.add_argument("--task", metavar="NAME", default=None,
                     help="inputs of a long-range task: adding, copy, temporal_order, latch, parity")
    src.add_argument("--tokens", type=positive_int, metavar="V", default=None,
                     help="random token ids over V symbols")
    i.add_argument("--input-size", type=positive_int, metavar="I", default=8, help="dense input size I (default: 8)")
    i.add_argument("--input-scale", type=positive_float, metavar="S", default=1.0,
                   help="dense inputs are N(0, scale^2) (default: 1.0)")
    i.add_argument("--seed", type=nonneg_int, metavar="N", default=0,
                   help="seed of the weights, the inputs and the probe directions (default: 0)")
    j = p.add_argument_group("Jacobian products")
    j.add_argument("--method", choices=("auto", "exact", "sketch"), default="auto",
                   help="exact products and SVDs, or the block sketch (a lower bound, seconds at T=200, "
                        "H=128); auto picks exact for small sizes (default: auto)")
    j.add_argument("--rank", type=positive_int, metavar="R", default=8, help="sketch block size r (default: 8)")
    j.add_argument("--sweeps", type=positive_int, metavar="N", default=2, help="sketch sweeps, more is closer (default: 2)")
    j.add_argument("--no-jacobian", action="store_true", help="skip the Jacobian products (lag profile only)")
    j.add_argument("--backend", choices=BACKENDS, default=None,
                   help="kernels for the forward pass (default: $RNNVANISH_BACKEND or numba)")
    j.add_argument("--threads", type=positive_int, metavar="N", default=None,
                   help="threads of NumPy's matrix products, where a trace spends most of its time "
                        "(default: one per CPU)")
    o = p.add_argument_group("output")
    o.add_argument("--out", metavar="FOLDER", default=None,
                   help="write every output into FOLDER: lag.png, jacobians.png, contributions.png, trace.npz/.csv")
    o.add_argument("--chart", metavar="CHART", default=None, help="lag-profile chart, .png or .svg")
    o.add_argument("--heatmap", metavar="CHART", default=None, help="Jacobian-norm heatmap(s), .png or .svg")
    o.add_argument("--contributions", metavar="CHART", default=None,
                   help="chart of each step's term of dE_T/dW_hh by lag, .png or .svg")
    o.add_argument("--data-out", metavar="FILE.npz", default=None,
                   help="save the trace (.npz + tidy .csv); with --compare one pair per configuration")


# --------------------------------------------------------------------------- checks

def _check_outputs(args):
    from ..errors import RnnvanishError

    if args.out is not None:
        out = Path(args.out)
        if out.suffix.lower() in CHART_SUFFIXES + (".npz",):
            raise RnnvanishError(f"--out names a folder for every output; name a single chart with --chart "
                                 f"(got {args.out!r})")
        if out.exists() and not out.is_dir():
            raise RnnvanishError(f"--out must be a folder; {args.out} is a file")
        args.chart = args.chart or str(out / "lag.png")
        args.contributions = args.contributions or str(out / "contributions.png")
        args.data_out = args.data_out or str(out / "trace.npz")
        if not args.no_jacobian:
            args.heatmap = args.heatmap or str(out / "jacobians.png")
    for flag in ("chart", "heatmap", "contributions"):
        path = getattr(args, flag)
        if path is not None and Path(path).suffix.lower() not in CHART_SUFFIXES:
            raise RnnvanishError(f"--{flag} must end in .png or .svg, got {path!r}")
    if args.data_out is not None and Path(args.data_out).suffix not in ("", ".npz"):
        raise RnnvanishError(f"--data-out must be a .npz file, got {args.data_out!r}")
    if args.heatmap and args.no_jacobian:
        raise RnnvanishError("--heatmap needs the Jacobian products; drop --no-jacobian")
    for path in filter(None, (args.chart, args.heatmap, args.contributions, args.data_out)):
        parent = Path(path).resolve().parent
        if args.out is not None and parent == Path(args.out).resolve():
            continue                                   # the --out folder is made when writing
        if not parent.is_dir():
            raise RnnvanishError(f"cannot write {path}: the folder {parent} does not exist")


def _settings(args):
    """[(Setting, label)] for a fresh model, one per compared value."""
    from ..choices import cells_taking
    from ..errors import RnnvanishError
    from ..tracer.experiment import Setting, parse_compare, vary

    base = Setting(cell=args.cell, hidden=args.hidden, activation=args.activation, init=args.init,
                   radius=args.radius, forget_bias=args.forget_bias, reset_after=not args.reset_before,
                   layers=args.layers, residual=args.residual, zoneout=args.zoneout, chrono=args.chrono,
                   nonlinearity=args.nonlinearity).check()
    field, values = parse_compare(args.compare) if args.compare is not None else (None, None)
    owners = cells_taking("chrono")
    if args.chrono is not None and field != "cell" and args.cell not in owners:
        raise RnnvanishError(f"--chrono applies to the {' and '.join(owners)} cells only, not {args.cell}")
    if args.nonlinearity is not None and field != "cell" and args.cell not in cells_taking("nonlinearity"):
        raise RnnvanishError(f"--nonlinearity applies to the exprnn cell only, not {args.cell}")
    if args.compare is None:
        return [(base, base.label())]
    only = {"forget_bias": ("lstm",), "activation": ("tanh",), "chrono": owners,
            "nonlinearity": cells_taking("nonlinearity")}.get(field)
    if only and args.cell not in only:
        raise RnnvanishError(f"--compare {field.replace('_', '-')} changes only the {' and '.join(only)} "
                             f"cell{'s' if len(only) > 1 else ''}; add --cell {only[0]}")
    return [(s, s.label(field)) for s in vary(base, field, values)]


def _fresh_inputs(args):
    """(inputs, description, input_size) for fresh models."""
    from ..tracer import experiment as ex

    T, B, seed = args.length, args.batch, args.seed
    if args.corpus:
        x, about, vocab = ex.corpus_inputs(args.corpus, T, B, seed)
        return x, about, len(vocab)
    if args.task:
        return ex.task_inputs(args.task, T, B, seed)
    if args.tokens:
        x, about = ex.token_inputs(T, B, args.tokens, seed)
        return x, about, args.tokens
    x, about = ex.dense_inputs(T, B, args.input_size, args.input_scale, seed)
    return x, about, args.input_size


def _checkpoint_model(args):
    """(model, [(model, label)], inputs, description) for --checkpoint."""
    from ..training.checkpoint import find_checkpoint, load_checkpoint, model_from_checkpoint
    from ..errors import RnnvanishError
    from ..tracer import experiment as ex

    if args.compare:
        raise RnnvanishError("--compare varies a fresh model's settings; it cannot be used with --checkpoint")
    if args.task:
        raise RnnvanishError("a language model reads characters: "
                             "use --corpus or --tokens with --checkpoint, not --task")
    path = find_checkpoint(args.checkpoint)
    ckpt = load_checkpoint(path)
    model, vocab = model_from_checkpoint(ckpt, backend=args.backend)
    T, B, seed = args.length, args.batch, args.seed
    if args.tokens:
        x, about = ex.token_inputs(T, B, len(vocab), seed)
    else:
        source = args.corpus or (ckpt.config.get("corpus") or {}).get("source") or "default"
        x, about, _ = ex.corpus_inputs(source, T, B, seed, vocab=vocab)
    label = f"{model.cell_name} LM, step {ckpt.step}"
    return model, label, x, about, str(path)


# --------------------------------------------------------------------------- report

def _fmt(value, spec=".2e"):
    import math

    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def _table(traces, T):
    lags = [lag for lag in (10, 50, 100) if lag <= T] or [T]
    jac_lag = 50 if T >= 50 else T
    head = f"{'configuration':<24}" + "".join(f"{f'lag {lag}':>10}" for lag in lags)
    head += f"{'decay/step':>12}{'bound/step':>12}{f'|J| lag {jac_lag}':>13}{'time':>8}"
    lines = [head]
    for tr in traces:
        row = f"{tr.label[:23]:<24}" + "".join(f"{_fmt(tr.signal_at(lag)):>10}" for lag in lags)
        log_j = tr.jacobian_at_lag(jac_lag)
        row += f"{_fmt(tr.decay_per_step, '.3f'):>12}{_fmt(tr.bound_base, '.3f'):>12}"
        row += f"{_fmt(10 ** log_j if log_j == log_j else float('nan')):>13}{tr.meta['seconds']:>7.2f}s"
        lines.append(row)
    return lines, lags, jac_lag


def _legend(lags, jac_lag, traces):
    methods = {tr.meta.get("jacobian_method") for tr in traces} - {None}
    notes = ["lag l: median over sequences of ||dE_T/dh_(T-l)||, the share of the signal at T left l steps back",
             "decay/step: per-step factor of a log-linear fit to that median (above 1: it grows)",
             "bound/step: gamma * sigma_max(W_hh) (IndRNN: max |u_i|; expRNN: 1; LRU: max |lambda_j|); the signal "
             "at lag l is at most bound^l (tanh-family RNN, IndRNN, expRNN and LRU only)"]
    if methods:
        how = " and ".join(sorted(methods))
        notes.append(f"|J| lag {jac_lag}: median over t of ||ds_t/ds_(t-{jac_lag})||_2 on sequence 0 ({how})")
    shortfalls = [tr.meta.get("sketch_shortfall_max") for tr in traces if "sketch_shortfall_max" in tr.meta]
    if shortfalls:
        notes.append(f"sketch check: at the products ending at T it fell short of the exact norm by at most "
                     f"{100 * max(shortfalls):.0f}% (those exact values are used in the heatmap)")
    return ["  " + n for n in notes]


def _slug(text):
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "trace"


def _data_paths(path, traces):
    path = Path(path)
    if len(traces) == 1:
        return [path]
    stem = path.with_suffix("")
    return [stem.with_name(f"{stem.name}-{_slug(tr.label)}.npz") for tr in traces]


# --------------------------------------------------------------------------- run

def run(args):
    import os

    from ..errors import RnnvanishError
    from ..threads import limit_threads
    from ..tracer import trace

    _check_outputs(args)
    options = dict(seed=args.seed, jacobians=not args.no_jacobian, method=args.method, rank=args.rank,
                   sweeps=args.sweeps)
    traces = []
    if args.checkpoint:
        model, label, x, about, source = _checkpoint_model(args)
        hidden = model.hidden_size
        models = [(model, label, {"checkpoint": source, "inputs": about})]
    else:
        x, about, input_size = _fresh_inputs(args)
        hidden = args.hidden
        models = []
        for setting, label in _settings(args):
            cell = setting.build(input_size, seed=args.seed, backend=args.backend)
            models.append((cell, label, {"init": setting.init or "orthogonal", "inputs": about}))
    T, B = x.shape[0], x.shape[1]
    if any(getattr(m, "layers", 1) > 1 or not getattr(getattr(m, "stack", m), "plain", True) for m, _, _ in models):
        return _run_depth(args, models, x, about, hidden)
    if args.method == "exact" and not args.no_jacobian and T * T * (2 * hidden) ** 3 / 2 > 2e10:
        print(f"note: exact Jacobian norms at T={T}, H={hidden} form T^2/2 products of H x H matrices "
              "and take minutes; --method sketch takes seconds")
    print(f"rnnvanish trace: T={T} steps, B={B} sequences, H={hidden}; probe loss at step T on a random unit "
          f"direction per sequence")
    print(f"inputs: {about} (seed {args.seed})")
    with limit_threads(args.threads or os.cpu_count() or 1, "numpy"):
        for model, label, info in models:
            try:
                traces.append(trace(model, x, label=label, info=info, **options))
            except MemoryError:
                raise RnnvanishError(f"not enough memory to trace {label} at T={T}, H={hidden}; "
                                     "try --no-jacobian or a smaller --length") from None
    lines, lags, jac_lag = _table(traces, T)
    print()
    print("\n".join(lines))
    print("\n".join(_legend(lags, jac_lag, traces)))
    _write_outputs(args, traces, about, hidden)
    return 0


def _run_depth(args, models, x, about, hidden):
    """Stacks: the signal from the top layer's last step, by lag and layer (rnnvanish.tracer.depth)."""
    from ..plots import save_figure
    from ..plots.depth import plot_depth_bottom, plot_depth_heatmaps
    from ..tracer.depth import trace_depth

    T, B = x.shape[0], x.shape[1]
    print(f"rnnvanish trace: T={T} steps, B={B} sequences, H={hidden}, across depth; probe loss on the top "
          f"layer's output at step T, a random unit direction per sequence")
    print(f"inputs: {about} (seed {args.seed})")
    traces = [trace_depth(model, x, seed=args.seed, label=label, info=info) for model, label, info in models]
    lags = [lag for lag in (0, 10, 50, 100) if lag <= T]
    print()
    print(f"{'configuration':<28}{'layers':>7}" + "".join(f"{f'bottom, lag {lag}':>16}" for lag in lags))
    for tr in traces:
        med = tr.bottom()[0]
        print(f"{tr.label[:27]:<28}{tr.layers:>7}" + "".join(f"{med[lag]:>16.3g}" for lag in lags))
    print("  bottom, lag l: median over sequences of ||dE_T/dh^(1)_(T-l)||, the share of the signal at the top "
          "layer's step T that reaches the bottom layer l steps back")
    written = []
    if args.out is not None:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.chart:
        written.append(save_figure(plot_depth_bottom(traces), args.chart))
    if args.heatmap:
        written.append(save_figure(plot_depth_heatmaps(traces), args.heatmap))
    if args.data_out:
        for tr, path in zip(traces, _data_paths(args.data_out, traces)):
            written += [str(p) for p in tr.save(path)]
    if written:
        print("wrote " + ", ".join(str(w) for w in written))
    return 0


def _write_outputs(args, traces, about, hidden):
    if not (args.chart or args.heatmap or args.contributions or args.data_out):
        return
    if args.out is not None:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    written = []
    if args.data_out:
        for tr, path in zip(traces, _data_paths(args.data_out, traces)):
            written += [str(p) for p in tr.save(path)]
    if args.chart or args.heatmap or args.contributions:
        from ..plots import save_figure
        from ..plots.trace import plot_jacobian_heatmaps, plot_lag_profiles

        T = traces[0].T
        subtitle = f"H = {hidden}, T = {T}, {traces[0].B} sequences of {about}"
        if args.chart:
            fig = plot_lag_profiles(traces, title=f"How much of the error signal at step T reaches step k\n{subtitle}")
            written.append(save_figure(fig, args.chart))
        if args.contributions:
            fig = plot_lag_profiles(traces, quantity="contribution",
                                    title=f"Each step's term in ∂E$_T$/∂W$_{{hh}}$, by lag\n{subtitle}")
            written.append(save_figure(fig, args.contributions))
        if args.heatmap:
            written.append(save_figure(plot_jacobian_heatmaps(traces), args.heatmap))
    print("wrote " + ", ".join(str(w) for w in written))
