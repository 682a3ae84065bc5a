"""AdamW and the Lightning trainer: optimiser resets, schedule, devices and the effective batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from coconut.config.checks import require
from coconut.schedule import StageSchedule


@dataclass
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    schedule: str = "constant"  # constant | cosine (over each stage when the optimizer resets)
    min_lr_ratio: float = 0.1
    grad_clip: Optional[float] = None
    # When AdamW starts afresh: "epoch" (the release re-creates it at every epoch with reset_optimizer:
    # True, and its numbers come from that), "stage" (at each stage switch, as the paper's text says), "never".
    reset: str = "stage"
    decay_all: bool = False  # weight decay on every parameter (the release) instead of matrices only

    RESETS = ("epoch", "stage", "never")

    def __post_init__(self):
        require(self.schedule in ("constant", "cosine"),
                 f"optim.schedule must be constant or cosine, got {self.schedule!r}")
        require(self.reset in self.RESETS, f"optim.reset must be epoch, stage or never, got {self.reset!r}")


@dataclass
class TrainerConfig:
    accelerator: str = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    max_epochs: int = 10  # the schedule's last epoch + 1, counted from epoch 0 even when start_epoch skips some
    epochs_per_stage: int = 1
    first_stage_epochs: Optional[int] = None  # stage 0 (CoT) may train longer; None = epochs_per_stage
    # The first epoch trained: the release starts GSM8k COCONUT at epoch 3 (`resume: 3`, stage 1) from the CoT
    # run's weights, so stage 0 is not trained again. max_epochs - start_epoch epochs are trained.
    start_epoch: int = 0
    accumulate_grad_batches: int = 1  # effective batch = data.batch_size x devices x num_nodes x this
    # The examples per optimizer step to keep whatever the GPU count (the release: 32 x 4 GPUs = 128); when
    # set, accumulate_grad_batches is derived from it, and a setting that cannot reach it is refused.
    effective_batch: Optional[int] = None
    activation_checkpointing: bool = False  # recompute the MLP blocks in the backward pass (saves memory)
    fsdp_sharding: str = "FULL_SHARD"  # with strategy=fsdp: FULL_SHARD | SHARD_GRAD_OP | HYBRID_SHARD | NO_SHARD
    lockstep: Optional[bool] = None  # equal decoder calls on every rank (needed by FSDP); None: on with FSDP
    limit_train_batches: Optional[float] = None
    limit_val_batches: Optional[float] = None
    val_every_n_epochs: int = 1
    log_every_n_steps: int = 10
    deterministic: bool = False
    progress_bar: bool = True

    def __post_init__(self):
        require(self.epochs_per_stage >= 1 and (self.first_stage_epochs or 1) >= 1,
                 "trainer.epochs_per_stage and trainer.first_stage_epochs must be >= 1")
        require(0 <= self.start_epoch < self.max_epochs,
                 f"trainer.start_epoch must be in [0, trainer.max_epochs), got {self.start_epoch}")
        require(self.effective_batch is None or self.effective_batch >= 1,
                 f"trainer.effective_batch must be >= 1 or null, got {self.effective_batch}")
        require(self.fsdp_sharding in ("FULL_SHARD", "SHARD_GRAD_OP", "HYBRID_SHARD", "NO_SHARD"),
                 f"trainer.fsdp_sharding must be FULL_SHARD, SHARD_GRAD_OP, HYBRID_SHARD or NO_SHARD, "
                 f"got {self.fsdp_sharding!r}")

    @property
    def schedule(self) -> StageSchedule:
        return StageSchedule(self.epochs_per_stage, self.first_stage_epochs, self.start_epoch)

    @property
    def epochs_to_train(self) -> int:
        """Epochs Lightning runs: the schedule's epochs from start_epoch on."""
        return self.max_epochs - self.start_epoch

    @property
    def last_stage(self) -> int:
        """The stage of the last epoch."""
        return self.schedule.stage(self.epochs_to_train - 1)

    def device_count(self) -> Optional[int]:
        """Devices per node as a number, or None when Lightning decides ("auto", -1)."""
        d = self.devices
        if isinstance(d, (list, tuple)):
            return len(d)
        if isinstance(d, str):
            d = d.strip()
            if "," in d:
                return len([x for x in d.split(",") if x.strip()])
            if not d.lstrip("-").isdigit():
                return None
            d = int(d)
        return d if isinstance(d, int) and d >= 1 else None

    def derive_accumulation(self, batch_size: int) -> None:
        """Set accumulate_grad_batches so that the effective batch is `effective_batch` (if set)."""
        if self.effective_batch is None:
            return
        devices = self.device_count()
        require(devices is not None, f"trainer.effective_batch={self.effective_batch} needs trainer.devices as a "
                                      f"number (got {self.devices!r}) to derive the gradient accumulation")
        per_step = batch_size * devices * self.num_nodes
        require(self.effective_batch % per_step == 0,
                 f"trainer.effective_batch={self.effective_batch} is not a multiple of data.batch_size x "
                 f"trainer.devices x trainer.num_nodes = {batch_size} x {devices} x {self.num_nodes} = {per_step}; "
                 f"change data.batch_size or the device count, or set trainer.effective_batch=null")
        derived = self.effective_batch // per_step
        require(self.accumulate_grad_batches in (1, derived),
                 f"trainer.accumulate_grad_batches={self.accumulate_grad_batches} contradicts trainer.effective_batch="
                 f"{self.effective_batch} ({per_step} per step needs {derived}); set only one of them")
        self.accumulate_grad_batches = derived

    def effective_batch_text(self, batch_size: int) -> str:
        devices = self.device_count()
        shown = "?" if devices is None else devices
        total = "?" if devices is None else batch_size * devices * self.num_nodes * self.accumulate_grad_batches
        return (f"effective batch {total} = {batch_size} per device x {shown} devices x {self.num_nodes} nodes x "
                f"{self.accumulate_grad_batches} accumulation")
