"""All-gathers per training step under FSDP, latent against plain (`coconut bench --fsdp-ranks N`), on CPU.

`fsdp_gathers` spawns N processes (gloo) that wrap the bench's random model as `trainer=fsdp` does: each
decoder layer an FSDP unit, inside a root unit (embeddings, final norm, LM head) whose forward runs the step,
`use_orig_params`, ranks in lock-step (`RankSync`). For each sharding it counts the all-gathers of one plain
step (`model(input_ids, labels)`), one latent step (n thoughts: n + 1 decoder calls) and one batched generation,
split into forward and backward, with the most gathered (unsharded) weight bytes a rank holds at once in each.

FULL_SHARD frees a unit's gathered weights after every call of it, so a latent step gathers each layer once per
pass, and once more in the backward, which then holds every layer to its end (a unit is freed after its last
gradient, and the passes interleave the layers). SHARD_GRAD_OP keeps a unit's weights from its first call to
its backward: one gather per step, holding no more at once than FULL_SHARD's latent backward does. Counted
calls are torch.distributed's all-gathers (every variant FSDP uses), attributed to units by wrapping FSDP's
flat-parameter gather. Counts and bytes do not depend on the batch, so each rank takes `rows_per_rank` rows.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections import Counter
from pathlib import Path

import torch

SHARDINGS = ("FULL_SHARD", "SHARD_GRAD_OP")
# torch.distributed's all-gathers (FSDP uses all_gather on CPU, all_gather_into_tensor or all_gather_single on GPUs).
GATHERS = ("all_gather", "all_gather_into_tensor", "_all_gather_base", "all_gather_single")


class _Step(torch.nn.Module):
    """The root FSDP unit (Lightning wraps the LightningModule so): the step runs inside its forward."""

    def __init__(self, engine, max_new_tokens: int):
        super().__init__()
        self.engine, self.max_new_tokens = engine, max_new_tokens

    def forward(self, kind: str, ids, mask, labels=None):
        if kind == "plain":
            return self.engine.model(input_ids=ids, attention_mask=mask, labels=labels).loss
        if kind == "generate":
            return self.engine.generate(ids, mask, max_new_tokens=self.max_new_tokens).sequences
        return self.engine(ids, mask, labels).loss


class _Counter:
    """Counts all-gathers by phase and unit, and the gathered weight bytes held; wraps torch's functions."""

    def __init__(self):
        from torch.distributed.fsdp._flat_param import FlatParamHandle

        self.handles: dict = {}  # FlatParamHandle -> "root" | "layer", of the model being counted
        self.phase = None
        self.calls, self.units, self.peaks = Counter(), Counter(), Counter()
        dist = torch.distributed
        for name in GATHERS:
            if hasattr(dist, name):
                setattr(dist, name, self._counted(getattr(dist, name)))
        gather = FlatParamHandle._all_gather_flat_param

        def unit_gather(handle, *args, **kwargs):
            out = gather(handle, *args, **kwargs)
            if self.phase is not None:
                self.units[(self.phase, self.handles[handle])] += 1
                self.peaks[self.phase] = max(self.peaks[self.phase], self.gathered_bytes())
            return out
        FlatParamHandle._all_gather_flat_param = unit_gather

    def _counted(self, fn):
        def counted(*args, **kwargs):
            if self.phase is not None:
                self.calls[self.phase] += 1
            return fn(*args, **kwargs)
        return counted

    def gathered_bytes(self) -> int:
        """Bytes of unsharded weights this rank holds now (freed ones have an empty storage; FSDP allocates them
        at its first forward)."""
        padded = (getattr(h.flat_param, "_full_param_padded", None) for h in self.handles)
        return sum(p.untyped_storage().nbytes() for p in padded if p is not None)

    def enter(self, phase: str | None) -> None:
        """Count what follows as `phase` ("forward", "backward"; None: nothing)."""
        self.phase = phase
        if phase is not None:
            self.peaks[phase] = max(self.peaks[phase], self.gathered_bytes())

    def reset(self) -> None:
        self.calls.clear()
        self.units.clear()
        self.peaks.clear()


def _step_figures(counter: _Counter, layers: int) -> dict:
    forward, backward = counter.calls["forward"], counter.calls["backward"]
    unit_total = sum(counter.units.values())
    if unit_total != forward + backward:  # a gather outside FSDP's flat parameters, or one the wrap missed
        raise RuntimeError(f"bench fsdp: {forward + backward} all-gathers but {unit_total} of FSDP units")
    per_layer = (counter.units[("forward", "layer")] + counter.units[("backward", "layer")]) / layers
    return {"forward": forward, "backward": backward, "step": forward + backward, "per_layer_unit": per_layer,
            "root_unit": counter.units[("forward", "root")] + counter.units[("backward", "root")],
            "gathered_peak_forward_mb": counter.peaks["forward"] / 2**20,
            "gathered_peak_backward_mb": counter.peaks["backward"] / 2**20}


def _wrapped(cfg, sharding: str):
    """The bench's model as trainer=fsdp wraps it; the root unit and {flat-parameter handle: "root" | "layer"}."""
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import ShardingStrategy
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    from coconut.bench.builders import build_model, make_engine
    from coconut.engine.lockstep import RankSync
    from coconut.train.strategies import decoder_layer_classes

    model = build_model(cfg)  # the same seed on every rank: one model, sharded
    engine = make_engine(model, cfg)
    root = FSDP(_Step(engine, cfg.after), auto_wrap_policy=ModuleWrapPolicy(decoder_layer_classes(model)),
                sharding_strategy=ShardingStrategy[sharding], use_orig_params=True, device_id=torch.device("cpu"))
    engine.sync = RankSync.from_process_group()
    handles = {u._handle: ("root" if u is root else "layer") for u in FSDP.fsdp_modules(root) if u._handle is not None}
    return root, handles


