"""Graphs of ProsQA questions: breadth-first search, shortest paths, and the `Graph` of a record's metadata.

The generator (`coconut.data.prosqa`), the statistics (`coconut.data.stats`) and the latent-search
analysis all walk graphs through this module.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import cached_property

GRAPH_FIELDS = ("idx_to_symbol", "edges", "root", "target")


def children_lists(edges, n: int) -> list[list[int]]:
    """Each node's children, in edge order."""
    out = [[] for _ in range(n)]
    for u, v in edges:
        out[u].append(v)
    return out


def distances(children: list[list[int]], source: int) -> dict[int, int]:
    """Breadth-first distance from `source` to every node it reaches."""
    dist = {source: 0}
    queue = deque([source])
    while queue:
        u = queue.popleft()
        for w in children[u]:
            if w not in dist:
                dist[w] = dist[u] + 1
                queue.append(w)
    return dist


def count_shortest_paths(children: list[list[int]], source: int, target: int) -> int:
    """How many shortest paths lead from `source` to `target` (0 when none)."""
    dist, ways = {source: 0}, {source: 1}
    queue = deque([source])
    while queue:
        u = queue.popleft()
        for w in children[u]:
            if w not in dist:
                dist[w], ways[w] = dist[u] + 1, ways[u]
                queue.append(w)
            elif dist[w] == dist[u] + 1:
                ways[w] += ways[u]
    return ways.get(target, 0)


def random_shortest_path(children: list[list[int]], source: int, target: int, rng) -> list[int] | None:
    """One shortest path source -> target (chosen at random among the shortest), or None."""
    dist = distances(children, source)
    if target not in dist:
        return None
    path = [target]
    parents_of = {}
    for u, kids in enumerate(children):
        for w in kids:
            parents_of.setdefault(w, []).append(u)
    while path[-1] != source:  # walk back through parents one step closer to the source
        here = path[-1]
        back = [u for u in parents_of[here] if dist.get(u) == dist[here] - 1]
        path.append(rng.choice(back))
    return path[::-1]


def longest_paths(next_nodes: list[list[int]]) -> list[int]:
    """Per node, the most edges a path can follow from it through `next_nodes` (0 where it has none)."""
    memo: dict[int, int] = {}

    def longest(u: int) -> int:
        if u not in memo:
            memo[u] = 1 + max((longest(v) for v in next_nodes[u]), default=-1)
        return memo[u]

    return [longest(u) for u in range(len(next_nodes))]


@dataclass
class Graph:
    names: list[str]  # node id -> concept or person name
    edges: list[tuple[int, int]]  # (parent, child): "every parent is a child"
    root: int  # the question's subject
    target: int  # the correct answer
    neg_target: int | None = None  # the distractor offered beside it
    index: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.edges = [tuple(e) for e in self.edges]
        self.index = {name: i for i, name in enumerate(self.names)}

    @classmethod
    def from_record(cls, record: dict, where: str = "record") -> "Graph":
        missing = [f for f in GRAPH_FIELDS if f not in record]
        if missing:
            raise ValueError(f"{where}: no field {missing[0]!r}; the latent-search analysis needs ProsQA graph "
                             f"metadata ({', '.join(GRAPH_FIELDS)}), as `coconut data prosqa` writes it")
        return cls(list(record["idx_to_symbol"]), record["edges"], int(record["root"]), int(record["target"]),
                   record.get("neg_target"))

    @cached_property
    def children(self) -> list[list[int]]:
        return children_lists(self.edges, len(self.names))

    @cached_property
    def edge_set(self) -> set[tuple[int, int]]:
        return set(self.edges)

    @cached_property
    def distance(self) -> dict[int, int]:
        """Breadth-first distance from the root to every node it reaches."""
        return distances(self.children, self.root)

    @cached_property
    def height(self) -> list[int]:
        """Longest path from each node down to a leaf (a leaf has height 0)."""
        return longest_paths(self.children)

    @cached_property
    def parents(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.names]
        for u, v in self.edges:
            out[v].append(u)
        return out

    @cached_property
    def depth(self) -> list[int]:
        """Longest path down to each node from a node without parents (a person has depth 0)."""
        return longest_paths(self.parents)

    def frontier(self, k: int) -> list[int]:
        """The nodes k steps from the root: where a search could stand after k steps."""
        return sorted(v for v, d in self.distance.items() if d == k)

    def on_shortest_path(self, node: int) -> bool:
        """Whether some shortest path root -> target passes through `node`."""
        if node not in self.distance or self.target not in self.distance:
            return False
        rest = Graph(self.names, self.edges, node, self.target).distance.get(self.target)
        return rest is not None and self.distance[node] + rest == self.distance[self.target]
