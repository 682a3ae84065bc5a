"""Reasoning records: load them from the official JSON, JSON Lines or iCoT GSM8k text, check and write them.

A record is a dict with `question` (str), `steps` (list of str) and `answer` (str); any other key is
metadata and is kept (ProsQA's graph, for example). Every problem found names the file, the record
index and the field.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path

from coconut.data.errors import DataError  # re-exported: callers catch it from here
from coconut.data.metadata import check_metadata
from coconut.data_error import check_links
from coconut.markers import LATENT_TOKENS, PAUSE

REQUIRED_FIELDS = ("question", "steps", "answer")
FORMATS = (".json", ".jsonl", ".txt")
# The markers the methods insert themselves: one inside the text would be read as a thought (or a pause) by the
# engine, and fail or mislead at the first training step, far from the record that holds it.
RESERVED_TOKENS = LATENT_TOKENS + (PAUSE,)
# The last files parsed, by format and content: a run reads each split file three times (its provenance, the
# tokenizer's words, the tokenised records), and parsing and checking a large file takes seconds each time.
_PARSED: OrderedDict = OrderedDict()
_PARSED_KEPT = 3  # a run's train, val and test files


def _check_text(text: str, file, index: int, field: str) -> None:
    for token in RESERVED_TOKENS:
        if token in text:
            raise DataError(file, index, field, f"contains {token}, a token the methods insert themselves; "
                                                f"remove it from the data")


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
    _check_text(question, file, index, "question")
    if not isinstance(steps, list):
        raise DataError(file, index, "steps", f"expected a list of strings, got {type(steps).__name__}")
    for k, step in enumerate(steps):
        if not isinstance(step, str):
            raise DataError(file, index, f"steps[{k}]", f"expected a string, got {type(step).__name__}")
        _check_text(step, file, index, f"steps[{k}]")
    if not isinstance(answer, str):
        raise DataError(file, index, "answer", f"expected a string, got {type(answer).__name__}")
    if not answer.strip():
        raise DataError(file, index, "answer", "empty")
    _check_text(answer, file, index, "answer")
    check_metadata(record, file, index, REQUIRED_FIELDS)
    return record


def _decode(path: Path, data: bytes) -> str:
    """The file's bytes as UTF-8 text (a leading BOM dropped), or DataError naming the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(path, None, None, f"not UTF-8 text (line {line}, byte {err.start}: "
                                          f"{data[err.start:err.start + 1]!r}); save it as UTF-8") from err


def load_records(path) -> list[dict]:
    """Records of a `.json` (a list), `.jsonl` (one object a line) or iCoT `.txt` file; at least one."""
    return parse_records(path, read_file(path))


def read_file(path) -> bytes:
    """A data file's bytes, read once (a broken link or a missing file is a DataError naming it)."""
    path = Path(path)
    check_links(path)
    if not path.exists():
        raise DataError(path, None, None, "no such file")
    return path.read_bytes()


def _json(text: str, path: Path, index: int | None = None, lineno: int | None = None):
    """One JSON document (a whole .json file, or line `lineno` of a .jsonl file, record `index`); its errors,
    a syntax error or nesting deeper than the reader goes, as DataError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        if lineno is None:
            raise DataError(path, None, None, f"not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from err
        raise DataError(path, index, None, f"line {lineno} is not valid JSON ({err.msg})") from err
    except RecursionError as err:  # json's reader recurses once per level of nesting
        where = "the file" if lineno is None else f"line {lineno}"
        raise DataError(path, index, None, f"{where} holds JSON nested too deeply to read (lists or objects about "
                                           f"a thousand levels deep); a record is an object of question, steps, "
                                           f"answer and metadata") from err


def parse_records(path, data: bytes) -> list[dict]:
    """The checked records of a file's bytes (`path`: its name, for the format and the messages).

    Bytes parsed a moment ago are not parsed again: the list is new, its record dicts are the ones returned
    before, which callers read and do not modify."""
    key = (Path(path).suffix.lower(), hashlib.sha256(data).digest())
    if key in _PARSED:
        _PARSED.move_to_end(key)
        return list(_PARSED[key])
    records = _parse(Path(path), data)
    _PARSED[key] = records
    while len(_PARSED) > _PARSED_KEPT:
        _PARSED.popitem(last=False)
    return list(records)


def _parse(path: Path, data: bytes) -> list[dict]:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DataError(path, None, None, f"unknown format {suffix!r} (expected .json, .jsonl or iCoT .txt)")
    text = _decode(path, data)
    if suffix == ".json":
        records = _json(text, path)
        if not isinstance(records, list):
            raise DataError(path, None, None, f"expected a JSON list of records, got {type(records).__name__}")
    elif suffix == ".jsonl":
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                records.append(_json(line, path, len(records), lineno))
    else:
        from coconut.data.icot_text import read_icot_text

        records = read_icot_text(path, text)
    if not records:
        raise DataError(path, None, None, "no records in it; a data file needs at least one")
    return [check_record(record, path, i) for i, record in enumerate(records)]


def write_records(records: list[dict], path) -> None:
    """Write records as `.json` (a list, the official format), `.jsonl` or iCoT `.txt`, atomically.

    Any other suffix, or a record iCoT text cannot hold, is refused before anything is written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        what = f"unknown format {suffix!r}" if suffix else "no suffix"
        raise DataError(path, None, None, f"{what}; records are written as .json, .jsonl or iCoT .txt")
    if suffix == ".txt":
        from coconut.data.icot_text import format_icot_line

        text = "".join(format_icot_line(r, path, i) + "\n" for i, r in enumerate(records))
    elif suffix == ".jsonl":
        text = "".join(json.dumps(r) + "\n" for r in records)
    else:
        text = json.dumps(records, indent=1) + "\n"
    from coconut.atomic import write_bytes

    write_bytes(path, text.encode("utf-8"))  # a crash, a signal or a full disk never leaves a half file behind
