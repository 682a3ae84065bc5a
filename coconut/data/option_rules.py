"""Answer rules that never follow an edge from the subject: how far a graph question can be answered in one
glance at the two offered names. A model that answers at once (No-CoT) can learn such a rule instead of the
search, so a data set's questions need the search only where these rules stay at the options' chance (50 %).

Each rule picks the option it scores higher; a tie counts as half right (a coin toss)."""

from __future__ import annotations

from coconut.data.graph import Graph

# name -> score of an option node in its graph
RULES = {
    "the deeper option (longest chain from a person)": lambda g, v: g.depth[v],
    "the option with fewer parents": lambda g, v: -len(g.parents[v]),
}


def rule_accuracy(graphs: list[Graph], rule) -> tuple[float, float]:
    """(accuracy with ties counted half, share of ties) of `rule` over graphs with a distractor."""
    right = ties = 0
    for g in graphs:
        answer, other = rule(g, g.target), rule(g, g.neg_target)
        ties += answer == other
        right += answer > other
    n = max(len(graphs), 1)
    return (right + ties / 2) / n, ties / n


def rule_rows(records: list[dict]) -> dict[str, str]:
    """Statistics rows: each rule's accuracy on the records that offer a distractor (none without one)."""
    graphs = [Graph.from_record(r) for r in records if r.get("neg_target") is not None and "root" in r]
    rows = {}
    for name, rule in RULES.items() if graphs else ():
        accuracy, ties = rule_accuracy(graphs, rule)
        rows[f"one-glance rule: {name}"] = f"{100 * accuracy:.0f} % right (ties {100 * ties:.0f} %, counted half)"
    return rows
