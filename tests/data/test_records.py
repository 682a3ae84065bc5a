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


@pytest.mark.parametrize("token", ["<|latent|>", "<|start-latent|>", "<|end-latent|>", "<|pause|>"])
@pytest.mark.parametrize("field", ["question", "steps[1]", "answer"])
def test_a_reserved_token_in_the_text_names_the_record_and_field(tmp_path, token, field):
    # The engine would take the token for a thought (or a pause) at the first training step, far from the record.
    bad = {"question": "Is Tom a wumpus?", "steps": ["Tom is a yumpus.", "Every yumpus is a wumpus."], "answer": "Yes"}
    if field == "steps[1]":
        bad["steps"][1] += f" {token}"
    else:
        bad[field] = f"{bad[field]} {token}"
    path = write_json(tmp_path, [GOOD, bad])
    with pytest.raises(DataError) as err:
        load_records(path)
    assert str(err.value).startswith(f"{path}: record 1: field '{field}': contains {token}")
    assert err.value.index == 1 and err.value.field == field


def test_a_token_that_only_looks_like_one_is_kept(tmp_path):
    # Only the exact markers are reserved: `<|latent` without its closing bar, or `|` alone, is ordinary text.
    record = {"question": "p1 : c17 | c4 <|latent", "steps": ["a | b"], "answer": "c4"}
    assert load_records(write_json(tmp_path, [record])) == [record]


@pytest.mark.parametrize("name, content", [("train.json", b"[]"), ("train.jsonl", b"\n\n"), ("train.txt", b" \n")])
def test_a_file_without_records_is_refused(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"^{path}: no records in it"):
        load_records(path)


@pytest.mark.parametrize("name", ["data.json", "data.jsonl", "data.txt"])
def test_a_file_not_in_utf8_names_the_line(tmp_path, name):
    path = tmp_path / name
    good = json.dumps([GOOD]) if name == "data.json" else json.dumps(GOOD) if name == "data.jsonl" else "q||a #### 1"
    # Latin-1 "é" (0xe9) on the second line: a file saved in a legacy encoding.
    path.write_bytes(good.encode()[:-1] + b"\n" + "café".encode("latin-1") + good.encode()[-1:])
    with pytest.raises(DataError, match=rf"^{path}: not UTF-8 text \(line 2, byte \d+: b'\\xe9'\); save it as UTF-8$"):
        load_records(path)


def test_a_utf8_bom_is_accepted(tmp_path):
    # Editors on Windows save UTF-8 with a byte-order mark; json.loads alone refuses it.
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([GOOD]).encode())
    assert load_records(path) == [GOOD]


ICOT = [{"question": "Pay 1,200 for 3?", "steps": ["<<1,200/3=400>>", "<<400*2=800>>"], "answer": "1,600"},
        {"question": "How many?", "steps": [""], "answer": "9"}]


def test_txt_is_written_as_icot_text_and_reads_back(tmp_path):
    path = tmp_path / "out.txt"
    write_records(ICOT, path)
    assert path.read_text() == "Pay 1,200 for 3?||<<1,200/3=400>> <<400*2=800>> #### 1,600\nHow many?|| #### 9\n"
    assert load_records(path) == ICOT


def test_the_released_icot_file_round_trips(tmp_path):
    records = load_records(shared_file("gsm8k_icot_valid.txt"))
    write_records(records, tmp_path / "again.txt")
    assert load_records(tmp_path / "again.txt") == records


@pytest.mark.parametrize("record, field, message", [
    (GOOD, "root", "iCoT text holds only question, steps, answer; root would be lost"),
    ({"question": "q", "steps": ["Tom is a wumpus."], "answer": "Yes"}, "steps",
     "['Tom is a wumpus.'] would read back from iCoT text as ['Tom', 'is', 'a', 'wumpus.']"),
    ({"question": "q", "steps": [], "answer": "1"}, "steps", "[] would read back from iCoT text as ['']"),
    ({"question": "a||b", "steps": ["x"], "answer": "1"}, "question", "'a||b' would read back from iCoT text as 'a'"),
    ({"question": "q", "steps": ["x"], "answer": "1 ## 2"}, "answer", "'1 ## 2' would read back"),
    ({"question": "two\nlines", "steps": ["x"], "answer": "1"}, "question", "as 'more than one line'"),
])
def test_txt_refuses_what_icot_text_cannot_hold_and_writes_nothing(tmp_path, record, field, message):
    path = tmp_path / "out.txt"
    with pytest.raises(DataError) as err:
        write_records(ICOT + [record], path)
    assert str(err.value).startswith(f"{path}: record 2: field '{field}': ") and message in str(err.value)
    assert str(err.value).endswith("write .json or .jsonl")
    assert list(tmp_path.iterdir()) == [], "nothing written, not even a temporary file"


@pytest.mark.parametrize("name", ["out.csv", "out.yaml", "out"])
def test_an_unknown_suffix_is_refused_before_anything_is_written(tmp_path, name):
    path = tmp_path / "new" / name
    with pytest.raises(DataError, match=f"^{path}: (unknown format|no suffix).*written as .json, .jsonl or iCoT .txt"):
        write_records([GOOD], path)
    assert not (tmp_path / "new").exists(), "not even the folder"


