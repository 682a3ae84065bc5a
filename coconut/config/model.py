"""Which network, and how its last hidden state is fed back (the model and latent pieces)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from coconut.config.checks import require


@dataclass
class ModelConfig:
    """A pretrained model (`name_or_path`) or a tiny one built from scratch (`arch` and sizes)."""

    name_or_path: Optional[str] = None  # hub id or local folder; None builds `arch` from scratch
    arch: str = "llama"  # from scratch: llama | gpt2
    layers: int = 2
    hidden: int = 64
    heads: int = 4
    intermediate: int = 256
    max_positions: int = 512
    tie_embeddings: bool = True
    embedding_init_std: float = 0.02
    init_token: Optional[str] = None  # new special tokens copy this token's embedding (default: EOS)
    init_from: Optional[str] = None  # start from this Lightning checkpoint's weights (GSM8k COCONUT: the CoT run's)
    lora_rank: int = 0  # > 0: train LoRA adapters of this rank (peft) and the new tokens' embeddings only
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"  # or comma-separated module names (q_proj,v_proj / c_attn)
    trust_remote_code: bool = False

    SCRATCH_FIELDS = ("arch", "layers", "hidden", "heads", "intermediate", "max_positions", "tie_embeddings",
                      "embedding_init_std")

    def __post_init__(self):
        if self.from_scratch:
            require(self.arch in ("llama", "gpt2"),
                     f"model.arch must be llama or gpt2 for a model built from scratch, got {self.arch!r}")
            require(self.hidden % self.heads == 0,
                     f"model.hidden ({self.hidden}) must be divisible by model.heads ({self.heads})")

    @property
    def from_scratch(self) -> bool:
        return self.name_or_path is None


@dataclass
class LatentConfig:
    """How the last hidden state becomes the next input embedding, and how many thoughts a row takes."""

    projection: bool = False  # learned map hidden -> next input embedding, initialised to identity
    thought_scale: float = 1.0  # factor on the fed-back hidden state
    auto_thought_scale: bool = False  # measure it at the first latent stage: embeddings' norm / hidden norm
    jacobi_iterations: Optional[int] = None  # thoughts in parallel by this many Jacobi iterations (PCCoT); None: sequential
    stop_classifier: bool = False  # learn when to stop thinking (a classifier on the thoughts; eval.thoughts=learned)
    stop_loss_weight: float = 1.0  # its loss, added to the LM loss (it reads detached thoughts)

    def __post_init__(self):
        require(self.jacobi_iterations is None or self.jacobi_iterations >= 1,
                 f"latent.jacobi_iterations must be >= 1 or null, got {self.jacobi_iterations}")
