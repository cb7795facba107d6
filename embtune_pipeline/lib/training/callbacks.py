"""What the trainer reports while it trains: progress lines and each loss and validation score."""

from __future__ import annotations

import logging
from typing import Callable, Optional

from embtune_pipeline.lib.progress import Reporter, duration

log = logging.getLogger(__name__)

LOSS_METRIC, VALIDATION_METRIC = "train_loss", "validation_ndcg@10"  # what on_metrics hears, by these names


def progress_callback(reporter: Reporter, validation_key: Optional[str],
                      on_metrics: Optional[Callable[[int, dict], None]] = None):
    """A trainer callback: every `reporter.every` seconds (and at the end) a line with step N of M, epoch, the
    latest loss, elapsed time and ETA, and a validation score once, in the first line after it was measured,
    with the step that measured it (never repeated stale); each logged loss and validation score to on_metrics."""
    import time

    from transformers import TrainerCallback

    class TrainingProgress(TrainerCallback):
        def __init__(self):
            self.start = self.last = time.monotonic()
            self.first_step = 0
            self.loss = self.score = self.score_step = None
            self.metrics_failed = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = self.last = time.monotonic()
            self.first_step = state.global_step  # > 0 when resumed: the rate counts this run's steps only

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            measured = {}
            if "loss" in logs:
                self.loss = measured[LOSS_METRIC] = float(logs["loss"])
            if validation_key and validation_key in logs:
                self.score = measured[VALIDATION_METRIC] = float(logs[validation_key])
                self.score_step = int(state.global_step)
            if measured and on_metrics is not None:
                try:
                    on_metrics(int(state.global_step), measured)
                except Exception as e:  # noqa: BLE001 - a tracking server down for a minute must not end a training
                    if not self.metrics_failed:
                        log.warning("live metrics not recorded (%s: %s); training goes on", type(e).__name__, e)
                    self.metrics_failed = True

        def on_step_end(self, args, state, control, **kwargs):
            now = time.monotonic()
            if now - self.last >= reporter.every and state.global_step < state.max_steps:
                self.last = now
                self.say(state, now)

        def on_train_end(self, args, state, control, **kwargs):
            self.say(state, time.monotonic())  # after the last step's loss and validation were logged

        def say(self, state, now: float) -> None:
            if reporter.say is None:
                return
            done, total = state.global_step, state.max_steps
            elapsed = now - self.start
            rate = (done - self.first_step) / elapsed if elapsed > 0 else 0.0
            parts = [f"training step {done}/{total} ({done / max(total, 1):.0%})", f"epoch {state.epoch or 0:.2f}"]
            if self.loss is not None:
                parts.append(f"loss {self.loss:.4f}")
            if self.score is not None:
                parts.append(f"validation nDCG@10 {self.score:.4f} (step {self.score_step})")
                self.score = None  # said once
            parts.append(f"elapsed {duration(elapsed)}")
            if done < total and rate > 0:
                parts.append(f"ETA {duration((total - done) / rate)}")
            reporter.say(", ".join(parts))

    return TrainingProgress()
