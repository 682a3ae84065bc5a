"""Reading continuous thoughts through the LM head (coconut think): each reading is the LM head at the column
that computes the thought, checked against a recompute without a cache; graph names carry their distance, and
each thought's frontier reads the same full softmax."""

import pytest
import torch

from coconut import LatentReasoner
from coconut.analysis.frontier import name_token_ids
from coconut.analysis.search import forced_prompt
from coconut.analysis.thoughts import format_thinking, read_thoughts
from coconut.data import prosqa
from coconut.data.graph import Graph
from coconut.data.word_tokenizer import build_word_tokenizer
from coconut.engine.reference import recompute_logits
from coconut.engine.special_tokens import SpecialIds
from tests.helpers import tiny_model


@pytest.fixture(scope="module")
def setting():
    records = prosqa.generate(40, seed=3, cfg=prosqa.ProsQAConfig(**{**prosqa.MINI, "render": "phrase"}))
    tokenizer = build_word_tokenizer(records, ["= "])
    model = tiny_model("llama", seed=1, vocab_size=len(tokenizer))
    engine = LatentReasoner.from_tokenizer(model, tokenizer, latent_projection=True)
    with torch.no_grad():  # a projection that is not the identity, so feeding back differs from reading
        engine.projection.weight.add_(0.05 * torch.randn_like(engine.projection.weight))
    return records, tokenizer, engine


def test_each_reading_is_the_lm_head_where_the_thought_is_computed(setting):
    records, tokenizer, engine = setting
    record = records[0]
    got = read_thoughts(engine, tokenizer, record["question"], " ", "= ", thoughts=3, top=4, eot_at_stage0=False,
                        record=record, max_new_tokens=8)
    ids = SpecialIds.from_tokenizer(tokenizer)
    question = tokenizer(record["question"] + " ", add_special_tokens=True)["input_ids"]
    prompt = forced_prompt(question, 3, ids, eot_at_stage0=False)
    with torch.no_grad():
        logits = recompute_logits(engine.model, prompt, ids.latent, projection=engine.projection)
    start = len(question)  # <bot>: it computes thought 1
    assert len(got.thoughts) == 3
    for j, reading in enumerate(got.thoughts):
        probs = logits[start + j].softmax(-1)
        values, indices = probs.topk(4)
        assert [t for t, _ in reading.top] == tokenizer.convert_ids_to_tokens(indices.tolist())
        torch.testing.assert_close(torch.tensor([p for _, p in reading.top]), values, rtol=1e-4, atol=1e-6)
    graph = Graph.from_record(record)
    for reading in got.thoughts:
        for token, distance in reading.distance.items():
            assert graph.distance[graph.index[token]] == distance
    token_of = dict(zip(graph.names, name_token_ids(tokenizer, graph.names)))
    assert [f.depth for f in got.frontier] == [1, 2, 3]
    for j, frontier in enumerate(got.frontier):
        probs = logits[start + j].softmax(-1)
        assert sorted(n for n, _ in frontier.nodes) == sorted(graph.names[v] for v in graph.frontier(j + 1))
        for name, p in frontier.nodes:
            assert p == pytest.approx(float(probs[token_of[name]]), rel=1e-4, abs=1e-6)
        for depth, mass in frontier.mass.items():
            tokens = {token_of[graph.names[v]] for v in graph.frontier(depth)}
            assert mass == pytest.approx(float(probs[list(tokens)].sum()), rel=1e-4, abs=1e-6)
    gen = engine.generate(torch.tensor([prompt]), max_new_tokens=8)
    text = tokenizer.decode(gen.sequences[0, : int(gen.num_generated[0])].tolist(), skip_special_tokens=True)
    assert got.generated == text.strip() and got.gold == record["answer"]
    assert got.correct == (got.answer is not None and got.answer.strip() == record["answer"])


def test_without_thoughts_the_question_alone_is_run_and_the_text_says_so(setting):
    records, tokenizer, engine = setting
    record = dict(records[1])
    plain = read_thoughts(engine, tokenizer, record["question"], " ", "= ", thoughts=None, max_new_tokens=6)
    assert plain.thoughts == [] and plain.gold is None and plain.correct is None
    text = format_thinking(plain)
    assert "no continuous thoughts" in text and "gold" not in text
    scored = read_thoughts(engine, tokenizer, record["question"], " ", "= ", thoughts=2, record=record, max_new_tokens=6)
    text = format_thinking(scored)
    assert text.count("thought ") == 2 and f"gold: {record['answer']}" in text
    assert ("right" if scored.correct else "wrong") in text.splitlines()[-1]
