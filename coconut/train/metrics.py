"""Scoring a batch of generations: accuracy, CoT exact match, generated tokens, thoughts, forward passes."""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric

from coconut.data.scoring import answer_correct
from coconut.engine.loss import IGNORE_INDEX


class EvalMetrics(torch.nn.Module):
    """Means over the questions seen, each weighted by its weight (0: not counted): accuracy, CoT match, tokens,
    thoughts, passes.

    `tokens` is the paper's count (language tokens without the final EOS, as the release's `generate`
    returns them, plus thoughts); `language_tokens` leaves the thoughts out, `language_tokens_with_eos`
    counts the EOS too."""

    NAMES = ("acc", "cot_match", "tokens", "language_tokens", "language_tokens_with_eos", "thoughts", "passes")

    def __init__(self):
        super().__init__()
        for name in self.NAMES:
            setattr(self, name, MeanMetric())

    def update(self, gen, correct: torch.Tensor, cot_match: torch.Tensor, eos_id: int,
               weights: torch.Tensor | None = None) -> None:
        """weights: one per question (default 1); a question repeated only to even out DDP ranks has 0."""
        values = {"acc": correct, "cot_match": cot_match, "tokens": gen.paper_token_count(eos_id),
                  "language_tokens": gen.language_tokens(eos_id), "language_tokens_with_eos": gen.num_generated,
                  "thoughts": gen.num_thoughts, "passes": gen.num_forward_passes}
        for name, value in values.items():
            getattr(self, name).update(value.float(), weights)

    def values(self) -> dict[str, float]:
        return {name: round(float(getattr(self, name).compute()), 5) for name in self.NAMES}


def correct_answers(texts: list[str], answers: list[str], marker: str, device, rule: str = "release") -> torch.Tensor:
    """1.0 where the text after the last answer marker matches the answer under `rule` (coconut.data.scoring)."""
    return torch.tensor([answer_correct(t, a, marker, rule) for t, a in zip(texts, answers)], dtype=torch.float32,
                        device=device)


def cot_matches(gen, targets: torch.Tensor) -> torch.Tensor:
    """1.0 where the generated tokens equal the target (remaining steps, answer, EOS) exactly."""
    out = []
    for row, (seq, n) in enumerate(zip(gen.sequences, gen.num_generated)):
        want = targets[row][targets[row] != IGNORE_INDEX]
        out.append(float(int(n) == len(want) and torch.equal(seq[:n], want)))
    return torch.tensor(out, device=targets.device)
