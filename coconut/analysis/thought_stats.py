"""The geometry of a batch's continuous thoughts: their size against token embeddings, and how alike they are.

Two questions people ask of a COCONUT run: are the thoughts far larger than the token embeddings they sit
among (they are last hidden states, which come out of the final norm), and do they collapse into one
homogeneous state as their number grows (SIM-CoT, Wei et al. 2025)? Both are read from the thoughts the
engine feeds back, computed by the engine itself (`batch_thoughts`), and summarised by `thought_stats`:

- `thoughts/norm_pos{j}`: mean L2 norm of thought j (1-based, as `coconut think` numbers them), over the
  questions that have a j-th thought; `thoughts/token_embedding_norm`: mean L2 norm of the input embeddings of
  the questions' tokens; `thoughts/norm_ratio`: mean thought norm over all thoughts, divided by the latter.
  The question's tokens rather than the whole vocabulary: they are the inputs the thoughts sit among in the
  same sequence, a vocabulary holds rows the data never uses (and fresh special tokens), and the same mean is
  what `latent.auto_thought_scale` scales thoughts to, so with it the ratio starts near 1.
- `thoughts/cos_within`: mean cosine similarity over all pairs of thoughts of one question (positions i < j),
  pooled over the questions; `thoughts/cos_across`: mean cosine similarity over all pairs of questions at the
  same position, pooled over positions. Near 1: the thoughts are one state (collapse); near 0: unrelated.

A figure no pair or thought defines (one thought per question, one question) is left out, not written as NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PREFIX = "thoughts/"


@dataclass
class BatchThoughts:
    """The continuous thoughts of a batch of prompts, by position (column j: each row's j-th thought)."""

    fed: torch.Tensor  # (B, n, d): the input embedding of each thought (after the engine's projection and scale)
    states: torch.Tensor  # (B, n, d): the last hidden state each thought is made from (what the LM head reads)
    present: torch.Tensor  # (B, n) bool: row b has a j-th thought (rows may have fewer than n)
    token_norm: float  # mean L2 norm of the input embeddings of the prompts' question tokens

    @property
    def count(self) -> int:
        return self.fed.shape[1]


@torch.no_grad()
def batch_thoughts(engine, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> BatchThoughts:
    """The thoughts `engine` (a `LatentReasoner`) feeds for prompts `question <bot> <latent>*k <eot>` (padded
    on either side, k may differ by row, 0 included): one latent forward by the engine's own passes.

    Thought j enters at its `<|latent|>` column from the last hidden state of the column before it (through
    `engine.thought_embedding`), and the engine lines every row's thoughts up in shared columns, so the
    states before thought j of every row are one column of the passes' hidden states. Sequential thoughts (the
    default) are exactly the fed ones; Jacobi thoughts with fewer iterations than thoughts are the ones its
    next iteration would feed (equal to the fed ones once the iterations reach the thoughts)."""
    passes = engine.run_passes(input_ids, attention_mask)
    layout = passes.layout
    start, n = layout.first_thought, layout.thought_columns  # without thoughts: an empty slice
    states = passes.hidden[:, start - 1 : start - 1 + n]
    present = layout.is_thought[:, start : start + n]
    question = question_tokens(engine, input_ids, attention_mask)
    token_norm = float(engine.embed(input_ids)[question].float().norm(dim=-1).mean()) if question.any() else 0.0
    return BatchThoughts(engine.thought_embedding(states), states, present, token_norm)


def question_tokens(engine, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: the attended tokens that are not latent markers (the question, and BOS where the model has one)."""
    markers = (input_ids == engine.latent_id) | (input_ids == engine.start_id) | (input_ids == engine.end_id)
    return attention_mask.bool() & ~markers


def _mean_over_pairs(unit: torch.Tensor, present: torch.Tensor) -> float | None:
    """Mean cosine over the pairs i < j of the second axis, per first axis, pooled: unit (G, m, d), present (G, m)."""
    cos = unit @ unit.transpose(1, 2)  # (G, m, m)
    upper = torch.ones(cos.shape[1:], dtype=torch.bool, device=cos.device).triu(diagonal=1)
    pairs = present.unsqueeze(2) & present.unsqueeze(1) & upper
    return float(cos[pairs].mean()) if bool(pairs.any()) else None


def thought_stats(fed: torch.Tensor, present: torch.Tensor, token_norm: float) -> dict[str, float]:
    """The figures of the module doc from thoughts `fed` (B, n, d) where `present` (B, n); {} without thoughts."""
    if not bool(present.any()):
        return {}
    fed = fed.float()
    norms = fed.norm(dim=-1)  # (B, n)
    stats = {f"{PREFIX}token_embedding_norm": float(token_norm)}
    for j in range(fed.shape[1]):
        if bool(present[:, j].any()):
            stats[f"{PREFIX}norm_pos{j + 1}"] = float(norms[:, j][present[:, j]].mean())
    if token_norm > 0:
        stats[f"{PREFIX}norm_ratio"] = float(norms[present].mean()) / float(token_norm)
    unit = torch.nn.functional.normalize(fed, dim=-1)
    figures = {"cos_within": _mean_over_pairs(unit, present),  # pairs of positions within each question
               "cos_across": _mean_over_pairs(unit.transpose(0, 1), present.t())}  # pairs of questions per position
    stats.update({f"{PREFIX}{name}": value for name, value in figures.items() if value is not None})
    return stats


def read_batch(engine, tokenizer, thoughts: BatchThoughts, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               questions: int = 3, top: int = 5) -> list[tuple[str, list]]:
    """(question text, one `ThoughtReading` per thought) for the first `questions` rows that have thoughts: the LM
    head's `top` tokens at each thought's state, read as `coconut think` reads them."""
    from coconut.analysis.thoughts import read_states

    question = question_tokens(engine, input_ids, attention_mask)
    out = []
    for row in range(input_ids.shape[0]):
        if len(out) >= questions:
            break
        if not bool(thoughts.present[row].any()):
            continue
        ids = input_ids[row][question[row]].tolist()
        text = tokenizer.decode(ids, skip_special_tokens=True).strip()
        out.append((text, read_states(engine, tokenizer, thoughts.states[row][thoughts.present[row]], top)))
    return out
