"""A checkpoint of the CODI release (zhenyi4/codi; zen-E/CODI-gpt2, zen-E/CODI-llama3.2-1b-Instruct) as a
`LatentReasoner`, for evaluation without training.

The release saves the state dict of its whole CODI module (`pytorch_model.bin`, or `model.safetensors`): the base
model under `codi.base_model.model.` (resized to V + 3 rows, V the base vocabulary; the LoRA-wrapped layers as
`....base_layer.weight` with `....lora_A.default.weight` / `....lora_B.default.weight`) and the projection under
`prj.1.`, `prj.3.`, `prj.ln.`. Its test.py rebuilds CODI from the base model with the same LoRA and projection
settings (its script arguments) and loads the file with strict=False. Here the same module is rebuilt, every key and
shape is checked (a mismatch is an error, not a silent partial load), the adapters are merged into the weights
(peft's merge_and_unload) and the projection goes into `engine.projection`.

Special ids. The release gives its rows ids only: pad = V, bot = V + 1, eot = V + 2, none in the tokenizer but the
`[PAD]` it adds when the tokenizer has no padding token. The tokenizer gets the project's markers at those ids:
`<|start-latent|>` = V + 1 (bot), `<|end-latent|>` = V + 2 (eot). `<|latent|>` needs a row of its own for the engine
to look up, but its embedding is never read (the thought replaces it) and generation never picks it: it takes a new
row V + 3, a copy of the pad row, when `[PAD]` holds V (GPT-2, Llama 3.2); with a tokenizer that has its own padding
token it takes row V, the release's pad row, which is then unused.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from coconut.config.checks import ConfigError
from coconut.markers import END_LATENT, LATENT, START_LATENT, add_tokens, token_id

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # the order the release's test.py tries them in
MODEL_PREFIX = "codi."  # the base model's keys; the projection's start with "prj."
OLD_MODEL_PREFIX = "coconut."  # the prefix test.py's commented-out rename turns into "codi."
PAD_TOKEN = "[PAD]"  # the release's padding token for tokenizers without one
EXAMPLES = 3  # keys named in an error


def load_codi_checkpoint(folder_or_file, base_model, tokenizer, lora_rank: int, lora_alpha: float, lora_targets,
                         projection_dim: int, projection_norm: bool = True, num_latent: int = 6,
                         max_new_tokens: int = 256, key: str = "model.release_checkpoint"):
    """A `LatentReasoner` holding a released CODI checkpoint, in eval mode, with the prompt format of CODI's test.

    folder_or_file: a folder holding model.safetensors or pytorch_model.bin, one of those files, or a Hugging Face
        hub id (read from the cache when the hub cannot be reached).
    base_model: the causal LM the checkpoint was trained from, as loaded (V = its config.vocab_size); it becomes
        the engine's model (resized, the adapters merged): it is changed in place.
    tokenizer: the base model's own tokenizer; the markers (and `[PAD]` when it has no padding token) are added to
        it in place.
    lora_rank, lora_alpha, lora_targets (comma-separated or a list), projection_dim, projection_norm: the release's
        --lora_r, --lora_alpha, its target modules, --prj_dim and not --prj_no_ln.
    num_latent, max_new_tokens: the thoughts per question and the generated tokens at most of `engine.answer`
        (the release's --inf_latent_iterations and test.py's max_new_tokens).
    key: how the checkpoint is named in the errors.
    """
    from coconut.engine.prompt_format import PromptFormat
    from coconut.engine.reasoner import LatentReasoner

    path = checkpoint_file(folder_or_file, key)
    state = read_state_dict(path, key)
    vocab = int(base_model.config.vocab_size)
    ids = add_codi_tokens(tokenizer, vocab)
    base_model.resize_token_embeddings(vocab + 3, mean_resizing=False)  # the release's 3 rows; loaded below
    holder = nn.Module()
    holder.codi = with_lora(base_model, lora_rank, lora_alpha, lora_targets)
    width = base_model.get_input_embeddings().embedding_dim
    from coconut.engine.projection import build_projection

    holder.prj = build_projection(width, projection_dim, 0.0, projection_norm)
    load_checked(holder, state, path, key, ignored=_ignored_keys(base_model))
    model = holder.codi.merge_and_unload()
    model.tie_weights()  # as test.py after loading
    if ids["latent"] == vocab + 3:  # a row for <|latent|>: a copy of the pad row (never read, never generated)
        model.resize_token_embeddings(vocab + 4, mean_resizing=False)
        with torch.no_grad():
            for table in {id(t): t for t in _embedding_tables(model)}.values():
                table[vocab + 3] = table[vocab]
    engine = LatentReasoner(model, latent_id=ids["latent"], start_id=ids["start"], end_id=ids["end"],
                            eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id, latent_projection=True,
                            projection_dim=projection_dim, projection_norm=projection_norm)
    engine.projection.load_state_dict(holder.prj.state_dict())
    engine.tokenizer = tokenizer
    engine.prompt_format = PromptFormat(
        method="codi", stage=0, question_template="{question}", answer_marker="The answer is: ",
        max_new_tokens=max_new_tokens, scoring="release", options={"num_latent": num_latent})
    return engine.to(next(model.parameters()).dtype).eval()


# -- the file ------------------------------------------------------------------------------------------------------

def release_engine(cfg, tokenizer):
    """The engine `coconut eval` scores with model.release_checkpoint (coconut.methods.Method.release_checkpoint):
    the run config's checkpoint on its base model, with its LoRA and projection settings."""
    from coconut.engine.models import load_pretrained_lm

    m, latent = cfg.model, cfg.latent
    path = checkpoint_file(m.release_checkpoint)  # found (or not) before the base model loads
    base = load_pretrained_lm(m.name_or_path, m.trust_remote_code)
    return load_codi_checkpoint(path, base, tokenizer, m.lora_rank, m.lora_alpha, m.lora_targets,
                                latent.projection_dim, latent.projection_norm, num_latent=cfg.method.num_latent,
                                max_new_tokens=cfg.eval.max_new_tokens)


