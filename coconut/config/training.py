"""AdamW and the Lightning trainer: optimiser resets, schedule, devices and the effective batch."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from coconut.config.checks import require
from coconut.schedule import StageSchedule


# What Lightning's Trainer(precision=...) accepts (lightning.fabric.plugins.precision.precision), legacy forms
# ("32", "16", "bf16", and the ints, which the str field holds as "32", "64") included.
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "transformer-engine",
              "transformer-engine-float16", "32", "16", "bf16", "64")

FSDP_SHARDINGS = ("auto", "FULL_SHARD", "SHARD_GRAD_OP", "HYBRID_SHARD", "NO_SHARD")

# Lightning's accelerator names (its AcceleratorRegistry, plus "auto" and "gpu": CUDA or Apple's MPS). Whether the
# chosen one is present on this machine is checked when a run starts (coconut.train.trainer.check_hardware).
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
# The strategies coconut runs (coconut.train.strategies.build_strategy): Lightning's own by name for data parallel,
# and FSDP built here (each decoder layer its own unit, ranks in lock-step). Lightning's other names (deepspeed,
# xla, fsdp_cpu_offload, ...) would bypass that wrapping and the lock-step, so they are refused.
STRATEGIES = {"auto": "Lightning picks: one device as it is, several with ddp",
              "ddp": "data parallel, one process per device", "ddp_spawn": "data parallel, spawned processes, as "
              "trainer=ddp_cpu", "fsdp": "sharded data parallel on GPUs, as trainer=fsdp"}


def check_val_interval(value):
    """trainer.val_check_interval as Lightning reads it: a float in (0, 1] is a fraction of the epoch, an int a
    number of training batches; a whole number above 1 given as a float (YAML's 50.0) is made the int."""
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    require(ok and (value <= 1 or float(value).is_integer()),
            f"trainer.val_check_interval must be a fraction of the epoch in (0, 1], a number of training batches "
            f">= 1, or null, got {value!r}")
    return int(value) if value > 1 or isinstance(value, int) else float(value)


def devices_problem(devices) -> str | None:
    """Why Lightning would refuse `devices` (None when it is fine): a count >= 1, -1 or "auto" (every visible
    device), a list of device indices, or those indices comma-separated ("0,1")."""
    if isinstance(devices, bool):
        return "expected a number of devices, -1, auto, or device indices (0,1)"
    if isinstance(devices, int):
        return None if devices >= 1 or devices == -1 else "must be >= 1, or -1 for every visible device"
    if isinstance(devices, (list, tuple)):
        ok = devices and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices)
        return None if ok and len(set(devices)) == len(devices) else "a list must hold distinct device indices >= 0"
    if isinstance(devices, str):
        text = devices.strip()
        if text == "auto" or text.lstrip("-").isdigit():
            return devices_problem(int(text)) if text != "auto" else None
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if "," in text and parts and all(p.isdigit() for p in parts):
            return devices_problem([int(p) for p in parts])
    return "expected a number of devices, -1, auto, or comma-separated device indices (0,1)"


