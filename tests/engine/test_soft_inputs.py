"""Soft Thinking and Mixture of Inputs: the releases' rules on hand-made distributions, reductions to greedy,
cold stop writing the answer marker, batched == single."""

import math
import re

import pytest
import torch

from coconut.engine.soft_inputs import DecodeConfig, InputMixer, entropy, moi_weights, soft_weights
from tests.helpers import EOS, MAX_NEW, VOCAB, engine_for, eos_prone_model, pad_batch, prompts, tiny_model

SOFT = DecodeConfig(name="soft_thinking", temperature=0.5, top_k=8, top_p=0.9, min_p=0.05, max_topk=3,
                    cold_stop_entropy=0.0)
# Cold stop that fires on the tiny random models after a few steps, at different steps for different rows.
COLD = DecodeConfig(name="soft_thinking", temperature=0.05, top_k=8, top_p=0.9, min_p=0.05, max_topk=3,
                    cold_stop_entropy=2.0, cold_stop_patience=2)
MOI = DecodeConfig(name="mixture_of_inputs", beta=0.5, moi_top_k=5)
ANSWER = (33, 34)  # the answer marker's tokens (two of them, so the second is forced on the next step)
ALL = torch.ones(1, dtype=torch.bool)

# q = 32, 16, 8, 4, 2, 1, 0.5 at temperature 0.5: softmax(logits / 0.5) = q / 63.5.
Q = torch.tensor([32.0, 16.0, 8.0, 4.0, 2.0, 1.0, 0.5])
Q_LOGITS = 0.5 * Q.log()


def q_probs():
    return (Q_LOGITS / 0.5).softmax(-1).unsqueeze(0)


@pytest.mark.parametrize("top_k,top_p,min_p,max_topk,kept", [
    (6, 1.0, 0.0, 10, [32, 16, 8, 4, 2, 1]),  # top-k alone: the 0.5 goes
    # top-p on the top-6 renormalised mass: 62/63 = 0.984 lies before the 1, so it goes. On the
    # un-renormalised probabilities it would stay (62/63.5 = 0.976 < 0.98): top-k comes first.
    (6, 0.98, 0.0, 10, [32, 16, 8, 4, 2]),
    # min-p is relative to the top token: below 0.1 x 32 = 3.2 goes (the 2). An absolute 0.1 would also
    # drop the 4 (4/60 = 0.067).
    (6, 0.98, 0.1, 10, [32, 16, 8, 4]),
    (6, 0.98, 0.1, 3, [32, 16, 8]),  # then the max_topk most likely are mixed: 4/7, 2/7, 1/7
    (2, 1.0, 0.0, 10, [32, 16]),
])
def test_soft_thinking_filter_chain(top_k, top_p, min_p, max_topk, kept):
    ids, weights = soft_weights(q_probs(), top_k, top_p, min_p, max_topk)
    n = len(kept)
    assert ids[0, :n].tolist() == list(range(n))
    expected = torch.tensor(kept) / sum(kept)
    assert torch.allclose(weights[0, :n], expected, atol=1e-6)
    assert float(weights[0, n:].abs().sum()) == 0.0  # anything past the survivors weighs nothing


def test_soft_thinking_input_is_the_tempered_filtered_mix():
    engine = engine_for(tiny_model("llama"))
    table = engine.model.get_input_embeddings().weight
    logits = torch.full((1, VOCAB), float("-inf"))
    logits[0, 10:17] = Q_LOGITS
    cfg = DecodeConfig(name="soft_thinking", temperature=0.5, top_k=6, top_p=0.98, min_p=0.1, max_topk=3,
                       cold_stop_entropy=0.0)
    token, got = InputMixer(cfg, engine, 1, "cpu")(logits, torch.tensor([10]), ALL)
    # Survivors 32, 16, 8 of the temperature-0.5 distribution (at temperature 1 the weights would be
    # proportional to sqrt(q): 0.45, 0.32, 0.23).
    assert token.tolist() == [10]
    assert torch.allclose(got[0], (4 * table[10] + 2 * table[11] + table[12]) / 7, atol=1e-5)


