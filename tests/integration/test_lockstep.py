"""Two ranks with different batches make the same number of decoder calls (what FSDP needs), same results."""

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.helpers import LATENT, pad_batch, ragged_batch

pytestmark = pytest.mark.slow


def _run(engine, batch, prompts):
    """Decoder calls, loss, gradients and generations of one training forward/backward and one generation."""
    calls = {"n": 0}
    hook = engine.decoder.register_forward_pre_hook(lambda *a, **k: calls.__setitem__("n", calls["n"] + 1))
    ids, mask, labels = batch
    engine.model.zero_grad()
    loss = engine(ids, mask, labels).loss
    loss.backward()
    train_calls = calls["n"]
    grads = {n: p.grad.clone() for n, p in engine.model.named_parameters() if p.grad is not None}
    gen = engine.generate(*prompts, max_new_tokens=8)
    hook.remove()
    return {"train_calls": train_calls, "gen_calls": calls["n"] - train_calls, "loss": loss.detach(),
            "grads": grads, "sequences": gen.sequences}


def _worker(rank, init_file, out_dir, jacobi):
    from coconut.engine.lockstep import RankSync
    from tests.helpers import engine_for, eos_prone_model, prompts

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    engine = engine_for(eos_prone_model("llama"))
    engine.jacobi_iterations = jacobi
    # Rank 0: ragged thoughts (up to 4); rank 1: fewer thoughts and other prompts.
    _, batch = ragged_batch(seed=rank, batch=4, max_thoughts=4 if rank == 0 else 1)
    gen_prompts = [p for p in prompts(seed=20 + rank, max_thoughts=3 - 2 * rank)]
    generation = pad_batch([(p, p) for p in gen_prompts], "left")[:2]
    alone = _run(engine, batch, generation)
    engine.sync = RankSync.from_process_group()
    synced = _run(engine, batch, generation)
    torch.save({"alone": alone, "synced": synced,
                "thoughts": int((batch[0] == LATENT).sum(dim=1).max())}, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.parametrize("jacobi", [None, 2])
def test_ranks_make_equal_decoder_calls_and_unchanged_results(tmp_path, jacobi):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path), jacobi), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    if jacobi is None:
        assert r0["alone"]["train_calls"] != r1["alone"]["train_calls"], "the test needs unequal work per rank"
    widths = {r["alone"]["sequences"].shape[1] for r in (r0, r1)}
    assert len(widths) == 2, "the test needs ranks whose generations end at different steps"
    assert r0["synced"]["train_calls"] == r1["synced"]["train_calls"]
    assert r0["synced"]["gen_calls"] == r1["synced"]["gen_calls"]
    for r in (r0, r1):
        assert torch.equal(r["synced"]["loss"], r["alone"]["loss"])
        assert r["synced"]["grads"].keys() == r["alone"]["grads"].keys()
        for name, g in r["alone"]["grads"].items():
            assert torch.equal(r["synced"]["grads"][name], g), name
        assert torch.equal(r["synced"]["sequences"], r["alone"]["sequences"])
