"""Statistics of ProntoQA-shaped records ("True or false: ..." questions), read from the text.

`features` describes one question by what a generator must get right: the rules and their forms, the
polarities, the concepts and entities, the distractor branch and the rule contradicting the conclusion,
the steps, the query and answer, the sentence order, the length. `rows` turns a file's features into the
lines `coconut data stats` prints, one value-share list per feature so two files compare value by value.
"""

from __future__ import annotations

import statistics
from collections import Counter

from coconut.data.names import PRONTOQA_PROPERTIES
from coconut.data.prontoqa_text import QUERY_MARK, parse_question

FAMILY = {word: i for i, family in enumerate(PRONTOQA_PROPERTIES) for word in family}
# Per-rule (or per-name) features: their values are lists, counted element by element.
LIST_FEATURES = ("subsumption forms", "property forms", "entity", "concept names", "property words")
NUMERIC_FEATURES = ("words per question",)  # too many values to list: mean (min-max)
SHOWN_ELSEWHERE = ("steps", "answer", "words per question")  # rows `compute_stats` already prints


def is_prontoqa(records: list[dict]) -> bool:
    return bool(records) and all(QUERY_MARK in r.get("question", "") for r in records)


def features(record: dict) -> dict[str, object]:
    """Feature name -> value for one record; raises ValueError if it is not ProntoQA-shaped."""
    q = parse_question(record["question"])
    entity, subs = q.entity, [r for r in q.rules if r.is_subsumption]
    props = [r for r in q.rules if not r.is_subsumption]
    proof = [step.split(". ", 1)[0].rsplit(" ", 1)[-1].rstrip(".") for step in record["steps"][:-1]]
    on_proof = set(proof)
    by_subject = Counter(r.subject for r in q.rules)
    conclusion = next((r for r in props if proof and r.subject == proof[-1]), None)
    contradicting = [r for r in props if conclusion is not None and r.object == conclusion.object
                     and r.negated != conclusion.negated]
    reached = set().union(*(q.closure(c) for _, c in q.facts)) if q.facts else set()
    proof_reach = q.closure(proof[0]) if proof else set()
    branch = set().union(*(q.closure(c) for _, c in q.facts if c not in on_proof)) if q.facts else set()
    rules_in_order = [r.text for r in q.rules]
    quoted = {step.split(". ", 1)[1] for step in record["steps"][:-1] if ". " in step}  # the proof's rules

    def where(rule) -> str:
        if rule.subject in reached:
            return "reachable from the facts"
        return "lone concept" if by_subject[rule.subject] == 1 else "unreached concept with other rules"

    supersets = q.supersets()
    with_property = {r.subject for r in props}

    def place(concept: str) -> str:
        if concept in branch:
            return "distractor branch"
        if proof and concept in supersets.get(proof[-1], []):
            return "above the proof's end"
        return "above a proof concept" if any(concept in supersets.get(c, []) for c in proof) else "elsewhere"

    return {
        "subsumption rules": len(subs),
        "subsumption forms": [r.form for r in subs],
        "property rules": len(props),
        "property forms": [r.form for r in props],
        "negated property rules": sum(r.negated for r in props),
        "negated rules on the proof before its conclusion": sum(r.negated for r in props
                                                                 if r.subject in on_proof and r is not conclusion),
        "conclusion negated": conclusion.negated if conclusion else None,
        "negated rules off the proof (contradicting rule aside)": sum(
            r.negated for r in props if r.subject not in on_proof and r not in contradicting),
        "property families": len({FAMILY.get(r.object, r.object) for r in props}),
        "other rules in the conclusion's family": sum(
            FAMILY.get(r.object) == FAMILY.get(conclusion.object) for r in props
            if r is not conclusion and r not in contradicting) if conclusion else None,
        "concepts mentioned": len(q.concepts()),
        "concepts with a property": len(with_property),
        "concepts without a property": ", ".join(sorted(place(c) for c in q.concepts() - with_property)),
        "entities": len({e for e, _ in q.facts} | {entity}),
        "facts": len(q.facts),
        "hops": len(proof),
        "supersets per proof concept": ",".join(str(len(supersets.get(c, []))) for c in proof),
        "concepts above the proof's end": len(q.closure(proof[-1])) - 1 if proof else None,
        "distractor branch length": len(branch),
        "distractor branch concepts with a property": sum(1 for r in props if r.subject in branch),
        "distractor branch meets the proof": bool(branch & proof_reach),
        "contradicting rules": len(contradicting),
        "contradicting rule on": where(contradicting[0]) if len(contradicting) == 1 else "-",
        "contradicting rule position (quarter of the rules)": int(
            rules_in_order.index(contradicting[0].text) * 4 // len(rules_in_order)) if len(contradicting) == 1 else None,
        "proof rules in the first half of the rules": sum(1 for text in rules_in_order[:len(rules_in_order) // 2]
                                                          if text in quoted),
        "facts after all rules": q.order[-len(q.facts):] == ["fact"] * len(q.facts) if q.facts else False,
        "first fact is the proof's start": bool(q.facts) and bool(proof) and q.facts[0][1] == proof[0],
        "steps": len(record["steps"]),
        "query negated": q.query[2],
        "answer": record["answer"],
        "query negated / answer": f"{'not' if q.query[2] else 'pos'}/{record['answer']}",
        "words per question": len(record["question"].split()),
        # the graph metadata the release's preprocessing stores beside the text, when there is some
        "idx_to_symbol size": len(record["idx_to_symbol"]) if "idx_to_symbol" in record else None,
        "edges (metadata)": len(record["edges"]) if "edges" in record else None,
        "entity": [entity],
        "concept names": sorted(q.concepts()),
        "property words": [r.object for r in props],
    }


def distributions(records: list[dict]) -> dict[str, Counter]:
    """Feature name -> Counter of its values over `records` (list features counted per element)."""
    return tally(features(record) for record in records)


def tally(feature_dicts) -> dict[str, Counter]:
    """`distributions` of already computed `features`."""
    out: dict[str, Counter] = {}
    for found in feature_dicts:
        for name, value in found.items():
            counter = out.setdefault(name, Counter())
            counter.update(value if name in LIST_FEATURES else [value])
    return out


def shares(counter: Counter) -> dict[object, float]:
    total = sum(counter.values())
    return {k: v / total for k, v in counter.items()}


def _format(name: str, counter: Counter) -> str:
    if name in NUMERIC_FEATURES:
        values = list(counter.elements())
        return f"{statistics.mean(values):.2f} ({min(values)}-{max(values)})"
    share = shares(counter)
    if len(share) > 12:  # names: how evenly they are used
        low, high = min(share.values()), max(share.values())
        return f"{len(share)} distinct, each {100 * low:.1f}-{100 * high:.1f} %"
    try:
        ordered = sorted(share.items())
    except TypeError:  # values of mixed types (a None among numbers)
        ordered = sorted(share.items(), key=lambda kv: str(kv[0]))
    return ", ".join(f"{k}: {100 * v:.0f} %" for k, v in ordered)


def rows(records: list[dict]) -> dict[str, str]:
    """Feature name -> formatted distribution, for `coconut data stats`; {} if a record does not parse."""
    try:
        found = distributions(records)
    except (ValueError, KeyError, IndexError):
        return {}
    return {name: _format(name, counter) for name, counter in found.items()
            if name not in SHOWN_ELSEWHERE and set(counter) != {None}}
