"""`coconut data download`: fetch a released data set's files, checked against their pinned checksums.

A file appears only once its checksum is right: it is written to a temporary file in the destination
folder and renamed over the final name, so an interrupted or wrong download leaves nothing behind. Files
already there with the right checksum are kept. urllib only, with a timeout; one-line errors.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

from coconut.atomic import creation_mode
from coconut.data.release import RELEASES, ReleaseFile, file_digests, mismatch

CHUNK = 1 << 20
PROGRESS_FROM = 4 << 20  # files at least this big show a progress line


class DownloadError(RuntimeError):
    """A download that failed, in one line: what, from where, and what to do."""


def source_url(release: ReleaseFile, base_url: str | None) -> str:
    """The file's pinned URL, or `base_url/<its remote name>` (a mirror, or a test's local server)."""
    return f"{base_url.rstrip('/')}/{release.remote_name}" if base_url else release.url


def download_release(name: str, to, base_url: str | None = None, files: Iterable[ReleaseFile] | None = None,
                     timeout: float = 60.0, progress: bool = True, log: Callable[[str], None] = print) -> list[Path]:
    """Fetch data set `name` (or the given `files`) into folder `to`; returns the paths, all checked."""
    if files is None:
        if name not in RELEASES:
            raise DownloadError(f"no released files for {name!r}; known: {', '.join(RELEASES)}")
        files = RELEASES[name]
    to = Path(to)
    paths = []
    for release in files:
        path = to / release.name
        if path.exists():
            problem = mismatch(path, release)
            if problem is None:
                log(f"{path}: present, checksum matches the release; kept")
                paths.append(path)
                continue
            log(f"{path}: present but its {problem}; downloading the released file to replace it")
        fetch_file(source_url(release, base_url), path, release, timeout, progress)
        log(f"{path}: downloaded, checksum matches the release")
        paths.append(path)
    return paths


def fetch_file(url: str, path: Path, release: ReleaseFile, timeout: float = 60.0, progress: bool = True) -> None:
    """Download `url` to `path` through a temporary file beside it; renamed into place only if it checks out."""
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]  # removed again if nothing lands
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, creation_mode())  # mkstemp's file is private; the data set is as readable as any new file
        with os.fdopen(handle, "wb") as out:
            _copy(url, out, release, timeout, progress, path)
        problem = mismatch(tmp, release, file_digests(tmp))
        if problem:
            raise DownloadError(f"{url}: the downloaded file's {problem}; {path} not written")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # after a successful rename there is nothing left to remove
        for folder in made:  # innermost first: a failed download leaves no empty folders behind
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _copy(url: str, out, release: ReleaseFile, timeout: float, progress: bool, path: Path) -> None:
    host = urlsplit(url).netloc or url
    request = urllib.request.Request(url, headers={"User-Agent": "coconut-data-download"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or release.size or 0)
            show = progress and total >= PROGRESS_FROM
            done = 0
            while chunk := response.read(CHUNK):
                done += len(chunk)
                if release.size is not None and done > release.size:
                    raise DownloadError(f"{url}: more than the release's {release.size} bytes; {path} not written")
                out.write(chunk)
                if show:
                    print(f"\r{release.name}: {done / 1e6:.1f} / {total / 1e6:.1f} MB", end="", file=sys.stderr,
                          flush=True)
            if show:
                print(file=sys.stderr)
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}; {path} not written") from err
    except (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"cannot reach {host} ({reason}); {path} not written: download {url} on a machine "
                            f"with network access and copy it into {path.parent}") from err
