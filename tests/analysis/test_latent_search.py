"""Latent-search analysis on a hand-built graph: path categories, frontier, heights, values."""

import math

import pytest
import torch

from coconut import LatentReasoner
from coconut.data.graph import Graph
from coconut.analysis.paths import classify, parse_path
from coconut.analysis.search import Question, forced_prompt, frontier_summary, frontier_values
from coconut.engine.special_tokens import SpecialIds
from coconut.data.curriculum import TokenizedRecord
from coconut.engine.reference import recompute_logits
from tests.helpers import END, EOS, LATENT, PAD, START, tiny_model

# p0 -> c0 -> c2 -> c3 (longer), p0 -> c1 -> c3 (shortest, target), c0 -> c5 (a leaf), p1 -> c4 (distractor)
NAMES = ["p0", "p1", "c0", "c1", "c2", "c3", "c4", "c5"]
EDGES = [(0, 2), (0, 3), (2, 4), (3, 5), (4, 5), (1, 6), (2, 7)]
GRAPH = Graph(NAMES, EDGES, root=0, target=5, neg_target=6)


def test_graph_frontier_heights_and_shortest_paths():
    assert GRAPH.frontier(0) == [0]
    assert GRAPH.frontier(1) == [2, 3]
    assert GRAPH.frontier(2) == [4, 5, 7]
    assert GRAPH.height == [3, 1, 2, 1, 1, 0, 0, 0]
    assert [GRAPH.on_shortest_path(v) for v in range(8)] == [True, False, False, True, False, True, False, False]


@pytest.mark.parametrize("text, category", [
    ("p0 c1 ; c1 c3 ; = c3", "correct_path"),
    ("p0 c0 ; c0 c2 ; c2 c3 ; = c3", "longer_path"),
    ("p0 c0 ; c0 c3 ; = c3", "hallucination"),  # no edge c0 -> c3
    ("p0 c0 ; c2 c3 ; = c3", "hallucination"),  # the chain breaks
    ("p0 c0 ; c0 ; = c3", "hallucination"),  # a step that names one node
    ("p1 c4 ; = c4", "hallucination"),  # starts where the subject cannot reach
    ("p0 c0 ; c0 c5 ; = c5", "wrong_target"),
    ("= c3", "correct_label"),
    ("= c4", "incorrect_label"),
    ("", "incorrect_label"),
    # After k thoughts the path starts mid-way: its length counts the distance to its start.
    ("c1 c3 ; = c3", "correct_path"),
    ("c2 c3 ; = c3", "longer_path"),
])
def test_path_categories(text, category):
    assert classify(text, GRAPH, "c3", "= ") == category


def test_word_rendering_parses_the_same():
    text = "Every c1 is a c3. ### p0 is a c3."
    assert parse_path(text, GRAPH, "### ").edges == [(3, 5)]
    assert classify("p0 is a c1. Every c1 is a c3. ### p0 is a c3.", GRAPH, "p0 is a c3.", "### ") == "correct_path"


def test_missing_graph_metadata_is_named():
    with pytest.raises(ValueError, match="no field 'edges'"):
        Graph.from_record({"idx_to_symbol": NAMES, "root": 0, "target": 5}, "test.json, record 3")


class CharTokenizer:
    """Every character is a token: names take several tokens, exercising the teacher-forced product."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [5 + (ord(ch) % 30) for ch in text]}


IDS = SpecialIds(start=START, latent=LATENT, end=END, eos=EOS, pad=PAD)


@pytest.mark.parametrize("prefix", ["", "Every"])
def test_frontier_values_are_the_model_probabilities_of_each_name(prefix):
    model = tiny_model("llama", seed=2)
    engine = LatentReasoner(model, latent_id=LATENT, start_id=START, end_id=END, eos_id=EOS, pad_id=PAD)
    tok = CharTokenizer()
    questions = [Question({"answer": "c3"}, GRAPH, TokenizedRecord([7, 8, 9, 10], [], [])),
                 Question({"answer": "c3"}, GRAPH, TokenizedRecord([11, 12], [], []))]
    ks = [1, 2]
    values = frontier_values(engine, tok, questions, ks, IDS, prefix, batch_size=5, progress=False)
    head = tok(prefix)["input_ids"] if prefix else []
    for i, q in enumerate(questions):
        for j, k in enumerate(ks):
            prompt = forced_prompt(q.tokens.question, k, IDS) + head
            for node, name in enumerate(NAMES):
                toks = tok(f"{prefix} {name}")["input_ids"][len(head):] if prefix else tok(name)["input_ids"]
                with torch.no_grad():
                    logits = recompute_logits(model, prompt + toks, LATENT)
                logp = logits.log_softmax(-1)
                want = math.exp(sum(float(logp[len(prompt) - 1 + t, tok_id]) for t, tok_id in enumerate(toks)))
                assert values[i][j][node] == pytest.approx(want, rel=1e-4, abs=1e-9)


def test_frontier_summary_on_known_values():
    questions = [Question({}, GRAPH, TokenizedRecord([], [], []))]
    values = [[{2: 0.5, 3: 0.2, 0: 0.3}, {4: 0.1, 5: 0.6, 7: 0.05}]]
    summary = frontier_summary(questions, [1, 2], values)
    assert summary["top_mass"][1] == pytest.approx([0.5, 0.6])
    assert summary["top_mass"][2] == pytest.approx([0.7, 0.7])
    assert summary["top_mass"][3] == pytest.approx([0.7, 0.75])
    assert summary["by_height"][0] == {1: 0.2, 2: 0.5}
    assert summary["by_height"][1] == pytest.approx({0: 0.325, 1: 0.1})
    assert summary["correlation"][0] == pytest.approx(1.0)
    on_path = {(p["k"], p["node"]): p["on_shortest_path"] for p in summary["points"]}
    assert on_path[(1, 3)] and not on_path[(1, 2)] and on_path[(2, 5)]


def test_data_without_graphs_is_refused_with_file_record_and_field(tmp_path):
    import json

    from coconut.analysis.run import load_questions
    from coconut.experiment import load_config
    from coconut.data.records import DataError

    records = [{"question": "q", "steps": ["s"], "answer": "a", "idx_to_symbol": NAMES, "edges": EDGES,
                "root": 0, "target": 5},
               {"question": "q", "steps": ["s"], "answer": "a"}]
    path = tmp_path / "test.json"
    path.write_text(json.dumps(records))
    cfg = load_config("demo_coconut", [f"data.test_file={path}"])
    with pytest.raises(DataError) as err:
        load_questions(cfg, None, "test", None)
    assert "test.json" in str(err.value) and "record 1" in str(err.value) and "idx_to_symbol" in str(err.value)


def test_forced_prompt_follows_the_stage0_form_and_frontier_skips_finished_paths():
    assert forced_prompt([9], 0, IDS) == [9, START, END]
    assert forced_prompt([9], 0, IDS, eot_at_stage0=False) == [9, START]
    assert forced_prompt([9], 2, IDS, eot_at_stage0=False) == [9, START, LATENT, LATENT, END]
    two_steps = Question({"steps": ["p0 c1 ;", "c1 c3 ;"]}, GRAPH, TokenizedRecord([], [], []))
    summary = frontier_summary([two_steps], [1, 2], [[{3: 0.9}, {5: 0.5}]])
    assert summary["questions"] == [1, 0], "after 2 thoughts a 2-step path has no step left to name"
    assert summary["top_mass"][1][0] == pytest.approx(0.9) and math.isnan(summary["top_mass"][1][1])
