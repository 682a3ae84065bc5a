"""The one-glance answer rules of `coconut data stats`, hand-checked on small graphs."""

from coconut.data import prosqa
from coconut.data.graph import Graph
from coconut.data.option_rules import RULES, rule_accuracy, rule_rows
from coconut.data.stats import compute_stats

DEEPER, FEWER = RULES.values()


def graph(edges, target, neg, n=7):
    return Graph([f"n{i}" for i in range(n)], edges, root=0, target=target, neg_target=neg)


def test_depth_is_the_longest_chain_from_a_person_and_parents_are_counted():
    # people 0 and 1; 0 -> 2 -> 3 -> 4, 1 -> 4, 1 -> 5 -> 6, 2 -> 6
    g = graph([(0, 2), (2, 3), (3, 4), (1, 4), (1, 5), (5, 6), (2, 6)], target=4, neg=6)
    assert g.depth == [0, 0, 1, 2, 3, 1, 2]
    assert [len(p) for p in g.parents] == [0, 0, 1, 1, 2, 1, 2]
    assert DEEPER(g, 4) == 3 and DEEPER(g, 6) == 2 and FEWER(g, 4) == FEWER(g, 6) == -2


def test_a_rule_scores_its_pick_and_counts_a_tie_half():
    deeper_right = graph([(0, 2), (2, 3), (1, 4)], target=3, neg=4)  # answer 2 deep, distractor 1
    deeper_wrong = graph([(0, 2), (1, 3), (3, 4)], target=2, neg=4)  # answer 1 deep, distractor 2
    tie = graph([(0, 2), (1, 3)], target=2, neg=3)
    assert rule_accuracy([deeper_right], DEEPER) == (1.0, 0.0)
    assert rule_accuracy([deeper_wrong], DEEPER) == (0.0, 0.0)
    assert rule_accuracy([deeper_right, deeper_wrong, tie, tie], DEEPER) == (0.5, 0.5)


def test_stats_print_each_rule_for_records_with_a_distractor_only():
    records = prosqa.generate(40, seed=3, cfg=prosqa.ProsQAConfig(**prosqa.MINI))
    rows = {k: v for k, v in compute_stats(records).items() if k.startswith("one-glance rule")}
    assert len(rows) == len(RULES) and all(v.endswith("counted half)") for v in rows.values())
    accuracy, _ = rule_accuracy([Graph.from_record(r) for r in records], DEEPER)
    assert rows["one-glance rule: the deeper option (longest chain from a person)"].startswith(f"{100 * accuracy:.0f} %")
    assert rule_rows([{k: v for k, v in r.items() if k != "neg_target"} for r in records]) == {}


def test_a_matched_distractor_leaves_every_rule_at_chance_and_the_default_does_not():
    from coconut.data.generators import generate

    matched = generate("prosqa-mini", 200, seed=5, render="phrase", distractor="matched")
    plain = generate("prosqa-mini", 200, seed=5, render="phrase")
    for rule in RULES.values():
        assert rule_accuracy([Graph.from_record(r) for r in matched], rule) == (0.5, 1.0)
    assert rule_accuracy([Graph.from_record(r) for r in plain], DEEPER)[0] > 0.6
    assert matched[0]["generated"]["distractor"] == "matched" and "distractor" not in plain[0]["generated"]
    assert generate("prosqa-mini", 20, seed=5, distractor="any") == [
        {**r, "generated": {**r["generated"], "distractor": "any"}} for r in generate("prosqa-mini", 20, seed=5)]


def test_bad_distractor_settings_are_refused():
    import pytest

    from coconut.config import ConfigError
    from coconut.data.generators import generate
    from coconut.experiment import load_config

    with pytest.raises(ValueError, match="distractor applies to prosqa and prosqa-mini, not prontoqa"):
        generate("prontoqa", 2, seed=0, distractor="matched")
    with pytest.raises(ValueError, match="distractor must be one of any, matched"):
        prosqa.ProsQAConfig(distractor="near")
    with pytest.raises(ConfigError, match="data.distractor=near must be any or matched"):
        load_config("demo_cot", ["data.distractor=near"])
    assert load_config("demo_cot", ["data.distractor=matched"]).data.distractor == "matched"
