"""Reading a generated reasoning path back into graph edges, and classifying it as the paper does.

Categories (the paper's latent-search analysis, section 5):
- correct_path: a shortest path from the subject to the correct answer;
- longer_path: a valid path to the correct answer, longer than the shortest;
- hallucination: an edge not in the graph, a broken chain, or a path not reachable from the subject;
- wrong_target: a valid path that ends at another node;
- correct_label / incorrect_label: no path at all, only the answer (right or wrong).
After k continuous thoughts the language path starts mid-way; its length counts the shortest
distance from the subject to where it starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coconut.data.graph import Graph
from coconut.data.scoring import answer_correct

CATEGORIES = ("correct_path", "longer_path", "hallucination", "wrong_target", "correct_label", "incorrect_label")
_SENTENCE_END = re.compile(r"[.;\n]")
_WORD = re.compile(r"[A-Za-z0-9_'-]+")


@dataclass
class ParsedPath:
    edges: list[tuple[int, int]]
    malformed: bool  # a step sentence that does not name exactly two nodes


def parse_path(text: str, graph: Graph, marker: str) -> ParsedPath:
    """The edges stated before the answer marker, one per sentence ("Every a is a b." or "a b ;")."""
    marker = marker.strip()
    reasoning = text.split(marker)[0] if marker and marker in text else text
    edges, malformed = [], False
    for sentence in _SENTENCE_END.split(reasoning):
        words = _WORD.findall(sentence)
        if not words:
            continue
        names = [graph.index[w] for w in words if w in graph.index]
        if len(names) == 2:
            edges.append((names[0], names[1]))
        else:
            malformed = True
    return ParsedPath(edges, malformed)


def classify(text: str, graph: Graph, answer: str, marker: str) -> str:
    """One of CATEGORIES for a generation on a ProsQA question."""
    path = parse_path(text, graph, marker)
    if not path.edges and not path.malformed:
        return "correct_label" if answer_correct(text, answer, marker, "lenient") else "incorrect_label"
    chained = all(a[1] == b[0] for a, b in zip(path.edges, path.edges[1:]))
    if path.malformed or not chained or any(e not in graph.edge_set for e in path.edges):
        return "hallucination"
    start, end = path.edges[0][0], path.edges[-1][1]
    if start not in graph.distance:
        return "hallucination"
    if end != graph.target:
        return "wrong_target"
    shortest = graph.distance[graph.target]
    return "correct_path" if graph.distance[start] + len(path.edges) == shortest else "longer_path"

