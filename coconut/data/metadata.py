"""Checks of a record's metadata (the keys beside question, steps and answer) that code reads.

ProsQA and ProntoQA records carry their graph (`idx_to_symbol`, `edges`, `root`, `target`, `neg_target`), which
`coconut data stats` and the latent-search analysis walk: a wrong type or an index past the node list must be
a DataError naming the record and field, not a TypeError deep inside a statistic. Other metadata is kept as
it is, but not nested without bound (copies and conversions of a record walk it recursively).
"""

from __future__ import annotations

from coconut.data.errors import DataError, short
from coconut.data.generated import check_marker

NODE_FIELDS = ("root", "target", "neg_target")  # node indices into idx_to_symbol
SHAPED = ("idx_to_symbol", "edges", *NODE_FIELDS)  # fields whose shape is checked whole
MAX_DEPTH = 64  # nesting of lists and objects in one metadata value; ProsQA's deepest (edges) is 2


def _is_int(value) -> bool:
    return type(value) is int  # bool is an int to Python, not a node index


def _depth(value) -> int:
    """How many lists and objects nest in `value` (0 for a scalar, 1 for a flat list), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_DEPTH:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _check_graph(record: dict, file, index: int) -> None:
    names = record.get("idx_to_symbol")
    if "idx_to_symbol" in record:
        if not isinstance(names, list):
            raise DataError(file, index, "idx_to_symbol", f"expected a list of node names, got {type(names).__name__}")
        if not all(type(name) is str for name in names):  # the common case in one pass, the culprit after
            k, name = next((k, name) for k, name in enumerate(names) if not isinstance(name, str))
            raise DataError(file, index, f"idx_to_symbol[{k}]", f"expected a string, got {type(name).__name__}")
    nodes = len(names) if isinstance(names, list) else None
    expected = (f"a node index (an integer from 0 to {nodes - 1}: idx_to_symbol names {nodes} nodes)" if nodes
                else "a node index (an integer from 0)" if nodes is None else "no node: idx_to_symbol is empty")

    def check_node(value, field: str) -> None:
        if not _is_int(value) or value < 0 or (nodes is not None and value >= nodes):
            raise DataError(file, index, field, f"expected {expected}, got {short(value)}")

    if "edges" in record:
        edges = record["edges"]
        if not isinstance(edges, list):
            raise DataError(file, index, "edges", f"expected a list of [parent, child] pairs, got {type(edges).__name__}")
        bound = nodes if nodes is not None else float("inf")
        if not all(type(e) is list and len(e) == 2 and type(e[0]) is int and type(e[1]) is int
                   and 0 <= e[0] < bound and 0 <= e[1] < bound for e in edges):  # one pass; the culprit after
            for k, edge in enumerate(edges):
                if not (isinstance(edge, list) and len(edge) == 2):
                    raise DataError(file, index, f"edges[{k}]", f"expected a [parent, child] pair, got {short(edge)}")
                for end, value in zip(("0", "1"), edge):
                    check_node(value, f"edges[{k}][{end}]")
    for field in NODE_FIELDS:
        if field in record:
            check_node(record[field], field)


def check_metadata(record: dict, file, index: int, known=("question", "steps", "answer")) -> None:
    """DataError naming the field when the graph fields, the generated-data marker or the nesting are wrong."""
    for field, value in record.items():
        if field not in known and field not in SHAPED and _depth(value) > MAX_DEPTH:
            raise DataError(file, index, field, f"nested more than {MAX_DEPTH} levels deep; flatten or remove it "
                                                f"(metadata is kept as it is, but not nested without bound)")
    _check_graph(record, file, index)
    check_marker(record, file, index)
