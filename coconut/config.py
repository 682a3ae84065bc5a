"""The one configuration schema: typed pieces, each checking itself, with derived values as methods.

    RunConfig
      model    which network (a pretrained hub id or folder, or a tiny one built from scratch) and LoRA
      latent   how continuous thoughts are fed back (projection, scale, Jacobi, learned stop)
      data     record files or a generator, tokenizer, batch sizes
      method   which paper row builds the samples (COCONUT, CoT, No-CoT, iCoT, pause, ablations)
      optim    AdamW and the learning-rate schedule
      trainer  Lightning: devices, strategy, precision, epochs and the stage schedule
      eval     generation when validating and testing
      decode   what generation reads back after a token (greedy, Soft Thinking, Mixture of Inputs)

Torch-free, so `coconut --help` and config loading stay fast. Files and overrides are merged into it
by `coconut.experiment.load_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from coconut.methods import METHODS, STEPWISE_METHODS
from coconut.schedule import StageSchedule

__all__ = ["METHODS", "STEPWISE_METHODS", "StageSchedule"]  # re-exported beside the schema pieces


class ConfigError(ValueError):
    """A configuration problem, with the key or file named."""


DECODERS = ("greedy", "soft_thinking", "mixture_of_inputs")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


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
            _require(self.arch in ("llama", "gpt2"),
                     f"model.arch must be llama or gpt2 for a model built from scratch, got {self.arch!r}")
            _require(self.hidden % self.heads == 0,
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
        _require(self.jacobi_iterations is None or self.jacobi_iterations >= 1,
                 f"latent.jacobi_iterations must be >= 1 or null, got {self.jacobi_iterations}")


@dataclass
class DataConfig:
    """Record files, or a generator that writes them when they are missing."""

    generator: Optional[str] = "prosqa-mini"  # prosqa | prosqa-mini | prontoqa | None (files must exist)
    allow_generated: bool = True  # false: missing files are an error, not generated (the Table 1 data sets)
    train_file: Optional[str] = None  # default: <data_dir>/train.json or a release's name (docs/data.md)
    val_file: Optional[str] = None
    test_file: Optional[str] = None
    data_dir: str = "data/${data.generator}"
    train_size: int = 20000
    val_size: int = 500
    test_size: int = 500
    seed: int = 0
    tokenizer: str = "word"  # word (built from the data) | model (the pretrained model's) | a hub id or path
    # How records become text: "compact" (one word-level token per symbol, answer after "=") or
    # "paper" (question\n, step\n, "### answer", as the paper formats GPT-2 inputs).
    text_format: str = "compact"
    batch_size: int = 32
    eval_batch_size: int = 64
    num_workers: int = 0
    max_length: Optional[int] = None  # default: the model's context
    drop_too_long: bool = False

    def __post_init__(self):
        _require(self.generator in (None, "prosqa", "prosqa-mini", "prontoqa"),
                 f"data.generator must be prosqa, prosqa-mini, prontoqa or null, got {self.generator!r}")
        _require(self.generator is not None or self.train_file is not None,
                 "data.train_file is required when data.generator is null")
        _require(self.text_format in ("compact", "paper"),
                 f"data.text_format must be compact or paper, got {self.text_format!r}")
        _require(self.batch_size >= 1 and self.eval_batch_size >= 1,
                 "data.batch_size and data.eval_batch_size must be >= 1")

    def files(self) -> dict[str, Path]:
        """The split files: the ones named, else found in data_dir under our or the releases' names."""
        from coconut.data.release import split_file  # the candidate names live there, beside the releases

        named = {"train": self.train_file, "val": self.val_file, "test": self.test_file}
        return {split: Path(path) if path else split_file(self.data_dir, split) for split, path in named.items()}

    def sizes(self) -> dict[str, int]:
        return {"train": self.train_size, "val": self.val_size, "test": self.test_size}


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

    def __post_init__(self):
        _require(self.name in METHODS, f"unknown method {self.name!r}; expected one of {', '.join(METHODS)}")
        for key in ("thoughts_per_step", "max_latent_stage", "num_pause", "icot_smoothing"):
            _require(getattr(self, key) >= 0, f"method.{key} must be >= 0, got {getattr(self, key)}")
        _require(self.icot_remove_per_epoch > 0,
                 f"method.icot_remove_per_epoch must be > 0, got {self.icot_remove_per_epoch}")
        _require(self.icot_remove_all_beyond is None or self.icot_remove_all_beyond >= 0,
                 f"method.icot_remove_all_beyond must be >= 0 or null, got {self.icot_remove_all_beyond}")
        _require(0.0 <= self.uniform_prob <= 1.0, f"method.uniform_prob must be in [0, 1], got {self.uniform_prob}")

    @property
    def max_thoughts(self) -> int:
        """Thoughts of the final stage: every step replaced."""
        return self.max_latent_stage * self.thoughts_per_step

    def used_fields(self) -> tuple[str, ...]:
        """The fields this method reads (the rest are shown only when they apply)."""
        if self.name in ("cot", "no_cot"):
            return ("name",)
        if self.name == "pause":
            return ("name", "num_pause")
        if self.name == "icot":
            return ("name", "icot_remove_per_epoch", "icot_remove_all_beyond", "icot_smoothing")
        return ("name", "thoughts_per_step", "max_latent_stage", "pad_latent_to_max", "uniform_prob", "eot_at_stage0")


