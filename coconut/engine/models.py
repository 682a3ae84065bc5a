"""Causal LMs for the engine: pretrained ones by hub id or local folder, tiny ones built from scratch.

`tiny_causal_lm` is the one builder of random small models (training from scratch, the benchmark and
the tests all use it); `build_model` turns a `ModelConfig` into a model whose embeddings hold the
tokenizer's special tokens.
"""

from __future__ import annotations

import torch

from coconut.config import ConfigError, ModelConfig


def tiny_causal_lm(arch: str, *, vocab_size: int, layers: int, hidden: int, heads: int, intermediate: int | None = None,
                   max_positions: int = 1024, tie_embeddings: bool | None = None, init_std: float = 0.02,
                   eos_id: int = 0, pad_id: int | None = None, kv_heads: int | None = None,
                   dropout: float | None = None, **extra):
    """A float32 GPT-2, Llama or Qwen2 with random weights (seed torch first for a reproducible one).

    None keeps the architecture's own default (GPT-2 ties its embeddings, Llama does not; dropout as
    the config has it); `extra` goes to the Hugging Face config as it is."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    common = dict(vocab_size=vocab_size, bos_token_id=eos_id, eos_token_id=eos_id, initializer_range=init_std)
    if pad_id is not None:
        common["pad_token_id"] = pad_id
    if tie_embeddings is not None:
        common["tie_word_embeddings"] = tie_embeddings
    intermediate = 4 * hidden if intermediate is None else intermediate
    if arch == "gpt2":
        if dropout is not None:
            common.update(resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)
        config = GPT2Config(n_layer=layers, n_embd=hidden, n_head=heads, n_inner=intermediate,
                            n_positions=max_positions, **common, **extra)
        model = GPT2LMHeadModel(config)
    elif arch in ("llama", "qwen2"):  # Qwen2 is Llama's layout with biases on the query, key and value maps
        if dropout is not None:
            common["attention_dropout"] = dropout
        config_class, model_class = (LlamaConfig, LlamaForCausalLM) if arch == "llama" else (Qwen2Config, Qwen2ForCausalLM)
        config = config_class(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                              num_key_value_heads=kv_heads or heads, intermediate_size=intermediate,
                              max_position_embeddings=max_positions, **common, **extra)
        model = model_class(config)
    else:
        raise ValueError(f"unknown architecture {arch!r} (expected gpt2, llama or qwen2)")
    return model.to(torch.float32)


def load_pretrained_lm(name_or_path: str, trust_remote_code: bool = False):
    """A Hugging Face causal LM by hub id or local folder, failing in seconds with a clear error when it is not at
    hand (offline, or the hub unreachable: coconut.engine.hub)."""
    from transformers import AutoModelForCausalLM

    from coconut.engine.hub import fetch_command, load_from_hub_or_cache

    def load(local_files_only: bool):
        # adapter_kwargs: transformers looks for a PEFT adapter_config.json with these alone, and would ask the hub
        # (with its retries) even under local_files_only=True.
        return AutoModelForCausalLM.from_pretrained(name_or_path, trust_remote_code=trust_remote_code,
                                                    local_files_only=local_files_only,
                                                    adapter_kwargs={"local_files_only": local_files_only})

    try:
        return load_from_hub_or_cache(load, name_or_path, "model.name_or_path", "model")
    except ConfigError:
        raise
    except OSError as err:  # a folder without weights, a gated repository, a file missing on the hub
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise ConfigError(
            f"model.name_or_path={name_or_path!r} cannot be loaded ({first}); point it to a folder holding config.json "
            f"and the weights, or download the model once with network access ({fetch_command(name_or_path)})"
        ) from err
    except ValueError as err:  # a folder or hub entry that is not a causal LM transformers knows
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise ConfigError(f"model.name_or_path={name_or_path!r} is not a causal language model transformers can "
                          f"load ({first}); point it to a folder holding config.json and the weights") from err


def build_model(m: ModelConfig, tokenizer, embeds: tuple[str, ...] | None = None):
    """The configured causal LM. A pretrained one gets embedding rows for `embeds` only (the tokens its method
    uses, copied from `model.init_token`; None: every special token of the tokenizer); one from scratch embeds
    the whole tokenizer."""
    from coconut.engine.special_tokens import EMBEDDED_TOKENS, init_embeddings

    if not m.from_scratch:
        model = load_pretrained_lm(m.name_or_path, m.trust_remote_code)
        if embeds is None:
            embeds = EMBEDDED_TOKENS["latent"] + EMBEDDED_TOKENS["pause"]
        if embeds:
            init_embeddings(tokenizer, model, embeds, init_token=m.init_token, mean=m.init_new_rows == "mean")
        return model
    return tiny_causal_lm(m.arch, vocab_size=len(tokenizer), layers=m.layers, hidden=m.hidden, heads=m.heads,
                          intermediate=m.intermediate, max_positions=m.max_positions,
                          tie_embeddings=m.tie_embeddings, init_std=m.embedding_init_std,
                          eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id)


def context_length(model) -> int | None:
    config = model.config
    for key in ("max_position_embeddings", "n_positions"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    return None
