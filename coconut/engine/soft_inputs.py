"""What a model reads back after each generated token: the token itself, or a continuous mix.

Training-free alternatives to feeding the chosen token's embedding, usable on any checkpoint
(typically a CoT-trained one) and compared against plain greedy decoding by `coconut analyze`. Both follow
their authors' releases (the files named are where each rule was read; nothing is copied from them):

- Soft Thinking (Zhang et al., 2025; github.com/eric-ai-lab/Soft-Thinking,
  sglang_soft_thinking_pkg/python/sglang/srt/layers/sampler.py and .../managers/schedule_batch.py;
  settings from its readme.md and scripts/st/qwq32b_st_math.sh). Per step:
      p = softmax(logits / temperature)                               (cold-stop entropy is taken here)
      keep the top_k most likely tokens, renormalise; keep the smallest prefix reaching top_p, renormalise;
      drop tokens below min_p x the most likely one, renormalise; keep the first max_topk, renormalise
  and feed the weighted sum of those token embeddings. "Cold stop": when the entropy of p stays below
  `cold_stop_entropy` for `cold_stop_patience` steps in a row, the release replaces that step's token with
  the end-of-thinking token `</think>`, so the model answers. Here the answer marker plays that part: that
  step's token becomes `answer_ids[0]`, the marker's other tokens follow, all read back plain, and the row
  decodes its answer greedily from there. The soft phase also ends when the model itself writes a
  `leave_ids` token (the answer marker, EOS), as the release leaves it at `</think>`.
- Mixture of Inputs (Zhuang et al., 2025; github.com/EvanZhuang/mixinputs, mixinputs/gpu_model_runner.py and
  gpu_input_batch.py). The prior p is the renormalised top-k (k = 20, vLLM's logprobs, taken before any
  temperature) distribution and the observation the token y written out:
      H = entropy(p) / log(k),   posterior = (p + beta * onehot_k(y)) / (1 + beta)
      input = H * sum_i posterior_i e_i + (1 - H) * e_y
  so a confident step (H ~ 0) feeds the token, an uncertain one leans on the distribution. The release mixes
  every input of the generation (it has no thinking phase), so the answer is mixed too; `leave_ids` do not
  apply to it.

The token written out (and scored, and counted) is the greedy one, except for the answer marker a cold stop
forces. Soft Thinking's own thinking token is the top of the filtered distribution, i.e. greedy; the
releases sample everything else (Soft Thinking's answer with temperature 0.6, top-p 0.95, top-k 30;
Mixture of Inputs every token), which this evaluation does not: decoding stays deterministic.
"""

from __future__ import annotations

import math

import torch

from coconut.config import DecodeConfig


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each row of a probability matrix."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(dim=-1)


