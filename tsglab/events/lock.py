"""The run directory's owner: an exclusive ``flock`` on ``run.lock``, held by one process for a whole segment.

The lock, not the pid in ``run.json``, says whether a run is in progress. The kernel releases a ``flock``
when its holder exits however it exits (``kill -9`` included), so a stale lock cannot exist; a pid can be
an unreaped zombie or reused by an unrelated process, which is why ``running`` in ``run.json`` with nobody
holding the lock means the process that wrote it died. The lock file holds the holder's pid, host, start
time and purpose (one JSON line, for the message a second process prints); it is never deleted, since
deleting a lock file lets two processes lock two different files.

Readers that only ask (:func:`is_locked`) take a shared lock for an instant; :meth:`RunLock.acquire` retries
for :data:`ACQUIRE_GRACE_S` so such a probe is never mistaken for an owner. Locks are per open file
description: two opens in one process exclude each other as two processes do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from tsglab.errors import RunError

__all__ = ["ACQUIRE_GRACE_S", "LOCK_FILE", "RunLock", "is_locked", "lock_holder"]

LOCK_FILE = "run.lock"
ACQUIRE_GRACE_S = 0.25  # a probe holds its shared lock for microseconds; an owner holds it for a whole run
_RETRY_S = 0.02

class RunLock:
    """The exclusive lock of one run directory; release it with :meth:`release` or by leaving ``with``."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, run_dir: str | os.PathLike, *, purpose: str, grace_s: float = ACQUIRE_GRACE_S) -> RunLock:
        """Lock ``run_dir`` (which must exist) or raise a :class:`~tsglab.errors.RunError` naming the holder
        (pid, host, start time, purpose) and what to do."""
        path = Path(run_dir) / LOCK_FILE
        fd = _open(path, os.O_RDWR | os.O_CREAT)
        deadline = time.monotonic() + grace_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = lock_holder(run_dir)
                    os.close(fd)
                    raise RunError(_in_use(Path(run_dir), holder)) from None
                time.sleep(_RETRY_S)
            except OSError:
                os.close(fd)
                raise
        lock = cls(path, fd)
        lock._write_holder(purpose)
        return lock

    def _write_holder(self, purpose: str) -> None:
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "purpose": purpose}
        data = (json.dumps(holder, ensure_ascii=False) + "\n").encode()
        # who holds it is only for messages: a full disk here must not stop a run that holds the lock
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        """Give the directory up (idempotent). The holder line stays: it is only read while the lock is held."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.release()


def _open(path: Path, flags: int) -> int:
    """Open the lock file without following a symlink (one planted there could point anywhere)."""
    flags |= os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        return os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunError(f"{path} is a symbolic link; a run directory's lock file must be a plain file. "
                           "Remove the link.") from None
        if flags & os.O_RDWR and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and path.is_file():
            return _open(path, os.O_RDONLY)  # a read-only directory: flock works on a read-only descriptor too
        raise


def is_locked(run_dir: str | os.PathLike) -> bool:
    """Whether a process holds ``run_dir``'s lock now (a directory without a lock file: False)."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = _open(path, os.O_RDONLY)
    except (OSError, RunError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the probe's shared lock
    return False


def lock_holder(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """What the lock file says about its last holder (pid, host, since, purpose), or None."""
    try:
        text = (Path(run_dir) / LOCK_FILE).read_text(encoding="utf-8")
        holder = json.loads(text)
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _in_use(run_dir: Path, holder: dict[str, Any] | None) -> str:
    if holder is None:
        who = "another process (it has not written its name yet)"
        stop = "stop it"
    else:
        who = (f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')} "
               f"({holder.get('purpose')})")
        stop = f"stop it (kill {holder.get('pid')})" if holder.get("host") == socket.gethostname() else "stop it"
    return (f"{run_dir} is in use by {who}; a run directory belongs to one process at a time. Wait for it to "
            f"finish, or {stop} and resume again (the lock goes away with its process, so it is never stale).")
