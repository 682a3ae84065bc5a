"""`latent.compile`: the latent passes through `torch.compile` (dynamic shapes, no graph breaks allowed) give the
loss, logits and gradients of the no-cache recompute, and the eager engine's generations.

Traced with the `aot_eager` backend: dynamo and AOT autograd are what the cache's in-place writes and the engine's
passes must get through (a graph break raises under `fullgraph=True`); inductor's code generation only makes it
faster (minutes on a CPU, measured by `coconut bench --compile`)."""

import copy
import pickle

import pytest
import torch

from tests.helpers import check_against_recompute, engine_for, pad_batch, prompts, ragged_batch, tiny_model


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_compiled_passes_match_the_recompute(arch, aot_eager):
    model = tiny_model(arch, seed=2)
    engine = engine_for(model, compile_mode="default")
    for seed in (0, 1):  # a second batch of other widths reuses the dynamic graphs
        examples, batch = ragged_batch(seed, batch=4, side="left")
        check_against_recompute(engine, model, examples, batch)
        model.zero_grad()
    assert engine._compiled is not None and aot_eager, "the passes went through torch.compile"
    assert len(aot_eager) <= 6, f"{len(aot_eager)} graphs: recompiling per width"


def test_compiled_generation_equals_eager_and_the_engine_still_copies(aot_eager):
    model = tiny_model("gpt2", seed=4)
    eager, compiled = engine_for(model), engine_for(model, compile_mode="default")
    ids, mask, _ = pad_batch([(p, p) for p in prompts(seed=3, count=5)], "left")
    want = eager.generate(ids, mask, max_new_tokens=6)
    got = compiled.generate(ids, mask, max_new_tokens=6)
    assert torch.equal(got.sequences, want.sequences)
    assert torch.equal(got.num_forward_passes, want.num_forward_passes)
    assert compiled._compiled is not None
    # A compiled call is not state: copies and pickles leave it behind and compile their own when they run.
    for clone in (copy.deepcopy(compiled), pickle.loads(pickle.dumps(compiled))):
        assert clone._compiled is None and clone.compile_mode == "default"
    assert compiled._compiled is not None
