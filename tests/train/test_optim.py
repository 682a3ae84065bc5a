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


def test_weight_decay_on_matrices_only():
    import torch

    from coconut.config import OptimConfig
    from coconut.train.optim import build_optimizer
    from tests.helpers import engine_for, tiny_model

    engine = engine_for(tiny_model("llama"), latent_projection=True)
    engine.model.get_input_embeddings().weight.requires_grad_(False)  # frozen: in no group
    named = dict(engine.named_parameters())
    optimizer = build_optimizer(engine.named_parameters(), OptimConfig(lr=0.02, weight_decay=0.1, betas=[0.8, 0.9]))
    decay, no_decay = optimizer.param_groups
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)
    assert all(g["lr"] == 0.02 and tuple(g["betas"]) == (0.8, 0.9) for g in optimizer.param_groups)
    name_of = {id(p): n for n, p in named.items()}
    decayed = {name_of[id(p)] for p in decay["params"]}
    kept = {name_of[id(p)] for p in no_decay["params"]}
    trainable = {n for n, p in named.items() if p.requires_grad}
    assert decayed | kept == trainable and not decayed & kept, "every trainable parameter once"
    assert "model.model.embed_tokens.weight" in named and "model.model.embed_tokens.weight" not in decayed | kept
    assert "projection.bias" in kept and "projection.weight" in decayed
    assert all(named[n].ndim >= 2 and "norm" not in n.lower() for n in decayed)
    assert any("norm" in n for n in kept) and all(named[n].ndim < 2 or "norm" in n.lower() for n in kept)
    assert isinstance(optimizer, torch.optim.AdamW)


def test_without_stage_resets_the_cosine_spans_the_whole_run():
    cfg = load_config("demo_coconut", ["optim.warmup_steps=0", "optim.reset=never", "trainer.max_epochs=5"])
    total = 10 * 5
    assert lr_factor(cfg, 0) == pytest.approx(1.0)
    assert lr_factor(cfg, total // 2) == pytest.approx(cfg.optim.min_lr_ratio + (1 - cfg.optim.min_lr_ratio) * 0.5)
    assert lr_factor(cfg, total) == pytest.approx(cfg.optim.min_lr_ratio), "the end of the run, not of a stage"
    assert lr_factor(cfg, 10) < lr_factor(cfg, 9), "no restart at a stage switch"


def test_decay_all_decays_every_trainable_parameter_as_the_release():
    from coconut.config import OptimConfig
    from coconut.train.optim import build_optimizer
    from tests.helpers import engine_for, tiny_model

    engine = engine_for(tiny_model("gpt2"), latent_projection=True)
    trainable = [p for p in engine.parameters() if p.requires_grad]
    optimizer = build_optimizer(engine.named_parameters(), OptimConfig(weight_decay=0.01, decay_all=True))
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.01 and no_decay["params"] == []
    assert {id(p) for p in decay["params"]} == {id(p) for p in trainable}, "biases and norms decay too"
    assert any(p.ndim == 1 for p in decay["params"])


def test_warmup_ratio_is_a_share_of_the_schedule_as_hugging_faces():
    cfg = load_config("demo_coconut", ["optim.warmup_ratio=0.1", "optim.warmup_steps=0", "optim.reset=never", "trainer.max_epochs=5",
                                       "optim.min_lr_ratio=0.0"])
    total = 10 * 5  # warmup: ceil(0.1 x 50) = 5 steps, then cosine to 0
    assert [lr_factor(cfg, s) for s in range(5)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert lr_factor(cfg, 5) == pytest.approx(1.0) and lr_factor(cfg, total) == pytest.approx(0.0)
    from coconut.config import ConfigError

    with pytest.raises(ConfigError, match="warmup_ratio"):
        load_config("demo_coconut", ["optim.warmup_ratio=0.1", "optim.warmup_steps=5"])
