"""AdamW with decay on matrices only, and the stage-aware learning-rate schedule (coconut.train.optim)."""

import pytest

from coconut.experiment import load_config
from coconut.train.optim import lr_factor as schedule_factor


def lr_factor(cfg, step, batches=10):
    return schedule_factor(step, cfg.optim, cfg.trainer.schedule, batches, cfg.trainer.max_epochs)


def test_learning_rate_restarts_at_each_stage_when_the_optimizer_resets():
    cfg = load_config("demo_coconut", ["optim.warmup_steps=5", "trainer.epochs_per_stage=2", "trainer.first_stage_epochs=null"])
    span = 10 * 2
    assert lr_factor(cfg, 0) == pytest.approx(0.2)
    assert lr_factor(cfg, 4) == pytest.approx(1.0)
    assert lr_factor(cfg, span - 1) == pytest.approx(cfg.optim.min_lr_ratio, abs=0.02)
    assert lr_factor(cfg, span) == lr_factor(cfg, 0), "warmup again at the next stage"
    longer_first = load_config("demo_coconut", ["optim.warmup_steps=5", "trainer.epochs_per_stage=2",
                                                "trainer.first_stage_epochs=3"])
    assert lr_factor(longer_first, 20) < 1.0 and lr_factor(longer_first, 30) == pytest.approx(0.2), \
        "stage 0 lasts 3 epochs (30 steps); stage 1 warms up again from step 30"
    flat = load_config("demo_coconut", ["optim=paper"])
    assert {lr_factor(flat, s) for s in (0, 7, 100)} == {1.0}
