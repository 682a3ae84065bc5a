"""The special tokens of latent reasoning, and how a tokenizer and a model acquire them."""

from __future__ import annotations

from coconut.config.checks import ConfigError
# The vocabulary is owned by coconut.markers (the data pipeline speaks it too); re-exported here for the engine.
from coconut.markers import (EMBEDDED_TOKENS, END_LATENT, LATENT, LATENT_TOKENS, PAUSE, START_LATENT,  # noqa: F401
                             SpecialIds, add_tokens)
from coconut.markers import token_id as _token_id


def add_latent_tokens(tokenizer, model=None, init_token: str | None = None, pause: bool = False) -> list[int]:
    """Add the latent markers (and `<|pause|>`) to `tokenizer`, and embeddings for them to `model`.

    New embedding rows (and output rows, when untied) copy the embedding of `init_token`
    (default: the EOS token), as the paper initialises its new tokens from an existing one.
    Returns the ids of the added tokens.
    """
    tokens = list(LATENT_TOKENS) + ([PAUSE] if pause else [])
    ids = add_tokens(tokenizer, tokens)
    if model is not None:
        init_embeddings(tokenizer, model, tokens, init_token)
    return ids


def init_embeddings(tokenizer, model, tokens, init_token: str | None = None, mean: bool = False) -> None:
    """Give the model embedding rows for `tokens` (grown to the largest id only), copied from `init_token`, or
    with `mean` the mean of the rows already there (what transformers' resizing gives, up to its 1e-9 noise:
    CODI's release starts its tokens there).

    Only the rows a method uses are added: a CoT run keeps the model's vocabulary as it is, and a COCONUT
    run on GPT-2 gets exactly 50257 + 3 classes, as in the release (each extra row is one more softmax class)."""
    _init_new_embeddings(tokenizer, model, [_token_id(tokenizer, t) for t in tokens], init_token or tokenizer.eos_token,
                         mean)


def _init_new_embeddings(tokenizer, model, ids: list[int], init_token: str, mean: bool = False) -> None:
    import torch

    source = _token_id(tokenizer, init_token)
    if source is None and not mean:
        pieces = tokenizer.tokenize(init_token) if isinstance(init_token, str) else []
        how = f"it splits into {len(pieces)} pieces {pieces[:4]}" if len(pieces) > 1 else "it is not in the vocabulary"
        raise ConfigError(f"init_token {init_token!r} is not a single token of this tokenizer ({how}); set "
                          f"model.init_token to one token of its vocabulary, or leave it unset for its EOS token "
                          f"({tokenizer.eos_token!r})")
    if None in ids:
        raise ValueError("add the tokens to the tokenizer (add_tokens) before giving them embeddings")
    known = model.get_input_embeddings().num_embeddings
    if max(ids) >= known:
        model.resize_token_embeddings(max(ids) + 1)
    with torch.no_grad():
        tables = [model.get_input_embeddings().weight]
        output = model.get_output_embeddings()
        if output is not None and output.weight is not tables[0]:
            tables.append(output.weight)
        for table in tables:
            row = table[: min(known, min(ids))].mean(dim=0) if mean else table[source]
            for idx in ids:
                table[idx] = row


def load_tokenizer(name_or_path: str, model=None, init_token: str | None = None, trust_remote_code: bool = False,
                   first: tuple[str, ...] | None = None, key: str = "data.tokenizer"):
    """A Hugging Face tokenizer (hub id or local folder) with the latent tokens added.

    `first`: the tokens a run's model embeds, added first so their ids follow the vocabulary with no gap
    (the release: <|start-latent|> <|end-latent|> <|latent|> = 50257-50259 on GPT-2); the latent markers
    follow when not among them (the engine looks them up; a CoT model never sees them). None: the markers
    and <|pause|>. Models without a padding token (GPT-2) pad with EOS; padding is always masked out.
    `key`: the config key that names it, for the errors (model.name_or_path when data.tokenizer=model).
    """
    from transformers import AutoTokenizer

    from coconut.engine.hub import fetch_command, load_from_hub_or_cache

    def load(local_files_only: bool):
        return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code,
                                             local_files_only=local_files_only)

    try:
        tokenizer = load_from_hub_or_cache(load, name_or_path, key, "tokenizer")
    except ConfigError:
        raise
    except (OSError, ValueError) as err:  # a folder without a tokenizer in it; a repository without one
        from pathlib import Path

        if Path(name_or_path).is_dir():
            raise ConfigError(f"{key}={name_or_path!r}: the folder holds no tokenizer transformers "
                              f"can read ({err.__class__.__name__}); point {key} to a "
                              "folder with tokenizer.json or tokenizer_config.json") from err
        raise ConfigError(
            f"{key}={name_or_path!r}: cannot load the tokenizer ({err.__class__.__name__}); download it once with "
            f"network access ({fetch_command(name_or_path)}), or point {key} to a local folder"
        ) from err
    if tokenizer.eos_token is None:  # answers end with EOS, and padding falls back to it
        raise ConfigError(f"the tokenizer {name_or_path!r} has no EOS token (eos_token); coconut ends every answer "
                          "with it: choose a tokenizer that has one, or set eos_token in its tokenizer_config.json")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if first is None:
        add_latent_tokens(tokenizer, model, init_token=init_token, pause=True)
        return tokenizer
    add_tokens(tokenizer, list(first) + [t for t in LATENT_TOKENS if t not in first])
    if model is not None and first:
        init_embeddings(tokenizer, model, first, init_token)
    return tokenizer
