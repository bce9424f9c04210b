"""Speed of one training step and of generation, per cell and number of layers, on numba, numpy and torch.

One training step is what `rnnvanish train` does per window: forward and backward through a
window of T tokens (B streams) and L stacked layers, clip by global norm (5), one Adam update.
The three implementations run the same model from the same weights:

    numba   LanguageModel(layers=L, backend="numba"): the jitted kernels
    numpy   LanguageModel(layers=L, backend="numpy"): the NumPy reference, the same optimiser and clipping
    torch   nn.RNN / nn.LSTM / nn.GRU(num_layers=L) on one-hot tokens + nn.Linear + cross_entropy
            + clip_grad_norm_ + torch.optim.Adam (when torch is importable)

A one-hot token times W_ih is the row of W_xh our cells look up, so the two compute the same
function; the weights go to torch through `rnnvanish.interop.to_torch_state_dict`. Generation
draws single tokens at temperature 1 from a one-token prime, by inverse CDF from pre-drawn
uniforms in all three; a stack generates one token at a time through every layer (one jitted
loop per token and layer, where a single layer runs one jitted loop for all tokens).

Model FLOPs count the matrix products of a training step (elementwise work is left out).
Per layer, the recurrence: forward h_{t-1} W_hh, backward da W_hh^T and h^T da, 6 T B H G H.
Layers 2..L also multiply their input, the layer below's output: forward x W_xh, backward
da W_xh^T (into the layer below) and x^T da, 6 T B H G H again (layer 1 looks rows up).
The output layer's three products add 6 T B H V. In all

    6 T B H ((2 L - 1) G H + V)          (L = 1: 6 T B H (G H + V))

`peak_fraction` divides the model's FLOP/s by the fastest of repeated large matrix products
here with the same dtype and thread count (`measure_peak`), measured again before every
configuration in every round over the grid (`run_grid`): the fastest of them all.

Threads: `rnnvanish.threads.limit_threads(n, backend)` gives n threads to the BLAS the
implementation runs on (SciPy's OpenBLAS for numba, NumPy's for numpy, torch's own for torch)
and one to every other OpenBLAS, whose spinning threads would otherwise take the cores (see
threads.py). With n > 1 on numba, SciPy's OpenBLAS runs its jobs on Numba's n threads (one
pool, `rnnvanish.kernels.pool`) and the batched recurrences of the tanh RNN, LSTM and
reset-after GRU split each window's units across them, so their gate loops run on every core
too; `measure_peak` measures the same pool. BLAS threads wait for each other, so on a machine
busy with other work a 2-thread figure can fall far below the 1-thread one: compare figures
taken at a low load average (the command prints it), and see `run_grid`'s rounds.

Both steps use `optim.Adam` on their own backend: the numba step's update is
`rnnvanish.kernels.adam_update` (one jitted pass), the numpy step's the NumPy lines.
"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from .threads import limit_threads

GATES = {"tanh": 1, "lstm": 4, "gru": 3}
IMPLS = ("numba", "numpy", "torch")
RECORD_KEYS = ("cell", "layers", "hidden", "batch", "window", "dtype", "threads", "impl",
               "train_tok_s", "gen_tok_s", "gflops", "peak_fraction")
CLIP_NORM = 5.0
LEARNING_RATE = 2e-3


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- timing

def call_times(fn, min_time, warmup=2, min_repeats=3):
    """Seconds of each call of fn() over repeats lasting at least `min_time` in all (after warm-up)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median_time(fn, min_time, warmup=2, min_repeats=3):
    """Median seconds per call of fn() over repeats lasting at least `min_time` in all (after warm-up)."""
    return statistics.median(call_times(fn, min_time, warmup, min_repeats))


def train_flops(cell, hidden, batch, window, vocab, layers=1):
    """Matrix-product FLOPs of one training step: 6 T B H ((2 L - 1) G H + V) (see the module docstring)."""
    return 6 * window * batch * hidden * ((2 * layers - 1) * GATES[cell] * hidden + vocab)


