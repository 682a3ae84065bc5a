"""Reasoning records: load them from the official JSON, JSON Lines or iCoT GSM8k text, and check them.

A record is a dict with `question` (str), `steps` (list of str) and `answer` (str); any other key is
metadata and is kept (ProsQA's graph, for example). Every problem found names the file, the record
index and the field.
"""

from __future__ import annotations

import json
from pathlib import Path

from coconut.data.errors import DataError  # re-exported: callers catch it from here

REQUIRED_FIELDS = ("question", "steps", "answer")


def check_record(record, file, index: int) -> dict:
    """Return `record` if it is a well-formed reasoning record, else raise DataError."""
    if not isinstance(record, dict):
        raise DataError(file, index, None, f"expected an object with {', '.join(REQUIRED_FIELDS)}, got {type(record).__name__}")
    for field in REQUIRED_FIELDS:
        if field not in record:
            raise DataError(file, index, field, "missing")
    question, steps, answer = record["question"], record["steps"], record["answer"]
    if not isinstance(question, str):
        raise DataError(file, index, "question", f"expected a string, got {type(question).__name__}")
    if not question.strip():
        raise DataError(file, index, "question", "empty")
    if not isinstance(steps, list):
        raise DataError(file, index, "steps", f"expected a list of strings, got {type(steps).__name__}")
    for k, step in enumerate(steps):
        if not isinstance(step, str):
            raise DataError(file, index, f"steps[{k}]", f"expected a string, got {type(step).__name__}")
    if not isinstance(answer, str):
        raise DataError(file, index, "answer", f"expected a string, got {type(answer).__name__}")
    if not answer.strip():
        raise DataError(file, index, "answer", "empty")
    return record


def load_records(path) -> list[dict]:
    """Records of a `.json` (a list), `.jsonl` (one object a line) or iCoT `.txt` file."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, None, "no such file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            records = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DataError(path, None, None, f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from err
        if not isinstance(records, list):
            raise DataError(path, None, None, f"expected a JSON list of records, got {type(records).__name__}")
    elif suffix == ".jsonl":
        records = []
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(path, len(records), None, f"line {lineno} is not valid JSON ({err.msg})") from err
    elif suffix == ".txt":
        from coconut.data.icot_text import read_icot_text

        return [check_record(record, path, i) for i, record in enumerate(read_icot_text(path))]
    else:
        raise DataError(path, None, None, f"unknown format {suffix!r} (expected .json, .jsonl or iCoT .txt)")
    return [check_record(record, path, i) for i, record in enumerate(records)]


def write_records(records: list[dict], path) -> None:
    """Write records as `.json` (a list, the official format) or `.jsonl`, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix.lower() == ".jsonl":
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        tmp.write_text(json.dumps(records, indent=1) + "\n")
    tmp.replace(path)  # a crash mid-write never leaves a half file behind
