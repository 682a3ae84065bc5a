"""Distributed configs build on CPU: FSDP wraps the decoder layers, DDP gets a Trainer; MLP checkpointing is exact."""

import pytest
import torch

from coconut.config import ConfigError
from coconut.experiment import load_config
from coconut.run_dir import RunDir
from coconut.train.strategies import build_strategy, decoder_layer_classes, enable_mlp_checkpointing
from tests.helpers import engine_for, grads, ragged_batch, tiny_model


@pytest.mark.parametrize("arch, layer", [("llama", "LlamaDecoderLayer"), ("gpt2", "GPT2Block")])
def test_fsdp_config_wraps_each_decoder_layer(arch, layer):
    from lightning.pytorch.strategies import FSDPStrategy

    cfg = load_config("gsm8k_coconut", ["trainer=fsdp", "trainer.fsdp_sharding=HYBRID_SHARD"])
    assert (cfg.trainer.strategy, cfg.trainer.precision, cfg.trainer.activation_checkpointing) == \
           ("fsdp", "bf16-mixed", True)
    strategy = build_strategy(cfg.trainer, tiny_model(arch))
    assert isinstance(strategy, FSDPStrategy)
    assert {c.__name__ for c in decoder_layer_classes(tiny_model(arch))} == {layer}
    assert {c.__name__ for c in strategy.kwargs["auto_wrap_policy"]._module_classes} == {layer}
    assert strategy.sharding_strategy.name == "HYBRID_SHARD"


@pytest.mark.parametrize("experiment, sharding", [("gsm8k_coconut", "SHARD_GRAD_OP"),
                                                  ("gsm8k_no_curriculum", "SHARD_GRAD_OP"),
                                                  ("gsm8k_cot", "FULL_SHARD"), ("gsm8k_pause_as_thought", "FULL_SHARD")])
def test_fsdp_sharding_auto_gathers_latent_methods_once_per_step(experiment, sharding):
    """auto: SHARD_GRAD_OP where a step makes latent passes (tests/integration/test_fsdp_gathers.py counts why)."""
    from coconut.config import METHODS
    from coconut.experiment import to_yaml

    cfg = load_config(experiment, ["trainer=fsdp"])
    assert cfg.trainer.fsdp_sharding == "auto" and cfg.fsdp_sharding() == sharding
    strategy = build_strategy(cfg.trainer, tiny_model("llama"), latent_passes=METHODS[cfg.method.name].latent_passes)
    assert strategy.sharding_strategy.name == sharding
    assert f"fsdp_sharding: {sharding}" in to_yaml(cfg), "the shown config says what runs"
    assert load_config(experiment, ["trainer=fsdp", "trainer.fsdp_sharding=FULL_SHARD"]).fsdp_sharding() == "FULL_SHARD"


def test_ddp_config_builds_a_cpu_trainer(tmp_path):
    from coconut.train.trainer import build_trainer

    cfg = load_config("demo_coconut", ["trainer=ddp_cpu", f"output_dir={tmp_path}", "trainer.accumulate_grad_batches=4"])
    trainer = build_trainer(cfg, RunDir(tmp_path / "run"), model=tiny_model("llama"))
    assert type(trainer.strategy).__name__ == "DDPStrategy" and trainer.num_devices == 2
    assert trainer.accumulate_grad_batches == 4
    assert trainer.strategy._ddp_kwargs.get("find_unused_parameters") is True, "the projection is unused at stage 0"


def test_fsdp_on_a_machine_without_gpus_is_one_clear_error():
    from coconut.train.trainer import check_hardware

    cfg = load_config("demo_coconut", ["trainer=fsdp", "latent.auto_thought_scale=false"])
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="trainer.strategy=fsdp needs CUDA GPUs"):
        check_hardware(cfg)


def test_bad_sharding_is_named():
    with pytest.raises(ConfigError, match="trainer.fsdp_sharding"):
        load_config("demo_coconut", ["trainer.fsdp_sharding=ALL"])


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_mlp_checkpointing_leaves_loss_and_gradients_unchanged(arch):
    model = tiny_model(arch, seed=3)
    engine = engine_for(model)
    _, (ids, mask, labels) = ragged_batch(3, batch=4)
    loss = engine(ids, mask, labels).loss
    loss.backward()
    want = grads(model)
    model.zero_grad()
    assert enable_mlp_checkpointing(model) == 2
    from coconut.train.strategies import mlp_modules

    inner = next(mlp_modules(model)[0].children())  # a linear layer inside the first MLP
    calls = []
    inner.register_forward_hook(lambda *a: calls.append(1))
    again = engine(ids, mask, labels).loss
    forward_calls = len(calls)
    again.backward()
    assert len(calls) == 2 * forward_calls, "the backward pass recomputes the MLP"
    got = grads(model)
    assert torch.equal(loss, again)
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-6, rtol=1e-5), name
    with torch.no_grad():  # generation runs the blocks as they are
        assert engine.generate(ids[:, :5], max_new_tokens=2).sequences.shape[0] == 4