def _sharding_figures(root, counter: _Counter, batches: dict, prompts, cfg) -> dict:
    """Counted training steps of each kind (after one that initialises FSDP lazily), and one generation."""
    layers = sum(1 for kind in counter.handles.values() if kind == "layer")
    engine, figures = root.module.engine, {}
    for kind, (ids, mask, labels) in batches.items():
        engine.jacobi_iterations = cfg.jacobi_iterations if kind == "jacobi" else None
        for counted in (False, True):
            counter.reset()
            counter.enter("forward" if counted else None)
            loss = root(kind, ids, mask, labels)
            counter.enter("backward" if counted else None)
            loss.backward()
            counter.enter(None)
            root.zero_grad(set_to_none=True)
        figures[kind] = _step_figures(counter, layers)
    engine.jacobi_iterations = None
    counter.reset()
    counter.enter("forward")
    with torch.no_grad():
        new_tokens = root("generate", prompts, torch.ones_like(prompts)).shape[1]
    counter.enter(None)
    figures["generate"] = {"all_gathers": counter.calls["forward"], "new_tokens": new_tokens,
                           "per_layer_unit": counter.units[("forward", "layer")] / layers}
    return figures


def _worker(rank: int, ranks: int, init_file: str, out_dir: str, cfg, shardings, rows: int) -> None:
    import torch.distributed as dist

    from coconut.bench.builders import build_batch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // ranks))
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=ranks)
    latent_ids, plain_ids, labels, prompts = build_batch(dataclasses.replace(cfg, batch=rows))
    batches = {"plain": (plain_ids, torch.ones_like(plain_ids), labels),
               "latent": (latent_ids, torch.ones_like(latent_ids), labels)}
    if cfg.jacobi_iterations:
        batches["jacobi"] = batches["latent"]
    counter, results = _Counter(), {}
    for sharding in shardings:
        root, counter.handles = _wrapped(cfg, sharding)
        results[sharding] = _sharding_figures(root, counter, batches, prompts, cfg)
    handles = counter.handles
    meta = {"units": len(handles), "layer_units": sum(1 for kind in handles.values() if kind == "layer"),
            "params_mb": sum(h.flat_param._unpadded_unsharded_size.numel() * h.flat_param.element_size()
                             for h in handles) / 2**20}
    torch.save({"results": results, **meta}, Path(out_dir) / f"rank{rank}.pt")
    # Every rank reaches the end before any tears gloo down: a rank that destroys the group while its peer still
    # has a collective in flight can abort the peer's gloo thread (SIGABRT, "terminate called without an active
    # exception") on a loaded machine.
    dist.barrier()
    dist.destroy_process_group()


def _counts(results: dict) -> dict:
    """The counts of a rank's results, without the bytes (which may differ by the padding of the last shard)."""
    return {(s, kind, key): value for s, figures in results.items() for kind, f in figures.items()
            for key, value in f.items() if not key.endswith("_mb")}


def fsdp_gathers(cfg, ranks: int = 2, shardings: tuple[str, ...] = SHARDINGS, rows_per_rank: int = 2) -> dict:
    """All-gathers per training step under torch FSDP on CPU with `ranks` gloo processes (see the module doc).

    cfg: a `BenchConfig` (arch, layers, width, heads, vocab, question, thoughts, after, seed, jacobi_iterations
    are read; the steps run on CPU in float32 whatever cfg.device and cfg.precision say)."""
    import torch.multiprocessing as mp

    from coconut.config import TrainerConfig

    if ranks < 2:
        raise ValueError(f"bench fsdp: ranks must be >= 2 (FSDP shards over ranks), got {ranks}")
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(ranks, str(Path(tmp) / "init"), tmp, cfg, tuple(shardings), rows_per_rank),
                 nprocs=ranks, join=True)
        per_rank = [torch.load(Path(tmp) / f"rank{r}.pt", weights_only=False) for r in range(ranks)]
    first = per_rank[0]
    for r, other in enumerate(per_rank[1:], start=1):  # collectives: every rank makes the same ones
        if _counts(other["results"]) != _counts(first["results"]):
            raise RuntimeError(f"bench fsdp: rank {r} counted other all-gathers than rank 0")
    trainer = TrainerConfig(strategy="fsdp")  # fsdp_sharding=auto
    auto = {"plain": trainer.sharding_for(False), "latent": trainer.sharding_for(True)}
    out = {"fsdp_ranks": ranks, "fsdp_units": first["units"], "fsdp_layer_units": first["layer_units"],
           "fsdp_thoughts": cfg.thoughts, "fsdp_latent_passes": cfg.thoughts + 1, "fsdp_params_mb": first["params_mb"],
           "fsdp_auto": auto, "fsdp_all_gathers": first["results"]}
    if all(s in first["results"] for s in auto.values()):
        out["fsdp_auto_plain_per_layer_unit"] = first["results"][auto["plain"]]["plain"]["per_layer_unit"]
        out["fsdp_auto_latent_per_layer_unit"] = first["results"][auto["latent"]]["latent"]["per_layer_unit"]
    return out
