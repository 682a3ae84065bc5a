"""Lines the continuous thoughts of a batch up in one block of columns.

The latent engine runs one cached forward pass per thought, and each pass handles one
column for the whole batch. That only works when every example's first thought sits in the
same column. `align_thoughts` builds such a layout from any batch (left or right padded,
different question lengths, different numbers of thoughts) by moving tokens to new columns:

    [pad][prefix ... <|start-latent|>][thought x n_b][holes][suffix ...]
                                      ^ column P            ^ suffix right-aligned at W-1

Holes are masked columns, so attention ignores them and position ids (from the mask) stay
contiguous. Right-aligning the suffix makes every prompt end in the last column, which is
what batched generation needs. A batch that is already aligned maps onto itself and costs
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


class LatentInputError(ValueError):
    """A batch whose latent markers do not follow the `<bot> <latent>* <eot>` pattern."""


@dataclass
class ThoughtLayout:
    """A batch moved so that all thoughts start in column `first_thought`."""

    input_ids: torch.Tensor  # (B, W)
    attention_mask: torch.Tensor  # (B, W), 0 on padding and holes
    position_ids: torch.Tensor  # (B, W)
    is_thought: torch.Tensor  # (B, W) bool
    column: torch.Tensor  # (B, T): new column of every original position
    first_thought: int  # P: column of the first thought of every example
    thought_columns: int  # number of columns holding a thought in some row (max n_b)
    num_thoughts: torch.Tensor  # (B,) thoughts per example
    is_identity: bool  # True when no token moved

    @property
    def width(self) -> int:
        return self.input_ids.shape[1]


def locate_thoughts(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    latent_id: int,
    start_id: int,
    end_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (first thought index, thought count) per row, after checking the markers."""
    is_thought = (input_ids == latent_id) & attention_mask.bool()
    count = is_thought.sum(dim=1)
    seq_len = input_ids.shape[1]
    first = is_thought.int().argmax(dim=1)  # index of the first True (0 when none)
    last = seq_len - 1 - is_thought.flip(1).int().argmax(dim=1)
    has = count > 0
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)

    split = has & (last - first + 1 != count)
    if split.any():
        row = int(split.nonzero()[0])
        raise LatentInputError(
            f"row {row}: the <|latent|> tokens are not one contiguous block "
            "(expected <|start-latent|> <|latent|>* <|end-latent|>)"
        )
    before = input_ids[rows, (first - 1).clamp(min=0)]
    unopened = has & ((first == 0) | (before != start_id))
    if unopened.any():
        row = int(unopened.nonzero()[0])
        raise LatentInputError(
            f"row {row}: a <|latent|> token at position {int(first[row])} is not preceded by "
            "<|start-latent|>; write the thoughts as <|start-latent|> <|latent|>* <|end-latent|>"
        )
    after = input_ids[rows, (last + 1).clamp(max=seq_len - 1)]
    unclosed = has & ((last + 1 >= seq_len) | (after != end_id))
    if unclosed.any():
        row = int(unclosed.nonzero()[0])
        raise LatentInputError(
            f"row {row}: the <|latent|> block ending at position {int(last[row])} is not closed "
            "by <|end-latent|>"
        )
    return first, count


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count only attended tokens (padding and holes repeat a neighbour's)."""
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)


def align_thoughts(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    latent_id: int,
    start_id: int,
    end_id: int,
    pad_id: int,
    position_ids: torch.Tensor | None = None,
) -> ThoughtLayout:
    """Move each row so that its thoughts start in a shared column (see the module doc)."""
    batch, seq_len = input_ids.shape
    device = input_ids.device
    first, count = locate_thoughts(input_ids, attention_mask, latent_id, start_id, end_id)
    has = count > 0
    steps = torch.arange(seq_len, device=device).unsqueeze(0)
    if not bool(has.any()):
        return ThoughtLayout(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions_from_mask(attention_mask) if position_ids is None else position_ids,
            is_thought=torch.zeros_like(input_ids, dtype=torch.bool),
            column=steps.expand(batch, seq_len),
            first_thought=seq_len,
            thought_columns=0,
            num_thoughts=count,
            is_identity=True,
        )

    start = int(first[has].max())  # P
    n_max = int(count.max())
    # Rows without thoughts split at P: their first P tokens stay, the rest is suffix.
    first = torch.where(has, first, torch.full_like(first, min(start, seq_len)))
    suffix_start = first + count  # s_b
    width = start + n_max + seq_len - int(suffix_start.min())
    column = torch.where(
        steps < suffix_start.unsqueeze(1),
        steps + (start - first).unsqueeze(1),
        steps + (width - seq_len),
    )

    def move(values: torch.Tensor, fill: int) -> torch.Tensor:
        out = torch.full((batch, width), fill, dtype=values.dtype, device=device)
        return out.scatter_(1, column, values)

    ids = move(input_ids, pad_id)
    mask = move(attention_mask, 0)
    positions = positions_from_mask(mask) if position_ids is None else move(position_ids, 0)
    return ThoughtLayout(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        is_thought=(ids == latent_id) & mask.bool(),
        column=column,
        first_thought=start,
        thought_columns=n_max,
        num_thoughts=count,
        is_identity=width == seq_len and bool((column == steps).all()),
    )


def right_align(input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_id: int):
    """Roll each row right so its last attended token is in the last column (right padding becomes left padding)."""
    last = attention_mask.shape[1] - 1 - attention_mask.flip(1).int().argmax(dim=1)
    shift = attention_mask.shape[1] - 1 - last  # trailing padding per row
    if not bool(shift.any()):
        return input_ids, attention_mask
    steps = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
    source = (steps - shift.unsqueeze(1)) % input_ids.shape[1]
    ids = input_ids.gather(1, source)
    mask = attention_mask.gather(1, source)
    ids = torch.where(mask.bool(), ids, torch.full_like(ids, pad_id))
    return ids, mask


def prompts_until_start(input_ids: torch.Tensor, attention_mask: torch.Tensor, start_id: int, pad_id: int):
    """Each prompt cut right after its `<|start-latent|>` and right-aligned again (for a learned stop)."""
    is_start = (input_ids == start_id) & attention_mask.bool()
    missing = ~is_start.any(dim=1)
    if bool(missing.any()):
        raise LatentInputError(f"row {int(missing.nonzero()[0])}: no <|start-latent|> in the prompt; a learned "
                               "number of thoughts needs prompts that open the latent mode")
    cut = is_start.int().argmax(dim=1, keepdim=True)  # the first start marker of each row
    keep = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0) <= cut
    mask = attention_mask * keep
    ids = torch.where(mask.bool(), input_ids, torch.full_like(input_ids, pad_id))
    return right_align(ids, mask, pad_id)