@dataclass
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    schedule: str = "constant"  # constant | cosine (over each stage when the optimizer resets)
    min_lr_ratio: float = 0.1
    grad_clip: Optional[float] = None
    reset_each_stage: bool = True  # the paper resets the optimizer at every stage

    def __post_init__(self):
        _require(self.schedule in ("constant", "cosine"),
                 f"optim.schedule must be constant or cosine, got {self.schedule!r}")


@dataclass
class TrainerConfig:
    accelerator: str = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    max_epochs: int = 10
    epochs_per_stage: int = 1
    first_stage_epochs: Optional[int] = None  # stage 0 (CoT) may train longer; None = epochs_per_stage
    accumulate_grad_batches: int = 1  # effective batch = data.batch_size x devices x num_nodes x this
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
        _require(self.epochs_per_stage >= 1 and (self.first_stage_epochs or 1) >= 1,
                 "trainer.epochs_per_stage and trainer.first_stage_epochs must be >= 1")
        _require(self.fsdp_sharding in ("FULL_SHARD", "SHARD_GRAD_OP", "HYBRID_SHARD", "NO_SHARD"),
                 f"trainer.fsdp_sharding must be FULL_SHARD, SHARD_GRAD_OP, HYBRID_SHARD or NO_SHARD, "
                 f"got {self.fsdp_sharding!r}")

    @property
    def schedule(self) -> StageSchedule:
        return StageSchedule(self.epochs_per_stage, self.first_stage_epochs)

    @property
    def last_stage(self) -> int:
        """The stage of the last epoch."""
        return self.schedule.stage(self.max_epochs - 1)


@dataclass
class EvalConfig:
    max_new_tokens: int = 64
    thoughts: str = "fixed"  # fixed: the stage's k*c thoughts | learned: until the stop classifier says stop
    stop_threshold: float = 0.5  # learned: stop when P(stop) reaches this
    samples_to_log: int = 4  # generations shown as text in TensorBoard at each validation

    def __post_init__(self):
        _require(self.thoughts in ("fixed", "learned"), f"eval.thoughts must be fixed or learned, got {self.thoughts!r}")


@dataclass
class DecodeConfig:
    name: str = "greedy"  # greedy | soft_thinking | mixture_of_inputs; defaults: the releases' (soft_inputs.py)
    temperature: float = 0.6  # soft_thinking: divides the logits before the filters and the cold-stop entropy
    top_k: int = 30  # soft_thinking: the most likely tokens kept,
    top_p: float = 0.95  # then the smallest prefix reaching this renormalised mass,
    min_p: float = 0.001  # then tokens below min_p x the most likely one dropped;
    max_topk: int = 10  # the most likely survivors mixed, at most
    cold_stop_entropy: float = 0.01  # soft_thinking: entropy (nats) under which a step is confident; 0 = off
    cold_stop_patience: int = 256  # soft_thinking: confident steps in a row, then the answer marker is written
    beta: float = 1.0  # mixture_of_inputs: weight of the observed token against the top-k distribution
    moi_top_k: int = 20  # mixture_of_inputs: tokens in the prior; its log normalises the entropy, so >= 2

    def __post_init__(self):
        _require(self.name in DECODERS, f"decode.name must be one of {', '.join(DECODERS)}, got {self.name!r}")
        least = (("top_k", 1), ("max_topk", 1), ("cold_stop_patience", 1), ("moi_top_k", 2))  # log(moi_top_k) divides
        ok = {"temperature > 0": self.temperature > 0, "top_p in (0, 1]": 0 < self.top_p <= 1,
              "min_p in [0, 1]": 0 <= self.min_p <= 1, "cold_stop_entropy >= 0": self.cold_stop_entropy >= 0,
              "beta >= 0": self.beta >= 0, **{f"{key} >= {n}": getattr(self, key) >= n for key, n in least}}
        _require(all(ok.values()), "must hold: " + ", ".join(f"decode.{rule}" for rule, good in ok.items() if not good))

    def used_fields(self) -> tuple[str, ...]:
        soft = ("temperature", "top_k", "top_p", "min_p", "max_topk", "cold_stop_entropy", "cold_stop_patience")
        return ("name",) + {"soft_thinking": soft, "mixture_of_inputs": ("beta", "moi_top_k")}.get(self.name, ())


@dataclass
class RunConfig:
    name: str = "run"
    output_dir: str = "runs"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    latent: LatentConfig = field(default_factory=LatentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def __post_init__(self):
        """Checks that span pieces, with the keys named."""
        _require(self.eval.thoughts != "learned" or self.latent.stop_classifier,
                 "eval.thoughts=learned needs a model trained with latent.stop_classifier=true")
        _require(not (self.trainer.strategy == "fsdp" and self.latent.auto_thought_scale),
                 "latent.auto_thought_scale measures the model outside its forward pass, where FSDP keeps the "
                 "weights sharded; set latent.thought_scale to a value (measure it in a one-device run) and "
                 "latent.auto_thought_scale=false")

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def final_stage(self) -> int:
        """The stage from which the samples no longer change (0 for methods without a curriculum)."""
        if self.method.name in STEPWISE_METHODS:
            return self.method.max_latent_stage + 1
        if self.method.name == "icot":
            # Training decides per epoch instead (coconut.data.icot_schedule.epoch_is_final: once the schedule
            # removes every CoT, or the last epoch); this serves evaluations of a frozen stage.
            return self.trainer.last_stage
        return 0
