"""Tokenisation (once, cached by content), the word tokenizer, context-length checks and the collator."""

import os

import pytest
import torch
from transformers import AutoTokenizer

from coconut import LatentReasoner
from coconut.config import MethodConfig
from coconut.engine.special_tokens import SpecialIds
from coconut.data.curriculum import build_sample
from coconut.data import prosqa
from coconut.data.collate import LatentCollator
from coconut.data.records import DataError, write_records
from coconut.data.tokenize import COMPACT_FORMAT, as_tokenized_record, load_tokenized
from coconut.data.word_tokenizer import build_word_tokenizer
from coconut.engine.alignment import align_thoughts
from coconut.engine.special_tokens import LATENT, PAUSE, load_tokenizer
from tests.helpers import tiny_model


@pytest.fixture(scope="module")
def mini_records():
    return prosqa.generate(40, seed=2, cfg=prosqa.ProsQAConfig(**prosqa.MINI))


@pytest.fixture(scope="module")
def word_tok(mini_records):
    return build_word_tokenizer(mini_records, ["="])


def test_word_tokenizer_one_token_per_word_and_reload(tmp_path, mini_records, word_tok):
    text = mini_records[0]["question"]
    ids = word_tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text.split()) and word_tok.unk_token_id not in ids
    word_tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text, add_special_tokens=False)["input_ids"] == ids
    assert again.convert_tokens_to_ids([LATENT, PAUSE]) == word_tok.convert_tokens_to_ids([LATENT, PAUSE])
    assert again.eos_token == "<eos>" and again.pad_token == "<pad>"


def test_tokenised_once_then_read_from_cache(tmp_path, mini_records, word_tok, monkeypatch):
    path = tmp_path / "mini.json"
    write_records(mini_records, path)
    calls = counting_calls(monkeypatch, word_tok)
    first = load_tokenized(path, word_tok, COMPACT_FORMAT, cache_dir=tmp_path / "cache")
    assert len(calls) > len(mini_records), "the counter sees the tokenizer at work"
    calls.clear()
    cache_file = first.cache_files[-1]["filename"]
    stamp = (tmp_path / cache_file).stat().st_mtime_ns
    second = load_tokenized(path, word_tok, COMPACT_FORMAT, cache_dir=tmp_path / "cache")
    assert second.cache_files[-1]["filename"] == cache_file
    assert (tmp_path / cache_file).stat().st_mtime_ns == stamp, "the cached arrow file was not rewritten"
    # The same content elsewhere, with another time, is the same data: read from the cache as well.
    copy = tmp_path / "elsewhere" / "copy.json"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    assert load_tokenized(copy, word_tok, COMPACT_FORMAT, cache_dir=tmp_path / "cache").cache_files == second.cache_files
    assert calls == [], "nothing was tokenised again"
    row = second[0]
    assert word_tok.decode(row["answer_ids"]) == "= " + mini_records[0]["answer"]
    assert len(row["step_ids"]) == len(mini_records[0]["steps"])
    assert set(second.column_names) == {"question", "steps", "answer", "question_ids", "step_ids", "step_ends",
                                        "answer_ids", "answer_start"}, \
        "the text and its ids; metadata (any shape) stays in the file"


def counting_calls(monkeypatch, tokenizer) -> list:
    """Every call of the tokenizer from now on (its class's __call__ wrapped; the instance is untouched, so
    `datasets` fingerprints it as before)."""
    calls, call = [], type(tokenizer).__call__

    def counted(self, *args, **kwargs):
        calls.append(args[:1])
        return call(self, *args, **kwargs)

    monkeypatch.setattr(type(tokenizer), "__call__", counted)
    return calls


