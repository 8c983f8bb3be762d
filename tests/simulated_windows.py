"""Windows, as far as pfsync can tell, on this Linux machine: for tests/test_portability.py.

`msvcrt` is a fake whose `locking` keeps the documented semantics (a byte range from the file's
current position; LK_NBLCK fails with EACCES while another handle holds any of it; LK_UNLCK of a
range that is not locked fails; the lock goes with the handle and with its process), backed by
Linux's open-file-description locks, which belong to one open file as a Windows lock belongs to
one handle. `install()` makes a process look like Windows to pfsync: no `fcntl`, this `msvcrt`,
and none of the POSIX-only functions and signals pfsync must do without. A `sitecustomize.py`
calling `install()` does so for a whole `pfsync` run and for the children it spawns; with
PFSYNC_TEST_WINDOWS_LOG set, each such process logs its start, its msvcrt calls and its spawns.

What is not simulated: `sys.platform` stays "linux" (the standard library reads it on import),
`signal.SIGKILL` stays (multiprocessing's POSIX code kills its children with it; Windows' uses
TerminateProcess), and `subprocess` is imported before the fake `msvcrt` exists (it takes an
importable msvcrt to mean Windows).
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import struct
import sys
import time
import types

LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4
LOG_ENV = "PFSYNC_TEST_WINDOWS_LOG"  # a file each simulated process appends what it did to
REMOVED = {
    os: ("fork", "pread", "pwrite", "fchmod", "sched_getaffinity"),
    signal: ("SIGHUP", "pause"),
}

_locked: set[tuple[int, int, int]] = set()  # (fd, start, length) locked through this module


def supported() -> bool:
    """Whether this machine has the open-file-description locks the fake is built on."""
    return hasattr(fcntl, "F_OFD_SETLK")


def locking(fd: int, mode: int, nbytes: int, /) -> None:
    """`msvcrt.locking`: lock or unlock `nbytes` bytes from the current position of `fd`."""
    start = os.lseek(fd, 0, os.SEEK_CUR)
    _log(f"locking {mode} {start} {nbytes}")
    if mode == LK_UNLCK:
        if (fd, start, nbytes) not in _locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        _ofd_lock(fd, fcntl.F_UNLCK, start, nbytes)
        _locked.discard((fd, start, nbytes))
        return
    tries = 10 if mode in (LK_LOCK, LK_RLCK) else 1  # LK_LOCK retries once a second, 10 times
    for attempt in range(tries):
        try:
            _ofd_lock(fd, fcntl.F_WRLCK, start, nbytes)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if attempt + 1 < tries:
                time.sleep(1)
            continue
        _locked.add((fd, start, nbytes))
        return
    if tries > 1:
        raise OSError(errno.EDEADLK, os.strerror(errno.EDEADLK))
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))


def msvcrt_module() -> types.ModuleType:
    """A module object that can stand as `sys.modules["msvcrt"]`."""
    module = types.ModuleType("msvcrt", "Simulated for tests (tests/simulated_windows.py).")
    module.locking = locking  # type: ignore[attr-defined]
    for name in ("LK_UNLCK", "LK_LOCK", "LK_NBLCK", "LK_RLCK", "LK_NBRLCK"):
        setattr(module, name, globals()[name])
    return module


def is_locked(path: str | os.PathLike[str], start: int, length: int) -> bool:
    """Whether any byte of the range is locked through another open file (0: to the end)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock_struct(fcntl.F_WRLCK, start, length))
    finally:
        os.close(fd)
    (kind,) = struct.unpack_from("h", answer)
    return bool(kind != fcntl.F_UNLCK)


def install() -> None:
    """Make this process look like Windows to pfsync (see the module's docstring)."""
    import subprocess  # noqa: F401  # before msvcrt: see the module's docstring

    sys.modules["fcntl"] = None  # type: ignore[assignment]  # `import fcntl` raises ImportError
    sys.modules["msvcrt"] = msvcrt_module()
    for module, names in REMOVED.items():
        for name in names:
            if hasattr(module, name):
                delattr(module, name)
    _log("started " + " ".join(sys.argv))
    _log_spawns()


def _log_spawns() -> None:
    """Log "spawns a child" each time multiprocessing starts a spawned process."""
    from multiprocessing import context

    start = context.SpawnProcess.start

    def logged(process: context.SpawnProcess) -> None:
        _log("spawns a child")
        start(process)

    setattr(context.SpawnProcess, "start", logged)  # noqa: B010  # (mypy: no assigning methods)


def _ofd_lock(fd: int, kind: int, start: int, length: int) -> None:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock_struct(kind, start, length))


def _flock_struct(kind: int, start: int, length: int) -> bytes:
    # struct flock on 64-bit Linux: short l_type, short l_whence, off_t l_start, off_t l_len,
    # pid_t l_pid (0 for open-file-description locks), 4 bytes of padding.
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, start, length, 0)


def _log(line: str) -> None:
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {line}\n")