def checkpoint_file(source, key: str = "model.release_checkpoint") -> Path:
    """The weights file a folder, a file path or a hub id names (test.py's order: model.safetensors first)."""
    from coconut.engine.hub import load_from_hub_or_cache

    path = Path(str(source)).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for name in WEIGHT_FILES:
            if (path / name).is_file():
                return path / name
        raise ConfigError(f"{key}={source}: the folder holds neither {' nor '.join(WEIGHT_FILES)} (the files the "
                          "CODI release saves); point it to a released checkpoint's folder or file")
    return load_from_hub_or_cache(lambda local: _hub_file(str(source), local), str(source), key, "checkpoint")


def _hub_file(name: str, local_files_only: bool) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    for filename in WEIGHT_FILES:
        try:
            return Path(hf_hub_download(name, filename, local_files_only=local_files_only))
        except EntryNotFoundError:  # not in the repository, or (cache only) not downloaded
            continue
    where = "in the Hugging Face cache" if local_files_only else "in the repository"
    raise FileNotFoundError(f"{name}: neither {' nor '.join(WEIGHT_FILES)} {where}")


def read_state_dict(path: Path, key: str = "model.release_checkpoint") -> dict:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # truncated, not a checkpoint, pickled code refused by weights_only
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise ConfigError(f"{key}: {path} cannot be read as a state dict ({type(err).__name__}: {first})") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{key}: {path} is not a state dict of tensors (the CODI release saves its module's "
                          "state_dict)")
    if not any(k.startswith(MODEL_PREFIX) for k in state) and any(k.startswith(OLD_MODEL_PREFIX) for k in state):
        state = {MODEL_PREFIX + k[len(OLD_MODEL_PREFIX):] if k.startswith(OLD_MODEL_PREFIX) else k: v
                 for k, v in state.items()}
    return state


# -- the model -----------------------------------------------------------------------------------------------------

