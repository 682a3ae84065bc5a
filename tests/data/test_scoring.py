"""Answer scoring: the text after the last answer marker, compared whitespace-insensitively."""

from coconut.data.scoring import answer_correct, extract_answer, normalize


def test_answer_after_the_last_marker_whitespace_insensitive():
    assert answer_correct("Tom is a terpus .\n### Tom is a lempus .", "Tom is a lempus.", "### ")
    assert answer_correct("p1 c2 ; c2 c7 ; = c7", "c7", "= ")
    assert not answer_correct("p1 c2 ; = c3", "c7", "= ")
    assert not answer_correct("c7", "c7", "= "), "no marker, no answer"
    assert extract_answer("a = b = c", "=") == " c"
    assert normalize(" a  b\n.") == "ab."
