"""The curriculum's stage schedule: which stage each epoch trains (a derived value of the trainer config)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageSchedule:
    """Which curriculum stage each trained epoch is at.

    Stage 0 may last longer (`first_stage_epochs`). `start_epoch` skips the schedule's first epochs, as
    the release's `resume: 3` does for GSM8k COCONUT (it starts from the CoT run, so stage 0 is not
    trained again): the first epoch trained is epoch `start_epoch` of the schedule. Every `epoch` argument
    below counts trained epochs from 0, as Lightning's `current_epoch` does.
    """

    epochs_per_stage: int
    first_stage_epochs: int | None = None  # epochs of stage 0; None = epochs_per_stage
    start_epoch: int = 0

    def __post_init__(self):
        if self.epochs_per_stage < 1 or (self.first_stage_epochs is not None and self.first_stage_epochs < 1):
            raise ValueError(f"stages need at least one epoch, got {self}")
        if self.start_epoch < 0:
            raise ValueError(f"start_epoch must be >= 0, got {self.start_epoch}")

    @property
    def first(self) -> int:
        return self.epochs_per_stage if self.first_stage_epochs is None else self.first_stage_epochs

    def _stage_of(self, epoch: int) -> int:  # the stage of an epoch of the whole schedule
        return 0 if epoch < self.first else 1 + (epoch - self.first) // self.epochs_per_stage

    def _start_of(self, stage: int) -> int:
        return 0 if stage == 0 else self.first + (stage - 1) * self.epochs_per_stage

    def stage(self, epoch: int) -> int:
        """The stage of a (0-based) trained epoch."""
        return self._stage_of(epoch + self.start_epoch)

    def start(self, stage: int) -> int:
        """The first trained epoch of a stage (0 for a stage partly skipped by `start_epoch`)."""
        return max(0, self._start_of(stage) - self.start_epoch)

    def length(self, stage: int) -> int:
        """Trained epochs of a stage (fewer for a stage partly skipped by `start_epoch`)."""
        full = self.first if stage == 0 else self.epochs_per_stage
        return max(0, full - max(0, self.start_epoch - self._start_of(stage)))

    def ends_stage(self, epoch: int) -> bool:
        return self.stage(epoch + 1) != self.stage(epoch)
