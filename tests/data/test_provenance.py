"""Where the split files are found (our names and the releases'), data.allow_generated, and data_provenance."""

import hashlib
import json

import pytest

from coconut.config import DataConfig
from coconut.data.errors import DataError
from coconut.data.files import ensure_data
from coconut.data.provenance import data_provenance, sidecar_path
from coconut.data.release import RELEASES, ReleaseFile
from coconut.experiment import load_config

RECORD = {"question": "q", "steps": ["s"], "answer": "a"}


def write(path, n=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([RECORD] * n))
    return path


def test_files_default_to_our_names_where_there_is_nothing(tmp_path):
    assert DataConfig(data_dir=str(tmp_path)).files() == {s: tmp_path / f"{s}.json" for s in ("train", "val", "test")}


@pytest.mark.parametrize("names", [
    ("prosqa_train.json", "prosqa_valid.json", "prosqa_test.json"),
    ("prontoqa_train.json", "prontoqa_valid.json", "prontoqa_test.json"),
    ("gsm_train.json", "gsm_valid.json", "gsm_test.json"),
    ("train.txt", "valid.txt", "test.txt"),
    ("train.json", "valid.json", "test.json"),
])
def test_files_find_the_release_names_where_a_user_drops_them(tmp_path, names):
    for name in names:
        write(tmp_path / name)
    files = DataConfig(data_dir=str(tmp_path)).files()
    assert [files[s] for s in ("train", "val", "test")] == [tmp_path / n for n in names]


def test_a_named_file_wins_and_two_candidates_are_an_error(tmp_path):
    write(tmp_path / "prosqa_valid.json")
    other = write(tmp_path / "elsewhere" / "v.json")
    assert DataConfig(data_dir=str(tmp_path), val_file=str(other)).files()["val"] == other
    write(tmp_path / "val.json")  # e.g. generated earlier, then the release dropped beside it
    with pytest.raises(DataError, match=r"holds val.json and prosqa_valid.json for the val split; remove all but "
                                        r"one, or name one with data.val_file"):
        DataConfig(data_dir=str(tmp_path)).files()


