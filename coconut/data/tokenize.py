"""Tokenise a records file once, cached by Hugging Face `datasets` (not redone every stage or epoch).

The cache is keyed by the file's content: the checked records' text fields are written once to
`<cache>/records/<sha256 of the file>.jsonl` and `datasets` reads that file. A file replaced by other records
(even of the same size and modification time, as `cp -p` or `rsync -t` leave them) gets another name, so it
is tokenised anew; the same content is read from the cache whatever its path or time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

from coconut.atomic import write_text
from coconut.config import MethodConfig
from coconut.data.curriculum import TokenizedRecord, longest_sample_length
from coconut.data.records import REQUIRED_FIELDS, DataError, parse_records, read_file
from coconut.methods import TEXT_FORMATS
from coconut.text_format import COMPACT_FORMAT, PAPER_FORMAT, TextFormat

log = logging.getLogger(__name__)


# Re-exported: the formats by `data.text_format` (the shared ones and those a method brings) and the two shared.
_FORMATS = (COMPACT_FORMAT, PAPER_FORMAT, TEXT_FORMATS)


def _step_texts(steps: list[str], fmt: TextFormat) -> list[str]:
    if fmt.step_separator is None:
        return [step + fmt.step_suffix for step in steps]
    return [step if k == 0 else fmt.step_separator + step for k, step in enumerate(steps)]


def tokenize_record(record: dict, tokenizer, fmt: TextFormat) -> dict:
    def encode(text: str, special: bool = False) -> list[int]:
        return tokenizer(text, add_special_tokens=special)["input_ids"]

    answer_ids = encode(fmt.answer_prefix + record["answer"])
    return {
        # The question with the tokenizer's special tokens (Llama's BOS; none for GPT-2), as the release
        # encodes it; steps and answer continue the same sequence, so they get none.
        "question_ids": encode(record["question"] + fmt.question_suffix, special=True),
        "step_ids": (steps := [encode(text) for text in _step_texts(record["steps"], fmt)]),
        "step_ends": step_ends(steps, _step_texts(record["steps"], fmt), fmt, encode),
        "answer_ids": answer_ids,
        "answer_start": answer_start(answer_ids, encode(fmt.answer_prefix.rstrip()), tokenizer),
    }


def step_ends(steps: list[list[int]], texts: list[str], fmt: TextFormat, encode) -> list[int]:
    """Each step's token count without its suffix (the newline after it): where the step's text alone tokenises
    as the start of the step's tokens, its length; else the whole step."""
    ends = []
    for ids, text in zip(steps, texts):
        suffix = fmt.step_suffix if fmt.step_separator is None else ""
        body = encode(text[: len(text) - len(suffix)]) if suffix and text.endswith(suffix) else ids
        ends.append(len(body) if ids[: len(body)] == body else len(ids))
    return ends


def answer_start(answer_ids: list[int], prefix_ids: list[int], tokenizer) -> int:
    """Where the answer itself starts in `answer_ids` (the prefix's tokens and any blank token after them
    skipped: Llama 3 writes the space before a number as a token of its own); 0 when the prefix does not
    tokenise alone as it does before the answer."""
    if answer_ids[: len(prefix_ids)] != prefix_ids:
        return 0
    i = len(prefix_ids)
    while i < len(answer_ids) - 1 and not tokenizer.decode(answer_ids[i : i + 1]).strip():
        i += 1
    return i


def as_tokenized_record(row: dict) -> TokenizedRecord:
    return TokenizedRecord(question=row["question_ids"], steps=row["step_ids"], answer=row["answer_ids"],
                           answer_start=row.get("answer_start", 0), step_ends=row.get("step_ends"))


def _texts(record: dict):
    """(field, text) of a record's question, steps and answer."""
    yield "question", record["question"]
    yield from ((f"steps[{k}]", step) for k, step in enumerate(record["steps"]))
    yield "answer", record["answer"]


