"""The names a split's file may have in a data folder, and the one lookup of a split's file by those names.

A leaf of the config layer (standard library and `coconut.data_error` only: it looks at paths, never reads a
file), so that `DataConfig.files()` finds the split files without importing coconut.data. `coconut.data.release`
re-exports these names beside the releases' checksums.
"""

from __future__ import annotations

from pathlib import Path

from coconut.data_error import DataError, check_links

# The names a split's file may have in data.data_dir: ours first (what a generator writes), then the releases'
# own (prosqa_*.json, prontoqa_*.json from its preprocessing, gsm_*.json from its GSM8k conversion, the iCoT text).
SPLIT_FILE_NAMES = {
    "train": ("train.json", "prosqa_train.json", "prontoqa_train.json", "gsm_train.json", "train.txt"),
    "val": ("val.json", "valid.json", "prosqa_valid.json", "prontoqa_valid.json", "gsm_valid.json", "valid.txt"),
    "test": ("test.json", "prosqa_test.json", "prontoqa_test.json", "gsm_test.json", "test.txt"),
}


# The names that are the releases' (everything above but ours): generated data is never written under one, so
# that it cannot later pass for the release (`coconut.data.files.ensure_data`, `coconut data prosqa --out`).
OUR_NAMES = ("train.json", "val.json", "valid.json", "test.json")
RELEASE_NAMES = frozenset(name for names in SPLIT_FILE_NAMES.values() for name in names if name not in OUR_NAMES)


def split_file(data_dir, split: str) -> Path:
    """The one file of `split` in data_dir under any of its names; <split>.json when there is none. A broken
    symbolic link under one of the names is an error, not "no file" (a linked release must not be skipped)."""
    data_dir = Path(data_dir)
    for name in SPLIT_FILE_NAMES[split]:
        check_links(data_dir / name, f"the {split} split")
    found = [data_dir / name for name in SPLIT_FILE_NAMES[split] if (data_dir / name).is_file()]
    if len(found) > 1:
        raise DataError(data_dir, None, None, f"holds {' and '.join(p.name for p in found)} for the {split} split; "
                                              f"remove all but one, or name one with data.{split}_file")
    return found[0] if found else data_dir / SPLIT_FILE_NAMES[split][0]
