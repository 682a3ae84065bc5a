"""Batched, KV-cached greedy decoding with continuous thoughts.

The prompt (question, `<|start-latent|>`, thoughts, `<|end-latent|>`, padded on either side) is
prefilled by the latent engine; then every row decodes one cached step at a time until it emits
EOS. Decoding is in language mode: `<|latent|>` has no meaning there, so it is never chosen. Rows that finished keep receiving padding so the batch stays rectangular; their output is
padding from then on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from coconut.cache import inference_cache
from coconut.layout import left_align


@dataclass
class GenerateOutput:
    sequences: torch.Tensor  # (B, N) generated tokens only (not the prompt), pad_id after EOS
    num_generated: torch.Tensor  # (B,) language tokens generated, EOS included (the paper's count)
    num_thoughts: torch.Tensor  # (B,) continuous thoughts in the prompt
    num_forward_passes: torch.Tensor  # (B,) passes this example needs when run on its own

    @property
    def paper_token_count(self) -> torch.Tensor:
        """Tokens as the paper's Table 1 counts them: generated language tokens plus thoughts."""
        return self.num_generated + self.num_thoughts


@torch.no_grad()
def generate(engine, input_ids, attention_mask=None, max_new_tokens: int = 64) -> GenerateOutput:
    """Greedy decoding of a batch of prompts with `engine` (a `LatentReasoner`)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if not bool(attention_mask.any(dim=1).all()):
        raise ValueError("generate: every prompt needs at least one attended token")
    # The next token of every row must come from the same (last) column.
    input_ids, attention_mask = left_align(input_ids, attention_mask, engine.pad_id)
    cache = inference_cache(engine.model.config, spare=max_new_tokens)
    prefill = engine.prefill(input_ids, attention_mask, cache=cache)
    layout = prefill.layout
    batch, device = input_ids.shape[0], input_ids.device

    # Passes a lone example needs for its prompt: prefix, one per thought, and the rest if any.
    after_thoughts = (layout.first_thought + layout.thought_columns) < layout.width
    has_thoughts = layout.num_thoughts > 0
    passes = torch.where(has_thoughts, 1 + layout.num_thoughts + int(after_thoughts), torch.ones_like(layout.num_thoughts))

    logits = engine.lm_head(prefill.hidden[:, -1])  # (B, V)
    mask = layout.attention_mask
    position = layout.position_ids[:, -1:]  # (B, 1)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    generated = torch.zeros(batch, dtype=torch.long, device=device)
    tokens = []
    for step in range(max_new_tokens):
        logits[:, engine.latent_id] = float("-inf")
        token = logits.argmax(dim=-1)
        token = torch.where(finished, torch.full_like(token, engine.pad_id), token)
        tokens.append(token)
        generated += (~finished).long()
        finished |= token == engine.eos_id
        if bool(finished.all()) or step == max_new_tokens - 1:
            break
        passes += (~finished).long()
        mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
        position = position + 1
        hidden = engine.decode_step(engine.embed(token.unsqueeze(1)), mask, position, cache)
        logits = engine.lm_head(hidden[:, -1])
    return GenerateOutput(
        sequences=torch.stack(tokens, dim=1),
        num_generated=generated,
        num_thoughts=layout.num_thoughts,
        num_forward_passes=passes,
    )
