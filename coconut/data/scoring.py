"""Scoring generations: exact match of the answer after its marker, by the release's rule or a lenient one.

"release" (the default: what produced the paper's numbers): the text after the last occurrence of the
marker's last character (`#` for `### `, so `#` alone counts too), stripped, with every comma removed,
equals the gold answer stripped with its commas removed. `5,000` equals `5000`; inner whitespace counts.
"lenient": the text after the last full marker equals the answer once all whitespace is removed from both
(word-level decoding puts spaces around punctuation, BPE does not).

A generation without the marker is wrong under both rules. (The release scores the prompt and the
generation decoded together, so a `#` inside a question would be read there; generations are scored
alone here.)
"""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")
RULES = ("release", "lenient")


def normalize(text: str) -> str:
    """Whitespace-insensitive form: word-level decoding puts spaces around punctuation, BPE does not."""
    return _SPACE.sub("", text)


def extract_answer(text: str, marker: str, rule: str = "release") -> str | None:
    """The answer part of a generation under `rule`, or None when the model never wrote the marker."""
    marker = marker.strip()
    if rule == "release":
        marker = marker[-1:]  # the release splits on "#", the last character of "###"
    if not marker or marker not in text:
        return None
    return text.rsplit(marker, 1)[1]


def answer_correct(generated: str, answer: str, marker: str, rule: str = "release") -> bool:
    if rule not in RULES:
        raise ValueError(f"unknown scoring rule {rule!r}; expected one of {', '.join(RULES)}")
    found = extract_answer(generated, marker, rule)
    if found is None:
        return False
    if rule == "release":
        return found.replace(",", "").strip() == answer.replace(",", "").strip()
    return normalize(found) == normalize(answer)


def as_decoded(tokenizer, text: str) -> str:
    """`text` as the tokenizer writes it back: the gold answer in the form generations are decoded to.

    Identity for byte-level BPE (GPT-2, Llama); a word-level tokenizer spaces out punctuation, and the
    release's exact comparison must see the same spacing on both sides."""
    return tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"], skip_special_tokens=True)
