"""Thought geometry: the figures against hand-computed cases, the thoughts against a recompute without a cache, and
the LM-head readings of a batch against `coconut think`'s reader."""

import math

import pytest
import torch

from coconut import LatentReasoner
from coconut.analysis.thought_stats import batch_thoughts, read_batch, thought_stats
from coconut.analysis.thoughts import read_thoughts
from coconut.data import prosqa
from coconut.data.word_tokenizer import build_word_tokenizer
from tests.helpers import END, LATENT, START, engine_for, pad_batch, prompts, tiny_model

T = "thoughts/"


def test_orthogonal_thoughts_of_a_question_and_identical_ones_across_questions():
    # Two questions, each thinking 3*e1 then 3*e2: within a question cosine 0, across questions 1, norms 3.
    fed = torch.tensor([[[3.0, 0.0], [0.0, 3.0]], [[3.0, 0.0], [0.0, 3.0]]])
    stats = thought_stats(fed, torch.ones(2, 2, dtype=torch.bool), token_norm=1.0)
    assert stats == pytest.approx({T + "token_embedding_norm": 1.0, T + "norm_pos1": 3.0, T + "norm_pos2": 3.0,
                                   T + "norm_ratio": 3.0, T + "cos_within": 0.0, T + "cos_across": 1.0})


def test_pairs_are_pooled_and_missing_thoughts_count_nowhere():
    # Question 0 thinks e1, 2*e2, -e1: pairs (e1, e2) 0, (e1, -e1) -1, (e2, -e1) 0, mean -1/3.
    # Question 1 has one thought, 4*(cos 60, sin 60), then two slots it does not have (huge values to be ignored).
    s = math.sqrt(3) / 2
    fed = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]],
                        [[2.0, 4 * s], [100.0, 100.0], [-50.0, 7.0]]])
    present = torch.tensor([[True, True, True], [True, False, False]])
    stats = thought_stats(fed, present, token_norm=2.0)
    assert stats[T + "norm_pos1"] == pytest.approx((1 + 4) / 2)
    assert stats[T + "norm_pos2"] == pytest.approx(2.0) and stats[T + "norm_pos3"] == pytest.approx(1.0)
    assert stats[T + "norm_ratio"] == pytest.approx((1 + 2 + 1 + 4) / 4 / 2.0)  # mean over the 4 thoughts / 2
    assert stats[T + "cos_within"] == pytest.approx(-1 / 3)  # question 1 has no pair
    assert stats[T + "cos_across"] == pytest.approx(0.5)  # the one pair: position 1, e1 against 60 degrees


def test_figures_without_a_pair_or_a_thought_are_left_out():
    one = thought_stats(torch.tensor([[[0.0, 6.0]]]), torch.tensor([[True]]), token_norm=2.0)
    assert one == pytest.approx({T + "token_embedding_norm": 2.0, T + "norm_pos1": 6.0, T + "norm_ratio": 3.0})
    assert thought_stats(torch.zeros(3, 0, 4), torch.zeros(3, 0, dtype=torch.bool), token_norm=1.0) == {}


def naive_thoughts(engine, tokens):
    """The thoughts of one unpadded prompt, recomputing the whole prefix for each (no cache, no alignment)."""
    embeds = engine.embed(torch.tensor([tokens]))
    fed = []
    for t, token in enumerate(tokens):
        if token == LATENT:
            hidden = engine.decoder(inputs_embeds=embeds[:, :t], use_cache=False).last_hidden_state[:, -1]
            fed.append(engine.thought_embedding(hidden)[0])
            embeds = torch.cat([embeds[:, :t], fed[-1][None, None], embeds[:, t + 1 :]], dim=1)
    return fed


@pytest.mark.parametrize("arch,side", [("llama", "left"), ("gpt2", "right")])
@torch.no_grad()
def test_the_thoughts_are_the_ones_the_engine_feeds(arch, side):
    model = tiny_model(arch, seed=2)
    engine = engine_for(model, latent_projection=True, thought_scale=0.5)
    engine.projection.weight.add_(0.1 * torch.randn_like(engine.projection.weight))  # not the identity
    batch = prompts(5, count=6, max_thoughts=3)
    assert {p.count(LATENT) for p in batch} >= {0, 2}, "ragged counts, rows without thoughts included"
    ids, mask, _ = pad_batch([(p, p) for p in batch], side)
    got = batch_thoughts(engine, ids, mask)
    assert got.count == max(p.count(LATENT) for p in batch)
    for row, tokens in enumerate(batch):
        want = naive_thoughts(engine, tokens)
        assert int(got.present[row].sum()) == len(want) and bool(got.present[row, : len(want)].all())
        for j, thought in enumerate(want):
            torch.testing.assert_close(got.fed[row, j], thought, atol=1e-5, rtol=0)
    question = [t for p in batch for t in p if t not in (START, LATENT, END)]
    want_norm = model.get_input_embeddings().weight[question].norm(dim=-1).mean()
    assert got.token_norm == pytest.approx(float(want_norm), rel=1e-5)


@torch.no_grad()
def test_jacobi_thoughts_with_enough_iterations_are_the_sequential_ones():
    model = tiny_model("llama", seed=4)
    ids, mask, _ = pad_batch([(p, p) for p in prompts(6, count=5, max_thoughts=3)], "left")
    sequential = batch_thoughts(engine_for(model), ids, mask)
    jacobi = batch_thoughts(engine_for(model, jacobi_iterations=3), ids, mask)
    assert torch.equal(sequential.present, jacobi.present)
    torch.testing.assert_close(jacobi.fed[jacobi.present], sequential.fed[sequential.present], atol=1e-5, rtol=0)


@torch.no_grad()
def test_each_question_reads_as_coconut_think_reads_it():
    records = prosqa.generate(12, seed=5, cfg=prosqa.ProsQAConfig(**{**prosqa.MINI, "render": "phrase"}))
    tokenizer = build_word_tokenizer(records, ["= "])
    engine = LatentReasoner.from_tokenizer(tiny_model("llama", seed=1, vocab_size=len(tokenizer)), tokenizer,
                                           latent_projection=True)
    engine.projection.weight.add_(0.05 * torch.randn_like(engine.projection.weight))
    marked = f"<|start-latent|>{'<|latent|>' * 3}<|end-latent|>"
    texts = [records[0]["question"] + " " + marked, records[1]["question"] + " <|start-latent|><|end-latent|>",
             records[2]["question"] + " " + marked]
    tokenizer.padding_side = "left"
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    thoughts = batch_thoughts(engine, enc["input_ids"], enc["attention_mask"])
    read = read_batch(engine, tokenizer, thoughts, enc["input_ids"], enc["attention_mask"], questions=2, top=4)
    assert len(read) == 2, "two questions with thoughts read; the one without is skipped"
    for (question, readings), record in zip(read, (records[0], records[2])):
        want = read_thoughts(engine, tokenizer, record["question"], " ", "= ", thoughts=3, top=4, eot_at_stage0=False,
                             max_new_tokens=1)
        assert question.split() == record["question"].split()
        assert [[t for t, _ in r.top] for r in readings] == [[t for t, _ in r.top] for r in want.thoughts]
        for got_reading, want_reading in zip(readings, want.thoughts):
            assert [p for _, p in got_reading.top] == pytest.approx([p for _, p in want_reading.top], abs=1e-5)
