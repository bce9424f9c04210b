"""Gradient lag profiles of a task model at the start and at the end of training.

Before the first update and after the last, the gradient tracer (`rnnvanish.tracer`) measures
on `n_sequences` sequences of the task, all exactly T long,

    ||dE_T / dh_{T-l}||  for every lag l = 0..T   (and ||dE_T / dc_{T-l}|| for the LSTM)

with E_T a probe loss at the last step. Comparing the two shows what training did to the
long-range signal the task needs: the adding problem's markers sit within the first half of
the sequence, so the gradient at lags past T/2 is what a solution must use.

Files, under the run folder's traces/: start.npz/.csv, end.npz/.csv (the Trace format of
`rnnvanish.tracer`) and lag_profiles.png (both profiles on one chart).
"""
import numpy as np

from pathlib import Path

from ..training.runfolder import traces_folder
from . import make_task

START, END, CHART = "start", "end", "lag_profiles.png"


def equal_length_inputs(task, length, n_sequences, seed=0):
    """n sequences of the task, every one exactly `length` long (no jitter): inputs only."""
    if "jitter" in task.settings:
        task = make_task(task.name, **{**task.settings, "jitter": False})
    return task.generate(n_sequences, length, rng=np.random.default_rng([seed, 5])).inputs


class LagTraces:
    """A session hook: a trace when training starts (kept from the first session of a resumed
    run) and one when it ends, saved and charted together."""

    def __init__(self, folder, n_sequences=16, seed=0):
        self.folder, self.n_sequences, self.seed = Path(folder), n_sequences, seed
        self.traces = {}

    def _take(self, trainer, when):
        from ..tracer.trace import trace

        model, config = trainer.model, trainer.settings
        inputs = equal_length_inputs(model.task, config.length, self.n_sequences, self.seed)
        label = f"{'before' if when == START else 'after'} training"
        self.traces[when] = trace(model, inputs, label=label, seed=self.seed, jacobians=False,
                                  info={"task": model.task.name, "when": when, "step": trainer.step})
        self.traces[when].save(traces_folder(self.folder) / f"{when}.npz")

    def on_start(self, trainer):
        from ..tracer.trace import Trace

        path = traces_folder(self.folder) / f"{START}.npz"
        if trainer.step > 0 and path.exists():
            self.traces[START] = Trace.load(path)           # the untrained model's, from the first session
        elif trainer.step == 0:
            self._take(trainer, START)

    def on_end(self, trainer):
        """Trace the trained model and draw both traces; returns a one-line summary (empty without both)."""
        self._take(trainer, END)
        if START not in self.traces:
            return ""
        from ..plots import save_figure
        from ..plots.tasks import plot_training_effect

        config = trainer.settings
        start, end = self.traces[START], self.traces[END]
        title = f"{config.task}, T = {config.length}, {config.cell}: gradient from step T before and after training"
        fig = plot_training_effect([start, end], title=title)
        save_figure(fig, traces_folder(self.folder) / CHART)
        lags = sorted({min(10, start.T), start.T // 2, start.T})
        parts = [f"l={lag}: {start.signal_at(lag):.2g} -> {end.signal_at(lag):.2g}" for lag in lags]
        return "median ||dE_T/dh_{T-l}|| before -> after training: " + ", ".join(parts)
