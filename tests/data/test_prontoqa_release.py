"""`coconut data prontoqa-convert`: ProntoQA's raw file into the release's split records, on raw files made here."""

import json

import pytest

from coconut.cli.main import main
from coconut.config import DataConfig
from coconut.data.errors import DataError
from coconut.data.prontoqa_release import convert_prontoqa
from coconut.data.provenance import data_provenance


def raw_entry(i: int, sentences: int = 5) -> dict:
    return {"test_example": {
        "question": f"Every wumpus{i} is a yumpus. Max is a wumpus{i}.",
        "query": f"True or false: Max is a yumpus{i}.",
        "chain_of_thought": [f"s{i}.{k}" for k in range(sentences)],
        "answer": "True" if i % 2 else "False",
    }, "in_context_examples": []}


def write_raw(path, n: int, **kw):
    # Ids out of sorted order: the release keeps the file's order, so must we.
    path.write_text(json.dumps({f"example{(3 * i) % n}": raw_entry(i, **kw) for i in range(n)}))
    return path


def test_records_are_built_as_the_release_builds_them(tmp_path):
    raw = write_raw(tmp_path / "5hop_0shot_random.json", 7)
    out = tmp_path / "prontoqa"
    written = convert_prontoqa(raw, out, train_size=4, valid_size=2)
    assert {p.name: n for p, n in written.items()} == {"prontoqa_train.json": 4, "prontoqa_valid.json": 2,
                                                      "prontoqa_test.json": 1}
    train = json.loads((out / "prontoqa_train.json").read_text())
    assert train[1] == {
        "question": "Every wumpus1 is a yumpus. Max is a wumpus1. True or false: Max is a yumpus1.",
        "steps": ["s1.0 s1.1", "s1.2 s1.3", "s1.4"],  # sentences in pairs; an odd last one alone
        "answer": "True",
    }
    valid = json.loads((out / "prontoqa_valid.json").read_text())
    test = json.loads((out / "prontoqa_test.json").read_text())
    assert [r["answer"] for r in train + valid + test] == ["False", "True"] * 3 + ["False"]
    assert [r["question"].split()[1] for r in valid + test] == ["wumpus4", "wumpus5", "wumpus6"], "file order kept"
    # The data set's config finds the converted files, and provenance says where they came from.
    prov = data_provenance(DataConfig(generator="prontoqa", data_dir=str(out)))
    assert {s: (e["origin"], e["records"], e["split"]) for s, e in prov.items()} == {
        "train": ("converted", 4, "train"), "val": ("converted", 2, "valid"), "test": ("converted", 1, "test")}
    assert prov["train"]["from"] == str(raw)


def test_the_release_split_sizes_are_the_defaults(tmp_path, capsys):
    raw = write_raw(tmp_path / "raw.json", 9203, sentences=2)
    assert main(["data", "prontoqa-convert", str(raw), "--to", str(tmp_path / "out")]) == 0
    counts = {name: len(json.loads((tmp_path / "out" / name).read_text()))
              for name in ("prontoqa_train.json", "prontoqa_valid.json", "prontoqa_test.json")}
    assert counts == {"prontoqa_train.json": 9000, "prontoqa_valid.json": 200, "prontoqa_test.json": 3}
    assert "wrote 9000 records to" in capsys.readouterr().out
    first_valid = json.loads((tmp_path / "out" / "prontoqa_valid.json").read_text())[0]
    assert first_valid["steps"] == ["s9000.0 s9000.1"], "valid starts at entry 9000"


def test_bad_raw_entries_name_the_file_the_entry_and_the_field(tmp_path, capsys):
    raw = tmp_path / "raw.json"
    entries = {f"e{i}": raw_entry(i) for i in range(5)}
    del entries["e3"]["test_example"]["query"]
    raw.write_text(json.dumps(entries))
    with pytest.raises(DataError, match=r"raw.json: record 3: field 'test_example.query': missing"):
        convert_prontoqa(raw, tmp_path / "out", train_size=2, valid_size=1)
    assert not (tmp_path / "out").exists(), "nothing is written from a bad file"
    assert main(["data", "prontoqa-convert", str(tmp_path / "absent.json"), "--to", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip().startswith(
        f"coconut data prontoqa-convert: {tmp_path / 'absent.json'}: no such file")


def test_too_few_examples_for_a_test_split_is_an_error(tmp_path):
    raw = write_raw(tmp_path / "raw.json", 5)
    with pytest.raises(DataError, match="5 examples leave no test split after 4 train and 1 valid"):
        convert_prontoqa(raw, tmp_path / "out", train_size=4, valid_size=1)
