"""The curriculum's stage schedule: which stage each epoch trains (a derived value of the trainer config)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageSchedule:
    """Which curriculum stage each epoch trains: stage 0 may last longer (GSM8k: 6 epochs, then 3 per stage)."""

    epochs_per_stage: int
    first_stage_epochs: int | None = None  # epochs of stage 0; None = epochs_per_stage

    def __post_init__(self):
        if self.epochs_per_stage < 1 or (self.first_stage_epochs is not None and self.first_stage_epochs < 1):
            raise ValueError(f"stages need at least one epoch, got {self}")

    @property
    def first(self) -> int:
        return self.epochs_per_stage if self.first_stage_epochs is None else self.first_stage_epochs

    def stage(self, epoch: int) -> int:
        """The stage of a (0-based) epoch."""
        return 0 if epoch < self.first else 1 + (epoch - self.first) // self.epochs_per_stage

    def start(self, stage: int) -> int:
        """The first epoch of a stage."""
        return 0 if stage == 0 else self.first + (stage - 1) * self.epochs_per_stage

    def length(self, stage: int) -> int:
        return self.first if stage == 0 else self.epochs_per_stage

    def ends_stage(self, epoch: int) -> bool:
        return self.stage(epoch + 1) != self.stage(epoch)
