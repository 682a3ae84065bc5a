"""Real FSDP (torch's, on CPU with gloo): two ranks with unequal thought counts train and generate in step.

Lightning runs FSDP on GPUs only, so this drives torch's FullyShardedDataParallel directly, wrapped the
way Lightning's FSDPStrategy wraps a CoconutModule: decoder layers as units inside a root unit whose
forward runs the latent engine. Losses, gradients (averaged over ranks) and generations must equal the
unsharded engine's.
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


def _worker(rank, init_file, out_dir, jacobi, checkpointing):
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
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
    with torch.no_grad():
        ref_sequences = reference.generate(gen_ids, gen_mask, max_new_tokens=6).sequences

    engine = engine_for(tiny_model("llama", seed=1))
    engine.jacobi_iterations = jacobi
    if checkpointing:
        from coconut.train.strategies import enable_mlp_checkpointing

        enable_mlp_checkpointing(engine.model)
    root = FSDP(Root(engine), auto_wrap_policy=ModuleWrapPolicy(decoder_layer_classes(engine.model)),
                use_orig_params=True, device_id=torch.device("cpu"))
    engine.sync = RankSync.from_process_group()
    loss = root(ids, mask, labels)
    loss.backward()
    with FSDP.summon_full_params(root, with_grads=True):
        grads = {n.replace("_fsdp_wrapped_module.", ""): p.grad.clone()
                 for n, p in engine.model.named_parameters() if p.grad is not None}
    with torch.no_grad():
        sequences = root(gen_ids, gen_mask, generate=True)
    torch.save({"loss": loss.detach(), "ref_loss": ref_loss.detach(), "grads": grads,
                "ref_grads": {n: p.grad for n, p in reference.model.named_parameters()},
                "sequences": sequences, "ref_sequences": ref_sequences}, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.parametrize("jacobi, checkpointing", [(None, False), (2, False), (None, True)])
def test_fsdp_ranks_with_unequal_thoughts_match_the_unsharded_engine(tmp_path, jacobi, checkpointing):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path), jacobi, checkpointing), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for r in (r0, r1):
        assert torch.allclose(r["loss"], r["ref_loss"], atol=1e-6)
        assert torch.equal(r["sequences"], r["ref_sequences"])
    assert len(r0["grads"]) == len(r0["ref_grads"])
    for name, grad in r0["grads"].items():  # FSDP averages gradients over ranks
        want = (r0["ref_grads"][name] + r1["ref_grads"][name]) / 2
        assert torch.allclose(grad, want, atol=1e-6, rtol=1e-5), name
