"""A naive latent forward that recomputes everything from scratch, for checking the engine.

No cache, no batching, no alignment: for each `<|latent|>` position the whole prefix is run
again and its last hidden state written in as that position's input embedding. Slow and
obviously right; the tests and `coconut bench` compare the engine against it.
"""

from __future__ import annotations

import torch


def recompute_logits(model, tokens: list[int], latent_id: int, projection=None) -> torch.Tensor:
    """(T, V) logits of one unpadded example."""
    ids = torch.tensor([tokens], device=model.device)
    embeds = model.get_input_embeddings()(ids)  # (1, T, d)
    decoder = model.get_decoder()
    for t, token in enumerate(tokens):
        if token == latent_id:
            hidden = decoder(inputs_embeds=embeds[:, :t], use_cache=False).last_hidden_state[:, -1]
            fed = hidden if projection is None else projection(hidden)
            embeds = torch.cat([embeds[:, :t], fed.unsqueeze(1), embeds[:, t + 1 :]], dim=1)
    hidden = decoder(inputs_embeds=embeds, use_cache=False).last_hidden_state
    return model.get_output_embeddings()(hidden)[0]