def add_codi_tokens(tokenizer, vocab: int) -> dict:
    """Add `[PAD]` (when the tokenizer has no padding token, as the release does) and the markers at the release's
    ids: <|start-latent|> = V + 1 (bot), <|end-latent|> = V + 2 (eot); <|latent|> = V + 3, or V when the tokenizer
    pads with a token of its own. Returns their ids."""
    known = [t for t in (START_LATENT, END_LATENT, LATENT) if token_id(tokenizer, t) is not None]
    if known:
        raise ConfigError(f"the tokenizer already holds {', '.join(known)}; give the base model's own tokenizer: the "
                          "CODI checkpoint's ids decide where the markers go")
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    size = len(tokenizer)
    if size == vocab + 1:  # [PAD] = V
        order = (START_LATENT, END_LATENT, LATENT)
    elif size == vocab:
        order = (LATENT, START_LATENT, END_LATENT)
    else:
        raise ConfigError(f"the tokenizer has {size} tokens (with its padding token) but the base model's vocabulary "
                          f"has {vocab}; the CODI release's bot and eot ids ({vocab + 1}, {vocab + 2}) can only be "
                          "given to tokenizer tokens when the two agree")
    roles = {START_LATENT: "start", END_LATENT: "end", LATENT: "latent"}
    ids = {roles[t]: i for t, i in zip(order, add_tokens(tokenizer, order))}
    if (ids["start"], ids["end"]) != (vocab + 1, vocab + 2):
        raise ConfigError(f"the tokenizer gave the markers ids {ids}, not bot = {vocab + 1} and eot = {vocab + 2}")
    return ids


def with_lora(model, rank: int, alpha: float, targets):
    """`model` wrapped as the release wraps it (LoRA on `targets`; its dropout is inactive in eval)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise ConfigError("loading a CODI checkpoint needs peft: pip install 'coconut[lora]' (or pip install peft)"
                          ) from err
    if isinstance(targets, str):
        targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    from transformers.pytorch_utils import Conv1D

    conv1d = any(isinstance(m, Conv1D) for m in model.modules())  # GPT-2 stores its linear maps transposed
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets, task_type="CAUSAL_LM",
                        fan_in_fan_out=conv1d)
    return get_peft_model(model, config)


def _embedding_tables(model) -> list[torch.Tensor]:
    tables = [model.get_input_embeddings().weight]
    if model.get_output_embeddings() is not None:
        tables.append(model.get_output_embeddings().weight)
    return tables


def _ignored_keys(model) -> list[str]:
    """Buffers older transformers saved (GPT-2's attn.bias): transformers itself ignores them when loading."""
    patterns = getattr(type(model), "_keys_to_ignore_on_load_unexpected", None) or []
    return [MODEL_PREFIX + r"base_model\.model\..*" + p for p in patterns]


def load_checked(holder: nn.Module, state: dict, path: Path, key: str, ignored=()) -> None:
    """Load `state` into `holder` after checking that its keys and shapes are exactly the module's (a tied weight
    may be saved under either of its names; an old peft's wrapped layers without `.base_layer` are accepted)."""
    own = holder.state_dict()
    state = _peft_names(state, own)
    names_of: dict[int, list[str]] = {}
    for name, param in holder.named_parameters(remove_duplicate=False):
        names_of.setdefault(id(param), []).append(name)
    alias = {name: names for names in names_of.values() for name in names}
    missing = [k for k in own if not any(a in state for a in alias.get(k, [k]))]
    unexpected = [k for k in state if k not in own and not any(re.fullmatch(p, k) for p in ignored)]
    if missing or unexpected:
        raise ConfigError(
            f"{key}: {path} does not fit a CODI model built from this base model with these settings: "
            f"{len(missing)} missing key(s){_examples(missing)}, {len(unexpected)} unexpected{_examples(unexpected)}; "
            "check the base model, the LoRA targets and whether the projection has its LayerNorm (projection_norm)")
    wrong = [f"{k} {list(v.shape)} (model {list(own[k].shape)})" for k, v in state.items()
             if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise ConfigError(f"{key}: {path}: {len(wrong)} tensor(s) of another shape than this model's, e.g. "
                          f"{'; '.join(wrong[:EXAMPLES])}; was it trained from another base model, or with another "
                          "LoRA rank or projection width (lora_rank, projection_dim)?")
    holder.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def _peft_names(state: dict, own: dict) -> dict:
    """`x.weight` for `x.base_layer.weight` (peft before 0.7 kept a wrapped layer's own weights under its name)."""
    renamed = {}
    for k in own:
        if ".base_layer." in k and k not in state and k.replace(".base_layer.", ".") in state:
            renamed[k.replace(".base_layer.", ".")] = k
    return {renamed.get(k, k): v for k, v in state.items()} if renamed else state


def _examples(keys: list[str]) -> str:
    return f" (e.g. {', '.join(keys[:EXAMPLES])})" if keys else ""
