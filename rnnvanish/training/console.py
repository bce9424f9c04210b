"""What a training command prints: a header, a progress bar, a log line per evaluation, samples, a summary.

The log line at every evaluation (means over the steps since the previous one; the middle
part is the objective's evaluation):

    step 500 | loss 1.84 | val 1.91 (2.76 bits/char) | |g| 3.2 -> 1.0 | 41k tok/s | 38s
    step 800 | loss 0.0121 | held-out 0.0118 | solved 97.3% (baseline 15.4%) | |g| 0.4 -> 0.4 | 90k tok/s | 2m10s

loss in the objective's unit (nats per token; a task's own loss); |g| is the global gradient
norm before -> after clipping. The progress bar (stderr) counts steps when there is a step
budget and seconds otherwise. It is drawn only when stderr is a terminal (or with --progress),
so a run whose output goes to a file writes the header, one line per evaluation, the samples
and the summary, and nothing else.
"""
from __future__ import annotations

import math
import sys
import time
from collections import deque

from . import runfolder as rf
from .engine import TrainHooks


def _si(x: float) -> str:
    """12345 -> '12.3k'."""
    if not math.isfinite(x):
        return "?"
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def format_duration(seconds: float) -> str:
    """45s, 2m10s, 1h02m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _g(x) -> str:
    return "none" if x is None else f"{x:g}"


class Console(TrainHooks):
    """Prints to stdout (log lines, samples, summary) and draws the bar on stderr."""

    def __init__(self, trainer, folder, session):
        self.t, self.folder, self.session = trainer, folder, session
        self.quiet = session.quiet
        self.bar = None
        self.recent = deque(maxlen=20)      # (loss, norm, seconds) of the last steps, for the bar
        self._reset_eval_sums()
        self.start_step = trainer.step
        self.t0 = time.monotonic()

    def _reset_eval_sums(self):
        self.n, self.loss, self.norm, self.norm_clipped, self.seconds, self.skipped = 0, 0.0, 0.0, 0.0, 0.0, 0

    def _print(self, text=""):
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    # -- start ----------------------------------------------------------------------------------
    def start(self, compile_seconds=0.0):
        t, s, m = self.t, self.t.settings, self.t.model
        cell = m.cell.summary                                   # e.g. "LSTM (forget bias 1)"
        if m.stack.summary:
            cell += f", {m.stack.summary}"                      # e.g. ", 2 layers, dropout 0.25"
        clip = []
        if s.clip_value:
            clip.append(f"clip-value {_g(s.clip_value)}")
        if s.clip_norm:
            clip.append(f"clip-norm {_g(s.clip_norm)}{' per tensor' if s.clip_mode != 'global' else ''}")
        budget = []
        if t.total_steps is not None:
            budget.append(f"{t.total_steps} steps")
        if self.session.max_time is not None:
            budget.append(f"{format_duration(self.session.max_time)}")
        self._print(("resuming" if self.session.resumed else "training") + f" in {self.folder}"
                    + (f" from step {t.step}" if self.session.resumed else ""))
        if self.session.changes:
            self._print("  changed: " + ", ".join(f"{k}={v}" for k, v in self.session.changes.items()))
        for label, text in t.objective.header_lines():
            self._print(f"  {label:<7} {text}")
        self._print(f"  model   {cell}, H={m.hidden_size}, {m.n_params():,} parameters, {m.dtype.name}, {m.backend}, "
                    f"{s.threads} thread{'s' if s.threads > 1 else ''}")
        self._print(f"  update  {s.optimizer} lr {_g(s.lr)} ({s.lr_schedule})"
                    + (f", recurrent weights at {_g(s.recurrent_lr)}x" if s.recurrent_lr != 1 else "")
                    + (f", weight decay {_g(s.weight_decay)}" if s.weight_decay else "")
                    + f", {', '.join(clip) or 'no clipping'}, non-finite: {s.nonfinite}, "
                    + ("divergence check off" if s.divergence is None else f"divergence at {_g(s.divergence)}x the untrained loss"))
        self._print(f"  budget  {' or '.join(budget) or 'none'}; eval every {s.eval_every} steps")
        if compile_seconds > 1.0:
            self._print(f"  (the kernels took {compile_seconds:.0f}s to compile or load before training; not counted)")
        self.t0 = time.monotonic()
        show = self.session.progress
        if show is None:
            show = sys.stderr.isatty() and not self.quiet
        if show:
            from tqdm import tqdm
            if t.total_steps is not None:
                self.bar = tqdm(total=t.total_steps, initial=t.step, unit="step", dynamic_ncols=True,
                                file=sys.stderr, leave=False)
            else:
                self.bar = tqdm(total=round(self.session.max_time), unit="s", dynamic_ncols=True, file=sys.stderr,
                                leave=False, bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt}s{postfix}")

    def stopping(self):
        self._print("Ctrl-C: stopping after this step and saving a checkpoint (press again to abort at once)")

    # -- during training ------------------------------------------------------------------------
    def on_step(self, trainer, r):
        self.seconds += r.seconds
        if r.skipped:
            self.skipped += 1
        else:
            self.n += 1
            self.loss += r.loss
            self.norm += r.norm
            self.norm_clipped += r.norm_clipped
            self.recent.append((r.loss, r.norm, r.seconds))
        if self.bar is None:
            return
        losses = [x for x, _, _ in self.recent]
        tok_s = trainer.tokens_per_step * len(self.recent) / max(sum(s for _, _, s in self.recent), 1e-9)
        step = "" if trainer.total_steps is not None else f"step {trainer.step} | "
        postfix = (f"{step}loss {sum(losses) / len(losses):.3f} | {_si(tok_s)} tok/s | |g| {self.recent[-1][1]:.3g}"
                   if losses else f"{step}skipping non-finite steps")
        self.bar.set_postfix_str(postfix, refresh=False)
        if trainer.total_steps is not None:
            self.bar.update(1)
        else:
            self.bar.update(min(time.monotonic() - self.t0, self.bar.total) - self.bar.n)

    def on_row(self, trainer, row, evaluated):
        if not evaluated:
            return                                       # a plain metrics row: no log line
        mean = (lambda x: x / self.n) if self.n else (lambda x: math.nan)
        line = f"step {row['step']}" + (f" | loss {mean(self.loss):.4g}" if self.n else "")
        line += f" | {trainer.objective.log_text(row)}"
        if self.n:
            line += f" | |g| {mean(self.norm):.3g} -> {mean(self.norm_clipped):.3g}"
            line += f" | {_si(trainer.tokens_per_step * (self.n + self.skipped) / max(self.seconds, 1e-9))} tok/s"
        line += f" | {format_duration(row['elapsed'])}"
        if self.skipped:
            line += f" | skipped {self.skipped}"
        self._print(line)
        self._reset_eval_sums()

    def on_sample(self, trainer, step, text):
        self._print(f"--- sample at step {step} (temperature {trainer.settings.sample_temperature:g}) ---")
        self._print(text.rstrip("\n"))
        self._print("---")

    # -- end --------------------------------------------------------------------------------------
    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def summary(self, reason, chart, lines=()):
        t, folder = self.t, self.folder
        why = {"steps": f"reached {t.step} steps", "time": f"time budget of {format_duration(self.session.max_time or 0)} used",
               "solved": "criterion met", "interrupted": "interrupted"}[reason]
        done = t.step - self.start_step
        print(f"{why}: {done} steps this session ({_si(done * t.tokens_per_step)} tokens in "
              f"{format_duration(time.monotonic() - self.t0)}), {t.step} in all", flush=True)
        for line in lines:
            print(line)
        print(f"run folder {folder}/")
        n_samples = 0
        if (folder / rf.SAMPLES).exists():
            n_samples = (folder / rf.SAMPLES).read_text(encoding="utf-8", errors="replace").count("=== step ")
        entries = [
            (rf.CONFIG, "every setting, the model and " + t.objective.described),
            (rf.METRICS, f"{len(t.rows)} rows: loss, {t.objective.evaluated}, gradient norms, clipping, tokens/s"),
            (rf.CHECKPOINT, f"step {t.step}: weights, optimiser, data position, carried state"),
            (rf.BEST, f"weights at the best evaluation (step {t.best_step})"),
            (rf.SAMPLES, f"{n_samples} samples"),
            (rf.RESULT, "the final held-out scores against the baseline"),
            (rf.TRACES + "/", "gradient lag profiles"),
            (t.objective.chart, "loss, evaluation, gradient norms before/after clipping"),
        ]
        for name, what in entries:
            if (folder / name.rstrip("/")).exists() and (name != t.objective.chart or chart):
                print(f"  {name:<15} {what}")
        command = self.session.command
        if reason == "interrupted":
            print(f"continue with: rnnvanish {command} --resume {folder}")
        else:
            print(t.objective.next_hint(folder))
