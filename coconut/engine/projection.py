"""How a last hidden state becomes the next input embedding, when it is not fed back as it is.

Two forms: a linear map initialised to the identity (COCONUT runs that learn a projection start exactly where
the paper's plain feedback is), and CODI's two-layer MLP (dropout, linear to `dim`, GELU, linear back, then a
LayerNorm), with the release's module names (`1`, `3`, `ln`) so its checkpoints load by name."""

from __future__ import annotations

import torch
from torch import nn


def identity_linear(width: int) -> nn.Linear:
    layer = nn.Linear(width, width)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(width))
        layer.bias.zero_()
    return layer


class ThoughtMLP(nn.Sequential):
    def __init__(self, width: int, dim: int, dropout: float = 0.0, norm: bool = True):
        super().__init__(nn.Dropout(dropout), nn.Linear(width, dim), nn.GELU(), nn.Linear(dim, width))
        if norm:
            self.add_module("ln", nn.LayerNorm(width))


def build_projection(width: int, dim: int | None = None, dropout: float = 0.0, norm: bool = True) -> nn.Module:
    """The identity-initialised linear map (`dim` None) or the MLP through `dim` units."""
    if dim is None:
        return identity_linear(width)
    if dim < 1 or not 0.0 <= dropout < 1.0:
        raise ValueError(f"projection: dim must be >= 1 and dropout in [0, 1), got dim={dim}, dropout={dropout}")
    return ThoughtMLP(width, dim, dropout, norm)
