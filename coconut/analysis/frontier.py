"""The search frontier in each continuous thought of a graph question, as `coconut think` shows it.

The paper (section 5) reads COCONUT's thoughts on ProsQA as a breadth-first search: a thought holds several
candidate nodes at once, weighted by how promising they are. `coconut.analysis.search` measures this by
switching to language after k thoughts; here each thought's own LM-head reading (`coconut.analysis.thoughts`)
is split over the graph: the probability of every node at the thought's depth, the mass on that depth, and
the mass on every other depth, so a reader sees whether the thought holds its frontier or another layer.

Depth convention: thought k, counted from 1 as `coconut think` prints it, stands for reasoning step
ceil(k / c), c the thoughts per step (`method.thoughts_per_step`), because the curriculum's stage s replaces
the first s steps by s x c thoughts. Step s leads from the node s - 1 steps from the subject to the node s
steps out, so after thought k the search stands at depth ceil(k / c): with c = 1 the first thought's frontier
is the subject's children, the second's their children. That is also `search.py`'s "the frontier after k
thoughts is the nodes k steps from the subject". The subject itself (depth 0) is never a thought's frontier.

A thought's reading is the LM head at the column that computes it, the model's next token there; a model
whose thought k still names the start of step k puts its mass one depth lower, and the per-depth mass shows it.

A name's probability is the full softmax's value at the first token of the name as it reads inside a step
(after a word, as search.py reads names after "Every"): the whole name under the word tokenizer, its first
piece under a subword one, where names that share a first piece share its probability. A depth's mass counts
each distinct token once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from coconut.analysis.paths import parse_path
from coconut.analysis.search import name_tokens
from coconut.data.graph import GRAPH_FIELDS, Graph

# Printed once above the thoughts: what the frontier lines under them mean. No "thought " in it: readers of the
# text count the thought lines by that word.
LEGEND = ("frontier d=k: the nodes k steps from the subject; thoughts stand for the steps in order (c thoughts per step:",
          "  the k-th stands for step ceil(k/c)), each node with its name's probability; (path): the gold path's node;",
          "  mass: the probability on each depth's names, off: on names the subject does not reach, *: the most")


@dataclass
class Frontier:
    """One thought's reading split over the graph (see the module doc for the depth it stands for)."""

    depth: int  # the steps from the subject this thought stands for
    nodes: list[tuple[str, float]]  # every node at `depth`, with its name's probability, most likely first
    mass: dict[int, float]  # depth -> probability on the names at that depth, for every depth the subject reaches
    off: float  # probability on the graph's names the subject does not reach
    path_node: str | None = None  # the gold path's node at `depth` (None: no gold path, or it ends before)

    @property
    def frontier_mass(self) -> float:
        return self.mass.get(self.depth, 0.0)

    @property
    def heaviest(self) -> str | None:
        """Where the names' probability is largest: `d2` for a depth, `off` for the unreachable names; None when
        no name has any (a depth before `off` on a tie)."""
        held = {**{f"d{d}": m for d, m in self.mass.items()}, "off": self.off}
        best = max(held, key=lambda key: held[key])
        return best if held[best] > 0 else None

    @property
    def path_rank(self) -> int | None:
        """1 + the frontier nodes more likely than the gold path's node (None: no path node at this depth)."""
        probs = dict(self.nodes)
        if self.path_node not in probs:
            return None
        return 1 + sum(p > probs[self.path_node] for _, p in self.nodes)

    @property
    def path_top(self) -> bool | None:
        """Whether no frontier node is more likely than the gold path's (None: no path node at this depth)."""
        rank = self.path_rank
        return None if rank is None else rank == 1


def graph_of(record: dict | None) -> Graph | None:
    """The record's graph, or None for a question without one (GSM8k, free text)."""
    return Graph.from_record(record) if record and all(k in record for k in GRAPH_FIELDS) else None