# Two tokens with logits 6 apart: entropy 0.017 nats at temperature 1, 0.0005 at 0.6.
CONFIDENT = torch.full((1, VOCAB), float("-inf"))
CONFIDENT[0, 7], CONFIDENT[0, 8] = 6.0, 0.0
UNSURE = torch.full((1, VOCAB), float("-inf"))
UNSURE[0, 7:13] = 0.0


def test_cold_stop_writes_the_answer_marker_after_patience_confident_steps():
    engine = engine_for(tiny_model("gpt2"))
    cfg = DecodeConfig(name="soft_thinking", temperature=0.6, cold_stop_entropy=0.01, cold_stop_patience=3)
    mixer = InputMixer(cfg, engine, 1, "cpu", leave_ids=(ANSWER[0], EOS), answer_ids=ANSWER)
    seven = torch.tensor([7])
    # confident, unsure (the run restarts), confident x 3: the third writes the marker's first token.
    for step, logits in enumerate([CONFIDENT, UNSURE, CONFIDENT, CONFIDENT]):
        token, _ = mixer(logits, seven, ALL)
        assert token.tolist() == [7] and mixer.mixing.tolist() == [True], step
    token, got = mixer(CONFIDENT, seven, ALL)
    assert token.tolist() == [ANSWER[0]] and mixer.mixing.tolist() == [False]
    assert torch.allclose(got, engine.embed(torch.tensor([ANSWER[0]])))
    # The marker's next token is written whatever the model prefers, then the row decodes plain tokens.
    token, got = mixer(UNSURE, seven, ALL)
    assert token.tolist() == [ANSWER[1]] and torch.allclose(got, engine.embed(torch.tensor([ANSWER[1]])))
    token, got = mixer(UNSURE, seven, ALL)
    assert token.tolist() == [7] and mixer.mixing.tolist() == [False]
    assert torch.allclose(got, engine.embed(seven))


def test_cold_stop_entropy_is_taken_at_the_temperature():
    engine = engine_for(tiny_model("gpt2"))
    for temperature, stops in ((1.0, False), (0.6, True)):
        cfg = DecodeConfig(name="soft_thinking", temperature=temperature, cold_stop_entropy=0.01,
                           cold_stop_patience=1)
        token, _ = InputMixer(cfg, engine, 1, "cpu", answer_ids=ANSWER)(CONFIDENT, torch.tensor([7]), ALL)
        assert (token.tolist() == [ANSWER[0]]) == stops, temperature
    # ... on the whole distribution, before the filters: a long tail (39 tokens 8 nats down, 0.11 nats in all)
    # is not confident even though top-k = 1 leaves a single token to mix.
    tail = torch.full((1, VOCAB), -8.0)
    tail[0, 7] = 0.0
    cfg = DecodeConfig(name="soft_thinking", temperature=1.0, top_k=1, cold_stop_entropy=0.01, cold_stop_patience=1)
    token, _ = InputMixer(cfg, engine, 1, "cpu", answer_ids=ANSWER)(tail, torch.tensor([7]), ALL)
    assert token.tolist() == [7]


def test_inactive_rows_neither_count_nor_get_forced():
    engine = engine_for(tiny_model("gpt2"))
    cfg = DecodeConfig(name="soft_thinking", temperature=0.6, cold_stop_entropy=0.01, cold_stop_patience=2)
    mixer = InputMixer(cfg, engine, 2, "cpu", answer_ids=ANSWER)
    logits, sevens = CONFIDENT.expand(2, -1), torch.tensor([7, 7])
    mixer(logits, sevens, torch.tensor([True, False]))
    token, _ = mixer(logits, sevens, torch.tensor([True, True]))
    assert token.tolist() == [ANSWER[0], 7]  # row 1 has one confident step so far


def test_moi_weights_mix_the_top_k_posterior_with_the_observed_token():
    logits = torch.tensor([[math.log(2.0), 0.0, -1.0, -2.0, -3.0]])
    # Top-2 renormalised: p = (2/3, 1/3); H = (log 3 - 2/3 log 2) / log 2 (log k, k = 2, not log V).
    h = (math.log(3) - 2 / 3 * math.log(2)) / math.log(2)
    cases = {
        0: [1 - h / 6, h / 6, 0, 0, 0],  # posterior (5/6, 1/6); H x posterior + (1 - H) x onehot(0)
        1: [h / 3, 1 - h / 3, 0, 0, 0],  # the observed token is the one passed, not the most likely
        3: [h / 3, h / 6, 0, 1 - h, 0],  # outside the top-k: the prior alone, plus the token's own embedding
    }
    for token, expected in cases.items():
        ids, weights = moi_weights(logits, torch.tensor([token]), top_k=2, beta=1.0)
        dense = torch.zeros(1, 5).scatter_add_(1, ids, weights)
        assert torch.allclose(dense[0], torch.tensor(expected), atol=1e-6), token