@pytest.mark.parametrize("name", ["mini.json", "mini.jsonl", "gsm.txt"])
def test_a_file_replaced_with_the_same_size_and_time_is_tokenised_anew(tmp_path, mini_records, name):
    """`cp -p` or `rsync -t` keep size and modification time: the cache must follow the content."""
    records = [{k: r[k] for k in ("question", "steps", "answer")} for r in mini_records[:12]]
    if name.endswith(".txt"):  # iCoT text holds steps without spaces
        records = [{**r, "steps": [s.replace(" ", "_") for s in r["steps"]] or ["x"]} for r in records]
    tok = build_word_tokenizer(records, ["="])
    path = tmp_path / name
    write_records(records, path)
    before = path.stat()
    first = load_tokenized(path, tok, COMPACT_FORMAT, cache_dir=tmp_path / "cache")
    write_records(records[::-1], path)  # other records, the same bytes in another order
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    second = load_tokenized(path, tok, COMPACT_FORMAT, cache_dir=tmp_path / "cache")
    assert first["question"] == [r["question"] for r in records]
    assert second["question"] == [r["question"] for r in records[::-1]] != first["question"]
    assert [tok.decode(ids) for ids in second["answer_ids"]] == [f"= {r['answer']}" for r in records[::-1]]


def test_icot_text_is_converted_and_tokenised(tmp_path, word_tok):
    path = tmp_path / "gsm.txt"
    path.write_text("Add 2 and 3?||<<2+3=5>> #### 5\nDouble 4?||<<4*2=8>> #### 8\n")
    tok = build_word_tokenizer([{"question": "Add 2 and 3? Double 4?", "steps": ["<<2+3=5>> <<4*2=8>>"], "answer": "5 8"}], ["="])
    data = load_tokenized(path, tok, COMPACT_FORMAT, cache_dir=tmp_path / "cache")
    assert len(data) == 2 and data[1]["answer"] == "8"


