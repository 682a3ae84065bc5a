"""How a record's parts (question, steps, answer) become text before tokenisation: the shared formats.

A leaf, read by the config (the names a run may choose), the data (tokenisation) and the methods (a method may
bring its own format, as CODI does: coconut.methods.TEXT_FORMATS is the whole set)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextFormat:
    """How a record's parts become text before tokenisation."""

    question_suffix: str = "\n"
    step_suffix: str = "\n"
    answer_prefix: str = "### "
    # Written before every step but the first (instead of step_suffix after each): the steps are then one piece,
    # joined by this separator (a release that tokenises its CoT as one text).
    step_separator: str | None = None


PAPER_FORMAT = TextFormat()  # as the paper formats GPT-2 inputs
COMPACT_FORMAT = TextFormat(question_suffix=" ", step_suffix=" ", answer_prefix="= ")  # word-level: one token "="
BASE_FORMATS = {"paper": PAPER_FORMAT, "compact": COMPACT_FORMAT}  # by `data.text_format`, beside the methods' own
