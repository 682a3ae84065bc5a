"""iCoT (Deng et al.): stepwise internalisation, the leading CoT tokens removed gradually, batch by batch.

Its removal follows the batch within the epoch, not the stage (coconut.methods.icot_schedule plans it, and the
trainer resets AdamW at each increment of the removal count instead of at stage switches)."""

from dataclasses import dataclass
from typing import Optional

from coconut.methods.base import Method


@dataclass
class ICoTOptions:
    # Deng et al.'s release (src/train.py): CoT tokens removed from the left per epoch, spread over its batches
    # (--remove_per_epoch 8); from this count on, all of them (--remove_all_when_remove_beyond, GSM8k 39; null =
    # never); lambda of the per-sample extra removal P(o) ~ exp(-lambda*o) (--removal_smoothing_lambda, 4 in the
    # README's commands; 0 or .inf turns it off).
    icot_remove_per_epoch: float = 8.0
    icot_remove_all_beyond: Optional[int] = None
    icot_smoothing: float = 4.0

    @staticmethod
    def problems(cfg) -> list[str]:
        out = []
        if cfg.icot_smoothing < 0:
            out.append(f"method.icot_smoothing must be >= 0, got {cfg.icot_smoothing}")
        if not cfg.icot_remove_per_epoch > 0:
            out.append(f"method.icot_remove_per_epoch must be > 0, got {cfg.icot_remove_per_epoch}")
        if cfg.icot_remove_all_beyond is not None and cfg.icot_remove_all_beyond < 0:
            out.append(f"method.icot_remove_all_beyond must be >= 0 or null, got {cfg.icot_remove_all_beyond}")
        return out


class ICoT(Method):
    name, label = "icot", "iCoT"
    description = "stepwise internalisation: leading CoT tokens removed gradually, batch by batch"
    paper = {"gsm8k": (30.0, 2.2), "prontoqa": (99.8, 3.0), "prosqa": (98.2, 8.2)}  # COCONUT's Table 1 (GPT-2)
    options = (ICoTOptions,)
    batch_dependent = True

    def final_stage(self, cfg, last_stage):
        # Training decides per epoch instead (coconut.methods.icot_schedule.epoch_is_final: once the schedule
        # removes every CoT, or the last epoch); this serves evaluations of a frozen stage.
        return last_stage
