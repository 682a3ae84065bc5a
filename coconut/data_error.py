"""The one error of bad data (`DataError`: file, record index, field), and the check that a data path is no broken
symbolic link, which raises it.

Standard library only and below every layer: the config schema finds the split files
(`coconut.config.split_files`, without importing coconut.data) and the data layer reads them, and both raise
this one error. `coconut.data.errors` re-exports it.

A split file (or the data folder) that is a symbolic link to nothing, or a loop of links, does not exist to
`Path.exists()`. Taken at its word, a run would generate data over the link, or skip the split: a user who
linked the released files in must hear that the link is broken instead.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class DataError(ValueError):
    """Bad data, located by file, record index and field."""

    def __init__(self, file, index: int | None, field: str | None, message: str):
        where = [str(file)]
        if index is not None:
            where.append(f"record {index}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{': '.join(where)}: {message}")
        self.file, self.index, self.field = str(file), index, field


def broken_link(path) -> tuple[Path, str] | None:
    """(the link, what is wrong with it) for the first broken link among `path` and its folders, else None."""
    path = Path(path)
    for link in (path, *path.parents):
        if not link.is_symlink():
            continue
        try:
            os.stat(link)
            continue  # it leads somewhere
        except OSError as err:
            target = os.readlink(link)
            if err.errno == errno.ELOOP:
                return link, f"is a symbolic link to {target} that loops (a link that leads back to itself)"
            if err.errno in (errno.ENOENT, errno.ENOTDIR):
                return link, f"is a symbolic link to {target}, which does not exist"
            raise
    return None


def check_links(path, what: str = "the data file") -> None:
    """DataError naming the link and its target when `path` or one of its folders is a broken link."""
    found = broken_link(path)
    if found is not None:
        link, problem = found
        where = "" if link == Path(path) else f" (a folder of {what} {path})"
        raise DataError(link, None, None, f"{problem}{where}; fix or remove the link (nothing is generated over it)")
