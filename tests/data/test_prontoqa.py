"""The ProntoQA generator: the release's shape, proofs that check out, and its statistics beside the real data."""

import math
import re
import statistics
from collections import Counter

import pytest

from coconut.data import prontoqa
from coconut.data.prontoqa_stats import NUMERIC_FEATURES, distributions, features, shares, tally
from coconut.data.prontoqa_text import chain_problems, parse_question
from coconut.data.records import check_record, load_records
from coconut.data.stats import compute_stats, format_stats
from tests.shared_data import shared_file

N = 2000


@pytest.fixture(scope="module")
def records():
    return prontoqa.generate(N, seed=0)


@pytest.fixture(scope="module")
def feats(records):
    return [features(r) for r in records]


@pytest.fixture(scope="module")
def reference():
    return load_records(shared_file("prontoqa_valid.json"))


def test_deterministic_by_seed():
    assert prontoqa.generate(5, seed=3) == prontoqa.generate(5, seed=3)
    assert prontoqa.generate(5, seed=3) != prontoqa.generate(5, seed=4)


def test_shape_of_every_record(records, feats):
    # The measured shape of the release (shared/data/README.md and `coconut data stats`): fixed counts ...
    fixed = {"subsumption rules": 11, "property rules": 12, "concepts mentioned": 14, "concepts with a property": 12,
             "property families": 11, "entities": 1, "facts": 2, "hops": 5, "steps": 6, "contradicting rules": 1,
             "contradicting rule on": "lone concept", "supersets per proof concept": "2,2,2,2,2",
             "distractor branch length": 2, "distractor branch meets the proof": False, "facts after all rules": True,
             "concepts without a property": "above the proof's end, distractor branch"}
    sizes = Counter()
    for i, r in enumerate(records):
        check_record(r, "generated", i)
        assert {k: feats[i][k] for k in fixed} == fixed, i
        assert len(re.findall(r"[^.:]+[.:]", r["question"])) == 23 + 2 + 2  # rules, facts, "True or false:", query
        assert all(s.count(".") == 2 for s in r["steps"][:-1]) and r["steps"][-1].count(".") == 1
        # ... and the metadata's size, which varies with the sentence forms: 13-15 nodes, 9-11 edges
        assert len(r["edges"]) == len(r["idx_to_symbol"]) - 4
        sizes[len(r["idx_to_symbol"])] += 1
    assert abs(statistics.mean(f["words per question"] for f in feats) - 104.8) < 1.5  # the reference's mean
    assert set(sizes) == {13, 14, 15}
    # binomial(2, 1/2): 25 / 50 / 25 %; 4 standard deviations of a share over N records is at most 0.045
    assert all(abs(sizes[k] / N - p) < 0.045 for k, p in {13: 0.25, 14: 0.5, 15: 0.25}.items()), sizes


def test_answers_balanced_and_query_polarity_independent(feats):
    f = feats
    true = sum(x["answer"] == "True" for x in f) / N
    assert abs(true - 0.5) < 0.045
    for negated in (False, True):
        subset = [x["answer"] == "True" for x in f if x["query negated"] == negated]
        assert abs(statistics.mean(subset) - 0.5) < 0.065  # 4 sd of ~N/2 questions


def test_polarities_follow_the_release_sampler(feats):
    f = feats
    passed = statistics.mean(x["negated rules on the proof before its conclusion"] for x in f) / 4
    concluded = statistics.mean(x["conclusion negated"] for x in f)
    off = statistics.mean(x["negated rules off the proof (contradicting rule aside)"] for x in f) / 6
    # the derived shares, then what the 200 reference records show (26.2 %, 47.5 %, 33.5 %)
    assert abs(prontoqa.NEGATED_PASSED - 0.2766) < 1e-3 and abs(prontoqa.NEGATED_CONCLUDED - 0.4715) < 1e-3
    assert abs(passed - prontoqa.NEGATED_PASSED) < 0.025  # 4 sd over 4 N rules
    assert abs(concluded - prontoqa.NEGATED_CONCLUDED) < 0.045
    assert abs(off - 1 / 3) < 0.025


def test_steps_are_a_proof_from_the_question(records):
    for i, r in enumerate(records):
        assert chain_problems(r) == [], i
        q = parse_question(r["question"])
        chain = [s.split(". ")[0].rsplit(" ", 1)[1] for s in r["steps"][:-1]]
        assert r["chain_concepts"] == chain and r["idx_to_symbol"][:6] == [q.entity] + chain
        # the other names sorted, edges exactly the subsumption rules between listed names
        assert r["idx_to_symbol"][6:] == sorted(r["idx_to_symbol"][6:])
        names = r["idx_to_symbol"]
        rules = {(x.subject, x.object) for x in q.rules if x.is_subsumption}
        assert {(names[a], names[b]) for a, b in r["edges"]} == {(a, b) for a, b in rules if a in names and b in names}
        assert (r["root"], r["target"], r["neg_target"]) == (0, 5, 6)


