"""Signal handlers held for a block, and the previous ones put back after it.

    with handled(stop_signals(), handler) as installed: ...
        `handler(signum)` runs for each signal while the block runs; main thread only (Python
        delivers signals there): elsewhere nothing is installed and `installed` is False
    with raising(stop_signals(interrupt=False), SignalStop): ...
        the signal raises `SignalStop(signum)` in the main thread, so the block unwinds through
        its `finally` clauses (a lock released, a server stopped) instead of dying on the spot

The handlers in place before the block come back when it ends, however it ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import Any


def stop_signals(*, interrupt: bool = True) -> tuple[signal.Signals, ...]:
    """The signals that ask pfsync to stop: SIGINT (unless `interrupt` is False), SIGTERM and,
    where there is one (not on Windows), SIGHUP."""
    stopping = [signal.SIGINT] if interrupt else []
    stopping.append(signal.SIGTERM)
    if hasattr(signal, "SIGHUP"):
        stopping.append(signal.SIGHUP)
    return tuple(stopping)


@contextlib.contextmanager
def handled(signals: Iterable[int], handler: Callable[[int], None]) -> Iterator[bool]:
    """Run `handler(signum)` for each of `signals` during the block; yields whether it could
    (only the main thread can install a handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        handler(signum)

    previous: dict[int, Any] = {}
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, on_signal)
        yield True
    finally:
        for sig, old in previous.items():
            # None: a handler not installed from Python; the default is the closest to it.
            signal.signal(sig, signal.SIG_DFL if old is None else old)


@contextlib.contextmanager
def raising(signals: Iterable[int], stop: Callable[[int], BaseException]) -> Iterator[bool]:
    """During the block, each of `signals` raises `stop(signum)` in the main thread."""

    def handler(signum: int) -> None:
        raise stop(signum)

    with handled(signals, handler) as installed:
        yield installed
