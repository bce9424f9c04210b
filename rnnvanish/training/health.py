"""Is training still healthy? Non-finite values and divergence, each stopped with a diagnosis.

    non-finite   a NaN or inf in the loss, a gradient or (after an update) a parameter
    divergence   an evaluation loss, or the smoothed training loss, L_s <- (1 - a) L_s + a E_step with a = 0.1 (so a
                 single step must be about ten times too large to trip it alone), exceeds
                 `factor` times the loss of the untrained model: ln V for a language model
                 (uniform guessing over V symbols), for a task the larger of its trivial
                 strategy's loss and the untrained model's held-out loss

A diverged or non-finite model is never saved: the run stops before its next checkpoint, so
checkpoint.npz and best.npz stay those of the last good evaluation. The diagnosis names the
step, the recent losses and gradient norms before and after clipping, the learning rate, the
clipping in force and what to try.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from ..errors import DivergenceError

SMOOTHING = 0.1


class Health:
    """Watches every step; `recent` keeps the last steps for the diagnoses."""

    def __init__(self, config, reference_loss=None, history=8):
        self.config = config
        self.reference_loss = reference_loss       # the untrained loss; None until the objective knows it
        self.smoothed = None
        self.recent = deque(maxlen=history)         # (step, loss, norm before, norm after clipping)

    # -- what is carried across a resume ---------------------------------------------------------
    def state_dict(self) -> dict:
        return {"smoothed": self.smoothed, "reference_loss": self.reference_loss}

    def load_state_dict(self, d: dict) -> None:
        self.smoothed = d.get("smoothed")
        if d.get("reference_loss") is not None:
            self.reference_loss = float(d["reference_loss"])

    # -- per step ----------------------------------------------------------------------------------
    def record(self, step, loss, norm, norm_clipped, lr):
        """Note a finite step; raise DivergenceError once the smoothed loss passes the limit."""
        self.recent.append((step, loss, norm, norm_clipped))
        self.smoothed = loss if self.smoothed is None else (1 - SMOOTHING) * self.smoothed + SMOOTHING * loss
        limit = self.limit()
        if limit is not None and self.smoothed > limit:
            raise DivergenceError(self.divergence_report(step, lr))

    def check_evaluation(self, step, loss, lr):
        """An evaluation far above the untrained loss (the last update broke the model): stop before
        it is saved. NaN passes here; the non-finite checks name it."""
        limit = self.limit()
        if limit is not None and loss > limit:
            raise DivergenceError(
                f"training diverged at step {step}: the evaluation loss is {loss:.4g}, above "
                f"{self.config.divergence:g} times the untrained model's loss ({self.reference_loss:.4g}); "
                f"the update of that step broke the model. Learning rate {lr:g}, {self.clipping_text()}."
                + self.history_text() + f" Try a smaller learning rate (e.g. --lr {lr / 10:g})"
                + ("" if self.config.clip_norm else ", clipping by global norm (--clip-norm 5)")
                + "; --divergence off turns this check off.")

    def limit(self):
        factor = self.config.divergence
        if factor is None or self.reference_loss is None:
            return None
        return factor * max(self.reference_loss, 1e-3)

    def skipped(self, step):
        self.recent.append((step, math.nan, math.nan, math.nan))

    # -- the words -----------------------------------------------------------------------------------
    def divergence_report(self, step, lr) -> str:
        c = self.config
        return (f"training diverged at step {step}: the smoothed training loss is {self.smoothed:.4g}, above "
                f"{c.divergence:g} times the untrained model's loss ({self.reference_loss:.4g}). "
                f"Learning rate {lr:g}, {self.clipping_text()}." + self.history_text()
                + " Try a smaller learning rate (e.g. --lr " + f"{lr / 10:g}" + ")"
                + ("" if c.clip_norm else ", clipping by global norm (--clip-norm 5)")
                + " or another optimiser (--optimizer adam); --divergence off turns this check off.")

    def clipping_text(self) -> str:
        c = self.config
        if not (c.clip_norm or c.clip_value):
            return "no clipping is on"
        return f"clipping: value {c.clip_value}, norm {c.clip_norm} ({c.clip_mode})"

    def history_text(self) -> str:
        if not self.recent:
            return ""
        return " Last steps (loss, gradient norm before -> after clipping): " + "; ".join(
            f"step {k}: {loss:.4g}, {n:.3g} -> {nc:.3g}" for k, loss, n, nc in self.recent) + "."


def params_text(params) -> str:
    """Which parameter is non-finite, or else which holds the largest entry."""
    bad = [k for k, p in params.items() if not np.isfinite(p).all()]
    if bad:
        return f"Non-finite parameters: {', '.join(bad)}."
    name = max(params, key=lambda k: float(np.abs(params[k]).max(initial=0.0)))
    return f"The parameters are finite; the largest entry is in {name} ({float(np.abs(params[name]).max()):.3g})."
