"""The cached, aligned latent forward equals a naive recompute without any cache."""

import pytest
import torch

from tests.helpers import (EOS, LATENT, TOL, check_against_recompute, engine_for, pad_batch, ragged_batch,
                           reference_loss, tiny_model)


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2"])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("seed", [0, 1])
def test_loss_logits_and_gradients_match_recompute(arch, side, seed):
    model = tiny_model(arch, seed=seed)
    engine = engine_for(model)
    examples, (ids, mask, labels) = ragged_batch(seed, batch=5, side=side)
    assert len({int((row == LATENT).sum()) for row in ids}) > 1, "the batch should be ragged in thoughts"
    out, _ = check_against_recompute(engine, model, examples, (ids, mask, labels))
    assert out.num_thoughts.tolist() == [sum(t == LATENT for t in toks) for toks, _ in examples]


def test_thought_scale_is_applied_and_measured():
    model = tiny_model("gpt2", seed=4)
    engine = engine_for(model, thought_scale=0.25)
    examples, (ids, mask, labels) = ragged_batch(4, batch=4, side="right")
    out = engine(ids, mask, labels)
    ref_loss, ref_logits = reference_loss(model, examples, projection=engine.thought_embedding)
    assert torch.allclose(out.loss, ref_loss, atol=TOL, rtol=0)
    _, unscaled = reference_loss(model, examples)
    assert max((a - b).abs().max().item() for a, b in zip(ref_logits, unscaled)) > 1e-3, "the scale matters"
    assert "thought_scale" in engine.state_dict()
    scale = engine.thought_scale_for(ids, mask)
    emb = model.get_input_embeddings()(ids)[mask.bool()].norm(dim=-1).mean()
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    hid = model.get_decoder()(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state[mask.bool()]
    hid = hid.norm(dim=-1).mean()
    assert scale == pytest.approx(float(emb / hid), rel=1e-5)


def test_learned_projection_is_applied_and_trained():
    model = tiny_model("llama", seed=3)
    engine = engine_for(model, latent_projection=True)
    assert torch.equal(engine.projection.weight, torch.eye(32)), "starts as the identity"
    with torch.no_grad():
        engine.projection.weight.add_(0.1 * torch.randn(32, 32))
        engine.projection.bias.normal_(0, 0.1)
    examples, (ids, mask, labels) = ragged_batch(3, batch=4, side="left")

    out = engine(ids, mask, labels)
    out.loss.backward()
    got = engine.projection.weight.grad.clone()
    engine.zero_grad()
    ref_loss, _ = reference_loss(model, examples, projection=engine.projection)
    ref_loss.backward()

    assert torch.allclose(out.loss, ref_loss, atol=TOL, rtol=0)
    assert got.abs().sum() > 0
    assert torch.allclose(got, engine.projection.weight.grad, atol=TOL, rtol=1e-4)


def test_thoughts_are_hidden_states_not_token_embeddings():
    """Sanity check of the test itself: feeding the <|latent|> embedding would change the logits."""
    model = tiny_model("gpt2")
    engine = engine_for(model)
    examples, (ids, mask, labels) = ragged_batch(0, batch=5, side="right")
    plain = model(input_ids=ids, attention_mask=mask).logits
    latent = engine(ids, mask).logits
    after_thoughts = mask.bool() & (ids == EOS).cumsum(1).eq(0) & (ids != LATENT)
    assert (plain - latent)[after_thoughts].abs().max() > 1e-3


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2"])
def test_zero_thoughts_is_the_plain_model(arch):
    model = tiny_model(arch)
    engine = engine_for(model)
    ids, mask, labels = pad_batch([([5, 6, 7, 8, EOS], [-100, -100, 7, 8, EOS]), ([9, 10, EOS], [-100, 10, EOS])], "left")
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    want = model(input_ids=ids, attention_mask=mask, position_ids=position_ids, labels=labels)
    got = engine(ids, mask, labels)
    assert torch.allclose(got.logits, want.logits, atol=1e-6)
    assert torch.allclose(got.loss, want.loss, atol=1e-6)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_eager_attention_reads_the_cache_as_exactly(arch):
    # A model loaded with attn_implementation="eager" (architectures without SDPA) runs transformers' eager kernel
    # over the cache's prefix views: the same exactness as SDPA, gradients included.
    model = tiny_model(arch, seed=2)
    model.set_attn_implementation("eager")
    assert model.config._attn_implementation == "eager"
    engine = engine_for(model)
    examples, (ids, mask, labels) = ragged_batch(2, batch=4, side="left")
    check_against_recompute(engine, model, examples, (ids, mask, labels))
