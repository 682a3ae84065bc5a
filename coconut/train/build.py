"""A run's parts from its config: tokenizer, model, engine, data module and Lightning module.

Each builder takes the config pieces it needs; `build_system` is the one place that hands them out.
"""

from __future__ import annotations

import logging
from pathlib import Path

from coconut.config import ConfigError, DataConfig, ModelConfig, RunConfig
from coconut.run_dir import RunDir

log = logging.getLogger(__name__)


def build_tokenizer(data: DataConfig, model: ModelConfig, records: list[dict], method: str = "coconut"):
    """The run's tokenizer: word-level from the data, or a pretrained one with the latent markers (and the
    method's embedded tokens first, so their ids follow the vocabulary as in the release)."""
    from coconut.engine.special_tokens import load_tokenizer

    source = data.tokenizer
    if source == "word":
        from coconut.data.tokenize import TEXT_FORMATS
        from coconut.data.word_tokenizer import build_word_tokenizer

        return build_word_tokenizer(records, [TEXT_FORMATS[data.text_format].answer_prefix])
    key = "data.tokenizer"
    if source == "model":
        if model.name_or_path is None:
            raise ConfigError("data.tokenizer=model needs model.name_or_path (a pretrained model)")
        source, key = model.name_or_path, "model.name_or_path"
    return load_tokenizer(source, trust_remote_code=model.trust_remote_code, first=embedded_tokens(method), key=key)


def embedded_tokens(method: str) -> tuple[str, ...]:
    """The new tokens a method's model embeds (none for CoT, No-CoT, iCoT and w/o thought, as the release)."""
    from coconut.engine.special_tokens import EMBEDDED_TOKENS
    from coconut.methods import METHODS

    return EMBEDDED_TOKENS[METHODS[method].embeds]


REUSE = ("matching", "always", "never")
# What a tokenizer folder's vocabulary lives in (fast and slow tokenizers, SentencePiece).
TOKENIZER_FILES = ("tokenizer*.json", "special_tokens_map.json", "added_tokens.json", "vocab.*", "merges.txt", "*.model")


def tokenizer_inputs(cfg: RunConfig, files: dict) -> dict:
    """What a run's tokenizer is built from: a word-level one from the data (each split file's sha256), a
    pretrained one from its source and the method's new tokens. Saved beside it as its fingerprint."""
    if cfg.data.tokenizer == "word":
        from coconut.data.release import file_digests
        from coconut.data.tokenize import TEXT_FORMATS

        return {"tokenizer": "word", "answer_prefix": TEXT_FORMATS[cfg.data.text_format].answer_prefix,
                "data": {split: file_digests(path)[0] for split, path in files.items() if path.exists()}}
    source = cfg.model.name_or_path if cfg.data.tokenizer == "model" else cfg.data.tokenizer
    inputs = {"tokenizer": str(source), "embedded": list(embedded_tokens(cfg.method.name))}
    if source is not None and Path(str(source)).is_dir():  # a local folder: by what it holds, not by its name
        from coconut.data.release import file_digests

        folder = Path(str(source))
        names = {p for pattern in TOKENIZER_FILES for p in folder.glob(pattern) if p.is_file()}
        inputs["files"] = {p.name: file_digests(p)[0] for p in sorted(names)}
    return inputs


def fingerprint(inputs: dict) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def load_or_build_tokenizer(cfg: RunConfig, run_dir: RunDir, reuse: str = "matching"):
    """The tokenizer saved in the run folder, or a new one built in memory (`save_tokenizer` writes it).

    reuse: "always" (resuming: the run's own, whatever the data now), "matching" (only when built from the same
    inputs: a run name reused with other data gets a new one, not one that maps its words to <unk>; a folder of
    an older version, without the fingerprint, keeps its own), "never" (a new run). Missing data is generated
    first (data/<name>/ is not the run folder)."""
    from transformers import AutoTokenizer

    from coconut.data.files import ensure_data
    from coconut.data.records import load_records

    if reuse not in REUSE:
        raise ValueError(f"reuse must be one of {REUSE}, got {reuse!r}")
    files = ensure_data(cfg.data)
    if (run_dir.tokenizer / "tokenizer_config.json").exists() and reuse != "never":
        source = _read_json(run_dir.tokenizer_source)
        if reuse == "always" or source is None or source.get("fingerprint") == fingerprint(tokenizer_inputs(cfg, files)):
            return AutoTokenizer.from_pretrained(run_dir.tokenizer)
        log.warning("%s was built from other data or settings than now: building a new tokenizer", run_dir.tokenizer)
    records = [r for path in files.values() if path.exists() for r in load_records(path)]
    return build_tokenizer(cfg.data, cfg.model, records, cfg.method.name)


def save_tokenizer(cfg: RunConfig, tokenizer, run_dir: RunDir) -> None:
    """The run's tokenizer into its folder, with the fingerprint of what it was built from."""
    from coconut.atomic import replace_folder, write_json
    from coconut.data.files import ensure_data

    inputs = tokenizer_inputs(cfg, ensure_data(cfg.data))

    def fill(folder):  # the whole folder or none of it: a tokenizer without its fingerprint would be reused blindly
        tokenizer.save_pretrained(folder)
        write_json(folder / run_dir.tokenizer_source.name, {"fingerprint": fingerprint(inputs), "inputs": inputs})

    replace_folder(run_dir.tokenizer, fill)


