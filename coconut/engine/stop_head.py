"""The learned stop: a small classifier that reads a thought and says whether the thoughts end here.

Trained beside the language model (its targets come from the input ids: 1 where `<|end-latent|>`
follows, 0 where another thought follows), it lets generation give each row as many thoughts as
it needs (`generate(..., learned_stop=True)`) instead of a fixed count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class StopHead(nn.Sequential):
    """An MLP from a last hidden state to the logit of "the thoughts end here".

    The layer norm matters: thoughts of models trained from scratch differ from one another mostly in
    direction, by small margins, and a bare linear probe learns them slowly."""

    def __init__(self, width: int):
        super().__init__(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))

    def probability(self, hidden: torch.Tensor) -> torch.Tensor:
        """P(the thoughts end here) from the last hidden state of `<|start-latent|>` or of a thought."""
        return torch.sigmoid(self(hidden).squeeze(-1).float())

    @staticmethod
    def targets(input_ids: torch.Tensor, start_id: int, latent_id: int, end_id: int) -> torch.Tensor:
        """Per position: 1 where `<|end-latent|>` follows, 0 where another thought follows, -1 elsewhere.

        Only positions that are `<|start-latent|>` or a thought make the decision."""
        here, after = input_ids[:, :-1], input_ids[:, 1:]
        deciding = ((here == start_id) | (here == latent_id)) & ((after == latent_id) | (after == end_id))
        targets = torch.where(deciding, (after == end_id).float(), torch.full_like(here, -1, dtype=torch.float))
        return torch.cat([targets, targets.new_full((targets.shape[0], 1), -1.0)], dim=1)

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
        """Binary cross entropy on the deciding positions (targets >= 0); None when no position decides.

        The hidden states are detached: the classifier reads the thoughts without changing them, so
        the same model can be compared with a fixed and a learned number of thoughts."""
        deciding = targets >= 0
        if not bool(deciding.any()):
            return None
        logits = self(hidden.detach()[deciding]).squeeze(-1).float()
        return F.binary_cross_entropy_with_logits(logits, targets[deciding])
