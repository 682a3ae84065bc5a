"""Generated ProsQA data: invariants, determinism, and statistics against the real data (ProntoQA: test_prontoqa.py)."""

import re
import statistics
from collections import Counter, deque

import pytest

from coconut.data import prosqa
from coconut.data.records import check_record, load_records
from coconut.data.stats import compute_stats, format_stats
from tests.shared_data import shared_file


@pytest.fixture(scope="module")
def prosqa_records():
    return prosqa.generate(1500, seed=0)


def reach(edges, source):
    children = {}
    for u, v in edges:
        children.setdefault(u, []).append(v)
    dist, queue = {source: 0}, deque([source])
    while queue:
        u = queue.popleft()
        for w in children.get(u, []):
            if w not in dist:
                dist[w] = dist[u] + 1
                queue.append(w)
    return dist


def test_prosqa_is_deterministic_by_seed():
    assert prosqa.generate(5, seed=3) == prosqa.generate(5, seed=3)
    assert prosqa.generate(5, seed=3) != prosqa.generate(5, seed=4)


def test_prosqa_graph_invariants(prosqa_records):
    for i, r in enumerate(prosqa_records):
        check_record(r, "generated", i)
        names, edges = r["idx_to_symbol"], r["edges"]
        assert all(u < v for u, v in edges), "node ids in creation order"
        assert {x for e in edges for x in e} == set(range(len(names))), "no isolated nodes"
        assert len(set(names)) == len(names)
        other = 1 - r["root"]
        mine, theirs = reach(edges, r["root"]), reach(edges, other)
        assert r["target"] in mine and r["target"] not in theirs
        assert r["neg_target"] in theirs and r["neg_target"] not in mine
        assert all(u != r["target"] and u != r["neg_target"] for u, _ in edges), "both options are leaves"
        # the steps are one shortest path, an edge per sentence, and the target is the farthest such leaf
        assert len(r["steps"]) == mine[r["target"]]
        leaves = {v for v in range(len(names)) if all(u != v for u, _ in edges)} - {0, 1}
        assert mine[r["target"]] == max(mine[v] for v in leaves if v in mine and v not in theirs)
        sentence = {(u, v): (f"{names[u]} is a {names[v]}." if u in (0, 1) or all(w != u for _, w in edges)
                             else f"Every {names[u]} is a {names[v]}.") for u, v in edges}
        assert all(s in sentence.values() for s in r["steps"])
        assert r["answer"] == f"{names[r['root']]} is a {names[r['target']]}."
        assert r["question"].endswith("?") and all(s in r["question"] for s in sentence.values())


def test_prosqa_statistics_match_the_released_data(prosqa_records):
    # Reference figures measured on the 800 official valid+test records (shared/data/README.md).
    steps = Counter(len(r["steps"]) for r in prosqa_records)
    n = len(prosqa_records)
    for k, share in {3: 0.41, 4: 0.44, 5: 0.13, 6: 0.02}.items():
        assert abs(steps[k] / n - share) < 0.04, (k, steps[k] / n)
    assert abs(statistics.mean(len(r["idx_to_symbol"]) for r in prosqa_records) - 22.8) < 0.8
    assert abs(statistics.mean(len(r["edges"]) for r in prosqa_records) - 36.0) < 2.0
    assert abs(statistics.mean(len(r["question"].split()) for r in prosqa_records) - 179) < 10
    people = Counter(sum(1 for v in range(len(r["idx_to_symbol"])) if all(e[1] != v for e in r["edges"]))
                     for r in prosqa_records)
    assert abs(people[2] / n - 0.58) < 0.06 and abs(people[3] / n - 0.32) < 0.06
    first = statistics.mean(r["question"].rfind(r["idx_to_symbol"][r["target"]]) < r["question"].rfind(r["idx_to_symbol"][r["neg_target"]]) for r in prosqa_records)
    assert abs(first - 0.5) < 0.05


def test_prosqa_statistics_against_the_shared_file(prosqa_records):
    reference = load_records(shared_file("prosqa_valid.json"))
    ours, theirs = compute_stats(prosqa_records), compute_stats(reference)
    assert set(ours) == set(theirs)

    def mean_of(value):
        return float(value.split()[0])

    for key in ("nodes", "edges", "steps", "leaves", "words per step"):
        assert abs(mean_of(ours[key]) - mean_of(theirs[key])) / mean_of(theirs[key]) < 0.07, key
    assert "| steps distribution |" in format_stats(prosqa_records, "ours", reference, "official")


def test_prosqa_mini_is_small_and_compact():
    records = prosqa.generate(300, seed=1, cfg=prosqa.ProsQAConfig(**prosqa.MINI))
    assert all(2 <= len(r["steps"]) <= 3 for r in records)
    assert all(len(r["idx_to_symbol"]) <= 10 for r in records)
    r = records[0]
    assert re.fullmatch(r"([pc]\d+ [pc]\d+ ; )+\? p\d+ : c\d+ \| c\d+", r["question"])
    assert all(re.fullmatch(r"[pc]\d+ c\d+ ;", s) for s in r["steps"])
    assert r["answer"] == r["idx_to_symbol"][r["target"]]


def test_phrase_rendering_writes_each_step_as_a_sentence_of_five_or_more_tokens():
    cfg = prosqa.ProsQAConfig(**{**prosqa.MINI, "render": "phrase"})
    records = prosqa.generate(200, seed=1, cfg=cfg)
    compact = prosqa.generate(200, seed=1, cfg=prosqa.ProsQAConfig(**prosqa.MINI))
    for r, c in zip(records, compact):  # the same graphs and questions; only the steps differ
        assert r["question"] == c["question"] and r["answer"] == c["answer"]
        names = r["idx_to_symbol"]
        path = [r["root"]] + [names.index(s.split()[1]) for s in c["steps"]]
        for step, u, v in zip(r["steps"], path, path[1:]):
            subject = f"{names[u]} is a" if names[u].startswith("p") else f"every {names[u]} is a"
            assert step == f"{subject} {names[v]} .", "the released sentence, lower case, the period apart"
            assert len(step.split()) >= 5


def test_prosqa_config_errors():
    with pytest.raises(ValueError, match="render"):
        prosqa.ProsQAConfig(render="pictures")
    with pytest.raises(ValueError, match="min_steps"):
        prosqa.ProsQAConfig(min_steps=4, max_steps=3)


def test_stats_of_graphs_without_a_distractor_leave_that_row_out():
    """neg_target is optional metadata: its statistic is left out rather than failing on the first record."""
    records = [{k: v for k, v in r.items() if k != "neg_target"}
               for r in prosqa.generate(20, seed=1, cfg=prosqa.ProsQAConfig(**prosqa.MINI))]
    stats = compute_stats(records)
    assert "shortest paths subject->target" in stats and "correct option first" not in stats
