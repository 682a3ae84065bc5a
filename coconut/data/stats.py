"""`coconut data stats`: the statistics of a records file, beside a reference file if given.

So a user can see that generated data matches the real thing: sizes, step counts, for graph
records (ProsQA) the graph's shape, and for ProntoQA the ontology, polarities, distractors and order
(`prontoqa_stats`).
"""

from __future__ import annotations

import statistics
from collections import Counter

from coconut.data import prontoqa_stats
from coconut.data.graph import children_lists, count_shortest_paths
from coconut.data.option_rules import rule_rows


def _distribution(values, top: int = 5) -> str:
    counts = Counter(values)
    total = sum(counts.values())
    common = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return ", ".join(f"{k}: {100 * v / total:.0f} %" for k, v in sorted(common))


def _summary(values) -> str:
    values = list(values)
    if not values:
        return "-"
    return f"{statistics.mean(values):.2f} ({min(values)}-{max(values)}, median {statistics.median(values):g})"


def compute_stats(records: list[dict]) -> dict[str, str]:
    """Name -> formatted value, in display order."""
    out = {
        "records": str(len(records)),
        "words per question": _summary(len(r["question"].split()) for r in records),
        "steps": _summary(len(r["steps"]) for r in records),
        "steps distribution": _distribution(len(r["steps"]) for r in records),
        "words per step": _summary(len(s.split()) for r in records for s in r["steps"]),
        "answers": _distribution((r["answer"] for r in records), top=4) if len({r["answer"] for r in records}) <= 4 else f"{len({r['answer'] for r in records})} distinct",
    }
    if prontoqa_stats.is_prontoqa(records):  # its graph fields are not ProsQA's: people, options mean nothing
        out.update(prontoqa_stats.rows(records))
        return out
    graphs = [r for r in records if "edges" in r and "idx_to_symbol" in r]
    if graphs:
        nodes = [len(r["idx_to_symbol"]) for r in graphs]
        people, leaves, indegree, paths, first = [], [], [], [], []
        for r in graphs:
            n = len(r["idx_to_symbol"])
            ins, outs = Counter(v for _, v in r["edges"]), Counter(u for u, _ in r["edges"])
            people.append(sum(1 for v in range(n) if ins[v] == 0))
            leaves.append(sum(1 for v in range(n) if outs[v] == 0))
            indegree.extend(ins[v] for v in range(n) if ins[v] > 0)
            if "root" in r and "target" in r:
                paths.append(count_shortest_paths(children_lists(r["edges"], n), r["root"], r["target"]))
                if "neg_target" in r:  # the distractor offered beside the answer (the release's files have it)
                    names = r["idx_to_symbol"]
                    first.append(_first_option_is(r["question"], names[r["target"]], names[r["neg_target"]]))
        out.update({
            "nodes": _summary(nodes),
            "edges": _summary(len(r["edges"]) for r in graphs),
            "people per graph": _distribution(people, top=4),
            "leaves": _summary(leaves),
            "in-degree of concepts": _distribution(indegree, top=4),
        })
        if paths:
            out["shortest paths subject->target"] = f"{statistics.mean(paths):.2f} ({_distribution(paths, top=3)})"
        if first:
            out["correct option first"] = f"{100 * statistics.mean(first):.0f} %"
        out.update(rule_rows(graphs))
    return out


def _first_option_is(question: str, target: str, neg: str) -> bool:
    tail = question[-120:]
    return tail.rfind(target) < tail.rfind(neg)


def format_stats(records: list[dict], name: str, reference: list[dict] | None = None, reference_name: str = "") -> str:
    ours = compute_stats(records)
    rows = ["| statistic | " + name + (" | " + reference_name if reference is not None else "") + " |"]
    rows.append("|---|---|" + ("---|" if reference is not None else ""))
    theirs = compute_stats(reference) if reference is not None else {}
    for key in list(ours) + [k for k in theirs if k not in ours]:
        row = f"| {key} | {ours.get(key, '-')} |"
        if reference is not None:
            row += f" {theirs.get(key, '-')} |"
        rows.append(row)
    return "\n".join(rows)
