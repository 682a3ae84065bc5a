"""The iCoT GSM8k text format: `question||<<a*b=c>> <<c+d=e>> #### answer`, one record a line.

Read as the release's preprocessing reads it (what its GSM8k numbers were trained on): the question as
written, the steps split on single spaces (an empty chain of thought becomes one empty step, which the
paper format writes as a bare newline), the answer after the last `##`, commas kept (`1,600`: the
release's scoring removes commas on both sides, see coconut/data/scoring.py).
"""

from __future__ import annotations

from pathlib import Path

from coconut.data.errors import DataError


def parse_icot_line(line: str, file="<string>", index: int = 0) -> dict:
    """One iCoT line as a record (unchecked)."""
    if "||" not in line:
        raise DataError(file, index, "question", "no '||' between the question and the steps")
    question, rest = line.split("||", 1)
    if "####" not in rest:
        raise DataError(file, index, "answer", "no '####' before the answer")
    return {
        "question": question,
        "steps": rest.split("##")[0].strip().split(" "),
        "answer": rest.split("##")[-1].strip(),
    }


def read_icot_text(path) -> list[dict]:
    path = Path(path)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [parse_icot_line(line, path, i) for i, line in enumerate(lines)]