def check_for_format(records: list[dict], path, fmt: TextFormat, tokenizer) -> None:
    """What only the run's text format and tokenizer make wrong, as a DataError naming file, record and field:
    an answer holding the character scoring splits a generation on (the last of the answer marker: the
    release's rule), and text holding one of the tokenizer's special tokens (EOS, padding...), which it would
    read as that token, not as text."""
    split_on = fmt.answer_prefix.strip()[-1:]
    special = sorted((t for t in tokenizer.all_special_tokens if t), key=len, reverse=True)
    found = re.compile("|".join(map(re.escape, special))) if special else None
    for i, record in enumerate(records):
        if split_on and split_on in record["answer"]:
            raise DataError(path, i, "answer", f"contains {split_on!r}: the answer is written after "
                                               f"{fmt.answer_prefix.strip()!r} and scoring reads what follows the "
                                               f"last {split_on!r} of a generation, so this answer could never be "
                                               f"scored right; remove it from the answer, or use the other "
                                               f"data.text_format")
        for field, text in _texts(record) if found else ():
            hit = found.search(text)
            if hit:
                raise DataError(path, i, field, f"contains {hit.group()}, a special token of the tokenizer that "
                                                f"it would read as that token, not as text; remove it from the data")


def _content_source(data: bytes, records: list[dict], cache_dir: Path) -> Path:
    """The records' question, steps and answer as JSON Lines named by the sha256 of the file's bytes, written
    once. Metadata stays out: tokenising needs none, and `datasets` would need one type per key across records."""
    source = cache_dir / "records" / f"{hashlib.sha256(data).hexdigest()}.jsonl"
    if not source.exists():  # a unique temporary name each: ranks writing the same file at once do not clash
        write_text(source, "".join(json.dumps({k: r[k] for k in REQUIRED_FIELDS}) + "\n" for r in records))
    return source


def load_tokenized(path, tokenizer, fmt: TextFormat = PAPER_FORMAT, cache_dir=None, max_length: int | None = None,
                   method: MethodConfig | None = None, drop_too_long: bool = False):
    """A `datasets.Dataset` of the records with `question_ids`, `step_ids` and `answer_ids` added.

    Records are checked first (errors name file, record and field), also against the format and tokenizer
    (`check_for_format`). Metadata is not carried (read it with `load_records`). With `max_length`, a record
    whose longest sample under `method` would not fit is an error, or is dropped with a warning
    when `drop_too_long` is set.
    """
    from datasets import load_dataset

    path = Path(path)
    data = read_file(path)  # read once: the records checked and the content keying the cache are the same bytes
    records = parse_records(path, data)  # every record checked with precise errors before anything is cached
    check_for_format(records, path, fmt, tokenizer)
    cache_dir = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "coconut"
    source = _content_source(data, records, cache_dir)
    # One split name for every file, whatever its role (`datasets` would say "Generating train split" for val.json):
    # the cache is keyed by content alone, so a copy of a file under another name is read from it too.
    dataset = load_dataset("json", data_files={"records": str(source)}, split="records",
                           cache_dir=str(cache_dir / "datasets"))
    dataset = dataset.map(tokenize_record, fn_kwargs={"tokenizer": tokenizer, "fmt": fmt}, desc=f"tokenising {path.name}")
    if max_length is not None:
        method = method or MethodConfig()
        columns = dataset.select_columns(["question_ids", "step_ids", "answer_ids"]).to_dict()  # by column: faster
        lengths = [longest_sample_length(as_tokenized_record(dict(zip(columns, row))), method)
                   for row in zip(*columns.values())]
        too_long = [i for i, n in enumerate(lengths) if n > max_length]
        if too_long and not drop_too_long:
            i = too_long[0]
            raise DataError(path, i, "question", f"the example needs {lengths[i]} tokens under method "
                            f"{method.name!r}, more than the model's context of {max_length} "
                            f"({len(too_long)} such records); set drop_too_long to drop them")
        if too_long:
            log.warning("%s: dropped %d of %d records longer than %d tokens (first: record %d)",
                        path, len(too_long), len(dataset), max_length, too_long[0])
            keep = sorted(set(range(len(dataset))) - set(too_long))
            dataset = dataset.select(keep)
    return dataset
