"""Step supervision's decoder under real FSDP (torch's, on CPU with gloo), wrapped as `trainer=fsdp` wraps it: the
engine's and the auxiliary decoder's layers are units inside a root unit. Two ranks whose batches hold different
numbers of supervised thoughts (2 against none: shorter chains, stage 0, stage mixing) must train in step, and
their losses and averaged gradients must equal the unsharded engine's and decoder's, under FULL_SHARD and
SHARD_GRAD_OP. A rank that made fewer decoder calls than the other would leave the other waiting on a gather
(the process group's timeout turns such a hang into an error here).
"""

from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = pytest.mark.slow

SHARDINGS = ("FULL_SHARD", "SHARD_GRAD_OP")
STEP_LENGTH = 4


class Root(torch.nn.Module):
    """Stands for the LightningModule, the root FSDP unit: the engine and the step decoder run inside its forward."""

    def __init__(self, engine, step_decoder):
        super().__init__()
        self.engine, self.step_decoder = engine, step_decoder

    def forward(self, ids, mask, labels, sources, targets):
        out = self.engine(ids, mask, labels)
        return out.loss + self.step_decoder(self.engine, out.hidden, sources, targets)[0]


def step_fields(ids: torch.Tensor, groups: int, seed: int):
    """Sources (B, groups, 1): columns whose hidden state feeds each thought; targets (B, groups, L): a step of
    random ordinary ids for each row but the last (-100: no step), so every group has rows without a step too."""
    from tests.helpers import ORDINARY

    gen = torch.Generator().manual_seed(seed)
    rows, width = ids.shape
    sources = torch.randint(0, width, (rows, groups, 1), generator=gen)
    targets = torch.randint(ORDINARY.start, ORDINARY.stop, (rows, groups, STEP_LENGTH), generator=gen)
    targets[-1] = -100
    return sources, targets


def _worker(rank, init_file, out_dir):
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import ShardingStrategy
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    from coconut.engine.lockstep import RankSync
    from coconut.engine.step_decoder import StepDecoder
    from coconut.train.strategies import decoder_layer_classes
    from tests.helpers import engine_for, grads, ragged_batch, tiny_model

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=60))
    _, (ids, mask, labels) = ragged_batch(seed=rank, batch=4, max_thoughts=3 if rank == 0 else 1)
    sources, targets = step_fields(ids, groups=2 if rank == 0 else 0, seed=rank)

    def system():
        return engine_for(tiny_model("llama", seed=1)), StepDecoder(tiny_model("llama", seed=2))

    engine, decoder = system()
    loss = Root(engine, decoder)(ids, mask, labels, sources, targets)
    loss.backward()
    out = {"ref_loss": loss.detach(), "ref_grads": {**grads(engine.model), **{f"step.{n}": g for n, g in
                                                                               grads(decoder.decoder).items()}}}
    for sharding in SHARDINGS:
        engine, decoder = system()
        root = FSDP(Root(engine, decoder), auto_wrap_policy=ModuleWrapPolicy(decoder_layer_classes(engine.model)),
                    sharding_strategy=ShardingStrategy[sharding], use_orig_params=True, device_id=torch.device("cpu"))
        engine.sync = RankSync.from_process_group()
        loss = root(ids, mask, labels, sources, targets)
        loss.backward()
        with FSDP.summon_full_params(root, with_grads=True):
            got = {n.replace("_fsdp_wrapped_module.", ""): p.grad.clone()
                   for n, p in engine.model.named_parameters() if p.grad is not None}
            got.update({"step." + n.replace("_fsdp_wrapped_module.", ""): p.grad.clone()
                        for n, p in decoder.decoder.named_parameters() if p.grad is not None})
        out[sharding] = {"loss": loss.detach(), "grads": got}
    torch.save(out, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_ranks_with_unequal_supervised_thoughts_train_in_step_and_match_the_unsharded_decoder(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert any(name.startswith("step.") for name in r0["ref_grads"]), "rank 0's step loss reaches the decoder"
    assert not any(name.startswith("step.") for name in r1["ref_grads"]), "rank 1 has no step to supervise"
    for sharding in SHARDINGS:
        for r in (r0, r1):
            assert torch.allclose(r[sharding]["loss"], r["ref_loss"], atol=1e-6), sharding
        got = r0[sharding]["grads"]
        for name, want0 in r0["ref_grads"].items():  # FSDP averages gradients over ranks
            want = (want0 + r1["ref_grads"].get(name, torch.zeros_like(want0))) / 2
            assert torch.allclose(got[name], want, atol=1e-6, rtol=1e-5), (sharding, name)
