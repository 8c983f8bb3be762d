"""The state lock: one state-changing pfsync command at a time per lockfile (§6, §8).

    with state_lock(lockfile_path, timeout=0.0) as holder: ...

An OS lock (`flock`) on the sidecar `<lockfile>.lck`, never on the lockfile itself: the lockfile is
replaced by rename, so a lock on it would guard a file that no longer has the name. The kernel
releases a flock when its holder dies, even by SIGKILL, so a stale lock cannot exist. The holder
writes its pid, host and start time into the sidecar so a refused command can name it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pfsync.errors import LockfileError, LockHeldError
from pfsync.state.lockfile import utc_now
from pfsync.support.paths import shown_path

_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class LockHolder:
    """Who holds the state lock."""

    pid: int
    host: str
    since: str

    def describe(self) -> str:
        """`pid 123 on host ci-7 since 2026-01-31T12:00:00Z`."""
        return f"pid {self.pid} on host {self.host} since {self.since}"


def sidecar_path(lockfile_path: Path) -> Path:
    """The lock file beside the lockfile: `pfsync.lock.lck`."""
    return lockfile_path.with_name(lockfile_path.name + ".lck")


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").split()
        pid, host, since = text[0], text[1], text[2]
    except (OSError, IndexError):
        return "another pfsync process (it has not said who it is yet)"
    return f"pid {pid} on host {host} since {since}"


@contextlib.contextmanager
def state_lock(lockfile_path: Path, timeout: float = 0.0) -> Iterator[LockHolder]:
    """Hold the state lock for the block; LockHeldError naming the holder after `timeout` s."""
    path = sidecar_path(lockfile_path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LockfileError(
            f"cannot open the state lock {shown_path(path)}: {exc.strerror}"
        ) from None
    try:
        _acquire(fd, path, lockfile_path, timeout)
        holder = LockHolder(os.getpid(), socket.gethostname(), utc_now())
        # Best effort: the flock is the lock; the text only helps a refused command explain.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{holder.pid} {holder.host} {holder.since}\n".encode(), 0)
        try:
            yield holder
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, lockfile_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
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
