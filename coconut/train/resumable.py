"""A training epoch's loader that continues where a signal stopped it, so a preempted run resumes exactly.

Lightning saves a loader's `state_dict()` in every checkpoint and hands it back on resume (its `_Stateful`
protocol); without one, a checkpoint taken mid-epoch would replay the epoch's first batches and skip its last
ones. The state is the epoch and how many of its batches the trainer finished; the loader of that same epoch
skips them on its first pass. The samples and their order are a pure function of (seed, epoch) (see
coconut.train.datamodule), so the batches that follow are the ones the interrupted run would have trained.
"""

from __future__ import annotations

from typing import Callable, Optional

from torch.utils.data import DataLoader


class ResumableLoader(DataLoader):
    """A DataLoader for one epoch; `epoch` and `batches_done` (a callable) are set by the data module."""

    epoch: int = -1
    batches_done: Optional[Callable[[], int]] = None
    _skip: int = 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches_done": int(self.batches_done()) if self.batches_done else 0}

    def load_state_dict(self, state: dict) -> None:
        if state.get("epoch") == self.epoch:  # an end-of-epoch checkpoint's state belongs to the epoch before
            self._skip = int(state.get("batches_done", 0))

    def __iter__(self):
        batches = super().__iter__()
        skip, self._skip = self._skip, 0
        for _ in range(skip):  # collated and dropped: cheap next to the training they stand for
            next(batches, None)
        return batches
