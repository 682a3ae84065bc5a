"""The graph behind a ProsQA question, from the record's metadata (`idx_to_symbol`, `edges`, `root`, `target`)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import cached_property

GRAPH_FIELDS = ("idx_to_symbol", "edges", "root", "target")


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
        out = [[] for _ in self.names]
        for u, v in self.edges:
            out[u].append(v)
        return out

    @cached_property
    def edge_set(self) -> set[tuple[int, int]]:
        return set(self.edges)

    @cached_property
    def distance(self) -> dict[int, int]:
        """Breadth-first distance from the root to every node it reaches."""
        dist, queue = {self.root: 0}, deque([self.root])
        while queue:
            u = queue.popleft()
            for v in self.children[u]:
                if v not in dist:
                    dist[v] = dist[u] + 1
                    queue.append(v)
        return dist

    @cached_property
    def height(self) -> list[int]:
        """Longest path from each node down to a leaf (a leaf has height 0)."""
        memo: dict[int, int] = {}

        def h(u: int) -> int:
            if u not in memo:
                memo[u] = 1 + max((h(v) for v in self.children[u]), default=-1)
            return memo[u]

        return [h(u) for u in range(len(self.names))]

    def frontier(self, k: int) -> list[int]:
        """The nodes k steps from the root: where a search could stand after k steps."""
        return sorted(v for v, d in self.distance.items() if d == k)

    def on_shortest_path(self, node: int) -> bool:
        """Whether some shortest path root -> target passes through `node`."""
        if node not in self.distance or self.target not in self.distance:
            return False
        rest = Graph(self.names, self.edges, node, self.target).distance.get(self.target)
        return rest is not None and self.distance[node] + rest == self.distance[self.target]
