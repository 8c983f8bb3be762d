"""Spread independent work over the machine's cores, for large repositories.

Reading and checking 10,000 manifests is CPU work in Python, one file at a time: on a machine
with several cores, forked child processes each take a share. Forking copies the loaded modules
and built validators for free, so a child starts in a millisecond; this process does the first
share itself, then reads each child's pickled results from a pipe. (multiprocessing's Pool
costs more to start and stop than it saves below a few thousand files.)

Only when it is safe and possible: a platform with `fork`, and no other thread running in this
process (forking a threaded process can deadlock the child). A child that fails for any reason
sends nothing and its share is done here instead, so the results never depend on the children.

    usable_cores() -> int
    map_in_processes(function, shares) -> list | None     None: do it in this process
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


def usable_cores() -> int:
    """How many CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def map_in_processes(function: Callable[[In], Out], shares: Sequence[In]) -> list[Out] | None:
    """`[function(share) for share in shares]`, each share after the first in a forked child.

    None when child processes cannot be used here (fewer than two shares, no fork, other threads
    running): the caller then computes the same list itself. `function` must be deterministic
    and its results picklable.
    """
    if len(shares) < 2 or not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    children: list[tuple[int, int]] = []  # (pid, read end of its pipe)
    try:
        for share in shares[1:]:
            try:
                read_fd, write_fd = os.pipe()
                pid = os.fork()
            except OSError:
                break  # no more processes or pipes: the rest is done here
            if pid == 0:  # the child
                os.close(read_fd)
                _run_child(function, share, write_fd)
            os.close(write_fd)
            children.append((pid, read_fd))
        results = [function(shares[0])]
        for index, (pid, read_fd) in enumerate(children, start=1):
            payload = _read_all(read_fd)
            os.close(read_fd)
            os.waitpid(pid, 0)
            children[index - 1] = (0, -1)
            try:
                results.append(pickle.loads(payload))
            except Exception:  # the child failed: do its share here
                results.append(function(shares[index]))
        results += [function(share) for share in shares[len(children) + 1 :]]
        return results
    finally:  # interrupted: stop and reap the children still running
        for pid, read_fd in children:
            if pid:
                os.close(read_fd)
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except OSError:
                    pass


def _run_child(function: Callable[[Any], Any], share: Any, write_fd: int) -> None:
    """Compute one share and send it pickled; never returns (no atexit, no stdio flush)."""
    try:
        payload = pickle.dumps(function(share), protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view) :]
    except BaseException:
        pass  # an empty or partial payload does not unpickle: the parent does this share
    finally:
        os._exit(0)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
