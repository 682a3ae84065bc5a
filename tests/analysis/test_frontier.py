"""The frontier under each thought of a graph question (coconut think): a fake engine whose LM head gives chosen
probabilities, so every figure is known by hand; thought k stands for depth ceil(k/c); nothing for a question
without a graph."""

import math
from types import SimpleNamespace

import pytest
import torch

from coconut.analysis.frontier import LEGEND, frontier_lines, frontiers, gold_path, name_token_ids
from coconut.analysis.thoughts import format_thinking, read_thoughts
from coconut.data.graph import Graph
from coconut.data.word_tokenizer import build_word_tokenizer
from coconut.engine.special_tokens import SpecialIds

# p0 -> c1 -> c3 and p0 -> c2 -> c4; p6 -> c5 is out of the subject's reach.
RECORD = {
    "question": "p0 c1 ; p0 c2 ; c1 c3 ; c2 c4 ; p6 c5 ; ? p0 : c3 | c5",
    "steps": ["p0 c1 ;", "c1 c3 ;"],
    "answer": "c3",
    "idx_to_symbol": ["p0", "c1", "c2", "c3", "c4", "c5", "p6"],
    "edges": [[0, 1], [0, 2], [1, 3], [2, 4], [6, 5]],
    "root": 0,
    "target": 3,
    "neg_target": 5,
}
# What the LM head reads from each thought (the rest of the vocabulary gets nothing).
READS = [
    {"p0": 0.10, "c1": 0.20, "c2": 0.40, "c3": 0.05, "c5": 0.05, ";": 0.20},
    {"c3": 0.50, "c4": 0.30, "c1": 0.10, "p6": 0.10},
    {"=": 1.0},
]


class FakeEngine(torch.nn.Module):
    """hidden_states puts each thought's log-probabilities at the column that computes it; the LM head is the identity,
    so the reading of thought j is READS[j] exactly. Generation writes nothing."""

    def __init__(self, tokenizer, reads):
        super().__init__()
        self.ids = SpecialIds.from_tokenizer(tokenizer)
        self.table = torch.full((len(reads), len(tokenizer)), -1e4)  # exp(-1e4) is 0 in float32
        for j, read in enumerate(reads):
            for token, p in read.items():
                self.table[j, tokenizer.convert_tokens_to_ids(token)] = math.log(p)
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # the device read_thoughts asks the parameters for

    def lm_head(self, hidden):
        return hidden

    def thought_embedding(self, hidden):  # the reading's geometry line: the states fed as they are
        return hidden

    def embed(self, input_ids):
        return torch.ones(*input_ids.shape, self.table.shape[1])

    def hidden_states(self, input_ids, mask):
        hidden = torch.full((1, input_ids.shape[1], self.table.shape[1]), -1e4)
        bot = input_ids[0].tolist().index(self.ids.start)  # <bot> computes thought 1, each <latent> the next
        hidden[0, bot : bot + len(self.table)] = self.table
        return hidden, None

    def generate(self, input_ids, mask, max_new_tokens):
        return SimpleNamespace(sequences=torch.tensor([[self.ids.eos]]), num_generated=torch.tensor([0]))


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer([RECORD], ["= "])


def think(tokenizer, record, thoughts=3, per_step=1):
    return read_thoughts(FakeEngine(tokenizer, READS), tokenizer, record["question"], " ", "= ", thoughts, top=3,
                         record=record, max_new_tokens=4, thoughts_per_step=per_step)


def test_thought_k_holds_the_nodes_k_steps_out_with_their_probabilities_and_each_depths_mass(tokenizer):
    first, second, third = think(tokenizer, RECORD).frontier
    # Thought 1 stands for the first step: the subject's children, not the subject.
    assert first.depth == 1 and [n for n, _ in first.nodes] == ["c2", "c1"]
    assert [p for _, p in first.nodes] == pytest.approx([0.40, 0.20])
    assert first.mass == pytest.approx({0: 0.10, 1: 0.60, 2: 0.05}) and first.off == pytest.approx(0.05)
    assert first.frontier_mass == pytest.approx(0.60) and first.heaviest == "d1"
    assert first.path_node == "c1" and first.path_rank == 2 and first.path_top is False
    assert second.depth == 2 and [n for n, _ in second.nodes] == ["c3", "c4"]
    assert [p for _, p in second.nodes] == pytest.approx([0.50, 0.30])
    assert second.mass == pytest.approx({0: 0.0, 1: 0.10, 2: 0.80}) and second.off == pytest.approx(0.10)
    assert second.path_node == "c3" and second.path_top is True
    # Past the graph's deepest node: no frontier, no path node, and no name holds anything.
    assert third.depth == 3 and third.nodes == [] and third.path_node is None and third.path_top is None
    assert sum(third.mass.values()) + third.off == pytest.approx(0.0) and third.heaviest is None


def test_with_c_thoughts_per_step_each_step_spans_c_thoughts(tokenizer):
    found = think(tokenizer, RECORD, per_step=2).frontier
    assert [f.depth for f in found] == [1, 1, 2]
    assert [n for n, _ in found[1].nodes] == ["c1", "c2"] and found[1].nodes[0][1] == pytest.approx(0.10)
    assert found[2].nodes == [("c3", 0.0), ("c4", 0.0)]  # the "=" thought, read at depth 2


def test_the_frontier_lines_sit_under_their_thoughts_in_aligned_columns(tokenizer):
    text = format_thinking(think(tokenizer, RECORD))
    lines = text.splitlines()
    assert lines[1 : 1 + len(LEGEND)] == list(LEGEND)
    assert text.count("thought ") == 3  # the legend does not read as a thought line
    under = [lines[i + 1] for i, line in enumerate(lines) if line.startswith("thought ")]
    assert under == [
        "  frontier d=1: c2 0.40  c1 0.20 (path) | mass d0 0.10  d1 0.60* d2 0.05  off 0.05  | path node 2 of 2",
        "  frontier d=2: c3 0.50 (path)  c4 0.30 | mass d0 0.00  d1 0.10  d2 0.80* off 0.10  | path node most likely",
        "  frontier d=3: (no node this far)      | mass d0 0.00  d1 0.00  d2 0.00  off 0.00",
    ]


def test_a_question_without_a_graph_reads_as_before(tokenizer):
    plain = {k: RECORD[k] for k in ("question", "steps", "answer")}  # as GSM8k records are
    for record in (plain, None):
        got = think(tokenizer, record) if record else read_thoughts(
            FakeEngine(tokenizer, READS), tokenizer, RECORD["question"], " ", "= ", 3, max_new_tokens=4)
        text = format_thinking(got)
        assert got.frontier == [] and "frontier" not in text and "mass" not in text
        assert [line.split(":")[0] for line in text.splitlines()[1:4]] == ["thought 1", "thought 2", "thought 3"]


def test_the_gold_path_comes_from_the_steps_and_needs_them_to_chain_from_the_subject(tokenizer):
    graph = Graph.from_record(RECORD)
    assert gold_path(RECORD, graph) == [0, 1, 3]
    assert gold_path({**RECORD, "steps": ["c1 c3 ;"]}, graph) is None  # not from the subject
    assert gold_path({**RECORD, "steps": []}, graph) is None
    found = frontiers(torch.eye(len(tokenizer))[[tokenizer.convert_tokens_to_ids("c4")]], graph,
                      name_token_ids(tokenizer, graph.names), path=None)
    assert found[0].path_node is None and "(path)" not in frontier_lines(found)[0]
    assert found[0].heaviest == "d2" and found[0].frontier_mass == 0.0
