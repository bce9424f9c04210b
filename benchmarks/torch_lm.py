"""The language model of `rnnvanish train`, trained by PyTorch on the same batches: a learning
curve to hold rnnvanish's against, step for step.

    python benchmarks/torch_lm.py TEXT --steps 3000 --out torch.csv                # PyTorch's own initialisation
    python benchmarks/torch_lm.py TEXT --steps 3000 --init rnnvanish --out same.csv  # rnnvanish's initial weights
    python benchmarks/torch_lm.py TEXT --steps 3000 --engine rnnvanish --init torch --out rv.csv

`--engine rnnvanish` runs rnnvanish's own training step (`rnnvanish.training.engine.Trainer`)
in the same loop instead, so either engine can start from either initialisation.

Everything but the model is rnnvanish's: the vocabulary, the train/validation split, the B
parallel streams cut into windows of T steps (state carried, reset when the streams start over),
the validation windows. The model is torch.nn.LSTM/GRU/RNN on one-hot tokens (one-hot times
weight_ih is the row of W_xh rnnvanish looks up) + nn.Linear + mean cross-entropy, clipped by
global norm (clip_grad_norm_) and updated by torch.optim.Adam. `--init rnnvanish` copies the
initial weights of `rnnvanish.LanguageModel` with the same seed through `rnnvanish.interop`,
so the two runs start from the same point; the default keeps PyTorch's initialisation (every
weight and bias U(-1/sqrt(H), 1/sqrt(H))). Needs torch; it is no dependency of rnnvanish.

Writes a CSV of step, training loss, validation loss (at every --eval-every), elapsed seconds.
"""
import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rnnvanish.data import TokenStream, eval_windows  # noqa: E402
from rnnvanish.interop import from_torch_state_dict, to_torch_state_dict  # noqa: E402
from rnnvanish.threads import limit_threads  # noqa: E402
from rnnvanish.training.engine import Trainer  # noqa: E402
from rnnvanish.training.language import LanguageObjective, build_model, encode_corpus, read_corpus  # noqa: E402
from rnnvanish.training.settings import LanguageConfig  # noqa: E402

LAYERS = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "tanh": torch.nn.RNN}


class TorchLM(torch.nn.Module):
    def __init__(self, cell, V, H, layers):
        super().__init__()
        self.V = V
        self.rnn = LAYERS[cell](V, H, num_layers=layers)
        self.decoder = torch.nn.Linear(H, V)

    def forward(self, ids, state):
        x = torch.nn.functional.one_hot(ids, self.V).to(self.decoder.weight.dtype)    # (T, B, V)
        h, state = self.rnn(x, state)
        return self.decoder(h), state                                                 # (T, B, V)


def detach(state):
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def evaluate(model, config, val_ids):
    batch = max(1, min(config.batch, len(val_ids) // (config.window + 1)))
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for k, (x, y) in enumerate(eval_windows(val_ids, batch, config.window)):
            if config.eval_windows and k >= config.eval_windows:
                break
            logits, state = model(torch.from_numpy(x), state)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, model.V), torch.from_numpy(y).reshape(-1))
            total, count = total + float(loss) * x.size, count + x.size
    return total / count


def torch_engine(config, model, a, train_ids, val_ids):
    """(one training step -> loss, evaluation -> validation loss) of PyTorch's loop."""
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr)
    stream = TokenStream(train_ids, a.batch, a.window)
    carry = {"state": None}

    def step():
        x, y, new_epoch = stream.next_window()
        if new_epoch:
            carry["state"] = None
        logits, carry["state"] = model(torch.from_numpy(x), detach(carry["state"]))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, model.V), torch.from_numpy(y).reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip_norm)
        optimizer.step()
        return float(loss.detach())
    return step, lambda: evaluate(model, config, val_ids)


def rnnvanish_engine(config, model, vocab, train_ids, val_ids):
    """The same two for rnnvanish's Trainer, starting from `model`'s weights (the two biases summed)."""
    weights = {k: v.detach().numpy().astype(config.dtype) for k, v in model.state_dict().items()}
    lm = from_torch_state_dict({k.removeprefix("rnn."): v for k, v in weights.items()}, cell=config.cell,
                               dtype=config.dtype)
    target = build_model(config, len(vocab))
    target.set_params(lm.params)
    objective = LanguageObjective(config, vocab, train_ids, val_ids)
    trainer = Trainer(config, target, objective)
    return (lambda: float(trainer.train_step().loss)), (lambda: objective.evaluate(target)["val_loss"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("text")
    p.add_argument("--cell", default="lstm", choices=sorted(LAYERS))
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip-norm", type=float, default=5.0)
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--max-time", type=float, default=None, help="seconds of training (evaluations included)")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--init", default="torch", choices=("torch", "rnnvanish"))
    p.add_argument("--torch-parts", default="", metavar="PARTS",
                   help="with --init rnnvanish: take these parts from PyTorch's initialisation instead, "
                        "comma-separated from weight_ih, weight_hh, bias, decoder (to find which part matters)")
    p.add_argument("--engine", default="torch", choices=("torch", "rnnvanish"),
                   help="whose training step runs: torch.optim on nn.LSTM, or rnnvanish's Trainer")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)

    # rnnvanish's BLAS gets the threads, every other OpenBLAS one (idle BLAS threads spin otherwise);
    # limit_threads sets torch's threads too, so PyTorch's engine gets its own threads back after it
    limit_threads(a.threads if a.engine == "rnnvanish" else 1, "numba").__enter__()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dtype = {"float32": torch.float32, "float64": torch.float64}[a.dtype]
    config = LanguageConfig(cell=a.cell, hidden=a.hidden, layers=a.layers, batch=a.batch, window=a.window,
                            lr=a.lr, dtype=a.dtype, seed=a.seed).check()
    _, _, text = read_corpus(a.text)
    vocab, train_ids, val_ids, _ = encode_corpus(config, text)
    V = len(vocab)
    model = TorchLM(a.cell, V, a.hidden, a.layers).to(dtype)
    if a.init == "rnnvanish":
        weights = to_torch_state_dict(build_model(config, V), prefix="rnn.")
        parts = {part for part in a.torch_parts.split(",") if part}
        unknown = parts - {"weight_ih", "weight_hh", "bias", "decoder"}
        if unknown:
            p.error(f"unknown --torch-parts {', '.join(sorted(unknown))}")
        own = model.state_dict()
        for name in weights:
            if any(name.removeprefix("rnn.").startswith(part) for part in parts):
                weights[name] = own[name].detach().numpy()
        model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()})
    if a.engine == "rnnvanish":
        step_fn, evaluate_fn = rnnvanish_engine(config, model, vocab, train_ids, val_ids)
    else:
        step_fn, evaluate_fn = torch_engine(config, model, a, train_ids, val_ids)
    rows, start = [], time.perf_counter()
    for step in range(1, a.steps + 1):
        loss = step_fn()
        row = {"step": step, "loss": loss, "val_loss": "", "elapsed": ""}
        over = a.max_time is not None and time.perf_counter() - start > a.max_time
        if step % a.eval_every == 0 or step == a.steps or over:
            row["val_loss"] = evaluate_fn()
            row["elapsed"] = round(time.perf_counter() - start, 2)
            print(f"step {step} | loss {loss:.4f} | val {row['val_loss']:.4f} | {row['elapsed']:.0f}s",
                  flush=True)
        rows.append(row)
        if over:
            break
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    elapsed = time.perf_counter() - start
    print(f"{len(rows)} steps in {elapsed:.0f}s: {len(rows) * a.batch * a.window / elapsed / 1e3:.1f}k tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
