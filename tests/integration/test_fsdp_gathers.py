"""FSDP all-gathers per training step (torch's FSDP on CPU, gloo, 2 ranks), counted by `coconut.bench.fsdp`.

The target: a latent step gathers each unit at most 2 more times than a plain step, not once per
decoder pass. With trainer.fsdp_sharding=auto the latent methods run SHARD_GRAD_OP: once per step. FULL_SHARD,
counted too, gathers each layer once per pass and once more in the backward: the count the target rules out;
and it holds no fewer gathered weights at once in a latent step, so SHARD_GRAD_OP costs no peak memory there.
"""

import pytest

from coconut.bench.fsdp import fsdp_gathers
from coconut.bench.settings import BenchConfig

pytestmark = pytest.mark.slow

LAYERS, THOUGHTS, JACOBI = 2, 4, 2


def test_latent_steps_gather_each_unit_once_per_step_with_auto_sharding():
    cfg = BenchConfig(arch="llama", layers=LAYERS, width=32, heads=4, vocab=64, question=8, thoughts=THOUGHTS,
                      after=4, jacobi_iterations=JACOBI)
    r = fsdp_gathers(cfg, ranks=2)
    assert (r["fsdp_units"], r["fsdp_layer_units"], r["fsdp_latent_passes"]) == (LAYERS + 1, LAYERS, THOUGHTS + 1)
    assert r["fsdp_auto"] == {"plain": "FULL_SHARD", "latent": "SHARD_GRAD_OP"}
    full, grad_op = r["fsdp_all_gathers"]["FULL_SHARD"], r["fsdp_all_gathers"]["SHARD_GRAD_OP"]

    # The target, for what auto runs: latent <= plain + 2 per unit, per layer and for the whole step.
    plain, latent = full["plain"], grad_op["latent"]
    assert r["fsdp_auto_latent_per_layer_unit"] == latent["per_layer_unit"] == 1
    assert r["fsdp_auto_plain_per_layer_unit"] == plain["per_layer_unit"] == 2
    assert latent["step"] <= plain["step"] + 2 * r["fsdp_units"]
    assert grad_op["jacobi"]["step"] == grad_op["plain"]["step"] == latent["step"] == LAYERS + 1
    # Memory: SHARD_GRAD_OP holds every unit's gathered weights from the forward on; FULL_SHARD frees them in the
    # forward, but its latent backward holds them all too (each unit until its last pass's gradient).
    params = r["fsdp_params_mb"]
    assert latent["gathered_peak_forward_mb"] == pytest.approx(params, rel=0.01)
    assert full["latent"]["gathered_peak_forward_mb"] < 0.7 * params
    assert full["latent"]["gathered_peak_backward_mb"] == pytest.approx(params, rel=0.01)
    assert latent["gathered_peak_backward_mb"] <= full["latent"]["gathered_peak_backward_mb"]

    # Without it (FULL_SHARD): one gather per pass and one in the backward, x (n + 2) / 2 a plain step's.
    assert full["latent"]["per_layer_unit"] == THOUGHTS + 1 + 1
    assert full["jacobi"]["per_layer_unit"] == JACOBI + 1 + 1
    assert full["latent"]["per_layer_unit"] > plain["per_layer_unit"] + 2, "the target would fail under FULL_SHARD"
    assert (full["latent"]["forward"], full["latent"]["backward"]) == (LAYERS * (THOUGHTS + 1) + 1, LAYERS)

    # Generation: FULL_SHARD gathers every layer per pass (prompt passes, then one per new token), SHARD_GRAD_OP once.
    assert grad_op["generate"]["per_layer_unit"] == 1
    assert full["generate"]["per_layer_unit"] == THOUGHTS + 1 + full["generate"]["new_tokens"] - 1
