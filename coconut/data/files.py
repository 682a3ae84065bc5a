"""Where a run's records come from: the split files named in the config, generated when missing."""

from __future__ import annotations

from pathlib import Path

from coconut.config import DataConfig
from coconut.data.errors import DataError
from coconut.data.generators import generate
from coconut.data.records import write_records


def ensure_data(data: DataConfig) -> dict[str, Path]:
    """The split files; missing ones are generated when a generator is set, else must exist (test may be absent)."""
    files, sizes = data.files(), data.sizes()
    for offset, (split, path) in enumerate(files.items()):
        if path.exists():
            continue
        if data.generator is None:
            if split == "test":
                continue
            raise DataError(path, None, None, f"no such file (data.{split}_file), and data.generator is null")
        # Different seeds per split keep the splits apart.
        write_records(generate(data.generator, sizes[split], data.seed * 1000 + offset, progress=True), path)
    return files
