"""What CODI needs from the data: where the answer starts after its prefix, the steps tokenised as the release's one
CoT piece, and the records its release leaves out of training."""

import pytest
from transformers import AutoTokenizer

from coconut.config import MethodConfig
from coconut.methods.codi import CODI_FORMAT
from coconut.data.tokenize import answer_start, tokenize_record
from coconut.methods import method
from tests.engine.test_codi_parity import FIXTURES


@pytest.fixture(scope="module")
def bpe():
    return AutoTokenizer.from_pretrained(FIXTURES / "tokenizer", use_fast=False)  # a byte-level BPE, as GPT-2's


def test_the_answer_starts_after_its_prefix(bpe):
    row = tokenize_record({"question": "Tom has 2 boxes?", "steps": ["<<2*3=6>>"], "answer": "10"}, bpe, CODI_FORMAT)
    start = row["answer_start"]
    assert bpe.decode(row["answer_ids"][:start]) == "The answer is:"
    assert bpe.decode(row["answer_ids"][start:]) == " 10"


class Spaced:
    """A tokenizer writing the space before a number as a token of its own (as Llama 3's does)."""

    def decode(self, ids):
        return {1: "The", 2: ":", 3: " ", 4: "10"}[ids[0]]


def test_a_blank_token_after_the_prefix_is_skipped():
    assert answer_start([1, 2, 3, 4], [1, 2], Spaced()) == 3  # the distillation reads the blank token, 3
    assert answer_start([1, 2, 4], [1, 2], Spaced()) == 2
    assert answer_start([1, 4], [1, 2], Spaced()) == 0, "a prefix that tokenises otherwise before the answer"


def test_steps_tokenise_as_one_cot_piece(bpe):
    steps = ["<<2*3=6>>", "<<6+4=10>>"]
    row = tokenize_record({"question": "q?", "steps": steps, "answer": "10"}, bpe, CODI_FORMAT)
    joined = [t for step in row["step_ids"] for t in step]
    assert joined == bpe(" ".join(steps), add_special_tokens=False)["input_ids"]


def test_the_release_skips_negative_and_long_records_only():
    codi, cfg = method("codi"), MethodConfig(name="codi", max_token_num=20)
    assert codi.trains_on(cfg, "12", 20) and codi.trains_on(cfg, "1,200.5", 3)
    assert not codi.trains_on(cfg, "-3", 5), "a negative answer (the release: not starting with a digit)"
    assert not codi.trains_on(cfg, "12", 21), "longer than max_token_num"
    assert codi.trains_on(cfg, "wumpus", 5), "answers that are not numbers are kept"


@pytest.mark.parametrize("field, value, message", [
    ("num_latent", 0, "num_latent must be >= 1"),
    ("distill_loss_type", "l1", "must be one of smooth_l1, l2"),
    ("remove_eos", False, "remove_eos=false .* not supported"),
])
def test_bad_codi_settings_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        MethodConfig(name="codi", **{field: value})


def test_an_answer_without_a_prefix_token_is_refused():
    from coconut.data.curriculum import TokenizedRecord, build_sample
    from coconut.markers import SpecialIds

    record = TokenizedRecord(question=[10], steps=[[20]], answer=[30], answer_start=0)
    with pytest.raises(ValueError, match="text_format=codi"):
        build_sample(record, MethodConfig(name="codi"), 0, SpecialIds(start=2, latent=3, end=4, eos=1, pad=0))
