"""Soft Thinking and Mixture of Inputs: the mixing rules, reductions to greedy, batched == single."""

import math

import pytest
import torch

from coconut.engine.soft_inputs import DecodeConfig, InputMixer, entropy, soft_weights
from tests.helpers import EOS, MAX_NEW, engine_for, eos_prone_model, pad_batch, prompts, tiny_model

SOFT = DecodeConfig(name="soft_thinking", top_k=3, top_p=0.9, cold_stop_patience=0)
MOI = DecodeConfig(name="mixture_of_inputs", beta=0.5)


def test_soft_weights_keep_top_k_then_top_p_and_renormalise():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    ids, weights = soft_weights(probs, top_k=3, top_p=0.7)
    # 0.5 (mass before 0) and 0.3 (mass before 0.5 < 0.7) stay; 0.15 has 0.8 before it.
    assert ids.tolist() == [[0, 1, 2]]
    assert torch.allclose(weights, torch.tensor([[0.5 / 0.8, 0.3 / 0.8, 0.0]]))


def test_mixture_of_inputs_weights_follow_the_posterior_mean():
    engine = engine_for(tiny_model("llama"))
    table = engine.model.get_input_embeddings().weight
    logits = torch.randn(2, table.shape[0])
    token = torch.tensor([5, 9])
    mixer = InputMixer(MOI, engine, 2, "cpu")
    got = mixer(logits, token, torch.ones(2, dtype=torch.bool))
    p = logits.softmax(-1)
    for row in range(2):
        h = float(entropy(p[row : row + 1])) / math.log(p.shape[-1])
        w = h * p[row]
        w[token[row]] += MOI.beta + 1 - h
        w = w / (MOI.beta + 1)
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)
        assert torch.allclose(got[row], w @ table, atol=1e-5)


def test_confident_distributions_feed_the_plain_token():
    engine = engine_for(tiny_model("gpt2"))
    logits = torch.full((1, engine.model.get_input_embeddings().num_embeddings), -1e4)
    logits[0, 7] = 0.0  # a one-hot distribution: entropy 0
    token = torch.tensor([7])
    active = torch.ones(1, dtype=torch.bool)
    for cfg in (SOFT, MOI):
        got = InputMixer(cfg, engine, 1, "cpu")(logits, token, active)
        assert torch.allclose(got, engine.embed(token), atol=1e-6)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_soft_thinking_with_one_token_is_greedy_decoding(arch):
    engine = engine_for(eos_prone_model(arch))
    ids, mask, _ = pad_batch([(p, p) for p in prompts(seed=3)], "left")
    greedy = engine.generate(ids, mask, max_new_tokens=MAX_NEW)
    one_hot = engine.generate(ids, mask, max_new_tokens=MAX_NEW,
                              decode=DecodeConfig(name="soft_thinking", top_k=1, cold_stop_patience=0))
    assert torch.equal(one_hot.sequences, greedy.sequences)
    assert torch.equal(one_hot.num_generated, greedy.num_generated)
    assert int(one_hot.soft_inputs.sum()) > 0, "the soft path must have been taken"
    assert int(greedy.soft_inputs.sum()) == 0


@pytest.mark.parametrize("cfg", [SOFT, MOI], ids=["soft_thinking", "mixture_of_inputs"])
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_soft_decoding_batched_equals_one_at_a_time(arch, cfg):
    engine = engine_for(eos_prone_model(arch))
    batch_prompts = prompts(seed=5)
    ids, mask, _ = pad_batch([(p, p) for p in batch_prompts], "right")
    batched = engine.generate(ids, mask, max_new_tokens=MAX_NEW, decode=cfg)
    greedy = engine.generate(ids, mask, max_new_tokens=MAX_NEW)
    for row, prompt in enumerate(batch_prompts):
        single = engine.generate(torch.tensor([prompt]), max_new_tokens=MAX_NEW, decode=cfg)
        n = int(batched.num_generated[row])
        assert batched.sequences[row, :n].tolist() == single.sequences[0].tolist()
        assert int(batched.soft_inputs[row]) == int(single.soft_inputs[0])
    assert not torch.equal(batched.sequences, greedy.sequences) or not torch.equal(
        batched.num_generated, greedy.num_generated), "mixed inputs should change some generation of a random model"


@pytest.mark.parametrize("cfg", [SOFT, MOI], ids=["soft_thinking", "mixture_of_inputs"])
def test_soft_decoding_equals_a_no_cache_recompute(cfg):
    """Without thoughts in the prompt: re-run the plain model on all inputs so far, mixtures included."""
    model = eos_prone_model("llama")
    engine = engine_for(model)
    prompt = [9, 12, 7, 30, 22]
    got = engine.generate(torch.tensor([prompt]), max_new_tokens=MAX_NEW, decode=cfg)
    embeds = engine.embed(torch.tensor([prompt]))
    mixer = InputMixer(cfg, engine, 1, "cpu")
    tokens = []
    with torch.no_grad():
        for _ in range(MAX_NEW):
            logits = model(inputs_embeds=embeds).logits[:, -1]
            logits[:, 3] = float("-inf")  # <|latent|> is never chosen in language mode
            token = logits.argmax(-1)
            tokens.append(int(token))
            if int(token) == EOS:
                break
            embeds = torch.cat([embeds, mixer(logits, token, torch.ones(1, dtype=torch.bool)).unsqueeze(1)], dim=1)
    assert got.sequences[0].tolist() == tokens


def test_cold_stop_and_leave_tokens_end_the_soft_phase():
    engine = engine_for(eos_prone_model("gpt2"))
    ids, mask, _ = pad_batch([(p, p) for p in prompts(seed=3)], "left")
    # Every step counts as confident: one soft input, then plain tokens.
    cold = DecodeConfig(name="soft_thinking", top_k=3, cold_stop_entropy=1e9, cold_stop_patience=1)
    out = engine.generate(ids, mask, max_new_tokens=MAX_NEW, decode=cold)
    fed = (out.num_generated - 1).clamp(min=0)  # tokens whose embedding was read back
    assert torch.equal(out.soft_inputs, fed.clamp(max=1))
    # The first chosen token is a leave token: nothing is mixed at all.
    greedy = engine.generate(ids, mask, max_new_tokens=MAX_NEW)
    first = greedy.sequences[:, 0].tolist()
    out = engine.generate(ids, mask, max_new_tokens=MAX_NEW, decode=SOFT, leave_ids=first)
    assert int(out.soft_inputs.sum()) == 0
    assert torch.equal(out.sequences, greedy.sequences)


def test_bad_decode_settings_are_refused():
    with pytest.raises(ValueError, match="decode.name"):
        DecodeConfig(name="beam")
    with pytest.raises(ValueError, match="top_k"):
        DecodeConfig(name="soft_thinking", top_k=0)
