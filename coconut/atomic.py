"""Files written whole or not at all: a temporary file in the same folder, flushed to disk, then renamed.

A rename within one folder is atomic on POSIX file systems, so a reader (or the next run after a kill, a full
disk or a power cut) sees either the previous file or the new one, never a part. The temporary file lies in the
target's own folder, never in the system's temporary folder: a rename across file systems is a copy, and a kill
during that copy leaves a truncated file where the good one was. Standard library only.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

TEMP_PREFIX = ".partial-"  # temporary files and folders of a write in progress (a kill may leave one behind)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (the folder's entry), where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process's umask, read without changing it where the kernel says it (Linux), else set and put back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def creation_mode(folder: bool = False) -> int:
    """The permissions `open()` or `mkdir` would give a new file or folder here (0o666 or 0o777 less the umask).
    Temporary files and folders are made private (0o600, 0o700); what is renamed into place gets these instead, so
    that a run written on a shared file system is readable to whom the user's umask allows, as any file is."""
    return (0o777 if folder else 0o666) & ~_umask()


@contextmanager
def replacing(path) -> Iterator[BinaryIO]:
    """Open a binary stream whose bytes replace `path` when the block ends without an error; on an error (a full
    disk, a kill) the temporary file is removed and `path` keeps its previous contents."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.")
    try:
        os.chmod(tmp, creation_mode())
        with os.fdopen(handle, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_bytes(path, data: bytes) -> None:
    with replacing(path) as out:
        out.write(data)


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path, data) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_with(path, save: Callable[[BinaryIO], None]) -> None:
    """`save(stream)` writes the file's bytes (torch.save, savefig, a csv writer over a text wrapper)."""
    with replacing(path) as out:
        save(out)


def replace_folder(path, fill: Callable[[Path], None]) -> None:
    """A folder made whole beside `path` by `fill(folder)`, then swapped in: the previous one stays until the new
    one is complete (between the two renames only the new one and the old one's `.partial-` copy exist)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}."))
    old = None
    try:
        os.chmod(new, creation_mode(folder=True))
        fill(new)
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.old."))
            os.replace(path, old / path.name)
        os.replace(new, path)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        if old is not None and (old / path.name).exists() and not path.exists():
            os.replace(old / path.name, path)  # put the previous folder back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    _fsync_folder(path.parent)
