"""Typed configuration: dataclass schema + OmegaConf merge of conf/ groups, an experiment file and overrides.

    coconut train prosqa_coconut trainer=ddp trainer.devices=4 optim.lr=1e-4

An experiment file (experiments/NAME.yaml) picks one option per group under `defaults:` and lists only
what differs. `group=option` on the command line swaps a group; `a.b=value` sets a field. Unknown keys
and wrong types fail at start with the key named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from coconut.data.curriculum import MethodConfig
from coconut.decode_config import DecodeConfig

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
EXPERIMENTS_DIR = ROOT / "experiments"
GROUPS = ("model", "data", "method", "optim", "trainer", "decode")


class ConfigError(ValueError):
    """A configuration problem, with the key or file named."""


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
    latent_projection: bool = False  # learned map hidden -> next input embedding, initialised to identity
    thought_scale: float = 1.0  # factor on the fed-back hidden state
    auto_thought_scale: bool = False  # measure it at the first latent stage: embeddings' norm / hidden norm
    init_token: Optional[str] = None  # new special tokens copy this token's embedding (default: EOS)
    init_from: Optional[str] = None  # start from this Lightning checkpoint's weights (GSM8k COCONUT: the CoT run's)
    lora_rank: int = 0  # > 0: train LoRA adapters of this rank (peft) and the new tokens' embeddings only
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"  # or comma-separated module names (q_proj,v_proj / c_attn)
    jacobi_iterations: Optional[int] = None  # thoughts in parallel by this many Jacobi iterations (PCCoT); None: sequential
    stop_classifier: bool = False  # learn when to stop thinking (a classifier on the thoughts; eval.thoughts=learned)
    stop_loss_weight: float = 1.0  # its loss, added to the LM loss (it reads detached thoughts)
    trust_remote_code: bool = False


@dataclass
class DataConfig:
    """Record files, or a generator that writes them when they are missing."""

    generator: Optional[str] = "prosqa-mini"  # prosqa | prosqa-mini | prontoqa | None (files must exist)
    train_file: Optional[str] = None  # default: <data_dir>/train.json
    val_file: Optional[str] = None
    test_file: Optional[str] = None
    data_dir: str = "data/${data.generator}"
    train_size: int = 20000
    val_size: int = 500
    test_size: int = 500
    seed: int = 0
    tokenizer: str = "word"  # word (built from the data) | model (the pretrained model's) | a hub id or path
    text_format: str = "word"  # word | pretrained (question\\n, step\\n, '### answer')
    batch_size: int = 32
    eval_batch_size: int = 64
    num_workers: int = 0
    max_length: Optional[int] = None  # default: the model's context
    drop_too_long: bool = False


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


@dataclass
class EvalConfig:
    max_new_tokens: int = 64
    thoughts: str = "fixed"  # fixed: the stage's k*c thoughts | learned: until the stop classifier says stop
    stop_threshold: float = 0.5  # learned: stop when P(stop) reaches this
    samples_to_log: int = 4  # generations shown as text in TensorBoard at each validation


@dataclass
class RunConfig:
    name: str = "run"
    output_dir: str = "runs"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)  # what generation reads back after a token

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


def _read_yaml(path: Path) -> DictConfig:
    try:
        return OmegaConf.load(path)
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such file") from err
    except Exception as err:  # yaml syntax errors
        raise ConfigError(f"{path}: not valid YAML ({err})") from err


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _group_file(group: str, option: str) -> Path:
    path = CONF_DIR / group / f"{option}.yaml"
    if not path.exists():
        raise ConfigError(f"{group}={option}: no file {path}; options: {', '.join(group_options(group))}")
    return path


def experiment_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise ConfigError(f"{path}: no such experiment file")
        return path
    path = EXPERIMENTS_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml")))
        raise ConfigError(f"unknown experiment {name_or_path!r}; known: {known}")
    return path


def load_config(experiment: str | None = None, overrides: list[str] = ()) -> RunConfig:
    """Schema <- group defaults <- experiment <- command-line overrides; checked and resolved."""
    schema = OmegaConf.structured(RunConfig)
    exp = _read_yaml(experiment_path(experiment)) if experiment else OmegaConf.create()
    chosen = dict(OmegaConf.to_container(exp.pop("defaults", OmegaConf.create()), resolve=False) or {})
    field_overrides = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        if key in GROUPS:
            chosen[key] = value
        else:
            field_overrides.append(item)
    unknown = set(chosen) - set(GROUPS)
    if unknown:
        raise ConfigError(f"defaults: unknown group(s) {', '.join(sorted(unknown))}; groups: {', '.join(GROUPS)}")
    layers = [schema]
    for group in GROUPS:
        if group in chosen and chosen[group] is not None:
            path = _group_file(group, str(chosen[group]))
            layers.append(OmegaConf.create({group: _read_yaml(path)}))
    try:
        if experiment and "name" not in exp:
            exp.name = Path(experiment).stem
        cfg = OmegaConf.merge(*layers, exp, OmegaConf.from_dotlist(field_overrides))
        OmegaConf.resolve(cfg)
        run = OmegaConf.to_object(cfg)  # runs the dataclasses' own checks (MethodConfig's)
    except OmegaConfBaseException as err:
        where = f" in {experiment}" if experiment else ""
        message = str(err).splitlines()[0]
        raise ConfigError(f"config{where}: {message} (key: {getattr(err, 'full_key', '?')})") from err
    except ValueError as err:
        raise ConfigError(f"config{' in ' + experiment if experiment else ''}: {str(err).splitlines()[0]}") from err
    check(run)
    return run


def load_group(group: str, option: str):
    """One group option on its own, checked against the schema (e.g. a DecodeConfig)."""
    schema = OmegaConf.structured(RunConfig)
    try:
        return OmegaConf.to_object(OmegaConf.merge(schema[group], _read_yaml(_group_file(group, option))))
    except (OmegaConfBaseException, ValueError) as err:
        raise ConfigError(f"{group}={option}: {str(err).splitlines()[0]}") from err


def check(cfg: RunConfig) -> None:
    """Checks that span several fields, with the keys named."""
    if cfg.model.name_or_path is None and cfg.model.arch not in ("llama", "gpt2"):
        raise ConfigError(f"model.arch must be llama or gpt2 for a model built from scratch, got {cfg.model.arch!r}")
    if cfg.model.hidden % cfg.model.heads:
        raise ConfigError(f"model.hidden ({cfg.model.hidden}) must be divisible by model.heads ({cfg.model.heads})")
    if cfg.data.generator is None and cfg.data.train_file is None:
        raise ConfigError("data.train_file is required when data.generator is null")
    if cfg.data.generator not in (None, "prosqa", "prosqa-mini", "prontoqa"):
        raise ConfigError(f"data.generator must be prosqa, prosqa-mini, prontoqa or null, got {cfg.data.generator!r}")
    if cfg.data.text_format not in ("word", "pretrained"):
        raise ConfigError(f"data.text_format must be word or pretrained, got {cfg.data.text_format!r}")
    if cfg.optim.schedule not in ("constant", "cosine"):
        raise ConfigError(f"optim.schedule must be constant or cosine, got {cfg.optim.schedule!r}")
    if cfg.trainer.epochs_per_stage < 1 or (cfg.trainer.first_stage_epochs or 1) < 1:
        raise ConfigError("trainer.epochs_per_stage and trainer.first_stage_epochs must be >= 1")
    if cfg.eval.thoughts not in ("fixed", "learned"):
        raise ConfigError(f"eval.thoughts must be fixed or learned, got {cfg.eval.thoughts!r}")
    if cfg.eval.thoughts == "learned" and not cfg.model.stop_classifier:
        raise ConfigError("eval.thoughts=learned needs a model trained with model.stop_classifier=true")
    if cfg.trainer.fsdp_sharding not in ("FULL_SHARD", "SHARD_GRAD_OP", "HYBRID_SHARD", "NO_SHARD"):
        raise ConfigError(f"trainer.fsdp_sharding must be FULL_SHARD, SHARD_GRAD_OP, HYBRID_SHARD or NO_SHARD, "
                          f"got {cfg.trainer.fsdp_sharding!r}")
    if cfg.trainer.strategy == "fsdp" and cfg.model.auto_thought_scale:
        raise ConfigError("model.auto_thought_scale measures the model outside its forward pass, where FSDP keeps the "
                          "weights sharded; set model.thought_scale to a value (measure it in a one-device run) "
                          "and model.auto_thought_scale=false")
    if cfg.data.batch_size < 1 or cfg.data.eval_batch_size < 1:
        raise ConfigError("data.batch_size and data.eval_batch_size must be >= 1")


def stage_schedule(cfg: RunConfig):
    from coconut.data.curriculum import StageSchedule

    return StageSchedule(cfg.trainer.epochs_per_stage, cfg.trainer.first_stage_epochs)


def to_yaml(cfg: RunConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
