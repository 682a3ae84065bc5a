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
