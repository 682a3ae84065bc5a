"""Thoughts by Jacobi iteration (PCCoT): a few full-width passes instead of one pass per thought.

Every thought starts from its `<|latent|>` embedding; each iteration runs the whole sequence and feeds
each thought the hidden state just before it. After n iterations the first n thoughts are exact, so
with at least as many iterations as thoughts the result equals the sequential engine; fewer
iterations trade exactness for fewer, wider passes.
"""

from __future__ import annotations

import torch

from coconut.engine.alignment import ThoughtLayout


def jacobi_thoughts(engine, embeds: torch.Tensor, layout: ThoughtLayout, cache, iterations: int) -> torch.Tensor:
    """(B, W, d) last hidden states after `iterations` Jacobi iterations and a final pass that fills `cache`."""
    mask, pos = layout.attention_mask, layout.position_ids
    start, n_cols = layout.first_thought, layout.thought_columns
    cols = slice(start, start + n_cols)
    thought = layout.is_thought[:, cols].unsqueeze(-1)  # (B, n, 1)
    inputs = embeds  # the first guess of every thought: its <|latent|> token embedding
    windows = getattr(cache, "position_windows", None)  # sliding windows counted in positions (window_masks)
    full_mask = mask if windows is None else windows.masks(engine.model.config, embeds, mask, pos, None, record=False)
    for _ in range(iterations):
        hidden = engine.decoder(inputs_embeds=inputs, attention_mask=full_mask, position_ids=pos,
                                use_cache=False).last_hidden_state
        # Column c's thought reads the hidden state of column c - 1, as in the sequential engine.
        fed = engine.thought_embedding(hidden[:, start - 1 : start - 1 + n_cols]).to(embeds.dtype)
        block = torch.where(thought, fed, embeds[:, cols])
        inputs = torch.cat([embeds[:, :start], block, embeds[:, start + n_cols :]], dim=1)
    return engine.cached_pass(inputs, mask, pos, cache)