def test_mixture_of_inputs_input_with_the_release_defaults():
    engine = engine_for(tiny_model("llama"))
    table = engine.model.get_input_embeddings().weight
    logits = torch.full((1, VOCAB), -1e4)
    logits[0, 5], logits[0, 6] = math.log(2.0), 0.0
    cfg = DecodeConfig(name="mixture_of_inputs")  # beta 1, k = 20
    # The answer is mixed too: leave tokens do not end Mixture of Inputs.
    mixer = InputMixer(cfg, engine, 1, "cpu", leave_ids=(5,))
    h = (math.log(3) - 2 / 3 * math.log(2)) / math.log(20)
    for _ in range(2):
        token, got = mixer(logits, torch.tensor([5]), ALL)
        assert token.tolist() == [5] and mixer.mixing.tolist() == [True]
        assert torch.allclose(got[0], (1 - h / 6) * table[5] + h / 6 * table[6], atol=1e-5)


def test_confident_distributions_feed_the_plain_token():
    engine = engine_for(tiny_model("gpt2"))
    logits = torch.full((1, engine.model.get_input_embeddings().num_embeddings), -1e4)
    logits[0, 7] = 0.0  # a one-hot distribution: entropy 0
    token = torch.tensor([7])
    for cfg in (SOFT, MOI):
        _, got = InputMixer(cfg, engine, 1, "cpu")(logits, token, ALL)
        assert torch.allclose(got, engine.embed(token), atol=1e-6)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_soft_thinking_with_one_token_is_greedy_decoding(arch):
    engine = engine_for(eos_prone_model(arch))
    ids, mask, _ = pad_batch([(p, p) for p in prompts(seed=3)], "left")
    greedy = engine.generate(ids, mask, max_new_tokens=MAX_NEW)
    one_hot = engine.generate(ids, mask, max_new_tokens=MAX_NEW,
                              decode=DecodeConfig(name="soft_thinking", max_topk=1, cold_stop_entropy=0.0))
    assert torch.equal(one_hot.sequences, greedy.sequences)
    assert torch.equal(one_hot.num_generated, greedy.num_generated)
    assert int(one_hot.soft_inputs.sum()) > 0, "the soft path must have been taken"
    assert int(greedy.soft_inputs.sum()) == 0


@pytest.mark.parametrize("cfg", [SOFT, COLD, MOI], ids=["soft_thinking", "cold_stop", "mixture_of_inputs"])
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_soft_decoding_batched_equals_one_at_a_time(arch, cfg):
    engine = engine_for(eos_prone_model(arch))
    batch_prompts = prompts(seed=5)
    ids, mask, _ = pad_batch([(p, p) for p in batch_prompts], "right")
    marker = dict(leave_ids=(ANSWER[0], EOS), answer_ids=ANSWER)
    batched = engine.generate(ids, mask, max_new_tokens=MAX_NEW, decode=cfg, **marker)
    greedy = engine.generate(ids, mask, max_new_tokens=MAX_NEW)
    for row, prompt in enumerate(batch_prompts):
        single = engine.generate(torch.tensor([prompt]), max_new_tokens=MAX_NEW, decode=cfg, **marker)
        n = int(batched.num_generated[row])
        assert batched.sequences[row, :n].tolist() == single.sequences[0].tolist()
        assert int(batched.soft_inputs[row]) == int(single.soft_inputs[0])
    assert not torch.equal(batched.sequences, greedy.sequences) or not torch.equal(
        batched.num_generated, greedy.num_generated), "mixed inputs should change some generation of a random model"
    if cfg is COLD:
        assert (batched.sequences == ANSWER[1]).any(), "the cold stop must have fired"


