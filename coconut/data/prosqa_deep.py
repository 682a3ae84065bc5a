"""ProsQA-style questions whose answer needs a search deeper than a tiny model can follow in one pass.

ProsQA's claim (the paper, section 5) is about planning: the subject reaches the answer only through several
edges, and branches that lead elsewhere make the first steps a choice that needs look-ahead. On the small
`prosqa-mini` graphs (2-3 steps) a 2-layer model can tell the reachable option in a single forward pass, so no
chain of thought is needed. Here every question is built to need the search:

- two trees of the same shape, one from the subject and one from the other person; each has a path of `depth`
  edges from its root to a leaf, the subject's ending at the answer, the other's at the distractor, so the two
  offered names are alike (both leaves, both `depth` edges below a person) and only following the edges tells
  them apart (each layer of a transformer follows about one edge: Zhu et al. 2025, "Reasoning by Superposition");
- at every node of each path but the last, a side branch of up to `side_length` edges that ends nowhere, so a
  chain written in language must choose its branch before it can see where the branch leads;
- the edges are stated in random order and the names drawn at random, as in ProsQA.

Records have the fields of `coconut.data.prosqa` (question, steps, answer and the graph's metadata), rendered
the same ways; the steps are the subject's path.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from coconut.data.prosqa import ProsQAConfig, render


@dataclass
class DeepConfig:
    """The trees' shape; names and rendering as a `ProsQAConfig` (the demo's short names, phrase steps)."""

    min_depth: int = 4
    max_depth: int = 4
    side_length: int = 2  # edges of each side branch (shorter where the path has fewer edges left below it)
    names: ProsQAConfig | None = None

    def __post_init__(self):
        if not 1 <= self.min_depth <= self.max_depth:
            raise ValueError(f"need 1 <= min_depth <= max_depth, got {self.min_depth}, {self.max_depth}")
        if self.side_length < 0:
            raise ValueError(f"side_length must be >= 0, got {self.side_length}")
        if self.names is None:
            self.names = ProsQAConfig(render="phrase", people=tuple(f"p{i}" for i in range(8)),
                                      concepts=tuple(f"c{i}" for i in range(40)))
        if 2 * tree_size(self.max_depth, self.side_length) - 2 > len(self.names.concepts):
            raise ValueError(f"{len(self.names.concepts)} concept names are too few for trees of depth "
                             f"{self.max_depth} with side branches of {self.side_length}")


def side_lengths(depth: int, side_length: int) -> list[int]:
    """The side branch's length at each path node 0 .. depth-2: never as deep as the path below that node, so the
    answer stays the subject's one deepest leaf."""
    return [min(side_length, depth - k - 1) for k in range(depth - 1)]


def tree_size(depth: int, side_length: int) -> int:
    """Nodes of one tree, its root included."""
    return 1 + depth + sum(side_lengths(depth, side_length))


def build_tree(parents: list[list[int]], root: int, depth: int, side_length: int) -> list[int]:
    """Add one tree below `root` to `parents` (node id -> parent ids); returns its path root -> deepest leaf."""
    path = [root]
    for _ in range(depth):
        parents.append([path[-1]])
        path.append(len(parents) - 1)
    for k, length in enumerate(side_lengths(depth, side_length)):
        above = path[k]
        for _ in range(length):
            parents.append([above])
            above = len(parents) - 1
    return path


def make_record(rng: random.Random, cfg: DeepConfig) -> dict:
    """One question: the subject's tree and the other person's, node ids shuffled before naming."""
    depth = rng.randint(cfg.min_depth, cfg.max_depth)
    parents: list[list[int]] = [[], []]  # nodes 0 and 1: the two people
    root = rng.randrange(2)
    path = build_tree(parents, root, depth, cfg.side_length)
    other = build_tree(parents, 1 - root, depth, cfg.side_length)
    # Shuffle node ids so that creation order (which the rendering's edge order follows) tells nothing.
    order = list(range(len(parents)))
    rng.shuffle(order)
    new_id = {old: new for new, old in enumerate(order)}
    shuffled = [[] for _ in parents]
    for old, ps in enumerate(parents):
        shuffled[new_id[old]] = sorted(new_id[p] for p in ps)
    path = [new_id[v] for v in path]
    return render(rng, cfg.names, shuffled, path[0], path[-1], new_id[other[-1]], path)


def generate(n: int, seed: int, cfg: DeepConfig | None = None, progress: bool = False) -> list[dict]:
    """`n` records, the same for the same seed and config."""
    from tqdm.auto import tqdm

    cfg = cfg or DeepConfig()
    rng = random.Random(seed)
    return [make_record(rng, cfg) for _ in tqdm(range(n), desc="prosqa-deep", disable=not progress, unit="q")]
