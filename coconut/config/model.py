"""Which network, and how its last hidden state is fed back (the model and latent pieces)."""

from __future__ import annotations

import math
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
    init_new_rows: str = "copy"  # copy: init_token's row | mean: the mean of the vocabulary's rows (CODI's release)
    init_from: Optional[str] = None  # start from this Lightning checkpoint's weights (GSM8k COCONUT: the CoT run's)
    lora_rank: int = 0  # > 0: train LoRA adapters of this rank (peft) and the new tokens' embeddings only
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"  # or comma-separated module names (q_proj,v_proj / c_attn)
    lora_train_new_tokens: bool = True  # under LoRA the new tokens' rows train too (CODI's release keeps them frozen)
    trust_remote_code: bool = False
    # coconut eval: a checkpoint of the method's own release (hub id, folder or file; CODI's) on the base model
    # name_or_path, read as the method says (coconut.methods.Method.release_checkpoint); for CODI with
    # lora_rank/lora_alpha/lora_targets and latent.projection_dim as its --lora_r/--lora_alpha/--prj_dim (no ckpt=)
    release_checkpoint: Optional[str] = None

    SCRATCH_FIELDS = ("arch", "layers", "hidden", "heads", "intermediate", "max_positions", "tie_embeddings",
                      "embedding_init_std")

    def __post_init__(self):
        if self.from_scratch:
            require(self.arch in ("llama", "gpt2"),
                     f"model.arch must be llama or gpt2 for a model built from scratch, got {self.arch!r}")
            for key in ("layers", "hidden", "heads", "intermediate", "max_positions"):
                require(getattr(self, key) >= 1, f"model.{key} must be >= 1, got {getattr(self, key)}")
            require(self.hidden % self.heads == 0,
                     f"model.hidden ({self.hidden}) must be divisible by model.heads ({self.heads})")
        else:
            require(bool(self.name_or_path.strip()), "model.name_or_path must be a hub id or a folder, or null")
        require(self.lora_rank >= 0, f"model.lora_rank must be >= 0 (0: no LoRA), got {self.lora_rank}")
        require(self.lora_rank == 0 or self.lora_alpha > 0, f"model.lora_alpha must be > 0, got {self.lora_alpha}")
        require(0.0 <= self.lora_dropout < 1.0, f"model.lora_dropout is a probability, must be in [0, 1), "
                                                f"got {self.lora_dropout}")
        require(self.init_token is None or self.init_token != "", "model.init_token must be a token or null, not empty")
        require(self.init_new_rows in ("copy", "mean"), f"model.init_new_rows must be copy or mean, got "
                                                        f"{self.init_new_rows!r}")
        if self.release_checkpoint is not None:
            require(bool(self.release_checkpoint.strip()),
                    "model.release_checkpoint must be a hub id, folder or file, or null")
            require(not self.from_scratch and self.lora_rank > 0,
                    "model.release_checkpoint needs the base model it was trained from (model.name_or_path) and its LoRA "
                    "rank (model.lora_rank, the release's --lora_r)")

    @property
    def from_scratch(self) -> bool:
        return self.name_or_path is None


COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class LatentConfig:
    """How the last hidden state becomes the next input embedding, and how many thoughts a row takes."""

    projection: bool = False  # learned map hidden -> next input embedding, initialised to identity
    # With a width: CODI's MLP instead (dropout, linear to this width, GELU, linear back, LayerNorm unless
    # projection_norm=false), as its release's use_prj / prj_dim / prj_dropout / prj_no_ln.
    projection_dim: Optional[int] = None
    projection_dropout: float = 0.0
    projection_norm: bool = True
    thought_scale: float = 1.0  # factor on the fed-back hidden state
    auto_thought_scale: bool = False  # measure it at the first latent stage: embeddings' norm / hidden norm
    jacobi_iterations: Optional[int] = None  # thoughts in parallel by this many Jacobi iterations (PCCoT); None: sequential
    stop_classifier: bool = False  # learn when to stop thinking (a classifier on the thoughts; eval.thoughts=learned)
    stop_loss_weight: float = 1.0  # its loss, added to the LM loss (it reads detached thoughts)
    # torch.compile the decoder calls of the latent passes in this mode (default, reduce-overhead, max-autotune);
    # null: eager (the default until it measures faster: `coconut bench --compile default`).
    compile: Optional[str] = None

    def __post_init__(self):
        require(self.projection_dim is None or (self.projection and self.projection_dim >= 1),
                 f"latent.projection_dim={self.projection_dim} needs latent.projection=true and a width >= 1")
        require(0.0 <= self.projection_dropout < 1.0,
                 f"latent.projection_dropout must be in [0, 1), got {self.projection_dropout}")
        require(self.jacobi_iterations is None or self.jacobi_iterations >= 1,
                 f"latent.jacobi_iterations must be >= 1 or null, got {self.jacobi_iterations}")
        require(self.compile in COMPILE_MODES,
                 f"latent.compile must be null or one of {', '.join(m for m in COMPILE_MODES if m)}, got {self.compile!r}")
        require(math.isfinite(self.thought_scale), f"latent.thought_scale must be a finite number, got {self.thought_scale}")
        require(math.isfinite(self.stop_loss_weight) and self.stop_loss_weight >= 0,
                 f"latent.stop_loss_weight must be a finite number >= 0, got {self.stop_loss_weight}")
