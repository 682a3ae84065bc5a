"""Answer scoring: the release's rule by default (after the last '#', stripped, commas removed), a lenient option."""

import pytest

from coconut.data.scoring import answer_correct, as_decoded, extract_answer, normalize


def test_release_rule_text_after_the_last_hash_stripped_commas_removed():
    assert answer_correct("<<2*3=6>>\n### 5,000", "5000", "### "), "commas removed from the generation"
    assert answer_correct("### 5000", "5,000", "### "), "and from the gold answer"
    assert answer_correct("### 12\n", "12", "### "), "stripped"
    assert answer_correct("step # 3\n# 12", "12", "### "), "a single '#' is a marker too"
    assert answer_correct("### 1 ### 12", "12", "### "), "the last '#' counts"
    assert not answer_correct("### 1 2", "12", "### "), "inner whitespace counts"
    assert not answer_correct("### Tom is a lempus .", "Tom is a lempus.", "### ")
    assert not answer_correct("12", "12", "### "), "no marker, no answer"
    assert extract_answer("a ## b # c", "### ") == " c"


def test_release_rule_with_the_compact_marker():
    assert answer_correct("p1 c2 ; c2 c7 ; = c7", "c7", "= ")
    assert not answer_correct("p1 c2 ; = c3", "c7", "= ")


def test_lenient_rule_ignores_whitespace_after_the_last_full_marker():
    assert answer_correct("Tom is a terpus .\n### Tom is a lempus .", "Tom is a lempus.", "### ", "lenient")
    assert answer_correct("### 1 2", "12", "### ", "lenient")
    assert not answer_correct("### 5,000", "5000", "### ", "lenient"), "commas are kept by the lenient rule"
    assert not answer_correct("# 12", "12", "### ", "lenient"), "the lenient rule needs the whole marker"
    assert extract_answer("a = b = c", "=", "lenient") == " c"
    assert normalize(" a  b\n.") == "ab."
    with pytest.raises(ValueError, match="unknown scoring rule"):
        answer_correct("### 1", "1", "### ", "fuzzy")


def test_gold_answers_are_compared_as_the_tokenizer_writes_them():
    from coconut.data.word_tokenizer import build_word_tokenizer

    word_tok = build_word_tokenizer([{"question": "Is Tom a lempus?", "steps": [], "answer": "Tom is a lempus."}])
    # Word-level decoding spaces out punctuation; the gold answer goes through the same round trip.
    written = as_decoded(word_tok, "Tom is a lempus.")
    assert written != "Tom is a lempus." and normalize(written) == "Tomisalempus."
    assert answer_correct("### " + written, written, "### ")
