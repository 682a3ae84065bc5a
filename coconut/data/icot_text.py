"""The iCoT GSM8k text format: `question||<<a*b=c>> <<c+d=e>> #### answer`, one record a line.

Read as the release's preprocessing reads it (what its GSM8k numbers were trained on): the question as
written, the steps split on single spaces (an empty chain of thought becomes one empty step, which the
paper format writes as a bare newline), the answer after the last `##`, commas kept (`1,600`: the
release's scoring removes commas on both sides, see coconut/data/scoring.py).

Written only when the line reads back as the same record: a step with a space, a `##` in the text, a
line break, or keys beyond question/steps/answer cannot be held by the format, and are refused.
"""

from __future__ import annotations

from pathlib import Path

from coconut.data.errors import DataError, short

ICOT_FIELDS = ("question", "steps", "answer")


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


def read_icot_text(path, text: str | None = None) -> list[dict]:
    """The records of an iCoT file (`text`: its content, when already read)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    lines = [line for line in text.splitlines() if line.strip()]
    return [parse_icot_line(line, path, i) for i, line in enumerate(lines)]


def format_icot_line(record: dict, file="<string>", index: int = 0) -> str:
    """One record as an iCoT line, or DataError naming the field the format cannot hold."""
    extra = sorted(set(record) - set(ICOT_FIELDS))
    if extra:
        raise DataError(file, index, extra[0], f"iCoT text holds only {', '.join(ICOT_FIELDS)}; "
                                               f"{', '.join(extra)} would be lost: write .json or .jsonl")
    line = f"{record['question']}||{' '.join(record['steps'])} #### {record['answer']}"
    # Checked by reading the line back, so anything the reader would change (a space inside a step, a `##`,
    # padding around the answer, no steps at all) is refused rather than written wrong.
    back = parse_icot_line(line, file, index) if len(line.splitlines()) == 1 else {}
    for field in ICOT_FIELDS:
        if back.get(field) != record[field]:
            raise DataError(file, index, field, f"{short(record[field])} would read back from iCoT text as "
                                                f"{short(back.get(field, 'more than one line'))}: write .json or .jsonl")
    return line

