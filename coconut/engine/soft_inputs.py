"""What a model reads back after each generated token: the token itself, or a continuous mix.

Training-free alternatives to feeding the chosen token's embedding, usable on any checkpoint
(typically a CoT-trained one) and compared against plain greedy decoding by `coconut analyze`:

- Soft Thinking (Zhang et al., 2025): feed the probability-weighted mix of the top-k (then top-p)
  token embeddings. "Cold stop": once the distribution's entropy stays below a threshold for
  `cold_stop_patience` steps in a row the model is confident, and the row returns to plain tokens.
- Mixture of Inputs (Zhuang et al., 2025): feed the posterior mean of a Dirichlet whose prior is
  the distribution p and whose observation is the chosen token y:
      w = (H * p + (beta + 1 - H) * onehot(y)) / (beta + 1),   H = entropy(p) / log(V) in [0, 1]
  so a confident step (H ~ 0) feeds the token, an uncertain one leans on the distribution.

The continuous phase is the reasoning: a row leaves it for good when its chosen token is one of
`leave_ids` (the answer marker, EOS), so the answer is always read back as plain tokens. The token
written out (and scored, and counted) is always the greedy one: decoding stays deterministic.
"""

from __future__ import annotations

import math

import torch

from coconut.config import DecodeConfig


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each row of a probability matrix."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(dim=-1)


def soft_weights(probs: torch.Tensor, top_k: int, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids, weights) of the top-k, top-p filtered and renormalised distribution, each (B, k)."""
    values, ids = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
    # Keep a token while the mass before it is below top_p: the first token is always kept.
    before = values.cumsum(dim=-1) - values
    values = torch.where(before < top_p, values, torch.zeros_like(values))
    return ids, values / values.sum(dim=-1, keepdim=True)


class InputMixer:
    """The next input embedding of each row, and which rows are still in their continuous phase."""

    def __init__(self, cfg: DecodeConfig, engine, batch: int, device, leave_ids=()):
        self.cfg, self.engine = cfg, engine
        self.soft = torch.full((batch,), cfg.name != "greedy", dtype=torch.bool, device=device)
        self.calm = torch.zeros(batch, dtype=torch.long, device=device)  # confident steps in a row
        self.leave_ids = torch.tensor(sorted(set(leave_ids)), dtype=torch.long, device=device)
        self.mixing = torch.zeros(batch, dtype=torch.bool, device=device)  # rows whose last input is a mixture

    def __call__(self, logits: torch.Tensor, token: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """(B, d) inputs after `token` was chosen from `logits`; only `active` rows update their state."""
        plain = self.engine.embed(token)
        if self.cfg.name == "greedy":
            return plain
        self.soft &= ~(active & torch.isin(token, self.leave_ids))
        self.mixing = mixing = self.soft & active
        if not bool(mixing.any()):
            return plain
        probs = logits.float().softmax(dim=-1)
        if self.cfg.name == "soft_thinking":
            mixed = self._soft_thinking(probs, active)
        else:
            mixed = self._mixture_of_inputs(probs, token)
        return torch.where(mixing.unsqueeze(-1), mixed.to(plain.dtype), plain)

    def _soft_thinking(self, probs, active):
        cfg = self.cfg
        ids, weights = soft_weights(probs, cfg.top_k, cfg.top_p)
        vectors = self.engine.embed(ids)  # (B, k, d)
        mixed = (weights.unsqueeze(-1).to(vectors.dtype) * vectors).sum(dim=1)
        if cfg.cold_stop_patience:
            confident = active & (entropy(probs) < cfg.cold_stop_entropy)
            self.calm = torch.where(confident, self.calm + 1, torch.where(active, 0, self.calm))
            # The step that completes the confident run is still fed soft; plain tokens from the next one.
            self.soft &= ~(self.calm >= cfg.cold_stop_patience)
        return mixed

    def _mixture_of_inputs(self, probs, token):
        cfg = self.cfg
        h = entropy(probs) / math.log(probs.shape[-1])  # normalised to [0, 1]
        weights = probs * h.unsqueeze(-1)
        weights.scatter_add_(1, token.unsqueeze(-1), (cfg.beta + 1 - h).unsqueeze(-1))
        weights = weights / (cfg.beta + 1)
        table = self.engine.model.get_input_embeddings().weight
        return weights.to(table.dtype) @ table