def test_too_long_examples_are_reported_or_dropped(tmp_path, mini_records, word_tok):
    path = tmp_path / "mini.json"
    write_records(mini_records, path)
    lengths = [len(r["question"].split()) for r in mini_records]
    limit = sorted(lengths)[len(lengths) // 2] + 8
    with pytest.raises(DataError, match="record \\d+: field 'question': the example needs \\d+ tokens.*drop_too_long"):
        load_tokenized(path, word_tok, COMPACT_FORMAT, cache_dir=tmp_path / "c", max_length=limit)
    kept = load_tokenized(path, word_tok, COMPACT_FORMAT, cache_dir=tmp_path / "c", max_length=limit, drop_too_long=True)
    assert 0 < len(kept) < len(mini_records)


def test_collated_stage_batch_needs_no_realignment_and_trains(tmp_path, mini_records, word_tok):
    path = tmp_path / "mini.json"
    write_records(mini_records, path)
    data = load_tokenized(path, word_tok, COMPACT_FORMAT, cache_dir=tmp_path / "cache")
    ids = SpecialIds.from_tokenizer(word_tok)
    method = MethodConfig(max_latent_stage=2, pad_latent_to_max=True)
    samples = [build_sample(as_tokenized_record(row), method, 1, ids) for row in data.select(range(6))]
    collate = LatentCollator(pad_id=word_tok.pad_token_id, latent_id=ids.latent)
    batch = collate(samples)
    layout = align_thoughts(batch["input_ids"], batch["attention_mask"], ids.latent, ids.start, ids.end, word_tok.pad_token_id)
    assert layout.is_identity, "same thought count: the collator already lined the thoughts up"
    assert len({len(s.prompt) for s in samples}) > 1, "questions of different lengths were lined up"
    model = tiny_model("llama", vocab_size=len(word_tok))
    engine = LatentReasoner.from_tokenizer(model, word_tok)
    loss = engine(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
    assert torch.isfinite(loss)
    prompts = collate.prompts(samples)
    assert bool(prompts["attention_mask"][:, -1].all()), "prompts are left padded"
    out = engine.generate(prompts["input_ids"], prompts["attention_mask"], max_new_tokens=3)
    assert out.num_thoughts.tolist() == [1] * 6


def test_pretrained_tokenizer_from_a_local_folder(tmp_path, word_tok):
    word_tok.save_pretrained(tmp_path / "tok")
    model = tiny_model("gpt2", vocab_size=len(word_tok))
    tokenizer = load_tokenizer(str(tmp_path / "tok"), model)
    assert LatentReasoner.from_tokenizer(model, tokenizer).latent_id == tokenizer.convert_tokens_to_ids(LATENT)
    with pytest.raises(ValueError, match=r"data.tokenizer='no/such-model': the tokenizer is not in the Hugging Face "
                                         r"cache .* \(hf download no/such-model\)"):
        load_tokenizer("no/such-model")


def test_the_question_gets_the_tokenizers_special_tokens_as_in_the_release():
    from tokenizers import processors

    from coconut.data.tokenize import PAPER_FORMAT, tokenize_record

    record = {"question": "Is Tom a lempus?", "steps": ["Tom is a terpus."], "answer": "Tom is a lempus."}
    tok = build_word_tokenizer([record])
    tok.add_special_tokens({"bos_token": "<bos>"})
    bos = tok.bos_token_id
    # A BOS-adding post-processor, as Llama's tokenizer has (GPT-2's adds nothing).
    tok._tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    row = tokenize_record(record, tok, PAPER_FORMAT)
    assert row["question_ids"][0] == bos and row["question_ids"][1:] == tok("Is Tom a lempus?\n", add_special_tokens=False)["input_ids"]
    assert bos not in row["step_ids"][0] and bos not in row["answer_ids"], "steps and answer continue the sequence"


@pytest.mark.parametrize("fmt_name, answer, mark", [("paper", "Tom is #1", "#"), ("compact", "x = 3", "=")])
def test_an_answer_holding_the_scoring_mark_is_refused(tmp_path, fmt_name, answer, mark):
    """Scoring reads what follows the last mark of a generation (coconut/data/scoring.py): such an answer could
    never be scored right."""
    from coconut.data.scoring import answer_correct
    from coconut.data.tokenize import TEXT_FORMATS

    fmt = TEXT_FORMATS[fmt_name]
    assert not answer_correct(f"{fmt.answer_prefix}{answer}", answer, fmt.answer_prefix), "what the check prevents"
    good = {"question": "q", "steps": ["s"], "answer": "a"}
    path = tmp_path / "d.json"
    write_records([good, {**good, "answer": answer}], path)
    tok = build_word_tokenizer([good, {**good, "answer": answer}], ["="])
    with pytest.raises(DataError) as err:
        load_tokenized(path, tok, fmt, cache_dir=tmp_path / "cache")
    assert str(err.value).startswith(f"{path}: record 1: field 'answer': contains {mark!r}")
    assert not (tmp_path / "cache").exists(), "refused before anything is cached"
    other = "compact" if fmt_name == "paper" else "paper"
    assert len(load_tokenized(path, tok, TEXT_FORMATS[other], cache_dir=tmp_path / "cache")) == 2, \
        "the other format's mark is ordinary text"


@pytest.mark.parametrize("field", ["question", "steps[0]", "answer"])
def test_text_holding_a_special_token_of_the_tokenizer_is_refused(tmp_path, field):
    good = {"question": "Is Tom a wumpus ?", "steps": ["Tom is a wumpus ."], "answer": "Yes"}
    tok = build_word_tokenizer([good], ["="])
    bad = {**good, "steps": list(good["steps"])}
    if field == "steps[0]":
        bad["steps"][0] += f" {tok.eos_token}"
    else:
        bad[field] += f" {tok.eos_token}"
    assert tok.eos_token_id in tok(f"a {tok.eos_token}", add_special_tokens=False)["input_ids"], "read as EOS"
    path = tmp_path / "d.jsonl"
    write_records([good, good, bad], path)
    with pytest.raises(DataError) as err:
        load_tokenized(path, tok, COMPACT_FORMAT, cache_dir=tmp_path / "cache")
    assert str(err.value).startswith(f"{path}: record 2: field '{field}': contains {tok.eos_token}, a special token")


def test_the_word_vocabulary_is_what_the_pre_tokenizer_splits_off_each_text():
    # words_of splits at spaces and pre-tokenizes each distinct piece once; the words must be those of the
    # pre-tokenizer over every whole text, whatever the whitespace and punctuation.
    from coconut.data.word_tokenizer import _pre_tokenizer, words_of

    texts = ["Every c1 is a c2.", "a\x1cb c", "x\u00a0y,z", "  two  spaces\tand\ttabs\n", "", " ", "(p)[q] ### 12,5"]
    pre = _pre_tokenizer()
    assert words_of(texts) == {word for text in texts for word, _ in pre.pre_tokenize_str(text)}
