"""Spread independent work over the machine's cores, for large repositories.

Reading and checking 10,000 manifests is CPU work in Python, one file at a time: on a machine
with several cores, forked worker processes each take a share of the files. Forking copies the
loaded modules and built validators for free, so a worker starts in milliseconds. Only when it
is safe and possible: a platform with `fork`, and no other thread running in this process
(forking a threaded process can deadlock the child). Otherwise the caller does the work itself.

    usable_cores() -> int
    map_in_processes(function, chunks) -> list | None     None: do it in this process
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


def usable_cores() -> int:
    """How many CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def map_in_processes(function: Callable[[In], Out], chunks: Sequence[In]) -> list[Out] | None:
    """`[function(chunk) for chunk in chunks]` computed by forked workers, in order.

    None when worker processes cannot be used here (one core, no fork, other threads running,
    or the pool cannot start): the caller then computes the same list itself. `function` must
    be a module-level function and its results picklable.
    """
    workers = min(usable_cores(), len(chunks))
    if workers < 2 or threading.active_count() > 1:
        return None
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return None  # pragma: no cover - Windows
    try:
        # The pool forks all its workers before it starts its own helper threads.
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(function, chunks, chunksize=1)
    except OSError:  # e.g. no process slots or no shared memory: do the work here
        return None
