"""The iCoT GSM8k text format: `question||<<a*b=c>> <<c+d=e>> #### answer`, one record a line."""

from __future__ import annotations

import re
from pathlib import Path

from coconut.data.errors import DataError

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def strip_number_commas(text: str) -> str:
    """`1,234,567` -> `1234567`, leaving other commas alone."""
    return _THOUSANDS.sub("", text)


def parse_icot_line(line: str, file="<string>", index: int = 0) -> dict:
    """One iCoT line as a record (unchecked): steps split on spaces, answer after `####`, commas out of numbers."""
    if "||" not in line:
        raise DataError(file, index, "question", "no '||' between the question and the steps")
    question, rest = line.split("||", 1)
    if "####" not in rest:
        raise DataError(file, index, "answer", "no '####' before the answer")
    steps_text, answer = rest.rsplit("####", 1)
    return {
        "question": question.strip(),
        "steps": [strip_number_commas(s) for s in steps_text.split()],
        "answer": strip_number_commas(answer.strip()),
    }


def read_icot_text(path) -> list[dict]:
    path = Path(path)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [parse_icot_line(line, path, i) for i, line in enumerate(lines)]
