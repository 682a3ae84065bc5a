"""Sliding-window attention counted in positions, for batches whose rows the engine moved apart.

A sliding-window layer lets a token see the `window` tokens up to itself. transformers counts them in columns. To
line a batch's thoughts up, the engine moves tokens and leaves masked columns (holes) inside rows; a window
counted in columns would then cover fewer of a row's tokens than the model sees on the row alone. Here the window
is counted in positions instead: the masks come from transformers' own `create_causal_mask` (so they have the
format of the model's attention implementation), narrowed to the keys whose position lies within the window of
the query's, and are handed to the model ready made: one mask per layer kind where the model mixes full and
sliding layers, one mask where every layer slides. The sliding layers then keep every column (the engine's room),
as the window is the mask's business.

The positions of the cached columns are recorded here, pass by pass, beside the cache.
"""

from __future__ import annotations

import torch
from transformers.masking_utils import create_causal_mask

FULL, SLIDING = "full_attention", "sliding_attention"
# Attention implementations that take a ready-made 4D mask (flash attention takes none).
MASKED_ATTENTION = ("sdpa", "eager")


class PositionWindows:
    """The masks of each decoder call over a cache whose sliding layers keep every column."""

    def __init__(self, window: int, every_layer_slides: bool):
        self.window = window
        self.every_layer_slides = every_layer_slides
        self.positions: torch.Tensor | None = None  # (B, columns cached): each cached column's position

    def masks(self, config, embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, cache,
              record: bool = True):
        """The attention mask(s) of a call whose queries are `embeds` at `position_ids`, over the cached columns
        and its own (`attention_mask` covers both). `record`: the call writes its columns into `cache`."""
        queries = position_ids.expand(embeds.shape[0], -1)
        earlier = self.positions if cache is not None and self.positions is not None else queries[:, :0]
        columns = torch.cat([earlier, queries], dim=1)  # the position of every key's column
        if record and cache is not None:
            self.positions = columns
        window = self.window

        def within_window(batch_idx, head_idx, q_idx, kv_idx):
            return columns[batch_idx, kv_idx] > columns[batch_idx, q_idx] - window

        common = {"config": config, "inputs_embeds": embeds, "attention_mask": attention_mask, "cache": cache,
                  "position_ids": position_ids}
        sliding = create_causal_mask(**common, and_mask_function=within_window)
        if self.every_layer_slides:
            return sliding
        return {FULL: create_causal_mask(**common), SLIDING: sliding}

    def crop(self, length: int) -> None:
        if self.positions is not None:
            self.positions = self.positions[:, :length]


def refuse_unmasked_attention(config) -> None:
    implementation = getattr(config, "_attn_implementation", None)
    if implementation not in MASKED_ATTENTION:
        raise ValueError(
            f"this model has sliding-window attention layers and attention implementation {implementation!r}, which "
            "takes no ready-made mask; the engine's batches have masked columns inside rows (thoughts lined up), "
            "where a window counted in columns would differ from the model's own. Load the model with "
            "attn_implementation='sdpa' or 'eager', or use batch size 1")
