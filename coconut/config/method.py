"""Which paper row builds the samples, and the curriculum's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from coconut.config.checks import require
from coconut.methods import METHODS, method


@dataclass
class MethodConfig:
    """How a method builds its samples. Fields a method does not use are left out of the shown config."""

    name: str = "coconut"
    thoughts_per_step: int = 1  # c: ProsQA/ProntoQA 1, GSM8k 2
    max_latent_stage: int = 6  # stages beyond this remove every step and keep max_latent_stage*c thoughts
    pad_latent_to_max: bool = False  # k*c thoughts at stage k (max at the end) even for records with fewer steps
    uniform_prob: float = 0.0  # chance of training a sample at a random other stage (latent-search analysis: 0.3)
    # Stage 0 as `question <bot> <eot> steps` (the paper) or `question <bot> steps`. Without <eot> the hidden
    # state at <bot> learns to predict the first step, which makes it a useful first thought at stage 1.
    eot_at_stage0: bool = True
    num_pause: int = 6  # pause: <|pause|> tokens between question and answer
    # icot, Deng et al.'s release (src/train.py): CoT tokens removed from the left per epoch, spread over its
    # batches (--remove_per_epoch 8); from this count on, all of them (--remove_all_when_remove_beyond, GSM8k
    # 39; null = never); lambda of the per-sample extra removal P(o) ~ exp(-lambda*o) (--removal_smoothing_lambda,
    # 4 in the README's commands; 0 or .inf turns it off).
    icot_remove_per_epoch: float = 8.0
    icot_remove_all_beyond: Optional[int] = None
    icot_smoothing: float = 4.0
    # codi, the release's names, with the values all its scripts set (zhenyi4/codi scripts/; its code's defaults
    # differ for distill_loss_div_std and remove_eos): the student's continuous thoughts; the distillation's factor,
    # distance (smooth_l1 with beta 1, or l2) and division by the teacher's std per layer; the teacher's CE factor;
    # no EOS after question and CoT; the teacher's CoT without its last step unless include_last_cot; records
    # longer than max_token_num tokens (question + CoT + answer) skipped in training.
    num_latent: int = 6
    distill_loss_factor: float = 1.0
    ref_loss_factor: float = 1.0
    distill_loss_type: str = "smooth_l1"
    distill_loss_div_std: bool = True
    remove_eos: bool = True
    include_last_cot: bool = False
    max_token_num: int = 1000

    def __post_init__(self):
        require(self.name in METHODS, f"unknown method {self.name!r}; expected one of {', '.join(METHODS)}")
        for key in ("thoughts_per_step", "max_latent_stage", "num_pause", "icot_smoothing"):
            require(getattr(self, key) >= 0, f"method.{key} must be >= 0, got {getattr(self, key)}")
        require(self.icot_remove_per_epoch > 0,
                 f"method.icot_remove_per_epoch must be > 0, got {self.icot_remove_per_epoch}")
        require(self.icot_remove_all_beyond is None or self.icot_remove_all_beyond >= 0,
                 f"method.icot_remove_all_beyond must be >= 0 or null, got {self.icot_remove_all_beyond}")
        require(0.0 <= self.uniform_prob <= 1.0, f"method.uniform_prob must be in [0, 1], got {self.uniform_prob}")
        for problem in method(self.name).check(self):
            require(False, problem)

    @property
    def max_thoughts(self) -> int:
        """Thoughts of the final stage (COCONUT: every step replaced, max_latent_stage x c; CODI: num_latent), for a
        question with steps enough."""
        return method(self.name).final_thoughts(self)

    def used_fields(self) -> tuple[str, ...]:
        """The fields this method reads (the rest are shown only when they apply)."""
        return method(self.name).used_fields()