def measure_peak(dtype, threads, size=1024, min_time=0.5):
    """GFLOP/s of the fastest of repeated (size x size) matrix products in SciPy's BLAS (the one
    the kernels call) over at least `min_time` seconds. The fastest, not the median: on a
    machine whose speed moves (a virtual one's cores are shared), a median taken while it is
    slow would make every share of the peak look larger than it is."""
    from scipy.linalg import blas
    gemm = blas.dgemm if np.dtype(dtype) == np.float64 else blas.sgemm
    rng = np.random.default_rng(0)
    a, b = (np.asfortranarray(rng.standard_normal((size, size)), dtype=dtype) for _ in range(2))
    with limit_threads(threads):
        seconds = min(call_times(lambda: gemm(1.0, a, b), min_time, warmup=1))
    return 2 * size ** 3 / seconds / 1e9


# --------------------------------------------------------------------------- the three implementations

def project_model(cell, vocab, hidden, dtype, backend, seed=0, layers=1):
    from .model import LanguageModel
    return LanguageModel(cell, vocab, hidden, dtype=dtype, backend=backend, seed=seed, layers=layers)


def project_step(model):
    """A training step of `model` on (inputs, targets): forward, backward, clip, Adam; carries the
    state. Clipping as the training engine does it: the global norm, then its factor applied in
    Adam's pass (the same bits as scaling the gradients first)."""
    from .clip import clip_coefficient, global_norm
    from .optim import Adam

    optimizer = Adam(model.params, lr=LEARNING_RATE, backend=model.backend)
    carry = {}

    def step(inputs, targets):
        state = carry.get("state")
        loss, grads, carry["state"], _ = model.loss_and_grads(inputs, targets, state)
        optimizer.step(grads, scale=clip_coefficient(global_norm(grads), CLIP_NORM))
        return loss
    return step


