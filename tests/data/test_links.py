"""Broken symbolic links among the data paths are refused, naming the link and its target; good ones work."""

import json
import os

import pytest

from coconut.config import DataConfig
from coconut.data.errors import DataError
from coconut.data.files import ensure_data
from coconut.data.records import load_records

RECORD = {"question": "q", "steps": ["s"], "answer": "a"}


def tiny(data_dir, **extra) -> DataConfig:
    return DataConfig(generator="prosqa-mini", data_dir=str(data_dir), train_size=3, val_size=3, test_size=3, **extra)


def listing(folder):
    return sorted((p.name, p.is_symlink()) for p in folder.iterdir())


@pytest.mark.parametrize("name", ["train.json", "prosqa_train.json", "test.json"])
def test_a_dangling_split_link_is_refused_not_generated_over(tmp_path, name):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / name).symlink_to(tmp_path / "released" / name)
    before = listing(folder)
    with pytest.raises(DataError) as err:
        ensure_data(tiny(folder))
    assert str(err.value).startswith(f"{folder / name}: is a symbolic link to {tmp_path / 'released' / name}, which "
                                     f"does not exist")
    assert listing(folder) == before, "nothing generated, the link left as it was"
    with pytest.raises(DataError, match="which does not exist"):
        load_records(folder / name)


def test_a_link_loop_is_refused_and_called_a_loop(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.json").symlink_to(folder / "other.json")
    (folder / "other.json").symlink_to(folder / "train.json")
    with pytest.raises(DataError) as err:
        ensure_data(tiny(folder))
    assert str(err.value).startswith(f"{folder / 'train.json'}: is a symbolic link to {folder / 'other.json'} that "
                                     f"loops")
    assert (folder / "train.json").is_symlink() and not (folder / "val.json").exists()


def test_a_named_file_or_data_dir_behind_a_broken_link_is_refused(tmp_path):
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(DataError, match=f"^{tmp_path / 'gone'}: is a symbolic link to {tmp_path / 'nowhere'}, which "
                                        f"does not exist \\(a folder of data.data_dir"):
        ensure_data(tiny(tmp_path / "gone" / "data"))
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "mine.json").symlink_to(tmp_path / "missing.json")
    with pytest.raises(DataError, match=f"^{folder / 'mine.json'}: is a symbolic link to .*missing.json"):
        ensure_data(tiny(folder, train_file=str(folder / "mine.json")))
    assert listing(folder) == [("mine.json", True)]


def test_a_good_link_is_read_through(tmp_path):
    real = tmp_path / "released" / "prosqa_train.json"
    real.parent.mkdir()
    real.write_text(json.dumps([RECORD] * 2))
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "prosqa_train.json").symlink_to(real)
    os.symlink(real.parent, tmp_path / "linked_dir")
    files = ensure_data(tiny(folder))
    assert files["train"] == folder / "prosqa_train.json" and (folder / "prosqa_train.json").is_symlink()
    assert load_records(files["train"]) == [RECORD] * 2
    assert load_records(tmp_path / "linked_dir" / "prosqa_train.json") == [RECORD] * 2
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".source.json")) == [
        "prosqa_train.json", "test.json", "val.json"], "the missing splits generated beside the link"
