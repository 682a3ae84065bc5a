"""Scoring generations the way the paper does: exact match of the answer after its marker."""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Whitespace-insensitive form: word-level decoding puts spaces around punctuation, BPE does not."""
    return _SPACE.sub("", text)


def extract_answer(text: str, marker: str) -> str | None:
    """The text after the last answer marker (`###`, `=`), or None when the model never wrote it."""
    marker = marker.strip()
    if not marker or marker not in text:
        return None
    return text.rsplit(marker, 1)[1]


def answer_correct(generated: str, answer: str, marker: str) -> bool:
    found = extract_answer(generated, marker)
    return found is not None and normalize(found) == normalize(answer)
