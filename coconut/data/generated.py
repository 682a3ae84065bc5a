"""The mark of generated data: every record a generator makes carries `"generated": {"generator", "seed"}`.

A file's sidecar (`<file>.source.json`) says how it was made, but a sidecar is easily lost: `cp` a generated
`train.json` to `prosqa_train.json` and only the records travel. So the records say it themselves, and a
file holding any marked record is generated data wherever it lies (`data.allow_generated=false` refuses it,
provenance reports it). The field is metadata like ProsQA's graph: loading, tokenising and training read
question, steps and answer only.
"""

from __future__ import annotations

from coconut.data.errors import DataError, short

MARKER = "generated"


def mark(records: list[dict], generator: str, seed: int, render: str | None = None,
         depth: int | None = None, distractor: str | None = None) -> list[dict]:
    """The records with the marker added (the same marker in each: the generator and the file's seed)."""
    marker = {"generator": generator, "seed": seed, **({"render": render} if render else {}),
              **({"depth": depth} if depth is not None else {}),
              **({"distractor": distractor} if distractor is not None else {})}
    return [{**record, MARKER: dict(marker)} for record in records]


def check_marker(record: dict, file, index: int) -> None:
    """DataError unless the record's marker, when it has one, is what `mark` writes."""
    if MARKER not in record:
        return
    marker = record[MARKER]
    if not (isinstance(marker, dict) and isinstance(marker.get("generator"), str)
            and type(marker.get("seed")) is int):
        raise DataError(file, index, MARKER, f"expected an object with generator (a string) and seed (an integer), "
                                             f"the mark of generated records, got {short(marker)}")


def generated_by(records: list[dict]) -> tuple[int, dict] | None:
    """(index, marker) of the first generated record, or None when no record carries the marker."""
    return next(((i, r[MARKER]) for i, r in enumerate(records) if MARKER in r), None)

