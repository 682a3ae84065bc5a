"""ProntoQA-style questions: 5-hop true/false reasoning over a fictional ontology.

Shape of the released 5-hop split (COCONUT's preprocessed version): 11 subsumption rules (a
5-concept chain from the entity's first concept, one or two distractor children per chain
concept, and a distractor branch from the entity's second concept), 12 property rules (one of
them on a lone concept, contradicting the answer's property), the two facts about the entity,
then "True or false: <entity> is [not] <property>.". The steps walk the chain, two sentences
each, and end with the conclusion.
"""

from __future__ import annotations

import random

from coconut.data.names import PRONTOQA_CONCEPTS, PRONTOQA_ENTITIES, PRONTOQA_PROPERTIES

HOPS = 5  # concepts on the chain


def plural(noun: str) -> str:
    return noun + "es" if noun.endswith("s") else noun + "s"


def article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


def rule(rng: random.Random, subject: str, singular: str, plural_form: str) -> str:
    """`subject` is `singular` in one of the three forms of the released data (25 / 25 / 50 %)."""
    form = rng.random()
    if form < 0.25:
        return f"Every {subject} is {singular}."
    if form < 0.5:
        return f"Each {subject} is {singular}."
    return f"{plural(subject).capitalize()} are {plural_form}."


def subsumption(rng: random.Random, a: str, b: str) -> str:
    return rule(rng, a, f"{article(b)} {b}", plural(b))


def property_rule(rng: random.Random, a: str, prop: str, negated: bool) -> str:
    value = ("not " if negated else "") + prop
    return rule(rng, a, value, value)


def make_record(rng: random.Random) -> dict:
    concepts = rng.sample(PRONTOQA_CONCEPTS, len(PRONTOQA_CONCEPTS))
    chain, rest = concepts[:HOPS], concepts[HOPS:]
    children = rest[:HOPS + 1]  # one distractor child per chain concept, two for the last
    branch_root, branch_child, lone = rest[HOPS + 1], rest[HOPS + 2], rest[HOPS + 3]
    entity = rng.choice(PRONTOQA_ENTITIES)

    families = rng.sample(PRONTOQA_PROPERTIES, 12)
    answer_family = families[0]
    prop = rng.choice(answer_family)
    chain_negated = rng.random() < 0.5  # "Brimpuses are [not] happy."
    query_negated = rng.random() < 0.5  # "True or false: Alex is [not] happy."
    answer = "True" if chain_negated == query_negated else "False"

    chain_rules = [subsumption(rng, a, b) for a, b in zip(chain, chain[1:])]
    answer_rule = property_rule(rng, chain[-1], prop, chain_negated)
    subsumptions = chain_rules + [subsumption(rng, a, c) for a, c in zip(chain + [chain[-1]], children)]
    subsumptions.append(subsumption(rng, branch_root, branch_child))
    # The lone concept's rule contradicts the answer's property; the others are noise.
    properties = [answer_rule, property_rule(rng, lone, prop, not chain_negated)]
    holders = chain[:-1] + rng.sample(children, HOPS) + [branch_root]
    for holder, family in zip(holders, families[1:]):
        properties.append(property_rule(rng, holder, rng.choice(family), rng.random() < 0.3))
    rules = subsumptions + properties
    rng.shuffle(rules)
    facts = [f"{entity} is {article(chain[0])} {chain[0]}.", f"{entity} is {article(branch_root)} {branch_root}."]
    query = f"True or false: {entity} is {'not ' if query_negated else ''}{prop}."

    steps = [f"{entity} is {article(a)} {a}. {rule}" for a, rule in zip(chain, chain_rules + [answer_rule])]
    steps.append(f"{entity} is {'not ' if chain_negated else ''}{prop}.")
    # Metadata as in the released split: the entity, then the concepts of the subsumption rules.
    symbols = [entity] + chain + children + [branch_root, branch_child]
    index = {name: i for i, name in enumerate(symbols)}
    edges = [[index[a], index[b]] for a, b in zip(chain, chain[1:])]
    edges += [[index[a], index[c]] for a, c in zip(chain + [chain[-1]], children)]
    edges.append([index[branch_root], index[branch_child]])
    return {
        "question": " ".join(rules + facts + [query]),
        "steps": steps,
        "answer": answer,
        "idx_to_symbol": symbols,
        "edges": edges,
        "root": 0,
        "target": index[chain[-1]],
        "neg_target": index[children[-1]],  # a leaf off the chain's end that does not decide the answer
        "chain_concepts": chain,
    }


def generate(n: int, seed: int, progress: bool = False) -> list[dict]:
    from tqdm.auto import tqdm

    rng = random.Random(seed)
    return [make_record(rng) for _ in tqdm(range(n), desc="prontoqa", disable=not progress, unit="q")]
