"""ProsQA-style questions: reasoning over a random DAG of made-up concepts (paper, appendix A.2).

Construction, as measured on the released data (see the module's tests):
- nodes 0 and 1 are seed people; each node carries a bitmask: bit 1 = descends from node 0,
  bit 2 = descends from node 1;
- each later node is, rarely, a new person (no parents), otherwise draws k ~ Poisson(1.5) >= 1
  parents: with probability 0.35 among nodes not descending from node 1, with 0.35 among nodes not
  descending from node 0, else among all, without replacement, weighted by 1.5 * depth + 1;
- the subject is one seed; the target is the deepest leaf reachable only from it, the distractor a
  leaf reachable only from the other seed; the steps are one shortest path subject -> target.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from coconut.data.graph import distances, random_shortest_path
from coconut.data.names import PROSQA_CONCEPTS, PROSQA_PEOPLE


RENDERS = ("words", "compact", "phrase")
DISTRACTORS = ("any", "matched")


@dataclass
class ProsQAConfig:
    """Graph sizes and rendering. The defaults match the released ProsQA statistics."""

    node_mean: float = 22.8
    node_sd: float = 3.6
    min_nodes: int = 14
    max_nodes: int = 28
    min_steps: int = 3
    max_steps: int = 6
    parent_rate: float = 1.45  # Poisson mean of the number of parents (drawn >= 1)
    person_prob: float = 0.05  # chance that a later node is a new person without parents
    side_prob: float = 0.35  # chance of drawing parents only among one seed's non-descendants (each side)
    # Chance of keeping a graph by its answer length: the construction alone gives too many 3-step
    # answers (about 51 % against the released 41 %); this thinning matches the released mix.
    step_accept: dict[int, float] | None = field(default_factory=lambda: {3: 0.55, 4: 1.0, 5: 0.9, 6: 0.8})
    # "words" (the released format), "compact" (one token per name and symbol) or "phrase" (a compact question,
    # steps as short sentences, `every c1 is a c7 .`, so that a continuous thought replaces a whole phrase).
    render: str = "words"
    # "any": the distractor is any leaf of the other person (the default); "matched": a leaf as deep below a
    # person as the answer and with as many parents, so that no one-glance rule (coconut/data/option_rules.py)
    # tells the two options apart and only following the edges does.
    distractor: str = "any"
    people: tuple[str, ...] = PROSQA_PEOPLE
    concepts: tuple[str, ...] = PROSQA_CONCEPTS

    def __post_init__(self):
        if self.render not in RENDERS:
            raise ValueError(f"render must be one of {', '.join(RENDERS)}, got {self.render!r}")
        if self.distractor not in DISTRACTORS:
            raise ValueError(f"distractor must be one of {', '.join(DISTRACTORS)}, got {self.distractor!r}")
        if not 2 <= self.min_nodes <= self.max_nodes:
            raise ValueError(f"need 2 <= min_nodes <= max_nodes, got {self.min_nodes}, {self.max_nodes}")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"need 1 <= min_steps <= max_steps, got {self.min_steps}, {self.max_steps}")
        if self.max_nodes - 2 > len(self.concepts) or len(self.people) < 2:
            raise ValueError("not enough names for graphs of max_nodes nodes")


MINI = dict(  # small graphs that a tiny model learns on 2 CPU cores (make demo)
    node_mean=7.0, node_sd=1.0, min_nodes=5, max_nodes=9, min_steps=2, max_steps=3, person_prob=0.0, step_accept=None,
    render="compact",
    people=tuple(f"p{i}" for i in range(8)), concepts=tuple(f"c{i}" for i in range(24)),
)


def _zero_truncated_poisson(rng: random.Random, rate: float) -> int:
    # Inverse-CDF draw of Poisson(rate) conditioned on >= 1.
    u = rng.random() * (1 - math.exp(-rate)) + math.exp(-rate)
    k, p = 0, math.exp(-rate)
    cumulative = p
    while cumulative < u:
        k += 1
        p *= rate / k
        cumulative += p
    return max(k, 1)


def build_graph(rng: random.Random, cfg: ProsQAConfig, n_nodes: int):
    """(parents per node, seed bitmask per node, depth per node); node ids in creation order."""
    parents: list[list[int]] = [[], []]
    mask, depth = [1, 2], [0, 0]
    for v in range(2, n_nodes):
        if rng.random() < cfg.person_prob:
            parents.append([]); mask.append(0); depth.append(0)
            continue
        r = rng.random()
        if r < cfg.side_prob:
            pool = [u for u in range(v) if not mask[u] & 2]
        elif r < 2 * cfg.side_prob:
            pool = [u for u in range(v) if not mask[u] & 1]
        else:
            pool = list(range(v))
        k = min(_zero_truncated_poisson(rng, cfg.parent_rate), len(pool))
        weights = [1.5 * depth[u] + 1 for u in pool]
        chosen = []
        for _ in range(k):  # weighted draws without replacement
            u = rng.choices(range(len(pool)), weights)[0]
            chosen.append(pool.pop(u)); weights.pop(u)
        parents.append(sorted(chosen))
        mask.append(0 if not chosen else _or(mask[u] for u in chosen))
        depth.append(1 + max(depth[u] for u in chosen))
    return parents, mask, depth


def _or(values) -> int:
    out = 0
    for v in values:
        out |= v
    return out


def make_record(rng: random.Random, cfg: ProsQAConfig, max_tries: int = 1000) -> dict:
    """One ProsQA record; graphs whose answer path is too short or too long are drawn again."""
    for _ in range(max_tries):
        n = min(cfg.max_nodes, max(cfg.min_nodes, round(rng.gauss(cfg.node_mean, cfg.node_sd))))
        parents, mask, depth = build_graph(rng, cfg, n)
        children = [[] for _ in range(n)]
        for v, ps in enumerate(parents):
            for u in ps:
                children[u].append(v)
        keep = [v for v in range(n) if parents[v] or children[v]]  # no isolated nodes
        if len(keep) < n:
            continue
        root = rng.randrange(2)
        own, other = 1 << root, 1 << (1 - root)
        leaves = [v for v in range(2, n) if not children[v] and parents[v]]
        mine = [v for v in leaves if mask[v] == own]
        theirs = [v for v in leaves if mask[v] == other]
        if not mine or not theirs:
            continue
        # "Deepest" is the longest shortest path from the subject (the released steps say so).
        dist = distances(children, root)
        farthest = max(dist[v] for v in mine)
        target = rng.choice([v for v in mine if dist[v] == farthest])
        path = random_shortest_path(children, root, target, rng)
        steps = -1 if path is None else len(path) - 1
        if not cfg.min_steps <= steps <= cfg.max_steps:
            continue
        if cfg.step_accept is not None and rng.random() >= cfg.step_accept.get(steps, 1.0):
            continue
        if cfg.distractor == "matched":
            theirs = [v for v in theirs if depth[v] == depth[target] and len(parents[v]) == len(parents[target])]
            if not theirs:
                continue
        return render(rng, cfg, parents, root, target, rng.choice(theirs), path)
    raise RuntimeError(f"no graph with a {cfg.min_steps}-{cfg.max_steps} step answer in {max_tries} draws; loosen the config")


def render(rng, cfg: ProsQAConfig, parents, root, target, neg_target, path) -> dict:
    n = len(parents)
    people = [v for v in range(n) if not parents[v]]
    person_names = rng.sample(cfg.people, len(people))
    concept_names = rng.sample(cfg.concepts, n - len(people))
    names, pi, ci = [], iter(person_names), iter(concept_names)
    for v in range(n):
        names.append(next(pi) if not parents[v] else next(ci))
    edges = [[u, v] for v in range(n) for u in parents[v]]
    edges.sort(key=lambda e: (e[1], e[0]))

    def sentence(u, v):  # one edge as the question states it
        return _edge_words(names, parents, u, v) if cfg.render == "words" else f"{names[u]} {names[v]} ;"

    def step(u, v):  # one edge as a reasoning step
        return _edge_phrase(names, parents, u, v) if cfg.render == "phrase" else sentence(u, v)

    shuffled = edges[:]
    rng.shuffle(shuffled)
    options = [names[target], names[neg_target]]
    rng.shuffle(options)
    if cfg.render == "words":
        question = " ".join(sentence(u, v) for u, v in shuffled) + f" Is {names[root]} a {options[0]} or {options[1]}?"
        answer = f"{names[root]} is a {names[target]}."
    else:
        question = " ".join(sentence(u, v) for u, v in shuffled) + f" ? {names[root]} : {options[0]} | {options[1]}"
        answer = names[target]
    return {
        "question": question,
        "steps": [step(u, v) for u, v in zip(path, path[1:])],
        "answer": answer,
        "idx_to_symbol": names,
        "edges": edges,
        "root": root,
        "target": target,
        "neg_target": neg_target,
    }


def _edge_phrase(names, parents, u, v) -> str:
    # The released sentence in lower case with the period apart: five or six word-level tokens.
    return f"{names[u]} is a {names[v]} ." if not parents[u] else f"every {names[u]} is a {names[v]} ."


def _edge_words(names, parents, u, v) -> str:
    return f"{names[u]} is a {names[v]}." if not parents[u] else f"Every {names[u]} is a {names[v]}."


def generate(n: int, seed: int, cfg: ProsQAConfig | None = None, progress: bool = False) -> list[dict]:
    """`n` records, the same for the same seed and config."""
    from tqdm.auto import tqdm

    cfg = cfg or ProsQAConfig()
    rng = random.Random(seed)
    return [make_record(rng, cfg) for _ in tqdm(range(n), desc="prosqa", disable=not progress, unit="q")]
