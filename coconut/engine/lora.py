"""LoRA for large pretrained models, through `peft` (pip install 'coconut[lora]').

Only the low-rank adapters train, plus the embedding rows of the special tokens COCONUT adds
(`<|start-latent|>`, `<|end-latent|>`, ...): without those the new markers would keep their
initial embeddings forever. The latent engine works on the wrapped model unchanged (the adapters
sit inside the decoder's linear layers), and export merges the adapters into plain weights.
"""

from __future__ import annotations

from torch import nn

from coconut.config import ConfigError, ModelConfig


def _embedding_name(model: nn.Module) -> str:
    target = model.get_input_embeddings()
    for name, module in model.named_modules():
        if module is target:
            return name.rsplit(".", 1)[-1]
    raise ConfigError("model.lora_rank: cannot find the input embedding layer to train the new tokens")


def apply_lora(model: nn.Module, m: ModelConfig, new_token_ids: list[int]) -> nn.Module:
    """Wrap `model` with LoRA adapters of rank `m.lora_rank`; returns the peft model."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise ConfigError("model.lora_rank > 0 needs peft: pip install 'coconut[lora]' (or pip install peft)") from err
    targets = m.lora_targets if m.lora_targets == "all-linear" else [t.strip() for t in m.lora_targets.split(",")]
    config = LoraConfig(
        r=m.lora_rank, lora_alpha=m.lora_alpha, lora_dropout=m.lora_dropout, target_modules=targets,
        task_type="CAUSAL_LM",
        trainable_token_indices={_embedding_name(model): sorted(new_token_ids)} if new_token_ids else None,
    )
    return get_peft_model(model, config)


def is_lora(model: nn.Module) -> bool:
    return type(model).__module__.startswith("peft")


def merged(model: nn.Module) -> nn.Module:
    """The plain model with the adapters folded into its weights (the peft wrapper is consumed)."""
    return model.merge_and_unload() if is_lora(model) else model
