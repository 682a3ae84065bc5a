"""iCoT's optimizer resets: fresh AdamW state whenever the scheduled count of removed CoT tokens grows.

Deng et al.'s release (src/train.py, `--reset_optimizer`) re-creates AdamW at the batch where its count of
removed tokens increases, unless the batch before had already lost all its CoT (its count reached every
record's CoT). The count and the batches come from the data module (coconut.methods.icot_schedule), pure
functions of (epoch, batch index), so a resumed run resets at the same batches with no state of its own.
"""

from __future__ import annotations

import lightning as L

from coconut.methods.icot_schedule import ALL, previous_batch, reset_due


class IcotOptimizerReset(L.Callback):
    def __init__(self):
        self.resets: list[dict] = []  # where the state was cleared, for inspection (not needed on resume)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        datamodule, epoch = trainer.datamodule, trainer.current_epoch
        count = datamodule.icot_removal(epoch, batch_idx)
        before = previous_batch(epoch, batch_idx, datamodule.icot_steps_per_epoch())
        if before is None:  # the release starts from a count of 0 and a batch that kept its CoT
            previous_count, previous_all_removed = 0, False
        else:
            previous_count = datamodule.icot_removal(*before)
            previous_all_removed = datamodule.icot_plan(before[0]).all_removed(before[1])
        if reset_due(count, previous_count, previous_all_removed):
            for optimizer in trainer.optimizers:
                optimizer.state.clear()  # fresh moments and step counts: the same as a new AdamW
            self.resets.append({"epoch": epoch, "batch": batch_idx, "step": trainer.global_step, "removed": count})
        if count != previous_count or batch_idx == 0:
            # Logged when it changes, on the losses' step axis; "all" as -1, which a plot can show.
            for logger in trainer.loggers:
                logger.log_metrics({"curriculum/icot_removed": -1.0 if count == ALL else float(count)},
                                   step=trainer.global_step)
