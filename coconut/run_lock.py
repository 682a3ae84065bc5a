"""One writer per run folder: an exclusive lock held for the life of a run (and of an analysis writing into it).

The lock is the kernel's `flock` on `RUN_DIR/.lock`, so it dies with its process: a run killed by SIGKILL, an
out-of-memory kill or a node crash (on NFS, once the server's lease lapses) leaves nothing to clean up, and the
next run takes the lock. The file holds who took it (host, pid, command, time) for the message a second process
prints. The file stays after the lock is released: deleting it would let a process that opened it just before
lock an inode nobody else sees. Where the file system has no locks at all (some FUSE mounts), the holder's
record decides: a holder on this host whose process is gone is stale and is taken over.

`probe` only reads, so a command can refuse a folder in use before it writes anything; `acquire` comes after
every check, just before the run's first byte.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from pathlib import Path

from coconut.config.checks import ConfigError

LOCK_NAME = ".lock"
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class RunFolderInUse(ConfigError):
    """Another live process holds the run folder."""


def _holder_text(holder: dict | None) -> str:
    if not holder:
        return "another process"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(holder.get("since", 0)))
    command = holder.get("command", "coconut")
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} ({command}, since {when})"


def _read_holder(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _alive_here(holder: dict | None) -> bool:
    """Whether the holder runs on this host and its process still exists (lock-less file systems only)."""
    if not holder or holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class RunLock:
    """The lock of one run folder; `acquire()` ... `release()`, or `with RunLock(folder, "coconut train"):`."""

    def __init__(self, folder, command: str = "coconut"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = command
        self._fd: int | None = None

    def _in_use(self, holder: dict | None) -> RunFolderInUse:
        # The holder writes its record just after it takes the lock: a process refused in between waits briefly
        # for it, so that the message can name the holder.
        for _ in range(20):
            if holder:
                break
            time.sleep(0.025)
            holder = _read_holder(self.path)
        return RunFolderInUse(f"run folder {self.folder} is in use by {_holder_text(holder)}; wait for it to "
                              "finish or stop it, or choose another name= (a killed process holds no lock)")

    def probe(self) -> None:
        """Refuse at once (reading only) when a live process holds the folder."""
        if not self.path.is_file():
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._in_use(_read_holder(self.path)) from None
        except OSError as err:
            if err.errno in _NO_LOCKS and _alive_here(_read_holder(self.path)):
                raise self._in_use(_read_holder(self.path)) from None
        finally:
            os.close(fd)  # closing releases a lock taken here

    def acquire(self) -> "RunLock":
        """Take the lock (creating the folder), or raise RunFolderInUse naming the holder."""
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self._in_use(_read_holder(self.path)) from None
            except OSError as err:
                if err.errno not in _NO_LOCKS:
                    os.close(fd)
                    raise
                if _alive_here(_read_holder(self.path)):
                    os.close(fd)
                    raise self._in_use(_read_holder(self.path)) from None
            # The file may have been replaced between open and lock (a folder emptied by hand): lock the one there.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command, "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the kernel drops the lock with the last descriptor
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def command_line() -> str:
    """What the holder record calls this process: `coconut train NAME` (the first words of its command line)."""
    words = [os.path.basename(sys.argv[0]) if sys.argv else "python"] + sys.argv[1:3]
    if words[0] in ("__main__.py", "-m"):
        words[0] = "coconut"
    return " ".join(words)
