"""Checkpoints: one `.npz` file that holds everything needed to continue training or to sample.

Arrays in the file (all plain NumPy arrays, loaded with `allow_pickle=False`):

    param/<name>     every model parameter (W_xh, W_hh, b_h or b_xh/b_hh, W_hy, b_y)
    optim/<key>      the optimiser's state_dict (its name, step count t, moment buffers)
    state/<i>        the state carried into the next window: (B, H) each; h (and c for LSTM); none for tasks
    metrics          every metrics row so far, (rows, columns) float64 with NaN for empty fields
    meta             a JSON document (0-d string array):
        format, version   "rnnvanish-checkpoint", 1
        step, tokens      updates (windows) done, training tokens seen
        config            the run's resolved settings (as in config.json), incl. the model config
        data              the objective's position: a language model's stream position
                          (TokenStream.state_dict), a task's training-sequence generator state
        rng               how random draws are made (samples use a generator seeded by (seed, step))
        columns           the metrics table's column names
        interval          the partly filled metrics interval (sums of the steps since the last row)
        health            the smoothed training loss and the untrained loss it is compared with
        best_val, best_step, elapsed, reason (why the session stopped), saved_at
        vocab             a language model's vocabulary (Vocab.to_dict)

The file is written to a temporary name and renamed over the target, so a run killed at any
moment leaves either the previous checkpoint or the new one, never half of one.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnvanish.data import Vocab
from rnnvanish.errors import RnnvanishError
from rnnvanish.io import atomic_write, load_npz_with_meta
from rnnvanish.training.runfolder import BEST, CHECKPOINT

FORMAT, VERSION = "rnnvanish-checkpoint", 1


@dataclass
class Checkpoint:
    """The contents of a checkpoint file."""
    meta: dict
    params: dict
    optimizer_state: dict = field(default_factory=dict)
    state: tuple = ()
    metrics: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    path: Path | None = None

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def config(self) -> dict:
        return self.meta["config"]

    @property
    def vocab(self) -> Vocab:
        if "vocab" not in self.meta:
            raise RnnvanishError(f"checkpoint {self.path} is not a language model's (it holds no vocabulary)")
        return Vocab.from_dict(self.meta["vocab"])


def save_checkpoint(path, checkpoint: Checkpoint) -> Path:
    """Write `checkpoint` to `path` atomically (temporary file + rename)."""
    meta = dict(checkpoint.meta, format=FORMAT, version=VERSION, saved_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    arrays = {"meta": np.array(json.dumps(meta, ensure_ascii=False))}
    arrays.update({f"param/{k}": np.asarray(v) for k, v in checkpoint.params.items()})
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in checkpoint.optimizer_state.items()})
    arrays.update({f"state/{i}": np.asarray(s) for i, s in enumerate(checkpoint.state)})
    arrays["metrics"] = np.asarray(checkpoint.metrics, dtype=np.float64)
    atomic_write(path, lambda f: np.savez(f, **arrays))
    return Path(path)


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint; a missing, corrupt, truncated or foreign file raises RnnvanishError."""
    path = Path(path)
    meta, arrays = load_npz_with_meta(path, "checkpoint", FORMAT, VERSION)
    missing = [k for k in ("step", "config") if k not in meta]
    if missing:
        raise RnnvanishError(f"checkpoint {path} lacks {', '.join(missing)} in its metadata")

    def group(prefix):
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

    states = group("state/")
    try:
        state = tuple(states[str(i)] for i in range(len(states)))
    except KeyError:
        raise RnnvanishError(f"checkpoint {path} has a malformed carried state") from None
    return Checkpoint(meta=meta, params=group("param/"), optimizer_state=group("optim/"), state=state,
                      metrics=arrays.get("metrics", np.zeros((0, 0))), path=path)


def find_checkpoint(path_or_run, prefer_best: bool = True) -> Path:
    """The checkpoint file a path names: the file itself, or in a run folder `best.npz`
    (when `prefer_best` and it exists) else `checkpoint.npz`."""
    p = Path(path_or_run)
    if p.is_dir():
        for name in ((BEST, CHECKPOINT) if prefer_best else (CHECKPOINT,)):
            if (p / name).is_file():
                return p / name
        raise RnnvanishError(f"the folder {p} holds no checkpoint ({CHECKPOINT} or {BEST})")
    if not p.exists():
        raise RnnvanishError(f"there is no checkpoint file or run folder {p}")
    return p


MODEL_KEYS = ("cell", "vocab_size", "hidden_size", "dtype", "seed")


def build_model(model_config: dict, backend=None):
    """A LanguageModel from `LanguageModel.config()` output (fresh initial weights)."""
    from rnnvanish.model import LanguageModel

    try:
        options = {k: v for k, v in model_config.items() if k not in MODEL_KEYS}
        return LanguageModel(model_config["cell"], model_config["vocab_size"], model_config["hidden_size"],
                             seed=model_config["seed"], dtype=model_config["dtype"], backend=backend, **options)
    except (KeyError, TypeError, ValueError) as err:
        raise RnnvanishError(f"the stored model configuration is malformed ({type(err).__name__}: {err})") from None


def model_from_checkpoint(checkpoint: Checkpoint, backend=None):
    """(model, vocab) rebuilt from a checkpoint, parameters loaded; mismatches raise RnnvanishError."""
    try:
        model_config = checkpoint.config["model"]
    except (KeyError, TypeError):
        raise RnnvanishError(f"checkpoint {checkpoint.path} has no model configuration") from None
    vocab = checkpoint.vocab
    if model_config.get("vocab_size") != len(vocab):
        raise RnnvanishError(f"checkpoint {checkpoint.path} does not fit together: the model has "
                             f"{model_config.get('vocab_size')} output symbols, the vocabulary {len(vocab)}")
    model = build_model(model_config, backend=backend)
    load_params(model, checkpoint)
    return model, vocab


def load_params(model, checkpoint: Checkpoint) -> None:
    """Copy the checkpoint's parameters into `model`; names, shapes and finiteness are checked."""
    try:
        model.set_params(checkpoint.params)
    except ValueError as err:
        raise RnnvanishError(f"checkpoint {checkpoint.path} does not match its model: {err}") from None
    bad = [k for k, v in checkpoint.params.items() if not np.all(np.isfinite(v))]
    if bad:
        raise RnnvanishError(f"checkpoint {checkpoint.path} holds non-finite parameters ({', '.join(bad)})")
