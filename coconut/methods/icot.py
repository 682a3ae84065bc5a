"""iCoT (Deng et al.): stepwise internalisation, the leading CoT tokens removed gradually, batch by batch.

Its removal follows the batch within the epoch, not the stage (coconut.methods.icot_schedule plans it, and the
trainer resets AdamW at each increment of the removal count instead of at stage switches)."""

from coconut.methods.base import Method


class ICoT(Method):
    name, label = "icot", "iCoT"
    description = "stepwise internalisation: leading CoT tokens removed gradually, batch by batch"
    fields = ("icot_remove_per_epoch", "icot_remove_all_beyond", "icot_smoothing")
    batch_dependent = True

    def final_stage(self, cfg, last_stage):
        # Training decides per epoch instead (coconut.methods.icot_schedule.epoch_is_final: once the schedule
        # removes every CoT, or the last epoch); this serves evaluations of a frozen stage.
        return last_stage