def torch_twin(model):
    """torch modules holding `model`'s weights: (rnn, linear, params), in model's dtype.

    rnn is nn.RNN / nn.LSTM / nn.GRU(V, H, num_layers=L), linear the readout; the weights come
    from `rnnvanish.interop.to_torch_state_dict`. The tanh RNN and the LSTM have one bias b_h per
    layer: torch's bias_hh_l{k} stays zero and frozen (left out of `params`, the ones to train)."""
    import torch

    from .interop import to_torch_state_dict

    cell, stack = model.cell_name, model.stack
    kind = {"tanh": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    options = {"nonlinearity": model.cell.activation} if cell == "tanh" else {}
    if cell == "tanh" and model.cell.activation not in ("tanh", "relu"):
        raise ValueError("torch.nn.RNN has no sigmoid activation")
    if cell == "gru" and not model.cell.reset_after:
        raise ValueError("torch.nn.GRU has only the reset-after form")
    if stack.dropout or stack.zoneout or stack.residual:
        raise ValueError("the torch twin is a plain stack: no dropout, zoneout or residual connections")
    tdtype = torch.float64 if model.dtype == np.float64 else torch.float32
    rnn = kind(model.vocab_size, model.hidden_size, num_layers=model.layers, **options).to(tdtype)
    linear = torch.nn.Linear(model.hidden_size, model.vocab_size).to(tdtype)
    state = {name: torch.from_numpy(value) for name, value in to_torch_state_dict(model).items()}
    linear.load_state_dict({"weight": state.pop("decoder.weight"), "bias": state.pop("decoder.bias")})
    rnn.load_state_dict(state)                               # strict: every layer's four names
    if cell != "gru":
        for k in range(model.layers):
            getattr(rnn, f"bias_hh_l{k}").requires_grad_(False)   # zero: b_h is bias_ih_l{k} alone
    params = [q for q in list(rnn.parameters()) + list(linear.parameters()) if q.requires_grad]
    return rnn, linear, params


def torch_step(model):
    """The same training step in torch, from `model`'s weights."""
    import torch
    import torch.nn.functional as F

    rnn, linear, params = torch_twin(model)
    optimizer = torch.optim.Adam(params, lr=LEARNING_RATE)
    V = model.vocab_size
    eye = torch.eye(V, dtype=linear.weight.dtype)
    carry = {}

    def step(inputs, targets):
        x = eye[torch.from_numpy(inputs)]                     # (T, B, V) one-hot
        optimizer.zero_grad(set_to_none=True)
        out, state = rnn(x, carry.get("state"))
        loss = F.cross_entropy(linear(out).reshape(-1, V), torch.from_numpy(targets).reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP_NORM)
        optimizer.step()
        carry["state"] = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        return loss.item()
    return step


def torch_generate(model):
    """generate(token, uniforms) -> ids, one token at a time in torch, by inverse CDF like model.sample."""
    import torch

    rnn, linear, _ = torch_twin(model)
    eye = torch.eye(model.vocab_size, dtype=linear.weight.dtype)

    def generate(token, uniforms, temperature=1.0):
        out_ids, state = [], None
        with torch.no_grad():
            for u in uniforms:
                h, state = rnn(eye[token].reshape(1, 1, -1), state)
                y = linear(h[0, 0])
                cdf = torch.cumsum(torch.exp((y - y.max()) / temperature), 0)
                token = min(int(torch.searchsorted(cdf, float(u) * cdf[-1], right=True)), len(cdf) - 1)
                out_ids.append(token)
        return out_ids
    return generate


# --------------------------------------------------------------------------- one measurement

def measure(cell, hidden, batch, window, dtype, threads, impl, *, layers=1, vocab=65, min_time=1.0, gen_tokens=None,
            seed=0):
    """One record (keys RECORD_KEYS): training tokens/s and, for batch 1, generation tokens/s."""
    rng = np.random.default_rng(seed)
    inputs = rng.integers(0, vocab, (window, batch))
    targets = rng.integers(0, vocab, (window, batch))
    model = project_model(cell, vocab, hidden, dtype, "numpy" if impl == "numpy" else "numba", seed, layers)
    if impl == "torch":
        import torch  # noqa: F401  (so limit_threads sets torch's threads too)
    with limit_threads(threads, impl):
        step = torch_step(model) if impl == "torch" else project_step(model)
        seconds = median_time(lambda: step(inputs, targets), min_time)
        gen_tok_s = None
        if batch == 1:
            n = gen_tokens or (400 if impl == "numba" else 40)
            uniforms = np.random.default_rng(seed + 1).random(n)
            if impl == "torch":
                generate = torch_generate(model)
                gen_seconds = median_time(lambda: generate(0, uniforms), min_time / 2, warmup=1)
            else:
                gen_seconds = median_time(lambda: model.sample([0], n, 1.0, rng=seed + 1), min_time / 2, warmup=1)
            gen_tok_s = n / gen_seconds
    gflops = train_flops(cell, hidden, batch, window, vocab, layers) / seconds / 1e9
    return {"cell": cell, "layers": layers, "hidden": hidden, "batch": batch, "window": window,
            "dtype": np.dtype(dtype).name, "threads": threads, "impl": impl,
            "train_tok_s": window * batch / seconds, "gen_tok_s": gen_tok_s, "gflops": gflops, "peak_fraction": None}


def run_grid(configs, impls, *, min_time=1.0, vocab=65, progress=True, peaks=None, rounds=1):
    """Measure every (cell, hidden, batch, window, dtype, threads, layers) config on every impl.

    The grid runs `rounds` times over, each round a pass over every config: the peak
    (`measure_peak`), then every implementation for min_time / rounds seconds; numpy, the slow
    reference, runs in the first round only. A record keeps its implementation's fastest round.
    On a machine whose speed moves with other work (a virtual machine's shared cores, slow
    spells of seconds to minutes), the rounds of a config lie a pass apart, so a spell slows one
    of them rather than the whole measurement, and it slows every implementation of that round
    alike; the fastest round is the least disturbed one.

    Returns (records, peaks): records in the order of configs, then impls; peaks[(dtype,
    threads)] is the fastest measure_peak GFLOP/s of any round (the one passed in included),
    and each record's peak_fraction is its gflops over that peak (`apply_peaks`), so a share
    is never inflated by a peak measured in a slow spell."""
    from tqdm import tqdm

    peaks = {} if peaks is None else peaks
    rounds = max(1, int(rounds))
    best = {}
    jobs = tqdm(total=rounds * len(configs), desc="bench", unit="config", disable=not progress, leave=False)
    for r in range(rounds):
        for i, (cell, hidden, batch, window, dtype, threads, layers) in enumerate(configs):
            key = (np.dtype(dtype).name, threads)
            peaks[key] = max(peaks.get(key, 0.0), measure_peak(dtype, threads, min_time=min(min_time, 0.5) / rounds))
            for impl in impls:
                if impl == "numpy" and r > 0:
                    continue
                record = measure(cell, hidden, batch, window, dtype, threads, impl, layers=layers, vocab=vocab,
                                 min_time=min_time / rounds)
                if (i, impl) not in best or record["train_tok_s"] > best[i, impl]["train_tok_s"]:
                    best[i, impl] = record
            jobs.update()
    jobs.close()
    records = [best[i, impl] for i in range(len(configs)) for impl in impls]
    return apply_peaks(records, peaks), peaks


def apply_peaks(records, peaks):
    """Set each record's peak_fraction: its gflops over peaks[(dtype, threads)]. Returns records."""
    for record in records:
        record["peak_fraction"] = record["gflops"] / peaks[(record["dtype"], record["threads"])]
    return records


# --------------------------------------------------------------------------- tracer

def trace_times(cells, length=200, hidden=128, batch=32, threads=1, repeats=3, backend="numba"):
    """Seconds of one full trace (lag profile, contributions by lag, every Jacobian-product norm,
    singular values) per cell: {cell: (median seconds, Jacobian method used)}, after one warm-up.

    Fresh cells (seed 0, their default initialisation) on dense N(0, 1) inputs (T, B, H)."""
    from .cells import make_cell
    from .tracer import dense_inputs, trace

    x, _ = dense_inputs(length, batch, hidden, seed=0)
    result = {}
    with limit_threads(threads, "numpy"):          # the tracer's products beyond the forward pass are NumPy's
        for cell in cells:
            model = make_cell(cell, hidden, hidden, seed=0, backend=backend)
            tr = trace(model, x)
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                tr = trace(model, x)
                seconds.append(time.perf_counter() - start)
            result[cell] = (statistics.median(seconds), tr.meta.get("jacobian_method"))
    return result


# --------------------------------------------------------------------------- start-up

_STARTUP_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from rnnvanish.model import LanguageModel
t_import = time.perf_counter() - t0
out = {"import_s": t_import, "first_step_s": {}}
rng = np.random.default_rng(0)
for cell, dtype in json.loads(sys.argv[1]):
    model = LanguageModel(cell, 65, 128, dtype=dtype, backend=sys.argv[2])
    x, y = rng.integers(0, 65, (25, 1)), rng.integers(0, 65, (25, 1))
    t1 = time.perf_counter()
    model.loss_and_grads(x, y)
    model.sample([0], 5, 1.0, rng=0)
    out["first_step_s"][cell + "/" + dtype] = time.perf_counter() - t1
    if "to_first_step_s" not in out:
        out["to_first_step_s"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def startup_times(pairs, backend="numba", cache_dir=None):
    """Time a fresh Python process: import, and the first training step + sample of each (cell, dtype).

    `cache_dir` is passed as NUMBA_CACHE_DIR (an empty directory: compile from scratch). Returns the
    child's timings plus `process_s`, the wall time from starting the process to its exit."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _STARTUP_CHILD, json.dumps(pairs), backend],
                          env=env, capture_output=True, text=True, check=False)
    process_s = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"start-up probe failed: {done.stderr.strip().splitlines()[-1:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = process_s
    return result
