"""Batching samples: padding, attention masks, and thoughts lined up for the latent engine.

Training batches are padded on the left just enough that every row's first `<|latent|>` falls in
the same column, and on the right to a common length. When the rows also have the same number of
thoughts (the usual case within a stage) the engine's `align_thoughts` then has nothing to move.
Generation prompts are padded on the left so every prompt ends in the last column.
"""

from __future__ import annotations

import torch

from coconut.data.curriculum import Sample
from coconut.markers import IGNORE_INDEX


def _first(tokens: list[int], token: int) -> int | None:
    try:
        return tokens.index(token)
    except ValueError:
        return None


class LatentCollator:
    """Turns a list of `Sample`s into the tensors `LatentReasoner.forward` takes."""

    def __init__(self, pad_id: int, latent_id: int):
        self.pad_id, self.latent_id = pad_id, latent_id

    def __call__(self, samples: list[Sample]) -> dict[str, torch.Tensor]:
        anchors = [_first(s.input_ids, self.latent_id) for s in samples]
        reach = max((a for a in anchors if a is not None), default=0)
        left = [0 if a is None else reach - a for a in anchors]
        width = max(l + len(s.input_ids) for l, s in zip(left, samples))
        ids, mask, labels = [], [], []
        for l, s in zip(left, samples):
            right = width - l - len(s.input_ids)
            ids.append([self.pad_id] * l + s.input_ids + [self.pad_id] * right)
            mask.append([0] * l + [1] * len(s.input_ids) + [0] * right)
            labels.append([IGNORE_INDEX] * l + s.labels + [IGNORE_INDEX] * right)
        batch = {
            "input_ids": torch.tensor(ids),
            "attention_mask": torch.tensor(mask),
            "labels": torch.tensor(labels),
            "stage": torch.tensor([s.stage for s in samples]),
            "num_thoughts": torch.tensor([s.num_thoughts for s in samples]),
        }
        if samples and samples[0].teacher_ids is not None:
            batch.update(self.teachers(samples))
            batch["distill"] = torch.tensor([l + s.distill for l, s in zip(left, samples)])
        if samples and samples[0].step_sources is not None:
            batch.update(self.steps(samples, left))
        return batch

    @staticmethod
    def steps(samples: list[Sample], left: list[int]) -> dict[str, torch.Tensor]:
        """Step supervision's tensors (coconut.engine.step_decoder): `step_sources` (B, G, c), the columns whose
        last hidden state becomes each thought's vectors (-1: none), and `step_targets` (B, G, L), the step's ids
        and EOS, -100 after; G the most supervised thoughts of a row."""
        groups = max(len(s.step_sources) for s in samples)
        c = max((len(g) for s in samples for g in s.step_sources), default=1)
        width = max((len(t) for s in samples for t in s.step_targets), default=1)
        sources = torch.full((len(samples), groups, c), -1)
        targets = torch.full((len(samples), groups, width), IGNORE_INDEX)
        for b, (l, s) in enumerate(zip(left, samples)):
            for g, (group, target) in enumerate(zip(s.step_sources, s.step_targets)):
                sources[b, g, : len(group)] = torch.tensor(group) + l
                targets[b, g, : len(target)] = torch.tensor(target, dtype=torch.long)
        return {"step_sources": sources, "step_targets": targets}

    def teachers(self, samples: list[Sample]) -> dict[str, torch.Tensor]:
        """The second sequences (CODI's teacher), right-padded, labelled from their `teacher_labelled_from`."""
        width = max(len(s.teacher_ids) for s in samples)
        ids, mask, labels = [], [], []
        for s in samples:
            n, right = len(s.teacher_ids), width - len(s.teacher_ids)
            ids.append(s.teacher_ids + [self.pad_id] * right)
            mask.append([1] * n + [0] * right)
            labels.append([IGNORE_INDEX] * s.teacher_labelled_from + s.teacher_ids[s.teacher_labelled_from:]
                          + [IGNORE_INDEX] * right)
        return {"teacher_input_ids": torch.tensor(ids), "teacher_attention_mask": torch.tensor(mask),
                "teacher_labels": torch.tensor(labels),
                "teacher_distill": torch.tensor([s.teacher_distill for s in samples])}

    def prompts(self, samples: list[Sample]) -> dict[str, torch.Tensor]:
        """Left-padded generation prompts, with the targets right-padded for scoring."""
        width = max(len(s.prompt) for s in samples)
        target_width = max(len(s.target) for s in samples)
        return {
            "input_ids": torch.tensor([[self.pad_id] * (width - len(s.prompt)) + s.prompt for s in samples]),
            "attention_mask": torch.tensor([[0] * (width - len(s.prompt)) + [1] * len(s.prompt) for s in samples]),
            "target_ids": torch.tensor([s.target + [IGNORE_INDEX] * (target_width - len(s.target)) for s in samples]),
            "num_thoughts": torch.tensor([s.num_thoughts for s in samples]),
        }


class EvalCollator:
    """Validation/test batches of (sample, answer text): the training form (for the loss) and the prompts."""

    def __init__(self, collate: LatentCollator):
        self.collate = collate

    def __call__(self, items):
        samples = [s for s, _ in items]
        batch = self.collate(samples)
        prompts = self.collate.prompts(samples)
        batch.update({f"prompt_{k}": v for k, v in prompts.items() if k != "num_thoughts"})
        batch["answers"] = [answer for _, answer in items]
        return batch


class WeightedEvalCollator:
    """Evaluation batches of (sample, answer, weight): the EvalCollator's batch with the weights beside it (0 for
    a question repeated only to even out the ranks)."""

    def __init__(self, collate: EvalCollator):
        self.collate = collate

    def __call__(self, items):
        batch = self.collate([(sample, answer) for sample, answer, _ in items])
        batch["weights"] = torch.tensor([weight for _, _, weight in items], dtype=torch.float32)
        return batch
