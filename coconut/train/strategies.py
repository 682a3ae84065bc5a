"""Distributed strategies from the config: DDP, FSDP wrapped on the decoder layers, activation checkpointing.

FSDP shards every decoder layer (the classes a Hugging Face model lists in `_no_split_modules`) as
its own unit; the latent methods default to SHARD_GRAD_OP, which gathers each unit once per step however
many latent passes the step makes (TrainerConfig.fsdp_sharding). Activation checkpointing recomputes the
MLP blocks in the backward pass instead of keeping their activations: attention is left alone because the
latent engine's KV cache is stateful (recomputing a layer would append to the cache a second time).
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from coconut.config import ConfigError, TrainerConfig


def decoder_layer_classes(model: nn.Module) -> set[type]:
    """The repeated block classes of a Hugging Face model (LlamaDecoderLayer, GPT2Block, Qwen2DecoderLayer...)."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    classes = {type(m) for m in model.modules() if type(m).__name__ in names}
    if not classes:  # fall back to the elements of the longest ModuleList
        lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m)]
        if lists:
            classes = {type(max(lists, key=len)[0])}
    if not classes:
        raise ConfigError(f"cannot find the decoder layers of {type(model).__name__} to wrap with FSDP")
    return classes


def mlp_modules(model: nn.Module) -> list[nn.Module]:
    """The feed-forward blocks (LlamaMLP, GPT2MLP, Qwen2MLP, ...)."""
    return [m for m in model.modules() if type(m).__name__.endswith("MLP")]


def enable_mlp_checkpointing(model: nn.Module) -> int:
    """Recompute every MLP block in the backward pass; returns how many were found."""
    blocks = mlp_modules(model)
    if not blocks:
        raise ConfigError(f"trainer.activation_checkpointing: no MLP blocks found in {type(model).__name__}")
    for block in blocks:
        if getattr(block, "_coconut_checkpointed", False):
            continue
        original = block.forward

        def forward(*args, _original=original, **kwargs):
            if not block_training(args):
                return _original(*args, **kwargs)
            return checkpoint(_original, *args, use_reentrant=False, **kwargs)

        block.forward = functools.wraps(original)(forward)
        block._coconut_checkpointed = True
    return len(blocks)


def block_training(args) -> bool:
    """Checkpoint only when something needs gradients (generation and evaluation run without)."""
    return torch.is_grad_enabled() and any(getattr(a, "requires_grad", False) for a in args)


def build_strategy(t: TrainerConfig, model: nn.Module, unused_parameters: bool = False,
                   latent_passes: bool = False):
    """The Lightning strategy (a name or a Strategy object) for `t.strategy`.

    unused_parameters: some parameters may get no gradient in a step (a latent projection, stop head or step
    supervision's decoder at stage 0, before any thought): DDP must be told to expect that.
    latent_passes: the method calls the decoder once per thought column; with trainer.fsdp_sharding=auto FSDP
    then gathers each layer once per step instead of once per call (SHARD_GRAD_OP)."""
    if t.strategy == "fsdp":
        from lightning.pytorch.strategies import FSDPStrategy

        return FSDPStrategy(auto_wrap_policy=decoder_layer_classes(model),
                            sharding_strategy=t.sharding_for(latent_passes), state_dict_type="full",
                            use_orig_params=True)
    strategy = t.strategy
    if unused_parameters and strategy in ("ddp", "ddp_spawn"):
        strategy = f"{strategy}_find_unused_parameters_true"
    return strategy