def test_the_table1_data_sets_refuse_to_generate(tmp_path):
    assert load_config("prosqa_coconut").data.allow_generated is False
    assert load_config("prontoqa_coconut").data.allow_generated is False
    assert load_config("demo_coconut").data.allow_generated is True, "the demo's data is generated"
    data = DataConfig(generator="prosqa", allow_generated=False, data_dir=str(tmp_path / "prosqa"))
    with pytest.raises(DataError) as err:
        ensure_data(data)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'prosqa' / 'train.json'}: no such file (nor prosqa_train.json")
    assert f"run `coconut data download prosqa --to {tmp_path / 'prosqa'}`" in message
    assert "or set data.allow_generated=true to train on generated data of the same distribution" in message
    assert not (tmp_path / "prosqa").exists(), "nothing is generated"
    pronto = DataConfig(generator="prontoqa", allow_generated=False, data_dir="data/prontoqa",
                        train_file=str(tmp_path / "t.json"))
    with pytest.raises(DataError, match=r"t.json: no such file; make 5hop_0shot_random.json as `coconut data download "
                                        r"prontoqa` explains, then run `coconut data prontoqa-convert "
                                        r"5hop_0shot_random.json`, or set data.allow_generated=true"):
        ensure_data(pronto)


def test_generated_files_record_how_and_provenance_reads_it(tmp_path):
    data = DataConfig(generator="prosqa-mini", data_dir=str(tmp_path), train_size=6, val_size=4, test_size=3, seed=2)
    files = ensure_data(data)
    source = json.loads(sidecar_path(files["val"]).read_text())
    assert (source["origin"], source["generator"], source["seed"], source["size"]) == (
        "generated", "prosqa-mini", 2001, 4), "the val split's seed is data.seed * 1000 + 1"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{s}.json" for s in ("train", "val", "test")] + [f"{s}.json.source.json" for s in ("train", "val", "test")])
    prov = data_provenance(data)
    for split, size, seed in (("train", 6, 2000), ("val", 4, 2001), ("test", 3, 2002)):
        entry = prov[split]
        assert entry["path"] == str(files[split])
        assert entry["sha256"] == hashlib.sha256(files[split].read_bytes()).hexdigest()
        assert (entry["records"], entry["origin"], entry["generator"], entry["seed"]) == (
            size, "generated", "prosqa-mini", seed)
        assert entry["command"] == f"coconut data prosqa-mini --n {size} --seed {seed} --out {files[split]}"
    # The recorded command makes the same file again.
    from coconut.cli.main import main

    assert main(prov["val"]["command"].split()[1:-1] + [str(tmp_path / "again.json")]) == 0
    assert json.loads((tmp_path / "again.json").read_text()) == json.loads(files["val"].read_text())


def test_a_file_replaced_by_hand_is_provided_not_generated(tmp_path):
    data = DataConfig(generator="prosqa-mini", data_dir=str(tmp_path), train_size=3, val_size=3, test_size=3)
    files = ensure_data(data)
    write(files["train"], n=5)  # the sidecar's sha256 no longer matches
    entry = data_provenance(data)["train"]
    assert (entry["origin"], entry["records"]) == ("provided", 5) and "generator" not in entry


def test_released_files_are_recognised_by_checksum_and_a_missing_test_split_is_reported(tmp_path, monkeypatch):
    train = write(tmp_path / "prosqa_train.json", n=2)
    sha = hashlib.sha256(train.read_bytes()).hexdigest()
    monkeypatch.setitem(RELEASES, "fake", (ReleaseFile("prosqa_train.json", "https://example.invalid/t.json", sha),))
    write(tmp_path / "valid.json")
    data = DataConfig(generator=None, data_dir=str(tmp_path), train_file=str(train))
    prov = data_provenance(data)
    assert prov["train"] == {"path": str(train), "sha256": sha, "records": 2, "origin": "released", "dataset": "fake",
                             "url": "https://example.invalid/t.json"}
    assert prov["val"]["origin"] == "provided" and prov["val"]["path"] == str(tmp_path / "valid.json")
    assert prov["test"] == {"path": str(tmp_path / "test.json"), "origin": "missing"}


def test_generated_data_is_never_written_under_a_released_files_name(tmp_path):
    from coconut.data.release import RELEASE_NAMES

    assert {f.name for files in RELEASES.values() for f in files} <= RELEASE_NAMES
    assert {"prontoqa_train.json", "gsm_valid.json"} <= RELEASE_NAMES and "train.json" not in RELEASE_NAMES
    folder = tmp_path / "prosqa"
    data = DataConfig(generator="prosqa-mini", data_dir=str(folder), train_file=str(folder / "prosqa_train.json"),
                      train_size=3, val_size=3, test_size=3)
    with pytest.raises(DataError) as err:
        ensure_data(data)
    assert str(err.value).startswith(f"{folder / 'prosqa_train.json'}: no such file, and prosqa_train.json is a "
                                     f"released file's name: generated data is never written under it")
    assert "run `coconut data download prosqa" in str(err.value) and "data.train_file" in str(err.value)
    assert not folder.exists(), "nothing generated"


def test_generated_records_carry_the_mark_and_still_load_and_tokenise(tmp_path):
    from coconut.data.generated import MARKER
    from coconut.data.records import load_records
    from coconut.data.tokenize import COMPACT_FORMAT, load_tokenized
    from coconut.data.word_tokenizer import build_word_tokenizer

    data = DataConfig(generator="prosqa-mini", data_dir=str(tmp_path), train_size=5, val_size=3, test_size=3,
                      seed=4, render="phrase")
    records = load_records(ensure_data(data)["train"])
    assert [r[MARKER] for r in records] == [{"generator": "prosqa-mini", "seed": 4000, "render": "phrase"}] * 5
    rows = load_tokenized(tmp_path / "train.json", build_word_tokenizer(records, ["="]), COMPACT_FORMAT,
                          cache_dir=tmp_path / "cache")
    assert rows["question"] == [r["question"] for r in records] and MARKER not in rows.column_names


def copy_without_sidecar(files, folder):
    """What `cp train.json prosqa_train.json` does: the records travel, the sidecar stays behind."""
    folder.mkdir()
    names = {"train": "prosqa_train.json", "val": "prosqa_valid.json", "test": "prosqa_test.json"}
    for split, path in files.items():
        (folder / names[split]).write_bytes(path.read_bytes())
    return {split: folder / name for split, name in names.items()}


def test_a_generated_file_copied_to_a_released_name_is_still_generated(tmp_path):
    files = ensure_data(DataConfig(generator="prosqa-mini", data_dir=str(tmp_path / "gen"), train_size=4,
                                   val_size=3, test_size=3, seed=1))
    copies = copy_without_sidecar(files, tmp_path / "prosqa")
    table1 = DataConfig(generator="prosqa", allow_generated=False, data_dir=str(tmp_path / "prosqa"))
    prov = data_provenance(table1)
    assert {k: prov["train"][k] for k in ("path", "origin", "generator", "seed", "records")} == {
        "path": str(copies["train"]), "origin": "generated", "generator": "prosqa-mini", "seed": 1000, "records": 4}
    with pytest.raises(DataError) as err:
        ensure_data(table1)
    message = str(err.value)
    assert message.startswith(f"{copies['train']}: record 0: field 'generated': marks the file as generated data "
                              f"(prosqa-mini, seed 1000), and data.allow_generated=false takes released data only")
    assert "coconut data download prosqa" in message and "\n" not in message


def test_a_table1_run_refuses_a_generated_file_its_sidecar_names(tmp_path):
    """A generated train.json from an earlier run with allow_generated=true, in the folder a Table 1 run reads."""
    from coconut.data.provenance import write_with_source

    folder = tmp_path / "prosqa"
    for split in ("train", "val", "test"):  # unmarked records (as an older version wrote them), with sidecars
        write_with_source([RECORD], folder / f"{split}.json", {"origin": "generated", "generator": "prosqa", "seed": 0})
    with pytest.raises(DataError, match=f"^{folder / 'train.json'}: is generated data \\(prosqa, seed 0: its sidecar "
                                        f"train.json.source.json says so\\), and data.allow_generated=false"):
        ensure_data(DataConfig(generator="prosqa", allow_generated=False, data_dir=str(folder)))
    assert ensure_data(DataConfig(generator="prosqa", data_dir=str(folder)))["train"] == folder / "train.json", \
        "data.allow_generated=true takes it"


def test_a_table1_run_takes_released_and_provided_files(tmp_path, monkeypatch):
    folder = tmp_path / "prosqa"
    train = write(folder / "prosqa_train.json", n=2)
    monkeypatch.setitem(RELEASES, "fake", (ReleaseFile("prosqa_train.json", "https://example.invalid/t.json",
                                                       hashlib.sha256(train.read_bytes()).hexdigest()),))
    write(folder / "prosqa_valid.json")
    write(folder / "prosqa_test.json")
    files = ensure_data(DataConfig(generator="prosqa", allow_generated=False, data_dir=str(folder)))
    assert files["train"] == train and files["val"] == folder / "prosqa_valid.json"


def test_two_runs_generating_the_same_file_at_once_each_put_a_whole_file_in_place(tmp_path, monkeypatch):
    """A second writer starts and finishes while the first is between its records and its rename (two runs of a
    sweep started at once): neither loses its staged file to the other, and what lies there is whole."""
    import coconut.data.provenance as provenance
    from coconut.data.generators import generate
    from coconut.data.records import load_records

    path = tmp_path / "train.json"
    first, second = generate("prosqa-mini", 5, 0), generate("prosqa-mini", 7, 1)
    real = provenance.file_digests
    calls = []

    def digests_then_the_other_run(file):
        calls.append(file)
        if len(calls) == 1:  # the first writer has staged its records; the second one runs whole now
            provenance.write_with_source(second, path, {"origin": "generated"})
        return real(file)

    monkeypatch.setattr(provenance, "file_digests", digests_then_the_other_run)
    provenance.write_with_source(first, path, {"origin": "generated"})
    assert load_records(path) == first  # the first writer renamed last: its own records, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.json", "train.json.source.json"]  # nothing staged left
