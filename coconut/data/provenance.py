"""Where a run's data came from: per split the file, its sha256, its record count and its origin.

Origins: `released` (the checksum of a pinned released file, `coconut/data/release.py`), `generated` or
`converted` (a sidecar `<file>.source.json` written with the file says how, and carries the file's sha256,
so a file replaced by hand later is not mistaken for it), `generated` also for a file without its sidecar
whose records carry the generated-data marker (`coconut/data/generated.py`: a copy under another name),
else `provided` (a file the user put there).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from coconut.atomic import TEMP_PREFIX, write_text
from coconut.config import DataConfig
from coconut.data.generated import generated_by
from coconut.data.records import load_records, write_records
from coconut.data.release import file_digests, released_file

SIDECAR_SUFFIX = ".source.json"


def sidecar_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def write_with_source(records: list[dict], path, source: dict) -> None:
    """Write records and their sidecar. The records go to a temporary file first and are renamed into place
    last, after the sidecar, so a crash leaves at most a sidecar without its file (the file is made again). The
    temporary file's name is this call's own: two runs generating the same missing file at once (a sweep started
    in parallel on a shared file system) each rename a whole file of their own into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The same suffix: write_records picks the format by it.
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.stem}.", suffix=path.suffix)
    os.close(handle)
    staged = Path(name)
    try:
        write_records(records, staged)
        source = {**source, "records": len(records), "sha256": file_digests(staged)[0]}
        write_text(sidecar_path(path), json.dumps(source, indent=1) + "\n")
        staged.replace(path)
    finally:
        staged.unlink(missing_ok=True)


def read_source(path, sha256: str) -> dict | None:
    """The sidecar of `path` when it describes this very file (same sha256), else None."""
    side = sidecar_path(path)
    try:
        source = json.loads(side.read_text())
    except (OSError, ValueError):
        return None
    return source if isinstance(source, dict) and source.get("sha256") == sha256 else None


def generated_origin(path, records: list[dict] | None = None, digests: tuple[str, str] | None = None):
    """How a file was generated, when it was: (record index, marker) when a record carries the marker, (None,
    sidecar) when its sidecar says generated; None for any other file (a released one is never parsed)."""
    sha256, blob = digests or file_digests(path)
    if released_file(sha256, blob) is not None:
        return None
    source = read_source(path, sha256)
    if source is not None and source.get("origin", "generated") == "generated":
        return None, source
    if Path(path).suffix.lower() == ".txt":  # iCoT text holds no metadata, so no generator writes it
        return None
    return generated_by(load_records(path) if records is None else records)


def file_provenance(path) -> dict:
    """Path, sha256, record count and origin of one split file (origin `missing` when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return {"path": str(path), "origin": "missing"}
    digests = file_digests(path)
    sha256, blob = digests
    records = load_records(path)
    entry = {"path": str(path), "sha256": sha256, "records": len(records)}
    release = released_file(sha256, blob)
    source = read_source(path, sha256)
    if release is not None:
        entry.update(origin="released", dataset=release[0], url=release[1].url)
    elif source is not None:
        entry.update({k: v for k, v in source.items() if k not in ("sha256", "records")})
        entry.setdefault("origin", "generated")
    elif (marked := generated_origin(path, records, digests)) is not None:  # the sidecar is lost, the mark is not
        entry.update(origin="generated", **{k: v for k, v in marked[1].items() if k in ("generator", "seed", "render", "depth", "distractor")})
    else:
        entry["origin"] = "provided"
    return entry


def data_provenance(data: DataConfig) -> dict:
    """Per split (train, val, test): where the run's data came from."""
    return {split: file_provenance(path) for split, path in data.files().items()}
