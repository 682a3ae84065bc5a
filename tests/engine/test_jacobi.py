"""Thoughts by Jacobi iteration (PCCoT): equal to the sequential engine once iterated to convergence."""

import pytest
import torch

from tests.helpers import (LATENT, MAX_NEW, TOL, engine_for, eos_prone_model, grads, pad_batch, prompts, ragged_batch,
                           reference_loss, tiny_model)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_jacobi_at_convergence_equals_the_recompute(arch, side):
    model = tiny_model(arch, seed=4)
    examples, (ids, mask, labels) = ragged_batch(4, batch=5, side=side, max_thoughts=4)
    most = max(int((row == LATENT).sum()) for row in ids)
    engine = engine_for(model, latent_projection=True, thought_scale=0.7, jacobi_iterations=most)
    with torch.no_grad():
        engine.projection.weight.add_(0.05 * torch.randn_like(engine.projection.weight))
    out = engine(ids, mask, labels)
    out.loss.backward()
    got = grads(model)
    model.zero_grad()
    sequential = engine_for(model, latent_projection=True, thought_scale=0.7)
    sequential.projection.load_state_dict(engine.projection.state_dict())
    want_out = sequential(ids, mask, labels)
    want_out.loss.backward()
    want = grads(model)
    assert torch.allclose(out.loss, want_out.loss, atol=TOL, rtol=0)
    assert torch.allclose(out.logits[mask.bool()], want_out.logits[mask.bool()], atol=TOL, rtol=0)
    for name in want:
        assert torch.allclose(got[name], want[name], atol=TOL, rtol=1e-4), name
    # And the plain engine (no projection) against the naive recompute.
    model.zero_grad()
    plain = engine_for(model, jacobi_iterations=most)
    ref_loss, _ = reference_loss(model, examples)
    assert torch.allclose(plain(ids, mask, labels).loss, ref_loss, atol=TOL, rtol=0)


def test_fewer_iterations_leave_late_thoughts_inexact():
    model = tiny_model("llama", seed=5)
    examples, (ids, mask, labels) = ragged_batch(5, batch=5, max_thoughts=4)
    most = max(int((row == LATENT).sum()) for row in ids)
    assert most >= 3
    exact = engine_for(model)(ids, mask, labels).loss
    early = engine_for(model, jacobi_iterations=1)(ids, mask, labels).loss
    assert not torch.allclose(early, exact, atol=1e-4), "one iteration cannot settle three chained thoughts"


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_jacobi_generation_equals_sequential_generation(arch):
    model = eos_prone_model(arch)
    ids, mask, _ = pad_batch([(p, p) for p in prompts(seed=9, max_thoughts=3)], "left")
    sequential = engine_for(model).generate(ids, mask, max_new_tokens=MAX_NEW)
    jacobi = engine_for(model, jacobi_iterations=3).generate(ids, mask, max_new_tokens=MAX_NEW)
    assert torch.equal(jacobi.sequences, sequential.sequences)
    assert torch.equal(jacobi.num_generated, sequential.num_generated)


def test_bad_iterations_are_refused():
    with pytest.raises(ValueError, match="jacobi_iterations must be >= 1"):
        engine_for(tiny_model("gpt2"), jacobi_iterations=0)
