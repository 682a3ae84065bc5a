"""ProntoQA-style questions: 5-hop true/false reasoning over a fictional ontology.

Shape of the released 5-hop split (COCONUT's preprocessing of asaparov/prontoqa with distractors), as
measured on its validation records (`coconut data stats`), and reproduced here:

- the ontology: a chain of 5 concepts from the entity's concept up (the proof), topped by a concept
  without property; every chain concept also has a distractor parent (so 2 supersets each); a distractor
  branch of 2 concepts (the entity's second concept and its parent, the parent without property); a lone
  concept whose rule contradicts the conclusion ("Every lorpus is not happy." against "... are happy.");
- 11 subsumption and 12 property rules, every sentence in one of 3 forms ("Every X is ...", "Each X is
  ...", "Xs are ...": 25 / 25 / 50 %), all 23 shuffled; then the two facts about the entity (either
  order); then "True or false: <entity> is [not] <property>.", answer "True" half the time;
- 11 property families per question, one per concept with a property (the lone rule reuses the
  conclusion's word); polarities as the release's sampler leaves them (see NEGATED_*);
- 6 steps: "<entity> is a <concept>. <the question's rule>" per hop, then the conclusion.
"""

from __future__ import annotations

import random

from coconut.data.names import PRONTOQA_CONCEPTS, PRONTOQA_ENTITIES, PRONTOQA_PROPERTIES

HOPS = 5  # concepts on the proof chain


def _negated_share(weight_negated: float, weight_positive: float) -> float:
    """P(negated) after a selection that keeps a negated property with `weight_negated`, a positive one
    with `weight_positive`, from the prior below."""
    negated, positive = NEGATED_PRIOR * weight_negated, (1 - NEGATED_PRIOR) * weight_positive
    return negated / (negated + positive)


# The release draws a property from its family with weight 1 per word and 1/2 per negated word.
NEGATED_PRIOR = 0.5 / 1.5
# Its proof walks up the chain and, at each concept, goes on (weight 1) or concludes with that concept's
# property (weight 0.3 if positive, 0.7 if negated); only walks of exactly HOPS concepts are kept. The
# concepts walked past are thus less often negated, the concluding one more often (reference: 26 %, 47.5 %).
NEGATED_PASSED = _negated_share(1 / 1.7, 1 / 1.3)  # 0.277
NEGATED_CONCLUDED = _negated_share(0.7 / 1.7, 0.3 / 1.3)  # 0.472


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
    names = rng.sample(PRONTOQA_CONCEPTS, 2 * HOPS + 4)
    chain, top = names[:HOPS], names[HOPS]
    parents = names[HOPS + 1:2 * HOPS + 1]  # the distractor parent of each chain concept
    branch, branch_top, lone = names[2 * HOPS + 1:]
    entity = rng.choice(PRONTOQA_ENTITIES)

    holders = chain + parents + [branch]  # the concepts with a property, each from its own family
    negated_share = [NEGATED_PASSED] * (HOPS - 1) + [NEGATED_CONCLUDED] + [NEGATED_PRIOR] * (HOPS + 1)
    properties = [(c, rng.choice(family), rng.random() < p)
                  for c, family, p in zip(holders, rng.sample(PRONTOQA_PROPERTIES, len(holders)), negated_share)]
    _, prop, concluded_negated = properties[HOPS - 1]
    answer = rng.random() < 0.5
    query_negated = concluded_negated if answer else not concluded_negated

    pairs = list(zip(chain, chain[1:])) + list(zip(chain, parents)) + [(chain[-1], top), (branch, branch_top)]
    subsumptions = [(subsumption(rng, a, b), (a, b)) for a, b in pairs]
    property_rules = [property_rule(rng, c, word, negated) for c, word, negated in properties]
    # The lone concept states the conclusion's property with the other polarity: a rule that looks
    # relevant to the query but that no fact reaches.
    property_rules.append(property_rule(rng, lone, prop, not concluded_negated))
    sentences = [s for s, _ in subsumptions] + property_rules
    rng.shuffle(sentences)
    facts = [f"{entity} is {article(chain[0])} {chain[0]}.", f"{entity} is {article(branch)} {branch}."]
    if rng.random() < 0.5:
        facts.reverse()
    query = f"True or false: {entity} is {'not ' if query_negated else ''}{prop}."

    by_pair = {pair: s for s, pair in subsumptions}
    steps = [f"{entity} is {article(a)} {a}. {by_pair[(a, b)]}" for a, b in zip(chain, chain[1:])]
    steps.append(f"{entity} is {article(chain[-1])} {chain[-1]}. {property_rules[HOPS - 1]}")
    steps.append(f"{entity} is {'not ' if concluded_negated else ''}{prop}.")
    return {
        "question": " ".join(sentences + facts + [query]),
        "steps": steps,
        "answer": str(answer),
        **_metadata(entity, chain, subsumptions, holders + [lone], sentences),
    }


def _metadata(entity: str, chain: list[str], subsumptions: list, holders: list[str], order: list[str]) -> dict:
    """The graph fields as the release's preprocessing wrote them.

    Its node list is the entity, the chain, then (sorted) every other concept that is the subject of a
    rule or the object of a singular-form rule ("Every X is a Y."): a concept only ever named in the plural
    ("Xs are Ys.") is left out, so the two property-less concepts make 13-15 nodes and 9-11 edges (all
    200 reference records follow this). `neg_target` is 6 throughout the release (the first name after
    the chain); it names no distractor of the question.
    """
    named = set(holders) | {a for _, (a, _) in subsumptions}
    named |= {b for s, (_, b) in subsumptions if not s.endswith(f"are {plural(b)}.")}
    symbols = [entity] + chain + sorted(named - set(chain))
    index = {c: i for i, c in enumerate(symbols)}
    position = {s: k for k, s in enumerate(order)}
    kept = sorted((position[s], a, b) for s, (a, b) in subsumptions if a in index and b in index)
    return {
        "idx_to_symbol": symbols,
        "edges": [[index[a], index[b]] for _, a, b in kept],
        "root": 0,
        "target": HOPS,
        "neg_target": HOPS + 1,
        "chain_concepts": chain,
    }


def generate(n: int, seed: int, progress: bool = False) -> list[dict]:
    from tqdm.auto import tqdm

    rng = random.Random(seed)
    return [make_record(rng) for _ in tqdm(range(n), desc="prontoqa", disable=not progress, unit="q")]