@dataclass
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    warmup_ratio: Optional[float] = None  # instead of warmup_steps: this share of the schedule's span (HF's ratio)
    schedule: str = "constant"  # constant | cosine (over each stage when the optimizer resets)
    min_lr_ratio: float = 0.1
    grad_clip: Optional[float] = None
    # When AdamW starts afresh: "epoch" (the release re-creates it at every epoch with reset_optimizer:
    # True, and its numbers come from that), "stage" (at each stage switch, as the paper's text says), "never".
    reset: str = "stage"
    decay_all: bool = False  # weight decay on every parameter (the release) instead of matrices only

    RESETS = ("epoch", "stage", "never")

    def __post_init__(self):
        require(math.isfinite(self.lr) and self.lr > 0, f"optim.lr must be a finite number > 0, got {self.lr}")
        require(math.isfinite(self.weight_decay) and self.weight_decay >= 0,
                 f"optim.weight_decay must be a finite number >= 0, got {self.weight_decay}")
        require(len(self.betas) == 2 and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas),
                 f"optim.betas must be two numbers in [0, 1), got {list(self.betas)}")
        require(self.warmup_steps >= 0, f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        require(self.warmup_ratio is None or (0 <= self.warmup_ratio < 1 and self.warmup_steps == 0),
                 f"optim.warmup_ratio must be in [0, 1) with optim.warmup_steps=0, got {self.warmup_ratio} "
                 f"(warmup_steps {self.warmup_steps})")
        require(0.0 <= self.min_lr_ratio <= 1.0, f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        require(self.grad_clip is None or (math.isfinite(self.grad_clip) and self.grad_clip > 0),
                 f"optim.grad_clip must be a finite number > 0 or null, got {self.grad_clip}")
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
    # With strategy=fsdp: auto | FULL_SHARD | SHARD_GRAD_OP | HYBRID_SHARD | NO_SHARD. FULL_SHARD frees a layer's
    # gathered weights after every decoder call, so a latent step (n + 1 calls) all-gathers each layer n + 2 times;
    # SHARD_GRAD_OP gathers it once per step and holds it until its backward (the whole model's weights at the
    # forward's end, as any way of not gathering again per pass would). auto: SHARD_GRAD_OP for the methods with
    # latent passes, FULL_SHARD for the others (docs/scale.md#fsdp-all-gathers-per-step).
    fsdp_sharding: str = "auto"
    lockstep: Optional[bool] = None  # equal decoder calls on every rank (needed by FSDP); None: on with FSDP
    limit_train_batches: Optional[float] = None
    limit_val_batches: Optional[float] = None
    # The test after training and `coconut eval` (a fraction up to 1.0, or a number of batches); results.json says so.
    limit_test_batches: Optional[float] = None
    val_every_n_epochs: int = 1
    # Validate within an epoch too: a fraction of it (0.25: four times) or every N training batches; null: at its end.
    val_check_interval: Any = None
    log_every_n_steps: int = 10
    # Stop after this many optimizer steps, wherever the schedule is then (last.ckpt is saved there and tested when
    # the final stage was not reached); null: the schedule's epochs.
    max_steps: Optional[int] = None
    # true (or N): N batches of training, validation and test through the whole run, in a temporary folder: nothing
    # is written into the run folder (coconut.train.dev_run).
    fast_dev_run: Any = False
    profiler: Optional[str] = None  # simple | advanced | pytorch: Lightning's profiler, its report in RUN_DIR/profiler/
    deterministic: bool = False
    progress_bar: bool = True

    PROFILERS = ("simple", "advanced", "pytorch")
    # Not a field: set by RunConfig when trainer.effective_batch lowered data.batch_size (said at the start).
    batch_note = ""

    def __post_init__(self):
        # -1 would train forever in Lightning, 0 train nothing (and then find no checkpoint to test).
        require(self.max_epochs >= 1, f"trainer.max_epochs must be >= 1, got {self.max_epochs}")
        require(self.accumulate_grad_batches >= 1,
                 f"trainer.accumulate_grad_batches must be >= 1, got {self.accumulate_grad_batches}")
        require(self.num_nodes >= 1, f"trainer.num_nodes must be >= 1, got {self.num_nodes}")
        require(self.accelerator in ACCELERATORS, f"trainer.accelerator={self.accelerator!r} is not one Lightning "
                                                  f"knows; choose one of {', '.join(ACCELERATORS)}")
        require(self.strategy in STRATEGIES,
                f"trainer.strategy={self.strategy!r} is not one coconut runs; choose "
                + "; ".join(f"{name} ({what})" for name, what in STRATEGIES.items()))
        require(str(self.precision) in PRECISIONS, f"trainer.precision={self.precision} is not one Lightning "
                                                   f"accepts; choose one of {', '.join(PRECISIONS)}")
        require(devices_problem(self.devices) is None, f"trainer.devices={self.devices}: {devices_problem(self.devices)}")
        for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
            value = getattr(self, key)
            require(value is None or (math.isfinite(value) and value > 0),
                     f"trainer.{key} must be > 0 (a fraction up to 1.0, or a number of batches) or null, got {value}")
        require(self.val_every_n_epochs >= 1 and self.log_every_n_steps >= 1,
                 "trainer.val_every_n_epochs and trainer.log_every_n_steps must be >= 1")
        require(self.max_steps is None or self.max_steps >= 1,
                f"trainer.max_steps must be >= 1 or null (no limit but the epochs), got {self.max_steps}")
        self.val_check_interval = check_val_interval(self.val_check_interval)
        require(isinstance(self.fast_dev_run, bool) or (isinstance(self.fast_dev_run, int) and self.fast_dev_run >= 0),
                f"trainer.fast_dev_run must be true, false or a number of batches >= 1, got {self.fast_dev_run!r}")
        require(self.profiler is None or self.profiler in self.PROFILERS,
                f"trainer.profiler={self.profiler!r} is not one of Lightning's; choose simple, advanced, pytorch or null")
        require(self.epochs_per_stage >= 1 and (self.first_stage_epochs or 1) >= 1,
                 "trainer.epochs_per_stage and trainer.first_stage_epochs must be >= 1")
        require(0 <= self.start_epoch < self.max_epochs,
                 f"trainer.start_epoch must be in [0, trainer.max_epochs), got {self.start_epoch}")
        require(self.effective_batch is None or self.effective_batch >= 1,
                 f"trainer.effective_batch must be >= 1 or null, got {self.effective_batch}")
        require(self.fsdp_sharding in FSDP_SHARDINGS,
                 f"trainer.fsdp_sharding must be {', '.join(FSDP_SHARDINGS[:-1])} or {FSDP_SHARDINGS[-1]}, "
                 f"got {self.fsdp_sharding!r}")

    def sharding_for(self, latent_passes: bool) -> str:
        """The FSDP sharding to run: `auto` resolved for a method with latent passes (several decoder calls per
        step) or without."""
        if self.fsdp_sharding != "auto":
            return self.fsdp_sharding
        return "SHARD_GRAD_OP" if latent_passes else "FULL_SHARD"

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

    def derive_batch(self, batch_size: int) -> int:
        """The per-device batch to run, with accumulate_grad_batches set, so that the effective batch is
        `effective_batch` (when set; else `batch_size` as it is).

        Accumulation alone when it can: effective_batch = batch_size x devices x nodes x accumulation. Where it
        cannot (128 on 8 devices with 32 each), each process's share (128 / 8 = 16) is split into equal micro-
        batches: the largest per-device batch up to data.batch_size that divides it, the rest accumulated. The
        mean gradient of an optimizer step is the same (equal micro-batches, averaged). No exact split: refused."""
        if self.effective_batch is None:
            return batch_size
        devices = self.device_count()
        require(devices is not None, f"trainer.effective_batch={self.effective_batch} needs trainer.devices as a "
                                      f"number (got {self.devices!r}) to derive the batch per device")
        processes = devices * self.num_nodes
        require(self.effective_batch % processes == 0,
                f"trainer.effective_batch={self.effective_batch} cannot be shared equally by trainer.devices x "
                f"trainer.num_nodes = {devices} x {self.num_nodes} = {processes} processes; choose an effective "
                f"batch that is a multiple of {processes}, another device count, or trainer.effective_batch=null")
        share = self.effective_batch // processes  # examples per process and optimizer step
        per_device = max(b for b in range(1, min(batch_size, share) + 1) if share % b == 0)
        derived = share // per_device
        require(self.accumulate_grad_batches in (1, derived),
                f"trainer.accumulate_grad_batches={self.accumulate_grad_batches} contradicts trainer.effective_batch="
                f"{self.effective_batch} ({per_device} per device x {processes} processes needs {derived}); set only "
                f"one of them")
        self.accumulate_grad_batches = derived
        return per_device

    def effective_batch_text(self, batch_size: int) -> str:
        devices = self.device_count()
        shown = "?" if devices is None else devices
        total = "?" if devices is None else batch_size * devices * self.num_nodes * self.accumulate_grad_batches
        note = f" ({self.batch_note})" if self.batch_note else ""
        return (f"effective batch {total} = {batch_size} per device x {shown} devices x {self.num_nodes} nodes x "
                f"{self.accumulate_grad_batches} accumulation{note}")
