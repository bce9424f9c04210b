"""The language-model objective: truncated BPTT over a token stream, judged on held-out text.

    batches      the next (T, B) window of B parallel streams through the training text
                 (TokenStream); the hidden state is carried from window to window and reset
                 to zeros when the streams start over
    loss         mean softmax cross-entropy in nats per token (model.loss_and_grads)
    evaluation   validation loss over at most `eval_windows` windows of the held-out end of
                 the text, state carried; also in bits per token and as perplexity
    untrained    ln V: a model that knows nothing guesses uniformly over V symbols
    samples      text after a newline (the first training token if there is none)

Nothing is random in training after initialisation (the streams are read in order), so the
stream position is the objective's whole state.
"""
from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from ..choices import cell_options
from ..data import TokenStream, Vocab, default_corpus, eval_windows, load_corpus, split_train_val
from ..errors import RnnvanishError
from ..model import LanguageModel, bits_per_token, perplexity
from ..stack import depth_summary
from .runfolder import columns_around
from .settings import LM_FORGET_BIAS, LM_INIT_B, stack_options

EVAL_COLUMNS = {
    "val_loss": "validation loss, nats per token (empty when there was no evaluation at this row)",
    "val_bits": "validation loss in bits per token: val_loss / ln 2",
    "val_ppl": "validation perplexity: exp(val_loss)",
}
PROGRESS = ("tokens", "training tokens processed so far (step * batch * window)")
CELL_DEFAULTS = {"activation": "tanh", "forget_bias": LM_FORGET_BIAS, "reset_before": False, "init_b": LM_INIT_B}


def read_corpus(source):
    """(source, name, text): `source` is what reads the same text again (a built-in name or an absolute path)."""
    if source is None:
        name, text = default_corpus()
        return name, name, text
    name, text = load_corpus(source)
    path = Path(source)
    return (str(path.resolve()) if path.exists() else name), name, text


def encode_corpus(config, text, vocab=None):
    """(vocab, train_ids, val_ids, description). The vocabulary is built from the whole text
    unless given; symbols it does not hold (only when capped) become its unknown token."""
    if vocab is None:
        vocab = Vocab.build(text, config.level, max_size=config.vocab_size, min_count=config.min_count)
    ids = vocab.encode(text, unknown="replace")
    train_ids, val_ids = split_train_val(ids, config.val_frac)
    TokenStream(train_ids, config.batch, config.window)     # raises when the text is too short
    if config.val_frac > 0 and len(val_ids) < 2:
        raise RnnvanishError(f"the validation part of the text ({len(val_ids)} tokens at --val-frac "
                             f"{config.val_frac:g}) is too short; raise --val-frac or use --val-frac 0")
    return vocab, train_ids, val_ids, {"chars": len(text), "tokens": len(ids), "train_tokens": len(train_ids),
                                       "val_tokens": len(val_ids), "crc32": zlib.crc32(text.encode("utf-8"))}


def build_model(config, vocab_size: int) -> LanguageModel:
    """A fresh LanguageModel for these settings and vocabulary size."""
    try:
        return LanguageModel(config.cell, vocab_size, config.hidden, seed=config.seed, dtype=config.dtype,
                             backend=config.backend, **stack_options(config),
                             **cell_options(config.cell, config, {**CELL_DEFAULTS, "horizon": config.window}))
    except ValueError as err:
        raise RnnvanishError(f"cannot build the model: {err}") from None


