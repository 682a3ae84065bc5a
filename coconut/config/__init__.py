"""The one configuration schema: typed pieces, each checking itself, with derived values as methods.

    RunConfig
      model    which network (a pretrained hub id or folder, or a tiny one built from scratch) and LoRA
      latent   how continuous thoughts are fed back (projection, scale, Jacobi, learned stop)
      data     record files or a generator, tokenizer, batch sizes
      method   which paper row builds the samples (COCONUT, CoT, No-CoT, iCoT, pause, ablations)
      optim    AdamW and the learning-rate schedule
      trainer  Lightning: devices, strategy, precision, epochs and the stage schedule, steps, profiler
      logger   Lightning's loggers (tensorboard, csv, wandb, mlflow)
      eval     generation when validating and testing
      decode   what generation reads back after a token (greedy, Soft Thinking, Mixture of Inputs)

One module per piece (model, data, method, training, evaluation), all re-exported here. Torch-free, so
`coconut --help` and config loading stay fast. Files and overrides are merged into it by
`coconut.experiment.load_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coconut.config.checks import ConfigError, require
from coconut.config.data import DataConfig
from coconut.config.evaluation import DECODERS, DEFAULT_MAX_NEW_TOKENS, DecodeConfig, EvalConfig
from coconut.config.loggers import DEFAULT_LOGGERS, logger_names
from coconut.config.method import MethodConfig
from coconut.config.model import LatentConfig, ModelConfig
from coconut.config.training import OptimConfig, TrainerConfig
from coconut.methods import METHODS, STEPWISE_METHODS, method
from coconut.schedule import StageSchedule

# What Lightning's seed_everything accepts (numpy's seeds are unsigned 32-bit integers).
SEED_RANGE = (0, 2**32 - 1)

__all__ = ["SEED_RANGE", "METHODS", "STEPWISE_METHODS", "StageSchedule", "ConfigError", "DECODERS", "DEFAULT_MAX_NEW_TOKENS", "ModelConfig", "LatentConfig",
           "DataConfig", "MethodConfig", "OptimConfig", "TrainerConfig", "EvalConfig", "DecodeConfig", "RunConfig"]


@dataclass
class RunConfig:
    name: str = "run"
    output_dir: str = "runs"
    seed: int = 0
    # Lightning's loggers the run writes to: tensorboard, csv, wandb, mlflow (a list or comma-separated); the
    # metrics history csv/metrics.csv is always written (coconut.config.loggers).
    logger: Any = field(default_factory=lambda: list(DEFAULT_LOGGERS))
    model: ModelConfig = field(default_factory=ModelConfig)
    latent: LatentConfig = field(default_factory=LatentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def __post_init__(self):
        """Checks that span pieces, with the keys named; derived settings (gradient accumulation) are set here."""
        # The run folder is output_dir/name: a name with a separator or ".." would put it elsewhere
        # (name=../../x wrote outside output_dir), and "" or "." is output_dir itself, every run's parent.
        require(self.name not in ("", ".", "..") and not any(c in self.name for c in '/\\\0')
                and self.name.strip() == self.name,
                f"name={self.name!r} must be a plain folder name (no '/', no '..', not empty): the run folder is "
                f"output_dir/name")
        require(SEED_RANGE[0] <= self.seed <= SEED_RANGE[1],
                f"seed={self.seed} must be in [{SEED_RANGE[0]}, {SEED_RANGE[1]}] (Lightning seeds numpy, which takes "
                f"unsigned 32-bit seeds); choose a seed in that range")
        require(bool(self.output_dir.strip()), "output_dir must not be empty (it is the folder of the run folders)")
        self.logger = logger_names(self.logger)
        # Once, before anything reads data.batch_size (the data module, the step check, results.json).
        requested = self.data.batch_size
        self.data.batch_size = self.trainer.derive_batch(requested)
        if self.data.batch_size != requested:
            self.trainer.batch_note = (f"data.batch_size={requested} lowered to {self.data.batch_size} to reach "
                                       f"trainer.effective_batch={self.trainer.effective_batch} exactly")
        chosen = method(self.method.name)
        require(self.model.release_checkpoint is None or chosen.release_checkpoint is not None,
                f"model.release_checkpoint is read for methods with a release to read "
                f"({', '.join(n for n, m in METHODS.items() if m.release_checkpoint)}), not method={chosen.name}")
        for problem in chosen.run_problems(self):
            require(False, problem)
        require(self.eval.thoughts != "learned" or self.latent.stop_classifier,
                 "eval.thoughts=learned needs a model trained with latent.stop_classifier=true")
        require(not (self.trainer.strategy == "fsdp" and self.latent.auto_thought_scale),
                 "latent.auto_thought_scale measures the model outside its forward pass, where FSDP keeps the "
                 "weights sharded; set latent.thought_scale to a value (measure it in a one-device run) and "
                 "latent.auto_thought_scale=false")

    def fsdp_sharding(self) -> str:
        """trainer.fsdp_sharding for this run's method (`auto` resolved: see TrainerConfig.fsdp_sharding)."""
        return self.trainer.sharding_for(METHODS[self.method.name].latent_passes)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def final_stage(self) -> int:
        """The stage from which the samples no longer change (0 for methods without a curriculum)."""
        return method(self.method.name).final_stage(self.method, self.trainer.last_stage)
