"""The demo's deep graphs (`prosqa-deep`): the answer is reachable only by following `depth` edges, the offered
names look alike, and the side branches make the first steps a choice."""

import random
from collections import Counter

import pytest

from coconut.data.generators import generate
from coconut.data.graph import children_lists, distances
from coconut.data.prosqa_deep import DeepConfig, make_record, side_lengths, tree_size
from coconut.data.records import check_record


@pytest.fixture(scope="module")
def records():
    return generate("prosqa-deep", 400, seed=0)


def test_the_answer_is_the_subjects_only_leaf_at_full_depth_and_the_distractor_the_other_persons(records):
    for i, r in enumerate(records):
        check_record(r, "prosqa-deep", i)
        n = len(r["idx_to_symbol"])
        children = children_lists(r["edges"], n)
        people = [v for v in range(n) if not any(b == v for _, b in r["edges"])]
        assert len(people) == 2 and r["root"] in people
        other = next(p for p in people if p != r["root"])
        mine, theirs = distances(children, r["root"]), distances(children, other)
        assert not set(mine) & set(theirs), "the two trees share no node"
        assert len(mine) + len(theirs) == n
        depth = len(r["steps"])
        assert depth == 4
        leaves = [v for v in mine if not children[v]]
        assert [v for v in leaves if mine[v] == depth] == [r["target"]], "one deepest leaf: the answer"
        assert max(mine.values()) == depth
        assert theirs.get(r["neg_target"]) == depth and not children[r["neg_target"]], "alike: a leaf as deep"
        assert sorted(Counter(mine.values()).items()) == sorted(Counter(theirs.values()).items()), "same shape"


def test_steps_follow_the_subjects_path_as_phrases(records):
    r = records[0]
    names = r["idx_to_symbol"]
    edges = {(names[u], names[v]) for u, v in r["edges"]}
    walked = []
    for step in r["steps"]:
        words = step.split()
        assert words[-4:-2] == ["is", "a"] and words[-1] == "."
        walked.append((words[-5], words[-2]))
    assert set(walked) <= edges
    assert walked[0][0] == names[r["root"]] and walked[-1][1] == r["answer"] == names[r["target"]]
    assert all(a[1] == b[0] for a, b in zip(walked, walked[1:])), "a connected path"
    assert r["question"].endswith(f"? {names[r['root']]} : {' | '.join(r['question'].split(' : ')[-1].split(' | '))}")
    assert set(r["question"].split(" : ")[-1].split(" | ")) == {names[r["target"]], names[r["neg_target"]]}


def test_a_branch_at_every_path_node_but_the_last_so_a_random_walk_rarely_arrives(records):
    assert side_lengths(4, 2) == [2, 2, 1]  # never as deep as the path below the branch
    assert tree_size(4, 2) == 10
    arrived, rng = 0, random.Random(0)
    for r in records:
        children = children_lists(r["edges"], len(r["idx_to_symbol"]))
        u = r["root"]
        while children[u]:
            u = rng.choice(children[u])
        arrived += u == r["target"]
    assert 0.08 < arrived / len(records) < 0.18  # three binary choices: 1/8


def test_node_ids_and_edge_order_say_nothing_about_the_path(records):
    # Creation order would put the path first; the ids are shuffled, so the answer's id is spread out.
    targets = Counter(r["target"] for r in records)
    assert len(targets) > 10 and max(targets.values()) < 0.15 * len(records)


def test_deterministic_by_seed_and_configurable():
    assert generate("prosqa-deep", 5, 3) == generate("prosqa-deep", 5, 3)
    assert generate("prosqa-deep", 5, 3) != generate("prosqa-deep", 5, 4)
    r = make_record(random.Random(0), DeepConfig(min_depth=5, max_depth=5, side_length=1))
    assert len(r["steps"]) == 5 and len(r["idx_to_symbol"]) == 2 * tree_size(5, 1)
    compact = generate("prosqa-deep", 1, 0, render="compact")[0]
    assert compact["steps"][0].endswith(";")
    with pytest.raises(ValueError, match="render must be one of"):
        generate("prosqa-deep", 1, 0, render="prose")
    with pytest.raises(ValueError, match="min_depth"):
        DeepConfig(min_depth=3, max_depth=2)
    with pytest.raises(ValueError, match="too few"):
        DeepConfig(max_depth=30)


def test_depth_is_a_data_setting_recorded_with_the_files(tmp_path):
    from coconut.cli.main import main
    from coconut.config import ConfigError
    from coconut.data.files import ensure_data
    from coconut.data.provenance import generated_origin
    from coconut.data.records import load_records
    from coconut.experiment import load_config

    cfg = load_config("demo_cot", [f"data.data_dir={tmp_path / 'd'}", "data.generator=prosqa-deep", "data.depth=3",
                                   "data.train_size=6", "data.val_size=4", "data.test_size=4"])
    files = ensure_data(cfg.data)
    record = load_records(files["train"])[0]
    assert len(record["steps"]) == 3 and generated_origin(files["train"])[1]["depth"] == 3
    assert main(["data", "prosqa-deep", "--n", "3", "--depth", "5", "--out", str(tmp_path / "five.json")]) == 0
    assert {len(r["steps"]) for r in load_records(tmp_path / "five.json")} == {5}
    with pytest.raises(ConfigError, match="data.depth=3 applies to generator prosqa-deep"):
        load_config("demo_cot", ["data.depth=3"])
    with pytest.raises(ValueError, match="depth applies to prosqa-deep"):
        generate("prosqa-mini", 1, 0, depth=3)
