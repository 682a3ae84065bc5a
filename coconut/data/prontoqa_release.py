"""ProntoQA as the COCONUT release uses it: the raw file of the ProntoQA code turned into split records.

The raw file (`5hop_0shot_random.json`, see `release.PRONTOQA_RECIPE`) maps example ids to objects whose
`test_example` has `question`, `query`, `chain_of_thought` (sentences) and `answer`. A record is the question
and the query joined by a space, the chain of thought as steps of two sentences each, and the answer; the
first 9000 are train, the next 200 valid, the rest test, in the file's order.
"""

from __future__ import annotations

import json
from pathlib import Path

from coconut.data.errors import DataError
from coconut.data.provenance import write_with_source
from coconut.data.records import check_record
from coconut.data.release import file_digests

RAW_FIELDS = ("question", "query", "chain_of_thought", "answer")


def raw_to_record(example, file, index: int) -> dict:
    """One raw ProntoQA entry as a record; problems name the file, the entry and the field."""
    test = example.get("test_example") if isinstance(example, dict) else None
    if not isinstance(test, dict):
        raise DataError(file, index, "test_example", "missing or not an object")
    for field in RAW_FIELDS:
        if field not in test:
            raise DataError(file, index, f"test_example.{field}", "missing")
    chain = test["chain_of_thought"]
    if not isinstance(chain, list) or not all(isinstance(s, str) for s in chain):
        raise DataError(file, index, "test_example.chain_of_thought", "expected a list of strings")
    for field in ("question", "query", "answer"):
        if not isinstance(test[field], str):
            got = type(test[field]).__name__
            raise DataError(file, index, f"test_example.{field}", f"expected a string, got {got}")
    record = {
        "question": test["question"] + " " + test["query"],
        "steps": [" ".join(chain[i:i + 2]) for i in range(0, len(chain), 2)],
        "answer": test["answer"],
    }
    return check_record(record, file, index)


def convert_prontoqa(raw, to, train_size: int = 9000, valid_size: int = 200) -> dict[Path, int]:
    """Write prontoqa_{train,valid,test}.json into folder `to` (each with its sidecar); {path: records}."""
    raw, to = Path(raw), Path(to)
    if train_size < 1 or valid_size < 1:
        raise DataError(raw, None, None, f"train and valid sizes must be >= 1, got {train_size} and {valid_size}")
    if not raw.exists():
        raise DataError(raw, None, None, "no such file (make it as `coconut data download prontoqa` explains)")
    try:
        entries = json.loads(raw.read_text())
    except json.JSONDecodeError as err:
        raise DataError(raw, None, None, f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from err
    if not isinstance(entries, dict):
        raise DataError(raw, None, None, f"expected an object of examples by id, got {type(entries).__name__}")
    records = [raw_to_record(example, raw, i) for i, example in enumerate(entries.values())]
    if len(records) <= train_size + valid_size:
        raise DataError(raw, None, None, f"{len(records)} examples leave no test split after {train_size} train "
                                         f"and {valid_size} valid (the release makes 10000)")
    splits = {"train": records[:train_size], "valid": records[train_size:train_size + valid_size],
              "test": records[train_size + valid_size:]}
    source = {"origin": "converted", "converter": "coconut data prontoqa-convert", "from": str(raw),
              "from_sha256": file_digests(raw)[0]}
    written = {}
    for split, rows in splits.items():
        path = to / f"prontoqa_{split}.json"
        write_with_source(rows, path, {**source, "split": split})
        written[path] = len(rows)
    return written
