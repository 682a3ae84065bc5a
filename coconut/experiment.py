"""Experiment files into a checked `RunConfig`: schema <- conf/ group options <- experiments/NAME.yaml <- overrides.

    coconut train prosqa_coconut trainer=ddp trainer.devices=4 optim.lr=1e-4

An experiment file picks one option per group under `defaults:` and lists only what differs.
`group=option` on the command line swaps a group; `a.b=value` sets a field. Unknown keys and wrong types
fail at start with the key named.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from coconut.config import ConfigError, ModelConfig, RunConfig
from coconut.methods import method

ROOT = Path(__file__).resolve().parents[1]
# Package data, so that every install has them (a clone also reaches them as conf/ and experiments/: symlinks).
CONF_DIR = Path(__file__).resolve().parent / "conf"
EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"
GROUPS = ("model", "data", "method", "optim", "trainer", "decode")  # option folders under conf/


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


def experiment_names() -> list[str]:
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


def experiment_path(name_or_path: str) -> Path:
    if not name_or_path.strip():  # "" would otherwise read as "no experiment": the bare schema defaults
        raise ConfigError(f"experiment {name_or_path!r} is empty; give an experiment name (known: "
                          f"{', '.join(experiment_names())}) or a yaml path")
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise ConfigError(f"{path}: no such experiment file")
        return path
    path = EXPERIMENTS_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown experiment {name_or_path!r}; known: {', '.join(experiment_names())}")
    return path


def _override(item: str) -> DictConfig:
    """One key=value override; a value YAML cannot read (`model.init_token=<<`, a merge key) stays a string."""
    import yaml

    try:
        return OmegaConf.from_dotlist([item])
    except yaml.YAMLError:
        key, value = item.split("=", 1)
        conf = OmegaConf.create()
        OmegaConf.update(conf, key, value)
        return conf


EXPECTED_FORM = "a mapping such as `defaults: {model: gpt2, method: coconut}` followed by keys (`optim: {lr: 1e-4}`)"


def _experiment_file(path: Path) -> DictConfig:
    """An experiment file: a mapping, whose `defaults:` maps group -> option (not Hydra's list of them)."""
    exp = _read_yaml(path)
    if not isinstance(exp, DictConfig):
        raise ConfigError(f"{path}: an experiment file is {EXPECTED_FORM}; this one is a list")
    if not exp:  # empty, or comments only: it would train the bare schema defaults, which no one means
        raise ConfigError(f"{path}: the experiment file sets nothing (empty, or comments only); an experiment file "
                          f"is {EXPECTED_FORM}")
    defaults = exp.get("defaults") if "defaults" in exp else None
    if defaults is not None and not isinstance(defaults, DictConfig):
        form = "Hydra's list form (- model: gpt2)" if OmegaConf.is_list(defaults) else f"{defaults!r}"
        raise ConfigError(f"{path}: defaults: must map each group to its option (defaults: {{model: gpt2, "
                          f"method: coconut}}, one `group: option` per line), not {form}")
    return exp


def load_config(experiment: str | None = None, overrides: list[str] = ()) -> RunConfig:
    """Schema <- group defaults <- experiment <- command-line overrides; checked and resolved."""
    schema = OmegaConf.structured(RunConfig)
    exp = _experiment_file(experiment_path(experiment)) if experiment is not None else OmegaConf.create()
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
            layers.append(OmegaConf.create({group: _read_yaml(_group_file(group, str(chosen[group])))}))
    where = f" in {experiment}" if experiment else ""
    try:
        if experiment and "name" not in exp:
            exp.name = Path(experiment).stem
        cfg = OmegaConf.merge(*layers, exp, *map(_override, field_overrides))
        OmegaConf.resolve(cfg)
        return OmegaConf.to_object(cfg)  # runs the pieces' own checks
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        raise ConfigError(f"config{where}: {message} (key: {getattr(err, 'full_key', '?')})") from err
    except ValueError as err:
        raise ConfigError(f"config{where}: {str(err).splitlines()[0]}") from err


def load_group(group: str, option: str):
    """One group option on its own, checked against the schema (e.g. a DecodeConfig)."""
    schema = OmegaConf.structured(RunConfig)
    try:
        return OmegaConf.to_object(OmegaConf.merge(schema[group], _read_yaml(_group_file(group, option))))
    except (OmegaConfBaseException, ValueError) as err:
        raise ConfigError(f"{group}={option}: {str(err).splitlines()[0]}") from err


def shown(cfg: RunConfig) -> dict:
    """The resolved config as a plain dict, without the fields that do not apply to this run."""
    out = asdict(cfg)
    if not cfg.model.from_scratch:
        for key in ModelConfig.SCRATCH_FIELDS:
            out["model"].pop(key)
    if cfg.model.lora_rank == 0:
        for key in ("lora_alpha", "lora_dropout", "lora_targets", "lora_train_new_tokens"):
            out["model"].pop(key)
    if cfg.model.release_checkpoint is None:
        out["model"].pop("release_checkpoint")
    if not method(cfg.method.name).shows_latent_config:
        out.pop("latent")
    out["method"] = {k: out["method"][k] for k in cfg.method.used_fields()}  # in the method's own order
    out["decode"] = {k: v for k, v in out["decode"].items() if k in cfg.decode.used_fields()}
    if cfg.trainer.strategy != "fsdp":
        out["trainer"].pop("fsdp_sharding")
    else:  # what runs, `auto` resolved for the method
        out["trainer"]["fsdp_sharding"] = cfg.fsdp_sharding()
    return out


def to_yaml(cfg: RunConfig) -> str:
    """The resolved config as YAML, showing only the fields that apply to this run."""
    return OmegaConf.to_yaml(OmegaConf.create(shown(cfg)))


def dotted_settings(cfg: RunConfig) -> dict:
    """The settings `to_yaml` shows, as dotted keys (`optim.lr`)."""
    import yaml

    out, todo = {}, [("", yaml.safe_load(to_yaml(cfg)))]
    while todo:
        prefix, value = todo.pop()
        if isinstance(value, dict) and value:
            todo += [(f"{prefix}{k}.", v) for k, v in value.items()]
        else:
            out[prefix[:-1]] = value
    return out


def changes_since(config_file, cfg: RunConfig) -> list[tuple[str, object, object]]:
    """(key, then, now) for every setting in which `cfg` differs from a run's saved config.yaml, read with this
    version's schema: a setting added since takes its default, which keeps the earlier behaviour, so it is no change.
    ConfigError when the file no longer loads."""
    then, now = dotted_settings(load_config(str(config_file))), dotted_settings(cfg)
    missing = "(unset)"
    return [(key, then.get(key, missing), now.get(key, missing)) for key in sorted(then.keys() | now.keys())
            if then.get(key, missing) != now.get(key, missing)]