def test_chain_check_catches_broken_records(records):
    r = records[0]
    flipped = dict(r, answer="False" if r["answer"] == "True" else "True")
    assert any("answer" in p for p in chain_problems(flipped))
    skipped = dict(r, steps=[r["steps"][0]] + r["steps"][2:])
    assert any("does not follow" in p for p in chain_problems(skipped))
    made_up = dict(r, steps=[r["steps"][0].split(". ")[0] + ". Every wumpus is a zumpus."] + r["steps"][1:])
    assert chain_problems(made_up)


def mismatches(a: dict, b: dict, z: float = 4.5) -> list[str]:
    """Features whose distributions (`distributions` / `tally`) differ by more than sampling noise explains.

    For every value either side takes, the two shares must agree within z standard errors of a difference
    of proportions, sqrt(p (1 - p) (1/n1 + 1/n2)) at the pooled share p (n: questions, or rules and names
    for the per-rule features). With 200 reference questions and 2000 generated that is at most 0.17 for a
    share near 50 %, 0.10 near 10 %, and near 0 for a value one side never takes but the other often does:
    so the value sets must match but for rare values. About 130 values are compared; Bonferroni at 1 %
    would give z = 4, and 4.5 leaves room for the reference's own outliers ("metallic" is 3.3 standard
    errors above its expected share within the 200 records). The wrong samplers tested below miss by 7+.
    """
    problems = []
    assert set(a) == set(b)
    for name in a:
        if name in NUMERIC_FEATURES:
            x, y = list(a[name].elements()), list(b[name].elements())
            se = math.sqrt(statistics.variance(x) / len(x) + statistics.variance(y) / len(y))
            if abs(statistics.mean(x) - statistics.mean(y)) > z * se:
                problems.append(f"{name}: mean {statistics.mean(x):.1f} vs {statistics.mean(y):.1f}")
            continue
        n1, n2 = sum(a[name].values()), sum(b[name].values())  # questions, or rules/names for LIST_FEATURES
        p1, p2 = shares(a[name]), shares(b[name])
        for value in set(p1) | set(p2):
            s1, s2 = p1.get(value, 0.0), p2.get(value, 0.0)
            pooled = (s1 * n1 + s2 * n2) / (n1 + n2)
            if abs(s1 - s2) > z * math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)):
                problems.append(f"{name} = {value!r}: {100 * s1:.1f} % vs {100 * s2:.1f} %")
    return problems


def test_distributions_match_the_reference(records, feats, reference):
    assert all(chain_problems(r) == [] for r in reference)  # the checker accepts the real data
    assert mismatches(tally(feats), distributions(reference)) == []
    ours, theirs = compute_stats(records[:300]), compute_stats(reference)
    assert set(ours) == set(theirs)
    for key in ("subsumption rules", "property rules", "hops", "concepts mentioned", "distractor branch length"):
        assert ours[key] == theirs[key], key
    assert "| supersets per proof concept |" in format_stats(records[:10], "ours", reference, "release")


def test_comparison_catches_a_generator_that_differs(records, reference):
    def proof_fact_first(r):  # what the generator did before: the proof's fact always first
        q = parse_question(r["question"])
        head, tail = r["question"].rsplit(" True or false: ", 1)
        facts = [f"{e} is {prontoqa.article(c)} {c}." for e, c in q.facts]
        start = r["chain_concepts"][0]
        ordered = sorted(facts, key=lambda s: not s.endswith(f" {start}."))
        body = head[: -len(" ".join(facts))] + " ".join(ordered)
        return dict(r, question=f"{body} True or false: {tail}")

    found = mismatches(distributions([proof_fact_first(r) for r in records[:500]]), distributions(reference))
    assert found and all(p.startswith("first fact is the proof's start") for p in found), found
    fixed = [dict(r, edges=r["edges"][:9], idx_to_symbol=r["idx_to_symbol"][:13]) for r in records[:100]]
    assert compute_stats(fixed)["idx_to_symbol size"] == "13: 100 %"
    found = Counter(p.split(" = ")[0] for p in mismatches(distributions(fixed), distributions(reference)))
    assert found == {"idx_to_symbol size": 3, "edges (metadata)": 3}


def test_comparison_catches_a_wrong_polarity_sampler(monkeypatch, reference):
    # fair coins for every property instead of the release's selection-skewed shares
    for name in ("NEGATED_PASSED", "NEGATED_CONCLUDED", "NEGATED_PRIOR"):
        monkeypatch.setattr(prontoqa, name, 0.5)
    found = {p.split(" = ")[0].split(":")[0] for p in mismatches(distributions(prontoqa.generate(1000, seed=0)),
                                                                  distributions(reference))}
    # the polarities, and the length the extra "not"s add
    assert found == {"negated property rules", "negated rules on the proof before its conclusion",
                     "negated rules off the proof (contradicting rule aside)", "words per question"}, found
