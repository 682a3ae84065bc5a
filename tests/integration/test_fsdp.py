"""Real FSDP (torch's, on CPU with gloo): two ranks with unequal thought counts train and generate in step.

Lightning runs FSDP on GPUs only, so this drives torch's FullyShardedDataParallel directly, wrapped the
way Lightning's FSDPStrategy wraps a CoconutModule: decoder layers as units inside a root unit whose
forward runs the latent engine. Losses, gradients (averaged over ranks) and generations must equal the
unsharded engine's, under FULL_SHARD and under SHARD_GRAD_OP (trainer.fsdp_sharding=auto for the latent
methods), also after an optimizer step and a generation (SHARD_GRAD_OP keeps the weights a generation gathered
for the next training forward).
"""

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = pytest.mark.slow


class Root(torch.nn.Module):
    """Stands for the LightningModule, the root FSDP unit: the engine runs inside its forward."""

    def __init__(self, engine):
        super().__init__()
        self.engine = engine

    def forward(self, ids, mask, labels=None, generate=False):
        if generate:
            return self.engine.generate(ids, mask, max_new_tokens=6).sequences
        return self.engine(ids, mask, labels).loss


LR = 1.0  # the SGD step between the two training forwards: large enough to change the loss visibly
SHARDINGS = ("FULL_SHARD", "SHARD_GRAD_OP")


def _worker(rank, init_file, out_dir, jacobi, checkpointing):
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import ShardingStrategy
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    from coconut.engine.lockstep import RankSync
    from coconut.train.strategies import decoder_layer_classes
    from tests.helpers import engine_for, pad_batch, prompts, ragged_batch, tiny_model

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    # Rank 0 has up to 4 thoughts per row, rank 1 at most 1: different numbers of decoder calls.
    _, (ids, mask, labels) = ragged_batch(seed=rank, batch=4, max_thoughts=4 if rank == 0 else 1)
    gen_ids, gen_mask, _ = pad_batch([(p, p) for p in prompts(seed=30 + rank, max_thoughts=3 - 2 * rank)], "left")

    reference = engine_for(tiny_model("llama", seed=1))
    reference.jacobi_iterations = jacobi
    ref_loss = reference(ids, mask, labels).loss
    ref_loss.backward()
    out = {"ref_loss": ref_loss.detach(), "ref_grads": {n: p.grad.clone() for n, p in reference.model.named_parameters()}}
    with torch.no_grad():  # SGD on the gradients averaged over ranks, as FSDP's reduce-scatter gives them
        for p in reference.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p -= LR * p.grad / 2
        out["ref_sequences"] = reference.generate(gen_ids, gen_mask, max_new_tokens=6).sequences
        out["ref_loss2"] = reference(ids, mask, labels).loss

    for sharding in SHARDINGS:
        engine = engine_for(tiny_model("llama", seed=1))
        engine.jacobi_iterations = jacobi
        if checkpointing:
            from coconut.train.strategies import enable_mlp_checkpointing

            enable_mlp_checkpointing(engine.model)
        root = FSDP(Root(engine), auto_wrap_policy=ModuleWrapPolicy(decoder_layer_classes(engine.model)),
                    sharding_strategy=ShardingStrategy[sharding], use_orig_params=True, device_id=torch.device("cpu"))
        engine.sync = RankSync.from_process_group()
        loss = root(ids, mask, labels)
        loss.backward()
        with FSDP.summon_full_params(root, with_grads=True):
            grads = {n.replace("_fsdp_wrapped_module.", ""): p.grad.clone()
                     for n, p in engine.model.named_parameters() if p.grad is not None}
        with torch.no_grad():
            for p in root.parameters():  # this rank's shards
                if p.grad is not None:
                    p -= LR * p.grad
            root.zero_grad(set_to_none=True)
            sequences = root(gen_ids, gen_mask, generate=True)
        loss2 = root(ids, mask, labels)  # a training forward right after the generation
        loss2.backward()
        out[sharding] = {"loss": loss.detach(), "grads": grads, "sequences": sequences, "loss2": loss2.detach()}
    torch.save(out, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.parametrize("jacobi, checkpointing", [(None, False), (2, False), (None, True)])
def test_fsdp_ranks_with_unequal_thoughts_match_the_unsharded_engine(tmp_path, jacobi, checkpointing):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path), jacobi, checkpointing), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for r in (r0, r1):
        assert abs(float(r["ref_loss2"] - r["ref_loss"])) > 1e-3, "the SGD step must change the loss"
    for sharding in SHARDINGS:
        for r in (r0, r1):
            got = r[sharding]
            assert torch.allclose(got["loss"], r["ref_loss"], atol=1e-6), sharding
            assert torch.equal(got["sequences"], r["ref_sequences"]), sharding
            assert torch.allclose(got["loss2"], r["ref_loss2"], atol=1e-5), sharding
        grads = r0[sharding]["grads"]
        assert len(grads) == len(r0["ref_grads"])
        for name, grad in grads.items():  # FSDP averages gradients over ranks
            want = (r0["ref_grads"][name] + r1["ref_grads"][name]) / 2
            assert torch.allclose(grad, want, atol=1e-6, rtol=1e-5), (sharding, name)
