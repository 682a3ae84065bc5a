"""iCoT's removal schedule (Deng et al. 2024, as their release trains it) as pure functions, owned by the
method (coconut.methods.icot); `method` below is its config (coconut.config.MethodConfig's icot_* fields).

The release (da03/Internalize_CoT_Step_by_Step, src/train.py) keeps a counter of training batches from
the start of training and removes one more chain-of-thought token from the left every
`int(round(steps_per_epoch / remove_per_epoch))` batches (`--remove_per_epoch`, 8), so the count grows
within an epoch. Once the count reaches `--remove_all_when_remove_beyond` every CoT token is removed from
then on. Each sample removes the count plus a random offset P(o) ~ exp(-lambda o)
(`--removal_smoothing_lambda`), never more than its CoT (the answer always stays). AdamW is created
anew whenever the count grows (`--reset_optimizer`), unless the previous batch had lost all its CoT.

Here the count is a function of (epoch, batch index, steps per epoch) instead of a running counter, so a
run resumed from a checkpoint recomputes the very same counts, samples and optimizer resets.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


ALL = math.inf  # the count once the remove-all threshold is reached: every CoT token goes
MAX_OFFSET = 99  # the release truncates its smoothing distribution to offsets 0..99, the tail mass on 99


def batches_per_token(steps_per_epoch: int, method) -> int:
    """Batches between two increments of the count (0: one increment at every batch, as the release does)."""
    # Python's round, as the release: halves go to the even neighbour (round(12.5) == 12).
    return int(round(steps_per_epoch / method.icot_remove_per_epoch))


def scheduled_removal(epoch: int, batch_index: int, steps_per_epoch: int, method) -> float:
    """CoT tokens every sample of this batch loses before smoothing: an int, or ALL past the threshold."""
    step = epoch * steps_per_epoch + batch_index  # batches trained before this one
    every = batches_per_token(steps_per_epoch, method)
    # The release increments before using the count, when its counter has reached `every` batches; with
    # `every` 0 it increments at every batch, the first one included.
    count = step + 1 if every == 0 else step // every
    beyond = method.icot_remove_all_beyond
    return ALL if beyond is not None and count >= beyond else count


def smoothing_offset(rng: random.Random, smoothing: float) -> int:
    """A draw of P(o) ~ exp(-smoothing * o) on 0..MAX_OFFSET (the last value taking the tail); 0 when off."""
    ratio = math.exp(-smoothing) if smoothing > 0 else 0.0
    if ratio <= 0.0:
        return 0
    # A geometric draw with ratio exp(-lambda): P(o >= k) = ratio**k, which is the mass the release puts on
    # offsets k..99, so capping at 99 gives its truncated distribution exactly.
    return min(MAX_OFFSET, int(math.log(1.0 - rng.random()) / math.log(ratio)))


def reset_due(count: float, previous_count: float, previous_all_removed: bool) -> bool:
    """Whether AdamW starts afresh before a batch (the release's `--reset_optimizer`)."""
    return count > previous_count and not previous_all_removed


def previous_batch(epoch: int, batch_index: int, steps_per_epoch: int) -> tuple[int, int] | None:
    """(epoch, batch index) of the batch trained just before, None for the very first one."""
    if batch_index > 0:
        return epoch, batch_index - 1
    return (epoch - 1, steps_per_epoch - 1) if epoch > 0 else None


@dataclass(frozen=True)
class EpochPlan:
    """One epoch's shuffled records and what each position removes; a position p is in batch p // batch."""

    order: list[int]  # the record at each position
    removed: list[float]  # CoT tokens removed from the sample at each position (count + smoothing offset)
    cot_lengths: list[int]  # the CoT length of the record at each position
    batch: int  # samples per batch of the schedule (per optimizer step's forward pass over all ranks)

    def all_removed(self, batch_index: int) -> bool:
        """Whether every sample of a batch lost all its CoT (the release then skips the next reset)."""
        span = range(batch_index * self.batch, min(len(self.order), (batch_index + 1) * self.batch))
        return all(self.removed[p] >= self.cot_lengths[p] for p in span)


def plan_epoch(cot_lengths: list[int], epoch: int, steps_per_epoch: int, batch: int, method,
               rng: random.Random, positions: int | None = None) -> EpochPlan:
    """The epoch's order (shuffled by `rng`) and removals; `cot_lengths` per record, `batch` samples per batch.

    positions: more positions than records repeat the first records of the order at the end (the samples that
    even out the ranks under DDP), each removing what its own position's batch removes."""
    order = list(range(len(cot_lengths)))
    rng.shuffle(order)
    records = list(order)
    while records and positions is not None and len(order) < positions:  # as DistributedSampler pads
        order += records[:positions - len(order)]
    removed = [scheduled_removal(epoch, p // batch, steps_per_epoch, method)
               + smoothing_offset(rng, method.icot_smoothing) for p in range(len(order))]
    return EpochPlan(order, removed, [cot_lengths[i] for i in order], batch)


def epoch_is_final(epoch: int, steps_per_epoch: int, longest_cot: int, method,
                   last_epoch: int | None) -> bool:
    """Whether checkpoints of this epoch may be chosen: from the epoch at whose end every record's CoT is
    removed by the schedule alone (so no later batch holds any CoT), or the last epoch when none is.

    The release forgets its best validation accuracy at every batch that kept some CoT, so it picks the
    best of the epochs from the last one that kept some; this is that rule without the smoothing offsets'
    luck (a batch of only short records)."""
    if steps_per_epoch > 0 and scheduled_removal(epoch, steps_per_epoch - 1, steps_per_epoch, method) >= longest_cot:
        return True
    return last_epoch is not None and epoch >= last_epoch
