"""Read a ProntoQA question back into its logic: rules, facts, query, and what they prove.

The generator, the statistics and the tests all need to know what a question says without trusting the
metadata stored beside it, so this works on the text alone. Sentence forms of the release:

- subsumption: "Every wumpus is an impus." / "Each wumpus is an impus." / "Wumpuses are impuses.";
- property: "Every wumpus is [not] sour." / "Each wumpus is [not] sour." / "Wumpuses are [not] sour.";
- fact: "Stella is a wumpus."; query: "True or false: Stella is [not] sour."
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

QUERY_MARK = "True or false: "
_SINGULAR = re.compile(r"^(Every|Each) (\w+) is (not )?(an? )?(\w+)$")
_PLURAL = re.compile(r"^(\w+) are (not )?(\w+)$")
_FACT = re.compile(r"^([A-Z]\w*) is (not )?(an? )?(\w+)$")


def singular(plural_noun: str) -> str:
    """The release's concept names all end in "us" and take "es" in the plural ("wumpuses")."""
    return plural_noun[:-2] if plural_noun.endswith("es") else plural_noun


@dataclass(frozen=True)
class Rule:
    subject: str  # a concept, singular
    object: str  # a concept (singular) or a property word
    negated: bool
    is_subsumption: bool  # object is a concept
    form: str  # "every", "each" or "plural"
    text: str  # the sentence as written, with its full stop


@dataclass
class Question:
    rules: list[Rule]
    facts: list[tuple[str, str]]  # (entity, concept), in order
    query: tuple[str, str, bool]  # (entity, property, negated)
    order: list[str] = field(default_factory=list)  # "rule" / "fact" per sentence, in order

    @property
    def entity(self) -> str:
        return self.query[0]

    def supersets(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.rules:
            if r.is_subsumption:
                out.setdefault(r.subject, []).append(r.object)
        return out

    def concepts(self) -> set[str]:
        names = {c for _, c in self.facts}
        for r in self.rules:
            names.add(r.subject)
            if r.is_subsumption:
                names.add(r.object)
        return names

    def closure(self, start: str) -> set[str]:
        """`start` and every concept it is a subset of."""
        up, seen, todo = self.supersets(), {start}, [start]
        while todo:
            for b in up.get(todo.pop(), []):
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        return seen

    def proved(self) -> dict[str, set[bool]]:
        """Property -> the polarities (True = negated) the facts and rules prove of the entity."""
        member = set().union(*(self.closure(c) for _, c in self.facts)) if self.facts else set()
        out: dict[str, set[bool]] = {}
        for r in self.rules:
            if not r.is_subsumption and r.subject in member:
                out.setdefault(r.object, set()).add(r.negated)
        return out


def parse_rule(sentence: str) -> Rule:
    body = sentence.strip().rstrip(".")
    m = _SINGULAR.match(body)
    if m:
        quantifier, subject, negated, art, obj = m.groups()
        if art and negated:
            raise ValueError(f"not a ProntoQA rule: {sentence!r}")
        return Rule(subject, obj, bool(negated), bool(art), quantifier.lower(), sentence.strip())
    m = _PLURAL.match(body)
    if m and m[1][0].isupper():
        subject, negated, obj = m.groups()
        # Properties are adjectives and never take the plural; only a concept object ends in "es".
        is_concept = obj.endswith("es") and not negated
        return Rule(singular(subject.lower()), singular(obj) if is_concept else obj, bool(negated), is_concept,
                    "plural", sentence.strip())
    raise ValueError(f"not a ProntoQA rule: {sentence!r}")


def parse_question(text: str) -> Question:
    if QUERY_MARK not in text:
        raise ValueError("not a ProntoQA question: no 'True or false:' query")
    body, query_text = text.rsplit(QUERY_MARK, 1)
    m = _FACT.match(query_text.strip().rstrip("."))
    if not m or m[3]:
        raise ValueError(f"not a ProntoQA query: {query_text!r}")
    query = (m[1], m[4], bool(m[2]))
    rules, facts, order = [], [], []
    for sentence in re.findall(r"[^.]+\.", body):
        sentence = sentence.strip()
        fact = _FACT.match(sentence.rstrip("."))
        if fact and fact[3] and not fact[2]:
            facts.append((fact[1], fact[4]))
            order.append("fact")
        else:
            rules.append(parse_rule(sentence))
            order.append("rule")
    return Question(rules, facts, query, order)


def chain_problems(record: dict) -> list[str]:
    """Why the record's steps are not a proof from its question, and its answer not what the rules give.

    Each step but the last is "<entity> is a <concept>. <rule of the question about that concept>"; the
    first concept is a fact, each next one the object of the previous rule; the last step is the last rule
    applied to the entity. The answer is "True" exactly when the query is what the rules prove.
    """
    q = parse_question(record["question"])
    entity, problems = q.entity, []
    sentences = {r.text: r for r in q.rules}
    here = None
    for k, step in enumerate(record["steps"][:-1]):
        parts = step.split(". ", 1)
        m = _FACT.match(parts[0].rstrip("."))
        if len(parts) != 2 or not m or m[1] != entity or m[2] or not m[3]:
            problems.append(f"step {k}: expected '<entity> is a <concept>. <rule>', got {step!r}")
            return problems
        concept, rule = m[4], sentences.get(parts[1])
        if k == 0 and (entity, concept) not in q.facts:
            problems.append(f"step 0: {concept!r} is not a fact about {entity}")
        if k > 0 and concept != here:
            problems.append(f"step {k}: {concept!r} does not follow from the previous rule ({here!r})")
        if rule is None or rule.subject != concept:
            problems.append(f"step {k}: {parts[1]!r} is not a rule of the question about {concept!r}")
            return problems
        here = rule.object
    last_rule = sentences[record["steps"][-2].split(". ", 1)[1]] if len(record["steps"]) > 1 else None
    conclusion = _FACT.match(record["steps"][-1].rstrip("."))
    if last_rule is None or last_rule.is_subsumption or not conclusion or conclusion[3] \
            or (conclusion[4], bool(conclusion[2])) != (last_rule.object, last_rule.negated):
        problems.append(f"the last step {record['steps'][-1]!r} is not the last rule applied to {entity}")
    proved = q.proved().get(q.query[1], set())
    if len(proved) != 1:
        problems.append(f"the rules prove {sorted(proved)} (negated?) for {q.query[1]!r}, not exactly one polarity")
    elif record["answer"] != str(q.query[2] in proved):
        problems.append(f"answer {record['answer']!r}, but the rules prove the query is {q.query[2] in proved}")
    return problems
