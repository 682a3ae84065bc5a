"""A tiny iCoT run through Lightning: AdamW resets where the count grows, validation removes the epoch's last
count, the best checkpoint comes from the epochs without CoT, and the test evaluates it with no CoT."""

import lightning as L
import pytest
import torch

from coconut.methods.icot_schedule import ALL
from coconut.experiment import load_config
from coconut.train.icot import IcotOptimizerReset
from tests.integration.tiny_run import tiny_overrides


class Watch(L.Callback):
    def __init__(self):
        self.validations, self.resets = [], None

    def on_validation_end(self, trainer, pl_module):
        datamodule = trainer.datamodule
        self.validations.append((trainer.current_epoch, datamodule.icot_eval_removal(), datamodule.in_final_stage))

    def on_train_end(self, trainer, pl_module):
        self.resets = next(c for c in trainer.callbacks if isinstance(c, IcotOptimizerReset)).resets


@pytest.mark.slow
def test_a_tiny_icot_run(tmp_path):
    from coconut.train.run import train

    # 4 batches a epoch, 2 tokens a epoch: counts 0 0 1 1 | 2 2 3 3 | 4 4 all all (all from a count of 5).
    cfg = load_config("demo_coconut", tiny_overrides(tmp_path, "method=icot", "trainer=cpu", "trainer.max_epochs=3",
                                                     "method.icot_remove_per_epoch=2", "method.icot_remove_all_beyond=5"))
    watch = Watch()
    results = train(cfg, extra_callbacks=[watch])
    assert [r["step"] for r in watch.resets] == [2, 4, 6, 8, 10]
    # Validation after each epoch removes the count of its last batch: 3 // 2, 7 // 2, then all.
    assert watch.validations == [(0, 1, False), (1, 3, False), (2, ALL, True)]
    state = torch.load(results["checkpoint"], map_location="cpu", weights_only=False)
    assert results["checkpoint"].endswith("best.ckpt") and state["epoch"] == 2, "the only epoch without CoT"
    assert results["test_stage"] == 2, "tested at the stage of its epoch"
