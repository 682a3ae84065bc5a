"""A generated split file already in data_dir is reused only when the config would generate the same distribution:
another generator, rendering, depth or distractor is a DataError naming the file and the field, raised before
anything is generated or written."""

import json

import pytest

from coconut.config import DataConfig
from coconut.data.errors import DataError
from coconut.data.files import ensure_data
from coconut.data.provenance import sidecar_path

SIZES = dict(train_size=6, val_size=3, test_size=3)


def config(folder, **options) -> DataConfig:
    return DataConfig(data_dir=str(folder), **{"generator": "prosqa-mini", **SIZES, **options})


def snapshot(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.parametrize("made, asked, field, wrote", [
    (dict(), dict(distractor="matched"), "distractor", "data.distractor=any"),
    (dict(distractor="matched"), dict(), "distractor", "data.distractor=matched"),
    (dict(render="phrase"), dict(), "render", "data.render=phrase"),
    (dict(), dict(render="words"), "render", "data.render=compact"),
    (dict(), dict(generator="prosqa"), "generator", "data.generator=prosqa-mini"),
    (dict(generator="prosqa-deep", depth=3), dict(generator="prosqa-deep"), "depth", "data.depth=3"),
])
def test_a_generated_file_of_another_distribution_is_refused_by_its_sidecar(tmp_path, made, asked, field, wrote):
    files = ensure_data(config(tmp_path, **made))
    before = snapshot(tmp_path)
    with pytest.raises(DataError) as error:
        ensure_data(config(tmp_path, **asked))
    message = str(error.value)
    assert message.startswith(f"{files['train']}: field '{field}': ")
    assert f"set {wrote} to train on it" in message and "sidecar train.json.source.json" in message
    assert snapshot(tmp_path) == before  # nothing rewritten, nothing added


def test_the_records_mark_speaks_where_the_sidecar_is_lost(tmp_path):
    files = ensure_data(config(tmp_path))
    for path in files.values():
        sidecar_path(path).unlink()
    with pytest.raises(DataError, match=r"train\.json: record 0: field 'distractor': generated with distractor any "
                                        r"\(its records' mark says so\), but the config asks for matched"):
        ensure_data(config(tmp_path, distractor="matched"))


def test_every_file_is_checked_before_a_missing_split_is_generated(tmp_path):
    folder, other = tmp_path / "run", tmp_path / "other"
    ensure_data(config(folder))
    ensure_data(config(other, render="phrase"))
    for name in ("val.json", "val.json.source.json"):
        (folder / name).unlink()
    for name in ("test.json", "test.json.source.json"):  # the test split now differs in its rendering only
        (other / name).replace(folder / name)
    before = snapshot(folder)
    with pytest.raises(DataError, match=r"run/test\.json: field 'render'"):
        ensure_data(config(folder))
    assert snapshot(folder) == before  # the missing val split was not generated first


@pytest.mark.parametrize("made, asked", [
    (dict(), dict(distractor="any", render="compact")),  # the defaults spelled out are the same distribution
    (dict(generator="prosqa-deep"), dict(generator="prosqa-deep", depth=4, render="phrase")),
    (dict(), dict(seed=5, train_size=50)),  # another draw or size of the same distribution: the user's choice
])
def test_the_same_distribution_is_reused_as_it_is(tmp_path, made, asked):
    ensure_data(config(tmp_path, **made))
    before = snapshot(tmp_path)
    ensure_data(config(tmp_path, **{**made, **asked}))
    assert snapshot(tmp_path) == before


def test_a_file_nothing_marks_as_generated_is_the_users_own_and_is_taken(tmp_path):
    record = {"question": "p0 c1 ; ? p0 : c1 | c2", "steps": ["p0 c1 ;"], "answer": "c1"}
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.json").write_text(json.dumps([record]))
    before = snapshot(tmp_path)
    ensure_data(config(tmp_path, distractor="matched", render="phrase"))
    assert snapshot(tmp_path) == before
