"""Loading records: the three formats, and a clear error for every kind of bad data."""

import json

import pytest

from coconut.data.icot_text import parse_icot_line
from coconut.data.records import DataError, load_records, write_records
from tests.shared_data import shared_file

GOOD = {"question": "Is Tom a wumpus?", "steps": ["Tom is a wumpus."], "answer": "Yes", "root": 0}


def write_json(tmp_path, records, name="data.json"):
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return path


def test_json_and_jsonl_keep_metadata(tmp_path):
    assert load_records(write_json(tmp_path, [GOOD]))[0]["root"] == 0
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(GOOD) + "\n")
    assert len(load_records(path)) == 2


@pytest.mark.parametrize("record, field, message", [
    ({"steps": [], "answer": "a"}, "question", "missing"),
    ({"question": "q", "answer": "a"}, "steps", "missing"),
    ({"question": "q", "steps": []}, "answer", "missing"),
    ({"question": "  ", "steps": [], "answer": "a"}, "question", "empty"),
    ({"question": 3, "steps": [], "answer": "a"}, "question", "expected a string, got int"),
    ({"question": "q", "steps": "one step", "answer": "a"}, "steps", "expected a list of strings, got str"),
    ({"question": "q", "steps": ["ok", 7], "answer": "a"}, "steps[1]", "expected a string, got int"),
    ({"question": "q", "steps": [], "answer": ""}, "answer", "empty"),
])
def test_bad_records_name_file_record_and_field(tmp_path, record, field, message):
    path = write_json(tmp_path, [GOOD, GOOD, record])
    with pytest.raises(DataError) as err:
        load_records(path)
    text = str(err.value)
    assert str(path) in text and "record 2" in text and f"field '{field}'" in text and message in text
    assert err.value.index == 2 and err.value.field == field


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_records(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"question": "q",')
    with pytest.raises(DataError, match="not valid JSON \\(line 1"):
        load_records(broken)
    with pytest.raises(DataError, match="expected a JSON list"):
        load_records(write_json(tmp_path, GOOD))
    lines = tmp_path / "bad.jsonl"
    lines.write_text(json.dumps(GOOD) + "\n{oops\n")
    with pytest.raises(DataError, match="record 1: line 2 is not valid JSON"):
        load_records(lines)
    with pytest.raises(DataError, match="record 0: expected an object"):
        load_records(write_json(tmp_path, ["just text"]))
    with pytest.raises(DataError, match="unknown format '.csv'"):
        (tmp_path / "x.csv").write_text("")
        load_records(tmp_path / "x.csv")


def test_icot_line_conversion():
    # As the release reads it: steps split on single spaces, commas kept (scoring removes them on both sides).
    record = parse_icot_line("Pay 1,200 for 3?||<<1,200/3=400>> <<400*2=800>> #### 1,600")
    assert record == {"question": "Pay 1,200 for 3?", "steps": ["<<1,200/3=400>>", "<<400*2=800>>"], "answer": "1,600"}
    # An empty chain of thought is one empty step (the paper format writes it as a bare newline), not none.
    assert parse_icot_line("How many?|| #### 9")["steps"] == [""]
    with pytest.raises(DataError, match="record 4: field 'answer': no '####'"):
        parse_icot_line("q||<<1+1=2>> 2", "f.txt", 4)
    with pytest.raises(DataError, match="field 'question': no '\\|\\|'"):
        parse_icot_line("q <<1+1=2>> #### 2")


def test_icot_sample_file_converts():
    records = load_records(shared_file("gsm8k_icot_valid.txt"))
    assert len(records) == 500
    assert records[0]["steps"] == ["<<4-2=2>>", "<<2/.5=4>>", "<<12/4=3>>", "<<100*3=300>>"]
    assert records[0]["answer"] == "300"
    assert sum("," in r["answer"] for r in records) == 4, "commas kept, as the release trains on them"
    assert sum(r["steps"] == [""] for r in records) == 6, "the 6 records with an empty chain of thought are kept"
    assert all(s.startswith("<<") and s.endswith(">>") for r in records for s in r["steps"] if s)


def test_write_is_atomic_and_round_trips(tmp_path):
    path = tmp_path / "out" / "records.jsonl"
    write_records([GOOD, GOOD], path)
    assert load_records(path) == [GOOD, GOOD]
    assert not list(path.parent.glob("*.tmp"))