class LanguageObjective:
    """Next-token prediction on `train_ids`, validated on `val_ids` (int arrays of `vocab` ids)."""

    evaluate_at_start = False
    best_column = "val_loss"
    rng_note = {"training": "streams read in order", "masks": "numpy default_rng([seed, 4]), state in mask_rng",
                "samples": "numpy default_rng([seed, 3, step])"}
    chart = "training.png"

    def __init__(self, config, vocab, train_ids, val_ids, corpus=None):
        self.config, self.vocab, self.info = config, vocab, dict(corpus or {})
        self.train_ids, self.val_ids = np.asarray(train_ids), np.asarray(val_ids)
        self.stream = TokenStream(self.train_ids, config.batch, config.window)
        self.columns = columns_around(PROGRESS[0], EVAL_COLUMNS)
        self.reference_loss = math.log(len(vocab))
        self.tokens_per_step = config.batch * config.window
        self.unit = vocab.level
        ids = vocab.encode("\n", unknown="skip")
        self.prime_ids = ids if ids.size else self.train_ids[:1]

    # -- what the loop asks -----------------------------------------------------------------------
    def total_steps(self, config):
        if config.steps is not None:
            return int(config.steps)
        if config.epochs is not None:
            return int(config.epochs) * self.stream.windows_per_epoch
        return None

    def initial_state(self, model):
        return model.initial_state(self.config.batch)

    def next_batch(self):
        inputs, targets, new_epoch = self.stream.next_window()
        return (inputs, targets), new_epoch

    def loss_and_grads(self, model, batch, state, truncate, rng):
        masks = model.draw_masks(*batch[0].shape, rng)
        loss, grads, state_T, _ = model.loss_and_grads(batch[0], batch[1], state, truncate, masks=masks)
        return loss, grads, state_T

    @staticmethod
    def trace_inputs(batch):
        return batch[0]

    def progress(self, step):
        return {"tokens": step * self.tokens_per_step}

    def eval_batch(self) -> int:
        """Validation streams: as many as training uses, fewer if the text is short (each needs T+1 tokens)."""
        return max(1, min(self.config.batch, len(self.val_ids) // (self.config.window + 1)))

    def evaluate(self, model) -> dict:
        """Mean validation loss (nats/token) over at most `eval_windows` windows, state carried."""
        val = math.nan
        if len(self.val_ids) >= 2:
            state, total, count = None, 0.0, 0
            for k, (x, y) in enumerate(eval_windows(self.val_ids, self.eval_batch(), self.config.window)):
                if self.config.eval_windows and k >= self.config.eval_windows:
                    break
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    loss, state = model.loss(x, y, state)
                total, count = total + loss * x.size, count + x.size
            val = total / count if count else math.nan
        return {"val_loss": val, "val_bits": bits_per_token(val), "val_ppl": perplexity(val) if val == val else math.nan}

    def done(self, row) -> bool:
        return False

    def untrained_loss(self, row):
        return self.reference_loss

    def sample(self, model, rng, length=None, temperature=None) -> str:
        c = self.config
        ids = model.sample(self.prime_ids, length or c.sample_length,
                           c.sample_temperature if temperature is None else temperature, rng)
        return self.vocab.decode(ids)

    def warm_up(self, model, truncate):
        ids = self.train_ids[:3]
        x, y = np.ascontiguousarray(ids[:2, None]), np.ascontiguousarray(ids[1:3, None])    # (2, 1)
        model.loss_and_grads(x, y, None, truncate)
        model.loss(x, y, None)
        model.sample(ids[:1], 1, 1.0, np.random.default_rng(0))

    # -- what a checkpoint keeps --------------------------------------------------------------------
    def state_dict(self) -> dict:
        return self.stream.state_dict()

    def load_state_dict(self, d) -> None:
        self.stream.load_state_dict(d)

    def checkpoint_meta(self, step) -> dict:
        return {"tokens": step * self.tokens_per_step, "vocab": self.vocab.to_dict()}

    # -- what the run folder and the console show ------------------------------------------------
    described = "the vocabulary and the corpus description"
    evaluated = "validation loss in nats and bits per token, perplexity"

    def config_extra(self) -> dict:
        return {"vocab": self.vocab.to_dict()}

    def header_lines(self):
        c, corpus = self.config, self.info
        yield "corpus", (f"{corpus.get('name')}: {corpus.get('chars', 0):,} chars, {corpus.get('train_tokens', 0):,} "
                         f"train / {corpus.get('val_tokens', 0):,} validation {self.unit}s, vocabulary {len(self.vocab)}")
        yield "BPTT", (f"window {c.window}, truncate {'none' if c.truncate is None else c.truncate}, batch {c.batch} "
                       f"({self.tokens_per_step} tokens/step, {self.stream.windows_per_epoch} steps/epoch)")

    def log_text(self, row) -> str:
        if row["val_loss"] != row["val_loss"]:
            return "no validation text"
        return f"val {row['val_loss']:.4g} ({row['val_bits']:.3f} bits/{self.unit})"

    def figure(self, metrics, name):
        from ..plots.training import plot_training
        c = self.config
        depth = depth_summary(**stack_options(c))
        return plot_training(metrics, title=f"{name}: {c.cell} H={c.hidden}" + (f", {depth}" if depth else ""), unit=self.unit,
                             clip_norm=c.clip_norm if c.clip_mode == "global" else None)

    def finish(self, trainer, folder, reason) -> list:
        if trainer.best_step is None:
            return []
        b, u = trainer.best_val, self.unit
        return [f"best validation loss {b:.4g} nats/{u} = {bits_per_token(b):.4g} bits/{u} "
                f"(perplexity {perplexity(b):.4g}) at step {trainer.best_step}"]

    @staticmethod
    def next_hint(folder) -> str:
        return (f"next: rnnvanish sample {folder} --length 300    "
                f"(more training: rnnvanish train --resume {folder} --max-time 120)")