def test_convert_json_to_txt_through_the_command(tmp_path, capsys):
    # The bug this guards: `data convert a.json b.txt` wrote JSON into a .txt that could not be read back.
    from coconut.cli.main import main

    source = write_json(tmp_path, ICOT)
    assert main(["data", "convert", str(source), str(tmp_path / "b.txt")]) == 0
    assert load_records(tmp_path / "b.txt") == ICOT
    assert main(["data", "convert", str(source), str(tmp_path / "b.csv")]) != 0
    assert "b.csv: unknown format '.csv'" in capsys.readouterr().err and not (tmp_path / "b.csv").exists()


GRAPH = {"question": "Is Tom a wumpus?", "steps": ["Tom is a wumpus."], "answer": "Yes",
         "idx_to_symbol": ["Tom", "wumpus", "yumpus"], "edges": [[0, 1], [1, 2]], "root": 0, "target": 1,
         "neg_target": 2}


@pytest.mark.parametrize("change, field, message", [
    ({"idx_to_symbol": 5}, "idx_to_symbol", "expected a list of node names, got int"),
    ({"idx_to_symbol": ["Tom", 3, "yumpus"]}, "idx_to_symbol[1]", "expected a string, got int"),
    ({"edges": "0 1"}, "edges", "expected a list of [parent, child] pairs, got str"),
    ({"edges": None}, "edges", "expected a list of [parent, child] pairs, got NoneType"),
    ({"edges": [[0, 1], [0, 1, 2]]}, "edges[1]", "expected a [parent, child] pair, got [0, 1, 2]"),
    ({"edges": [[0, 7]]}, "edges[0][1]", "expected a node index (an integer from 0 to 2: idx_to_symbol names 3"),
    ({"root": "0"}, "root", "got '0'"),
    ({"root": True}, "root", "got True"),
    ({"target": 1.5}, "target", "got 1.5"),
    ({"target": -1}, "target", "got -1"),
    ({"neg_target": 3}, "neg_target", "got 3"),
    ({"generated": "yes"}, "generated", "expected an object with generator (a string) and seed (an integer)"),
    ({"generated": {"generator": "prosqa", "seed": "0"}}, "generated", "expected an object with generator"),
])
def test_mistyped_graph_metadata_names_the_record_and_field(tmp_path, change, field, message):
    """The graph fields are read by `coconut data stats` and the analysis: a wrong one is the data's fault."""
    path = write_json(tmp_path, [GRAPH, {**GRAPH, **change}])
    with pytest.raises(DataError) as err:
        load_records(path)
    assert str(err.value).startswith(f"{path}: record 1: field '{field}': ") and message in str(err.value)


def test_metadata_other_than_the_graph_is_kept_as_it_is(tmp_path):
    record = {**GRAPH, "source": {"page": [1, [2, 3]], "note": None}, "idx": "7"}
    assert load_records(write_json(tmp_path, [record])) == [record]


@pytest.mark.parametrize("name", ["deep.json", "deep.jsonl"])
def test_json_nested_too_deeply_is_a_data_error(tmp_path, name):
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / name
    if name == "deep.json":
        path.write_text(f"[{json.dumps(GOOD)}, {deep}]")
        where = f"{path}: the file holds JSON nested too deeply"
    else:
        path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "x": "X"}).replace('"X"', deep) + "\n")
        where = f"{path}: record 1: line 2 holds JSON nested too deeply"
    with pytest.raises(DataError) as err:
        load_records(path)
    assert str(err.value).startswith(where)


def test_metadata_nested_past_the_bound_names_its_field(tmp_path):
    from coconut.data.metadata import MAX_DEPTH

    fine = {**GOOD, "meta": json.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)}
    assert load_records(write_json(tmp_path, [fine])) == [fine]
    deep = {**GOOD, "meta": json.loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))}
    with pytest.raises(DataError, match=f"record 1: field 'meta': nested more than {MAX_DEPTH} levels deep"):
        load_records(write_json(tmp_path, [GOOD, deep]))


def test_the_same_bytes_are_checked_once_and_other_bytes_anew(tmp_path, monkeypatch):
    import coconut.data.records as records_module

    checked = []
    real = records_module.check_record
    monkeypatch.setattr(records_module, "check_record", lambda r, p, i: checked.append(i) or real(r, p, i))
    path = tmp_path / "train.json"
    write_records([{"question": "q0", "steps": ["s"], "answer": "a"},
                   {"question": "q1", "steps": ["s"], "answer": "b"}], path)
    first = load_records(path)
    again = load_records(path)
    assert checked == [0, 1], "read a second time: not parsed and checked again"
    assert again == first and again is not first, "a new list each time"
    again.pop()
    assert len(load_records(path)) == 2, "what a caller does to its list does not reach the next one"
    write_records([{"question": "q2", "steps": ["s"], "answer": "c"}], path)
    assert [r["question"] for r in load_records(path)] == ["q2"] and checked == [0, 1, 0]
