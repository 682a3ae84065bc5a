"""Batches of similar length: an epoch's shuffled samples reordered so that little of each batch is padding.

A batch is padded to its longest sample, so a batch that mixes a 3-step question with a 1-step one computes the
short one's padding for nothing. Sorting the whole epoch by length would make every batch homogeneous but also
predictable (the short questions first); the usual compromise (fairseq, torchtune's packing, Hugging Face's
`group_by_length`) sorts within pools of many batches and then shuffles the batches. Only the order changes:
every sample is trained once, as before. It is a deviation from the release (which shuffles the samples and
batches them as they come), so the option `data.batch_by_length` is off unless an experiment turns it on.
"""

from __future__ import annotations

import random
from typing import Sequence, TypeVar

T = TypeVar("T")

POOL_BATCHES = 64  # batches sorted together: enough to find company of the same length, few enough to stay random


def sample_length(sample) -> int:
    """What a sample costs in a padded batch: its ids, and a second sequence's (CODI's teacher) when it has one."""
    return len(sample.input_ids) + len(sample.teacher_ids or ())


def grouped_by_length(samples: Sequence[T], group: int, rng: random.Random, length=sample_length,
                      pool_batches: int = POOL_BATCHES) -> list[T]:
    """`samples` (already shuffled) reordered so that each run of `group` consecutive samples has similar lengths.

    `group` is the samples of one optimizer step over all ranks (batch size x world size): ranks take every
    world-th sample of the order, so each rank's micro-batch comes from the same run. Pools of `pool_batches`
    groups are sorted by length (stably: ties keep the shuffled order) and cut into groups; the full groups are
    shuffled with `rng`, and a partial last group stays last, where the loader (and drop_last) expect it.
    """
    if group < 1:
        raise ValueError(f"group must be >= 1, got {group}")
    pool = group * pool_batches
    groups = []
    for start in range(0, len(samples), pool):
        ordered = sorted(samples[start:start + pool], key=length)
        groups += [ordered[i:i + group] for i in range(0, len(ordered), group)]
    partial = groups.pop() if groups and len(groups[-1]) < group else []
    rng.shuffle(groups)
    return [sample for g in groups for sample in g] + partial
