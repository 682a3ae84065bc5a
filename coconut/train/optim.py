"""AdamW and the learning-rate schedule: warmup, then constant or cosine, restarted at each stage on reset."""

from __future__ import annotations

import math

import torch

from coconut.config import OptimConfig, StageSchedule


def build_optimizer(named_parameters, o: OptimConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on every parameter with `decay_all` (the release), else on matrices only."""
    decay, no_decay = [], []
    for name, p in named_parameters:
        if p.requires_grad:
            exempt = not o.decay_all and (p.ndim < 2 or "norm" in name.lower())
            (no_decay if exempt else decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=o.lr, betas=tuple(o.betas),
    )


def lr_factor(step: int, o: OptimConfig, schedule: StageSchedule, steps_per_epoch: int, max_epochs: int) -> float:
    """The multiplier of the base rate at optimizer step `step`."""
    if o.reset != "never":  # the schedule restarts with each stage (a fresh optimizer at least there)
        stage = schedule.stage(step // steps_per_epoch)
        step -= schedule.start(stage) * steps_per_epoch
        span = steps_per_epoch * schedule.length(stage)
    else:
        span = steps_per_epoch * max_epochs
    warmup = o.warmup_steps if o.warmup_ratio is None else math.ceil(o.warmup_ratio * span)
    if warmup and step < warmup:
        return (step + 1) / warmup
    if o.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, span - warmup))
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
