"""The language-model loss on labelled positions; -100 marks positions with nothing to predict."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from coconut.markers import IGNORE_INDEX  # noqa: F401  (re-exported: the engine's loss masks with it)


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy of logits[t] against labels[t + 1] over positions not equal to -100."""
    # Shift the labels, not the logits: slicing the (B, T, V) logits would copy them.
    targets = F.pad(labels, (0, 1), value=IGNORE_INDEX)[:, 1:]
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX
    )
