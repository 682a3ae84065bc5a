"""Tokenise a records file once, cached by Hugging Face `datasets` (not redone every stage or epoch)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from coconut.config import MethodConfig
from coconut.data.curriculum import TokenizedRecord, longest_sample_length
from coconut.data.records import DataError, load_records, write_records

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextFormat:
    """How a record's parts become text before tokenisation."""

    question_suffix: str = "\n"
    step_suffix: str = "\n"
    answer_prefix: str = "### "


PAPER_FORMAT = TextFormat()  # as the paper formats GPT-2 inputs
COMPACT_FORMAT = TextFormat(question_suffix=" ", step_suffix=" ", answer_prefix="= ")  # word-level: one token "="
TEXT_FORMATS = {"paper": PAPER_FORMAT, "compact": COMPACT_FORMAT}  # by `data.text_format`


def tokenize_record(record: dict, tokenizer, fmt: TextFormat) -> dict:
    def encode(text: str, special: bool = False) -> list[int]:
        return tokenizer(text, add_special_tokens=special)["input_ids"]

    return {
        # The question with the tokenizer's special tokens (Llama's BOS; none for GPT-2), as the release
        # encodes it; steps and answer continue the same sequence, so they get none.
        "question_ids": encode(record["question"] + fmt.question_suffix, special=True),
        "step_ids": [encode(step + fmt.step_suffix) for step in record["steps"]],
        "answer_ids": encode(fmt.answer_prefix + record["answer"]),
    }


def as_tokenized_record(row: dict) -> TokenizedRecord:
    return TokenizedRecord(question=row["question_ids"], steps=row["step_ids"], answer=row["answer_ids"])


def _json_source(path: Path, cache_dir: Path) -> Path:
    """A JSON(L) file `datasets` can read: the file itself, or the iCoT text converted once."""
    if path.suffix.lower() in (".json", ".jsonl"):
        return path
    stat = path.stat()
    converted = cache_dir / "converted" / f"{path.stem}-{stat.st_size}-{int(stat.st_mtime)}.jsonl"
    if not converted.exists():
        write_records(load_records(path), converted)
    return converted


def load_tokenized(path, tokenizer, fmt: TextFormat = PAPER_FORMAT, cache_dir=None, max_length: int | None = None,
                   method: MethodConfig | None = None, drop_too_long: bool = False):
    """A `datasets.Dataset` of the records with `question_ids`, `step_ids` and `answer_ids` added.

    Records are checked first (errors name file, record and field). With `max_length`, a record
    whose longest sample under `method` would not fit is an error, or is dropped with a warning
    when `drop_too_long` is set.
    """
    from datasets import load_dataset

    path = Path(path)
    load_records(path)  # validates every record with precise errors before anything is cached
    cache_dir = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "coconut"
    source = _json_source(path, cache_dir)
    dataset = load_dataset("json", data_files=str(source), split="train", cache_dir=str(cache_dir / "datasets"))
    dataset = dataset.map(tokenize_record, fn_kwargs={"tokenizer": tokenizer, "fmt": fmt}, desc=f"tokenising {path.name}")
    if max_length is not None:
        method = method or MethodConfig()
        lengths = [longest_sample_length(as_tokenized_record(row), method) for row in dataset]
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