def gold_path(record: dict, graph: Graph) -> list[int] | None:
    """The nodes of the record's reasoning steps, subject first; None when the steps do not chain from it."""
    if not record.get("steps"):
        return None
    edges = parse_path(" ".join(record["steps"]), graph, marker="").edges
    nodes = [graph.root] + [v for _, v in edges]
    chained = bool(edges) and edges[0][0] == graph.root and all(a[1] == b[0] for a, b in zip(edges, edges[1:]))
    return nodes if chained else None


def thought_depth(k: int, per_step: int = 1) -> int:
    """The depth thought k (1-based) stands for: its step, ceil(k / per_step)."""
    return -(-k // max(1, per_step))


def name_token_ids(tokenizer, names: list[str]) -> list[int | None]:
    """The first token of each name as it reads after a word (None for a name that encodes to nothing).

    Encoded after "Every" and cut there, as search.py reads a step's source: the in-sentence form (GPT-2's
    `Ġname`, SentencePiece's `▁name`) whatever the tokenizer does with a leading space on its own."""
    _, tokens = name_tokens(tokenizer, names, "Every")
    return [tokens[name][0] if tokens[name] else None for name in names]


def frontiers(probs: torch.Tensor, graph: Graph, token_ids: list[int | None], path: list[int] | None = None,
              per_step: int = 1) -> list[Frontier]:
    """One `Frontier` per row of `probs` (n, vocabulary), row j being thought j + 1's full softmax."""
    by_depth: dict[int, set[int]] = {}
    off: set[int] = set()
    for node, token in enumerate(token_ids):
        if token is not None:
            (by_depth.setdefault(graph.distance[node], set()) if node in graph.distance else off).add(token)
    deepest = max(graph.distance.values())
    out = []
    for j, row in enumerate(probs.float()):
        p = row.tolist()
        depth = thought_depth(j + 1, per_step)
        nodes = [(graph.names[v], p[token_ids[v]] if token_ids[v] is not None else 0.0) for v in graph.frontier(depth)]
        nodes.sort(key=lambda item: -item[1])  # stable: equal probabilities keep the graph's order
        mass = {d: sum(p[t] for t in by_depth.get(d, ())) for d in range(deepest + 1)}
        on_path = path[depth] if path and depth < len(path) and graph.distance.get(path[depth]) == depth else None
        out.append(Frontier(depth, nodes, mass, sum(p[t] for t in off),
                            None if on_path is None else graph.names[on_path]))
    return out


@torch.no_grad()
def read_frontiers(engine, tokenizer, hidden: torch.Tensor, record: dict | None, per_step: int = 1) -> list[Frontier]:
    """The frontier of each of `hidden`'s (n, d) thought states under the LM head; [] for a record without a graph."""
    graph = graph_of(record)
    if graph is None or hidden.shape[0] == 0:
        return []
    probs = engine.lm_head(hidden).float().softmax(dim=-1)
    return frontiers(probs, graph, name_token_ids(tokenizer, graph.names), gold_path(record, graph), per_step)


def frontier_lines(found: list[Frontier], indent: str = "  ") -> list[str]:
    """One line per thought, in aligned columns: the frontier's nodes, the mass per depth, the path node's rank."""
    nodes = []
    for f in found:
        cells = [f"{name} {p:.2f}" + (" (path)" if name == f.path_node else "") for name, p in f.nodes]
        nodes.append(f"frontier d={f.depth}: " + ("  ".join(cells) if cells else "(no node this far)"))
    width = max((len(n) for n in nodes), default=0)
    lines = []
    for f, head in zip(found, nodes):
        top = f.heaviest
        held = [(f"d{d}", m) for d, m in f.mass.items()] + [("off", f.off)]
        mass = " ".join(f"{key} {m:.2f}{'*' if key == top else ' '}" for key, m in held)
        rank = f.path_rank
        path = "" if rank is None else " | path node most likely" if rank == 1 else f" | path node {rank} of {len(f.nodes)}"
        lines.append(f"{indent}{head.ljust(width)} | mass {mass}{path}".rstrip())
    return lines
