"""Models and tokenizers: pretrained ones by hub id or local path, tiny ones built from scratch."""

from __future__ import annotations

from pathlib import Path

from coconut.config import ConfigError, RunConfig


def build_tokenizer(cfg: RunConfig, records: list[dict]):
    """The run's tokenizer: word-level from the data, or a pretrained one, with the special tokens."""
    from coconut.engine.special_tokens import load_tokenizer

    source = cfg.data.tokenizer
    if source == "word":
        from coconut.data.word_tokenizer import build_word_tokenizer
        from coconut.data.tokenize import PRETRAINED_FORMAT, WORD_FORMAT

        fmt = WORD_FORMAT if cfg.data.text_format == "word" else PRETRAINED_FORMAT
        return build_word_tokenizer(records, [fmt.answer_prefix])
    if source == "model":
        if cfg.model.name_or_path is None:
            raise ConfigError("data.tokenizer=model needs model.name_or_path (a pretrained model)")
        source = cfg.model.name_or_path
    return load_tokenizer(source, trust_remote_code=cfg.model.trust_remote_code)


def build_model(cfg: RunConfig, tokenizer):
    """A causal LM whose embeddings include the tokenizer's special tokens."""
    import torch
    from coconut.engine.special_tokens import add_latent_tokens

    m = cfg.model
    if m.name_or_path is not None:
        from transformers import AutoModelForCausalLM

        try:
            model = AutoModelForCausalLM.from_pretrained(m.name_or_path, trust_remote_code=m.trust_remote_code)
        except OSError as err:
            raise ConfigError(
                f"model.name_or_path={m.name_or_path!r} cannot be loaded: not a local folder and not in the Hugging "
                "Face cache for offline use. Download it once with network access (huggingface-cli download "
                f"{m.name_or_path}) or point model.name_or_path to a local folder."
            ) from err
        add_latent_tokens(tokenizer, model, init_token=m.init_token, pause=True)
        return model

    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    common = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id)
    if m.arch == "llama":
        config = LlamaConfig(num_hidden_layers=m.layers, hidden_size=m.hidden, num_attention_heads=m.heads,
                             num_key_value_heads=m.heads, intermediate_size=m.intermediate,
                             max_position_embeddings=m.max_positions, tie_word_embeddings=m.tie_embeddings,
                             initializer_range=m.embedding_init_std, **common)
        model = LlamaForCausalLM(config)
    else:
        config = GPT2Config(n_layer=m.layers, n_embd=m.hidden, n_head=m.heads, n_inner=m.intermediate,
                            n_positions=m.max_positions, tie_word_embeddings=m.tie_embeddings,
                            initializer_range=m.embedding_init_std, **common)
        model = GPT2LMHeadModel(config)
    return model.to(torch.float32)


def context_length(model) -> int | None:
    config = model.config
    for key in ("max_position_embeddings", "n_positions"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    return None


def tokenizer_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "tokenizer"
