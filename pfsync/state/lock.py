"""The state lock: one state-changing pfsync command at a time per lockfile.

A second one fails at once naming the holder, or waits up to `--lock-timeout`.

    with state_lock(lockfile_path, timeout=0.0) as holder: ...

An OS lock on the sidecar `<lockfile>.lck`, never on the lockfile itself: the lockfile is replaced
by rename, so a lock on it would guard a file that no longer has the name. The OS releases the lock
when its holder dies, even by SIGKILL, so a stale lock cannot exist (a re-run of a killed CI job
has nothing to take over). The holder writes its pid, host, start time and CI job into the
sidecar so a refused command can name it.

POSIX: `flock` on the whole sidecar. Windows has no `fcntl`: `msvcrt.locking` of one byte past
the holder text instead, because a Windows lock is mandatory and the refused command must still
be able to read who holds it. `fcntl` and `msvcrt` are imported when a lock is taken (each is
missing on the other platform) and typed by the protocols below, so mypy checks both ways.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from pfsync.errors import LockfileError, LockHeldError
from pfsync.state.ci_job import CiJob, ci_job
from pfsync.state.lockfile import utc_now
from pfsync.support.paths import shown_path

_POLL_SECONDS = 0.05
_HOLDER_BYTES = 4096  # the most of the sidecar a refused command reads
_LOCKED_BYTE = _HOLDER_BYTES  # msvcrt locks this byte alone, so the holder text stays readable
# Windows opens files in text mode unless told otherwise: "\n" would be written as "\r\n".
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class LockHolder:
    """Who holds the state lock."""

    pid: int
    host: str
    since: str
    ci_job: CiJob | None = None

    def describe(self) -> str:
        """`pid 123 on host ci-7 since 2026-01-31T12:00:00Z (attempt 1 of job apply in GitHub
        Actions run 42)`."""
        job = f" ({self.ci_job.describe()})" if self.ci_job is not None else ""
        return f"pid {self.pid} on host {self.host} since {self.since}{job}"

    def text(self) -> str:
        """What the sidecar holds: `PID HOST SINCE`, then the CI job as JSON when known."""
        job = f"{json.dumps(self.ci_job.to_json())}\n" if self.ci_job is not None else ""
        return f"{self.pid} {self.host} {self.since}\n{job}"


def sidecar_path(lockfile_path: Path) -> Path:
    """The lock file beside the lockfile: `pfsync.lock.lck`."""
    return lockfile_path.with_name(lockfile_path.name + ".lck")


@contextlib.contextmanager
def state_lock(lockfile_path: Path, timeout: float = 0.0) -> Iterator[LockHolder]:
    """Hold the state lock for the block; LockHeldError naming the holder after `timeout` s."""
    path = sidecar_path(lockfile_path)
    try:
        fd = os.open(path, _OPEN_FLAGS, 0o644)
    except OSError as exc:
        raise LockfileError(
            f"cannot open the state lock {shown_path(path)}: {exc.strerror}"
        ) from None
    try:
        os_lock = _acquire(fd, path, lockfile_path, timeout)
        holder = LockHolder(os.getpid(), socket.gethostname(), utc_now(), ci_job())
        # Best effort: the OS lock is the lock; the text only helps a refused command explain.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, holder.text().encode())
        try:
            yield holder
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os_lock.release(fd)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, lockfile_path: Path, timeout: float) -> _Flock | _ByteLock:
    os_lock = _os_lock()
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        try:
            if os_lock.take(fd):
                return os_lock
        except OSError as exc:
            raise LockfileError(f"cannot lock {shown_path(path)}: {exc.strerror}") from None
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_SECONDS)
    waited = f" after waiting {timeout:g}s" if timeout > 0 else ""
    raise LockHeldError(
        f"the state lock of {shown_path(lockfile_path)} is held by {_read_holder(fd)}{waited}; "
        "another pfsync command is changing the state. Wait for it to finish, or pass "
        "--lock-timeout SECONDS to wait for it"
    )


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        lines = os.read(fd, _HOLDER_BYTES).decode("utf-8", "replace").splitlines()
        words = lines[0].split()
        holder = LockHolder(int(words[0]), words[1], words[2])
    except (OSError, IndexError, ValueError):
        return "another pfsync process (it has not said who it is yet)"
    with contextlib.suppress(IndexError, ValueError, KeyError, TypeError):  # older: no CI job
        holder = replace(holder, ci_job=CiJob.from_json(json.loads(lines[1])))
    return holder.describe()


class _Fcntl(Protocol):
    """What the lock uses of POSIX `fcntl`."""

    @property
    def LOCK_EX(self) -> int: ...
    @property
    def LOCK_NB(self) -> int: ...
    @property
    def LOCK_UN(self) -> int: ...
    def flock(self, fd: int, operation: int, /) -> None: ...


class _Msvcrt(Protocol):
    """What the lock uses of Windows' `msvcrt`: `locking` locks from the file's position."""

    @property
    def LK_NBLCK(self) -> int: ...
    @property
    def LK_UNLCK(self) -> int: ...
    def locking(self, fd: int, mode: int, nbytes: int, /) -> None: ...


if TYPE_CHECKING:  # the protocols fit the real modules (`mypy --platform win32` checks msvcrt)
    if sys.platform == "win32":
        import msvcrt

        _MSVCRT_FITS: _Msvcrt = msvcrt
    else:
        import fcntl

        _FCNTL_FITS: _Fcntl = fcntl


class _Flock:
    """POSIX: `flock` on the whole sidecar."""

    def __init__(self, fcntl: _Fcntl) -> None:
        self.fcntl = fcntl

    def take(self, fd: int) -> bool:
        """Lock `fd` if no other holder has it: False when one does (OSError: cannot lock)."""
        try:
            self.fcntl.flock(fd, self.fcntl.LOCK_EX | self.fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self, fd: int) -> None:
        """Unlock what `take` locked."""
        self.fcntl.flock(fd, self.fcntl.LOCK_UN)


class _ByteLock:
    """Windows: `msvcrt.locking` of the one byte at `_LOCKED_BYTE`."""

    def __init__(self, msvcrt: _Msvcrt) -> None:
        self.msvcrt = msvcrt

    def take(self, fd: int) -> bool:
        """Lock `fd` if no other holder has it: False when one does (OSError: cannot lock)."""
        os.lseek(fd, _LOCKED_BYTE, os.SEEK_SET)
        try:
            self.msvcrt.locking(fd, self.msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno == errno.EACCES:  # the C runtime's "locking violation"
                return False
            raise
        return True

    def release(self, fd: int) -> None:
        """Unlock what `take` locked."""
        os.lseek(fd, _LOCKED_BYTE, os.SEEK_SET)
        self.msvcrt.locking(fd, self.msvcrt.LK_UNLCK, 1)


def _os_lock() -> _Flock | _ByteLock:
    """flock where there is `fcntl` (POSIX), else `msvcrt.locking` (Windows)."""
    try:
        return _Flock(cast(_Fcntl, importlib.import_module("fcntl")))
    except ImportError:
        return _ByteLock(cast(_Msvcrt, importlib.import_module("msvcrt")))
