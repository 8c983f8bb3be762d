"""Spread independent work over the machine's cores, for large repositories.

Reading and checking 10,000 manifests is CPU work in Python, one file at a time: on a machine
with several cores, child processes each take a share while this process does the first one,
then collect the children's pickled results in order.

Forked children where fork is safe: a platform with `fork` other than macOS (whose system
libraries may not survive a fork), and no other thread running in this process (forking a
threaded process can deadlock the child). A forked child starts in a millisecond with the loaded
modules and built validators. (multiprocessing's Pool costs more to start and stop than it saves
below a few thousand files.) A threaded process on such a platform does all the work itself.

Spawned children where there is no fork (Windows) or on macOS: a fresh interpreter must import
pfsync before it can start (tenths of a second, more than a small share takes), so once its own
share is done this process waits only for children that have started computing; the share of a
child still starting is done here and that child stopped. Spawning so never costs much more
than doing everything here.

Either way a child that fails for any reason sends nothing and its share is done here instead,
so the results never depend on the children or on which way they were started.

    usable_cores() -> int
    map_in_processes(function, shares) -> list | None     None: do it in this process
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    if sys.platform == "win32":
        from multiprocessing.connection import PipeConnection as Connection
    else:
        from multiprocessing.connection import Connection

In = TypeVar("In")
Out = TypeVar("Out")


def usable_cores() -> int:
    """How many CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):  # Linux: the CPUs this process is allowed
        try:
            return len(os.sched_getaffinity(0))
        except OSError:  # pragma: no cover
            pass
    return os.cpu_count() or 1


def map_in_processes(function: Callable[[In], Out], shares: Sequence[In]) -> list[Out] | None:
    """`[function(share) for share in shares]`, each share after the first in a child process.

    None when child processes are not used here (fewer than two shares, or other threads running
    where children are forked): the caller then computes the same list itself. `function` must
    be deterministic, importable by name, and its results picklable.
    """
    if len(shares) < 2:
        return None
    if not hasattr(os, "fork") or sys.platform == "darwin":
        return _map_in_spawned(function, shares)
    return _map_in_forked(function, shares)


def _map_in_forked(function: Callable[[In], Out], shares: Sequence[In]) -> list[Out] | None:
    """None when another thread is running: forking a threaded process can deadlock the child."""
    if sys.platform == "win32":  # never called there (no fork); this tells mypy --platform win32
        return None
    if threading.active_count() > 1:
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
                _run_forked_child(function, share, write_fd)
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


def _run_forked_child(function: Callable[[Any], Any], share: Any, write_fd: int) -> None:
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


def _map_in_spawned(function: Callable[[In], Out], shares: Sequence[In]) -> list[Out]:
    import multiprocessing  # here: the forking platforms never need it

    context = multiprocessing.get_context("spawn")
    children: list[tuple[BaseProcess, Connection]] = []  # (child, read end of its pipe)
    try:
        for share in shares[1:]:
            try:
                receiver, sender = context.Pipe(duplex=False)
            except OSError:
                break  # no more pipes: the rest is done here
            process = context.Process(
                target=_run_spawned_child, args=(function, share, sender), daemon=True
            )
            try:
                process.start()
            except Exception:
                receiver.close()
                break  # no more processes, or the share cannot be sent: the rest is done here
            finally:
                sender.close()
            children.append((process, receiver))
        results = [function(shares[0])]
        for index, (child, receiver) in enumerate(children, start=1):
            try:
                if receiver.poll():  # started: it finishes sooner than the share would here
                    receiver.recv_bytes()
                    results.append(receiver.recv())
                    continue
            except Exception:  # the child failed: do its share here
                pass
            child.kill()  # still starting, or failed
            results.append(function(shares[index]))
        results += [function(share) for share in shares[len(children) + 1 :]]
        return results
    finally:  # stop any child still running (interrupted, or taken over) and reap them all
        for child, receiver in children:
            receiver.close()
            child.kill()
            child.join()


def _run_spawned_child(function: Callable[[Any], Any], share: Any, sender: Connection) -> None:
    """Say it has started, then send the share's results; silent when it fails."""
    try:
        sender.send_bytes(b"")
        sender.send(function(share))
    except BaseException:
        pass  # the parent sees the pipe end without results and does this share
    finally:
        sender.close()