def _renormalised(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    values = torch.where(keep, values, torch.zeros_like(values))
    return values / values.sum(dim=-1, keepdim=True)


def soft_weights(probs: torch.Tensor, top_k: int, top_p: float, min_p: float = 0.0,
                 max_topk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids, weights), each (B, m): Soft Thinking's filter chain over a (temperature-scaled) distribution.

    The release's order: top-k, top-p, min-p, each followed by renormalising, then the max_topk most likely
    survivors, renormalised. Every filter keeps a prefix of the sorted list, so one sort serves them all.
    """
    values, ids = probs.topk(min(top_k, probs.shape[-1]), dim=-1)  # sorted, most likely first
    values = _renormalised(values, torch.ones_like(values, dtype=torch.bool))
    # top-p on the top-k renormalised mass: keep a token while the mass before it is below top_p (the
    # smallest prefix reaching top_p; the first token is always kept).
    values = _renormalised(values, values.cumsum(dim=-1) - values < top_p)
    values = _renormalised(values, values >= min_p * values[:, :1])  # min-p is relative to the top token
    m = values.shape[-1] if max_topk is None else min(max_topk, values.shape[-1])
    return ids[:, :m], _renormalised(values[:, :m], torch.ones_like(values[:, :m], dtype=torch.bool))


def moi_weights(logits: torch.Tensor, token: torch.Tensor, top_k: int,
                beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids, weights), each (B, k + 1): Mixture of Inputs' input as a weighted sum of embeddings.

    Columns 0..k-1 are the top-k tokens with weight H * posterior; column k is the observed token with
    weight 1 - H (the release adds its embedding separately, so a token outside the top-k still counts).
    """
    values, ids = logits.float().topk(min(top_k, logits.shape[-1]), dim=-1)
    prior = values.softmax(dim=-1)  # the top-k distribution renormalised, as softmax over the top logprobs
    h = entropy(prior) / math.log(prior.shape[-1])  # normalised by log k, not log V
    observed = (ids == token.unsqueeze(-1)).to(prior.dtype)
    posterior = (prior + beta * observed) / (1 + beta)
    weights = torch.cat([h.unsqueeze(-1) * posterior, (1 - h).unsqueeze(-1)], dim=-1)
    return torch.cat([ids, token.unsqueeze(-1)], dim=-1), weights


class InputMixer:
    """The next token and input embedding of each row, and which rows are still in their continuous phase."""

    def __init__(self, cfg: DecodeConfig, engine, batch: int, device, leave_ids=(), answer_ids=()):
        self.cfg, self.engine = cfg, engine
        self.soft = torch.full((batch,), cfg.name != "greedy", dtype=torch.bool, device=device)
        self.calm = torch.zeros(batch, dtype=torch.long, device=device)  # confident soft steps in a row
        self.leave_ids = torch.tensor(sorted(set(leave_ids)), dtype=torch.long, device=device)
        self.answer_ids = torch.tensor(list(answer_ids), dtype=torch.long, device=device)
        # Index into answer_ids of the next token a cold-stopped row is made to write; -1: none pending.
        self.forcing = torch.full((batch,), -1, dtype=torch.long, device=device)
        self.mixing = torch.zeros(batch, dtype=torch.bool, device=device)  # rows whose last input is a mixture

    def __call__(self, logits: torch.Tensor, token: torch.Tensor,
                 active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(token (B,), input (B, d)) after the greedy `token` was chosen from `logits`.

        Only `active` rows update their state; the returned token differs from `token` only where a cold
        stop writes the answer marker.
        """
        if self.cfg.name == "greedy":
            return token, self.engine.embed(token)
        if self.cfg.name == "mixture_of_inputs":
            self.mixing = active.clone()
            ids, weights = moi_weights(logits, token, self.cfg.moi_top_k, self.cfg.beta)
            return token, self._mix(ids, weights, token, active)
        token = self._force(token, active)
        self.soft &= ~(active & torch.isin(token, self.leave_ids))
        self.mixing = self.soft & active
        if not bool(self.mixing.any()):
            return token, self.engine.embed(token)
        probs = (logits.float() / self.cfg.temperature).softmax(dim=-1)
        if self.cfg.cold_stop_entropy > 0:  # the release's switch: a zero threshold turns cold stop off
            token = self._cold_stop(probs, token, active)
        self.mixing = self.soft & active  # a cold-stopped row reads its marker token back plain
        ids, weights = soft_weights(probs, self.cfg.top_k, self.cfg.top_p, self.cfg.min_p, self.cfg.max_topk)
        return token, self._mix(ids, weights, token, self.mixing)

    def _mix(self, ids, weights, token, rows):
        plain = self.engine.embed(token)
        if not bool(rows.any()):
            return plain
        vectors = self.engine.embed(ids)  # (B, k, d)
        mixed = (weights.unsqueeze(-1).to(vectors.dtype) * vectors).sum(dim=1)
        return torch.where(rows.unsqueeze(-1), mixed.to(plain.dtype), plain)

    def _force(self, token, active):
        """The next marker token for rows a cold stop left mid-marker."""
        pending = active & (self.forcing >= 0)
        if not bool(pending.any()):
            return token
        index = self.forcing.clamp(min=0)
        token = torch.where(pending, self.answer_ids[index], token)
        after = torch.where(index + 1 < self.answer_ids.numel(), index + 1, -1)
        self.forcing = torch.where(pending, after, self.forcing)
        return token

    def _cold_stop(self, probs, token, active):
        """Count confident soft steps; the one completing `cold_stop_patience` of them writes the marker."""
        counted = self.soft & active
        confident = counted & (entropy(probs) < self.cfg.cold_stop_entropy)
        self.calm = torch.where(confident, self.calm + 1, torch.where(counted, 0, self.calm))
        stop = counted & (self.calm >= self.cfg.cold_stop_patience)
        if not bool(stop.any()):
            return token
        self.soft &= ~stop
        self.calm = torch.where(stop, 0, self.calm)
        if self.answer_ids.numel() == 0:  # no marker given: the row just returns to plain tokens
            return token
        self.forcing = torch.where(stop, 1 if self.answer_ids.numel() > 1 else -1, self.forcing)
        return torch.where(stop, self.answer_ids[0], token)