def _read_json(path):
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def build_engine(cfg: RunConfig, tokenizer):
    """The configured model (LoRA-wrapped when asked) inside a `LatentReasoner`; with model.release_checkpoint, the
    checkpoint of the method's release, read the method's way (coconut.methods.Method.release_checkpoint: CODI's
    on its base model, the LoRA merged, the markers added to `tokenizer`)."""
    from coconut.engine.models import build_model
    from coconut.engine.reasoner import LatentReasoner
    from coconut.methods import method as method_named
    from coconut.methods.base import entry_point

    if cfg.model.release_checkpoint is not None:
        return entry_point(method_named(cfg.method.name).release_checkpoint)(cfg, tokenizer)
    model = build_model(cfg.model, tokenizer, embedded_tokens(cfg.method.name))
    if cfg.model.lora_rank > 0:
        from coconut.engine.lora import apply_lora
        from coconut.engine.special_tokens import SpecialIds

        rows = model.get_input_embeddings().num_embeddings  # a CoT model does not embed the markers
        new = [i for i in SpecialIds.from_tokenizer(tokenizer).added if i < rows] if cfg.model.lora_train_new_tokens else []
        model = apply_lora(model, cfg.model, new)
    latent = cfg.latent
    engine = LatentReasoner.from_tokenizer(model, tokenizer, latent_projection=latent.projection,
                                           thought_scale=latent.thought_scale, stop_classifier=latent.stop_classifier,
                                           jacobi_iterations=latent.jacobi_iterations,
                                           projection_dim=latent.projection_dim,
                                           projection_dropout=latent.projection_dropout,
                                           projection_norm=latent.projection_norm, compile_mode=latent.compile)
    if cfg.trainer.activation_checkpointing:
        from coconut.train.strategies import enable_mlp_checkpointing

        enable_mlp_checkpointing(model)
    return engine


def base_tokenizer(cfg: RunConfig):
    """The pretrained tokenizer as it is, nothing added: a release checkpoint (CODI's) decides where
    the markers go."""
    from transformers import AutoTokenizer

    from coconut.engine.hub import load_from_hub_or_cache

    source, key = cfg.data.tokenizer, "data.tokenizer"
    if source == "model":
        source, key = cfg.model.name_or_path, "model.name_or_path"

    def load(local_files_only: bool):
        return AutoTokenizer.from_pretrained(source, trust_remote_code=cfg.model.trust_remote_code,
                                             local_files_only=local_files_only)

    try:
        tokenizer = load_from_hub_or_cache(load, source, key, "tokenizer")
    except ConfigError:
        raise
    except (OSError, ValueError) as err:  # a folder or repository without a tokenizer
        raise ConfigError(f"{key}={source!r}: cannot load the tokenizer ({err.__class__.__name__})") from err
    if tokenizer.eos_token is None:
        raise ConfigError(f"the tokenizer {source!r} has no EOS token; generation stops at it")
    return tokenizer


def build_datamodule(cfg: RunConfig, tokenizer, max_length: int | None, stage: int | None = None):
    from coconut.train.datamodule import CurriculumDataModule

    return CurriculumDataModule(cfg.data, cfg.method, cfg.trainer.schedule, tokenizer, seed=cfg.seed,
                                max_length=max_length, final_stage=cfg.final_stage(), stage=stage)


def build_system(cfg: RunConfig, tokenizer=None):
    """(module, datamodule, tokenizer) for a config, in memory: nothing is written into the run folder. The
    tokenizer: the one given, else the run folder's when built from the same data, else a new one."""
    from coconut.engine.models import context_length
    from coconut.methods import method as method_named
    from coconut.train.module import CoconutModule, GenerationSettings

    if tokenizer is None and cfg.model.release_checkpoint is not None:
        tokenizer = base_tokenizer(cfg)
    elif tokenizer is None:
        tokenizer = load_or_build_tokenizer(cfg, RunDir(cfg.run_dir))
    engine = build_engine(cfg, tokenizer)
    datamodule = build_datamodule(cfg, tokenizer, cfg.data.max_length or context_length(engine.model))
    module = CoconutModule(engine, tokenizer, cfg.optim, cfg.trainer.schedule, GenerationSettings.from_config(cfg),
                           stop_loss_weight=cfg.latent.stop_loss_weight, lockstep=cfg.trainer.lockstep,
                           method_loss=method_named(cfg.method.name).loss, method=cfg.method,
                           step_decoder=build_step_decoder(cfg, engine) if cfg.method.step_supervision else None)
    return module, datamodule, tokenizer


def build_step_decoder(cfg: RunConfig, engine):
    """Step supervision's auxiliary decoder (coconut.engine.step_decoder): as both SIM-CoT releases, a fresh copy
    of the pretrained base model (its vocabulary without the markers); for a model built from scratch, a copy of
    the base model as initialised."""
    import copy

    from coconut.engine.models import load_pretrained_lm
    from coconut.engine.step_decoder import StepDecoder

    m = cfg.method
    if cfg.model.from_scratch:
        base = engine.model.get_base_model() if hasattr(engine.model, "get_base_model") else engine.model
        lm = copy.deepcopy(base)
    else:
        lm = load_pretrained_lm(cfg.model.name_or_path, cfg.model.trust_remote_code)
    return StepDecoder(lm, per=m.step_loss_per, first_position=m.step_decoder_first_position,
                       dropout=m.step_decoder_dropout)
