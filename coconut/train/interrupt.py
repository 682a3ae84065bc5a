"""Preemption as a scheduler expects it: SIGTERM or Ctrl-C save a resumable checkpoint, say so, and exit 143 / 130.

During training, the first SIGTERM or SIGINT only asks to stop: the current optimizer step finishes (a signal
in the middle of a gradient-accumulation group waits for its step; one during validation, for the next training
step), every rank agrees on the step, `last.ckpt` is saved there (weights, optimizer, schedule, the loader's
position, the RNG), and `RunInterrupted` ends the run. `resume=.../last.ckpt` then continues exactly where it
stopped. A second Ctrl-C stops at once (the previous `last.ckpt` stays). Outside training the command-line
handler turns SIGTERM into `RunInterrupted` too (coconut.cli.main), so every stop is one line and 128 + signal.

Lightning's own SIGTERM handler stops after any batch, also inside an accumulation group whose gradients no
checkpoint holds, and exits 0: this callback takes the signals over for the fit and gives them back after.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import lightning as L
import torch

SIGNAL_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT (Ctrl-C)"}


class RunInterrupted(Exception):
    """A run stopped by a signal; `checkpoint` is where it can resume (None when nothing new was saved)."""

    def __init__(self, signum: int, checkpoint: Path | None = None, where: str = ""):
        self.signum, self.checkpoint = signum, checkpoint
        name = SIGNAL_NAMES.get(signum, f"signal {signum}")
        if checkpoint is not None:
            what = f"saved {checkpoint}{where}; continue with resume={checkpoint}"
        else:
            what = "stopped at once; nothing new was saved (the run folder's checkpoints/last.ckpt, if any, resumes it)"
        super().__init__(f"stopped by {name}: {what}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class GracefulStop(L.Callback):
    """Turns SIGTERM and SIGINT during the fit into a checkpoint at the next optimizer step, then a stop."""

    def __init__(self, last_checkpoint: Path):
        self.last_checkpoint = Path(last_checkpoint)
        self.requested: int | None = None
        self._previous: dict = {}
        self._saving = False
        self._rng: dict | None = None  # a stop checkpoint's RNG, applied when the run resumes from it
        self._logger_step: int | None = None  # and its logging step
        self._trainer = None

    # -- the signals ---------------------------------------------------------------------------------

    def on_train_start(self, trainer, pl_module):
        # After Lightning registered its handlers (Trainer._run), which this replaces for the fit.
        self._trainer = trainer
        if self._rng is not None:
            _set_rng(self._rng)
            self._rng = None
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame):
        if self.requested is not None:
            if signum == signal.SIGINT:  # a second Ctrl-C: now
                raise RunInterrupted(signum)
            return
        self.requested = signum
        launcher = getattr(self._trainer.strategy, "launcher", None) if self._trainer is not None else None
        if launcher is not None and getattr(launcher, "procs", None):
            launcher.kill(signum)  # the other ranks of a launch this process started

    def _restore_signals(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_end(self, trainer, pl_module):
        self._restore_signals()

    def on_exception(self, trainer, pl_module, exception):
        self._restore_signals()

    # -- stopping ------------------------------------------------------------------------------------

    def _agreed(self, trainer) -> bool:
        """Whether any rank was asked to stop (the ranks must stop at the same step)."""
        asked = self.requested is not None
        if trainer.world_size > 1:
            asked = trainer.strategy.reduce_boolean_decision(asked, all=False)
        return asked

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        # Checked before a batch that opens an accumulation group, so the previous step is complete and every
        # row it logs is in the metrics (they are written after on_train_batch_end); this callback comes first
        # in the list, so nothing of the new batch is logged yet.
        if self._logger_step is not None:  # the first batch after resuming from a stop checkpoint
            # Lightning restores the logging step as if the checkpoint were taken after a batch, and adds one;
            # taken before the batch, it already counts the step before it.
            trainer.fit_loop.epoch_loop._batches_that_stepped = self._logger_step
            self._logger_step = None
        if batch_idx == 0 or batch_idx % trainer.accumulate_grad_batches or not self._agreed(trainer):
            return
        self._saving = True
        try:
            # The whole state, optimizer included: the run resumes from it. Collective under DDP: every rank calls it.
            trainer.save_checkpoint(self.last_checkpoint, weights_only=False)
        finally:
            self._saving = False
        where = f" (epoch {trainer.current_epoch}, step {trainer.global_step})"
        raise RunInterrupted(self.requested or signal.SIGTERM, self.last_checkpoint, where)

    def on_train_epoch_start(self, trainer, pl_module):
        # A signal during the last validation: last.ckpt already holds the finished epoch.
        if self._agreed(trainer):
            saved = self.last_checkpoint if self.last_checkpoint.exists() else None
            raise RunInterrupted(self.requested or signal.SIGTERM, saved, f" (end of epoch {trainer.current_epoch - 1})")

    def state_dict(self):
        if not self._saving:
            return {}
        return {"rng": _get_rng(), "logger_step": self._trainer.fit_loop.epoch_loop._batches_that_stepped}

    def load_state_dict(self, state_dict):
        self._rng, self._logger_step = state_dict.get("rng"), state_dict.get("logger_step")


def _get_rng() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
