"""The structural cost of a latent step: the release's decoder calls made through transformers' own cache.

A latent step with n thoughts makes n + 1 decoder calls (a prefix pass, n - 1 one-column passes and a final
pass), because each thought needs the hidden state of the column before it. Any engine that computes thoughts
one after another pays for those calls: the fixed cost of a call (operator dispatch and autograd on a CPU,
kernel launches on a GPU) and the weights read once per call. This step makes exactly those calls over the
plain tokens, with transformers' `DynamicCache` and the model's own attention, and feeds nothing back: the
latent step measured against it shows what the engine adds (its cache, the thought attention, the fed-back
states), and the step measured against the plain one shows what the calls themselves cost on this machine.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from coconut.engine.loss import causal_lm_loss


def call_bounds(question: int, thoughts: int, length: int) -> list[int]:
    """Column bounds of the decoder calls over `question` tokens, `<|start-latent|>`, `thoughts` thoughts and the
    rest up to `length`: the prefix through `<|start-latent|>`, one column for each thought but the last, and the
    last thought with everything after it (one call without thoughts)."""
    if thoughts == 0:
        return [0, length]
    first = question + 1
    return [0, first, *range(first + 1, first + thoughts), length]


def same_calls_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                    bounds: list[int]) -> torch.Tensor:
    """The next-token loss of `input_ids` computed by one cached decoder call per span of `bounds`."""
    decoder, embeds = model.get_decoder(), model.get_input_embeddings()(input_ids)
    cache = DynamicCache(config=model.config)
    hidden = []
    for start, end in zip(bounds, bounds[1:]):
        positions = torch.arange(start, end, device=input_ids.device).expand(input_ids.shape[0], -1)
        hidden.append(decoder(inputs_embeds=embeds[:, start:end], attention_mask=attention_mask[:, :end],
                              position_ids=positions, cache=cache, use_cache=True).last_hidden_state)
    logits = model.get_output_embeddings()(torch.cat(hidden, dim=1))
    return causal_lm_loss(logits, labels)
