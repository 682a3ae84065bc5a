"""Callbacks of the curriculum: the stage controller, and checkpoints chosen within the final stage and at each stage's end.

They use Lightning's public API only, and read the stage from the data module that owns it.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from coconut.config import StageSchedule
from coconut.run_dir import RunDir


class CurriculumCallback(L.Callback):
    """Follows the data module's stage: resets the optimizer (every epoch or at stage switches), logs the stage at
    every optimizer step.

    `reset`: "epoch" starts every epoch with fresh AdamW moments, as the release does (it re-creates the
    optimizer inside its epoch loop); "stage" only at stage switches, as the paper's text says; "never".
    The stage is stored in checkpoints so a resumed run knows it is continuing the same stage (and
    does not reset the optimizer state it just restored under "stage"). Each epoch also re-seeds torch
    from (seed, epoch), so an epoch interrupted and replayed after a resume draws the same dropout masks.
    """

    def __init__(self, reset: str, seed: int, auto_thought_scale: bool = False):
        if reset not in ("epoch", "stage", "never"):
            raise ValueError(f"reset must be epoch, stage or never, got {reset!r}")
        self.reset, self.seed = reset, seed
        self.auto_thought_scale = auto_thought_scale
        self.scale_measured = False
        self.stage: int | None = None
        self.transitions: list[dict] = []
        self._logged_step: int | None = None

    def on_train_epoch_start(self, trainer, pl_module):
        torch.manual_seed(self.seed * 1_000_003 + trainer.current_epoch)
        stage = trainer.datamodule.stage
        switched = self.stage is not None and stage != self.stage
        if switched:
            self.transitions.append({"epoch": trainer.current_epoch, "step": trainer.global_step, "from": self.stage, "to": stage})
        if self.reset == "epoch" or (self.reset == "stage" and switched):
            for optimizer in trainer.optimizers:
                optimizer.state.clear()  # fresh AdamW moments and step counts: the same as a new AdamW
        self.stage = stage

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._log_stage(trainer, self.stage)
        if self.auto_thought_scale and not self.scale_measured:
            self._measure_thought_scale(trainer, pl_module, batch)

    def _measure_thought_scale(self, trainer, pl_module, batch):
        # Decided together: under FSDP every rank must make the measuring decoder call, thoughts or not.
        if not trainer.strategy.reduce_boolean_decision(bool((batch["num_thoughts"] > 0).any()), all=False):
            return
        # First batch with thoughts: scale them to the size of token embeddings, averaged over ranks.
        engine = pl_module.engine
        engine.thought_scale.fill_(1.0)
        scale = engine.thought_scale_for(batch["input_ids"], batch["attention_mask"])
        scale = trainer.strategy.reduce(torch.tensor(scale, device=pl_module.device), reduce_op="mean")
        engine.thought_scale.fill_(float(scale))
        self.scale_measured = True
        for logger in trainer.loggers:
            logger.log_metrics({"curriculum/thought_scale": float(scale)}, step=trainer.global_step)

    def _log_stage(self, trainer, stage):
        # Once per optimizer step, at the step its losses are logged at: TensorBoard draws one point per step, so
        # the stage is flat within a stage and jumps between a stage's last step and the next one's first (dense
        # points also keep its default smoothing's ramp to a few steps). An accumulation group logs once.
        step = trainer.global_step
        if step == self._logged_step:
            return
        self._logged_step = step
        for logger in trainer.loggers:
            logger.log_metrics({"curriculum/stage": float(stage)}, step=step)

    def state_dict(self):
        return {"stage": self.stage, "transitions": self.transitions, "scale_measured": self.scale_measured}

    def load_state_dict(self, state_dict):
        self.stage = state_dict.get("stage")
        self.transitions = state_dict.get("transitions", [])
        self.scale_measured = state_dict.get("scale_measured", False)


class FinalStageCheckpoint(ModelCheckpoint):
    """Best-by-validation-accuracy checkpoints, chosen among epochs of the final stage only.

    Earlier stages (CoT at stage 0, say) would often win on accuracy alone and hide what the curriculum
    produced, so validations before the final stage are not considered. `last.ckpt` comes from a separate
    plain `ModelCheckpoint` (see coconut.train.trainer).
    """

    # ModelCheckpoint saves from one of these two hooks, depending on when validation runs.
    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.datamodule.in_final_stage:
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module):
        if trainer.datamodule.in_final_stage:
            super().on_validation_end(trainer, pl_module)


class StageCheckpoint(L.Callback):
    """Saves `checkpoints/stage{k}.ckpt` at the end of every stage, to evaluate each stage afterwards."""

    def __init__(self, run_dir: RunDir, schedule: StageSchedule):
        self.run_dir, self.schedule = run_dir, schedule

    def on_train_epoch_end(self, trainer, pl_module):
        if not epoch_trained_through(trainer):  # trainer.max_steps (or a signal) stopped it: the stage did not end
            return
        last = trainer.current_epoch == trainer.max_epochs - 1
        if self.schedule.ends_stage(trainer.current_epoch) or last:
            path = self.run_dir.stage_checkpoint(trainer.datamodule.stage)
            # The whole state (optimizer, loops, callbacks): a stage checkpoint can be resumed or started from.
            trainer.save_checkpoint(path, weights_only=False)  # collective under DDP: every rank calls it


def epoch_trained_through(trainer) -> bool:
    """Whether the epoch ending now trained all its batches (as Lightning's epoch loop counts them, under
    limit_train_batches too), rather than being cut short by max_steps or a stop."""
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return progress.is_last_batch or progress.current.ready >= trainer.num_training_batches