@pytest.mark.parametrize("cfg", [SOFT, COLD, MOI], ids=["soft_thinking", "cold_stop", "mixture_of_inputs"])
def test_soft_decoding_equals_a_no_cache_recompute(cfg):
    """Without thoughts in the prompt: re-run the plain model on all inputs so far, mixtures included."""
    model = eos_prone_model("llama")
    engine = engine_for(model)
    prompt = [9, 12, 7, 30, 22]
    got = engine.generate(torch.tensor([prompt]), max_new_tokens=MAX_NEW, decode=cfg, answer_ids=ANSWER)
    embeds = engine.embed(torch.tensor([prompt]))
    mixer = InputMixer(cfg, engine, 1, "cpu", answer_ids=ANSWER)
    tokens = []
    with torch.no_grad():
        for _ in range(MAX_NEW):
            logits = model(inputs_embeds=embeds).logits[:, -1]
            logits[:, 3] = float("-inf")  # <|latent|> is never chosen in language mode
            token, mixed = mixer(logits, logits.argmax(-1), ALL)
            tokens.append(int(token))
            if int(token) == EOS:
                break
            embeds = torch.cat([embeds, mixed.unsqueeze(1)], dim=1)
    assert got.sequences[0].tolist() == tokens


def test_a_cold_stop_at_the_first_step_answers_from_the_marker():
    engine = engine_for(eos_prone_model("gpt2"))
    batch_prompts = prompts(seed=3)
    ids, mask, _ = pad_batch([(p, p) for p in batch_prompts], "left")
    # Every step is confident and one is enough: each row writes the marker first, reads nothing mixed,
    # and goes on as greedy decoding would after the prompt and the marker.
    cold = DecodeConfig(name="soft_thinking", cold_stop_entropy=1e9, cold_stop_patience=1)
    out = engine.generate(ids, mask, max_new_tokens=MAX_NEW, decode=cold, answer_ids=ANSWER)
    assert int(out.soft_inputs.sum()) == 0
    for row, prompt in enumerate(batch_prompts):
        after = engine.generate(torch.tensor([prompt + list(ANSWER)]), max_new_tokens=MAX_NEW - len(ANSWER))
        n = int(out.num_generated[row])
        assert out.sequences[row, :n].tolist() == list(ANSWER) + after.sequences[0].tolist()


def test_leave_tokens_end_the_soft_phase():
    engine = engine_for(eos_prone_model("gpt2"))
    ids, mask, _ = pad_batch([(p, p) for p in prompts(seed=3)], "left")
    # The first chosen token is a leave token: nothing is mixed at all.
    greedy = engine.generate(ids, mask, max_new_tokens=MAX_NEW)
    first = greedy.sequences[:, 0].tolist()
    out = engine.generate(ids, mask, max_new_tokens=MAX_NEW, decode=SOFT, leave_ids=first)
    assert int(out.soft_inputs.sum()) == 0
    assert torch.equal(out.sequences, greedy.sequences)


def test_release_defaults():
    cfg = DecodeConfig(name="soft_thinking")
    assert (cfg.temperature, cfg.top_k, cfg.top_p, cfg.min_p, cfg.max_topk) == (0.6, 30, 0.95, 0.001, 10)
    assert (cfg.cold_stop_entropy, cfg.cold_stop_patience) == (0.01, 256)
    assert (cfg.beta, cfg.moi_top_k) == (1.0, 20)


@pytest.mark.parametrize("settings,message", [
    (dict(name="beam"), "decode.name must be one of"),
    (dict(name="soft_thinking", top_k=0), "decode.top_k >= 1"),
    (dict(name="soft_thinking", max_topk=0), "decode.max_topk >= 1"),
    (dict(name="soft_thinking", top_p=0.0), "decode.top_p in (0, 1]"),
    (dict(name="soft_thinking", min_p=1.5), "decode.min_p in [0, 1]"),
    (dict(name="soft_thinking", temperature=0.0), "decode.temperature > 0"),
    (dict(name="soft_thinking", cold_stop_entropy=-1.0), "decode.cold_stop_entropy >= 0"),
    (dict(name="soft_thinking", cold_stop_patience=0), "decode.cold_stop_patience >= 1"),
    (dict(name="mixture_of_inputs", beta=-1.0), "decode.beta >= 0"),
    (dict(name="mixture_of_inputs", moi_top_k=1), "decode.moi_top_k >= 2"),
])
def test_bad_decode_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DecodeConfig(**settings)
