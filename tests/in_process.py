"""`pfsync ARGS` inside the test process, isolated as a child process would be, in milliseconds.

    in_process(argv, cwd=, env=, input=, deadline=) -> Run

A run gets the clean environment a child would (os.environ replaced for the call), `cwd`, `input`
on a stdin that is not a terminal, and stdout and stderr written through strict UTF-8 streams (an
unencodable character fails the test instead of being escaped). Afterwards the working directory,
the environment, the standard streams and every signal handler are put back, and a run that
changed a signal handler, the logging setup or the working directory, or left a thread running,
fails the test: those would leak into the next run (a product bug in a long-lived caller of
`pfsync.cli.main`). A run still going after `deadline` seconds is stopped by `RunTimedOut`, an
exception pfsync does not catch, raised in the main thread by SIGALRM.

The child process stays where it is the point (see `conftest.run_pfsync_anyhow`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType

from conftest import DEADLINE, Run, clean_env

# The signals whose handlers a run must leave as it found them.
WATCHED_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGPIPE", "SIGCHLD", "SIGUSR1")
    if hasattr(signal, name)
)
# How long a run's own threads may take to end after main returns (a loaded 2-core machine).
THREADS_END_WITHIN = 30.0
_one_at_a_time = threading.Lock()


class RunTimedOut(BaseException):
    """An in-process run went on past its deadline (BaseException: pfsync must not catch it)."""


class _Kept(io.BytesIO):
    """A captured stream whose bytes survive `close()` (pfsync closes stderr on a broken pipe)."""

    def close(self) -> None:
        self.flush()


def _strict_utf8(buffer: io.BytesIO) -> io.TextIOWrapper:
    return io.TextIOWrapper(buffer, encoding="utf-8", errors="strict", write_through=True)


def in_process(
    argv: list[str],
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    deadline: float = DEADLINE,
) -> Run:
    """`pfsync ARGV` run by `pfsync.cli.main` in this process (main thread only); a Run."""
    from pfsync.cli import main

    assert threading.current_thread() is threading.main_thread(), "in_process: main thread only"
    out, err = _Kept(), _Kept()
    stdin = _strict_utf8(io.BytesIO((input or "").encode()))
    environment = clean_env(env)
    environment.setdefault("COLUMNS", "80")  # what a child writing to a pipe gets
    environment.setdefault("LINES", "24")
    with (
        _one_at_a_time,
        _environment_and_cwd(environment, cwd),
        _handlers_kept(),
        _threads_joined(),
        _logging_kept(),
        _deadline(deadline, argv),
        contextlib.redirect_stdout(_strict_utf8(out)),
        contextlib.redirect_stderr(_strict_utf8(err)),
        _stdin(stdin),
    ):
        try:
            code = main(argv)
        except SystemExit as exc:  # as the console script's sys.exit(main()) would end
            code = exc.code if isinstance(exc.code, int) else 1
    return Run(code, out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8"))


@contextlib.contextmanager
def _environment_and_cwd(environment: dict[str, str], cwd: Path | str | None) -> Iterator[None]:
    saved, previous = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(environment)
    try:
        if cwd is not None:
            os.chdir(cwd)
        expected = os.getcwd()
        yield
        assert os.getcwd() == expected, f"pfsync left the working directory at {os.getcwd()}"
    finally:
        os.chdir(previous)
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _stdin(stream: io.TextIOWrapper) -> Iterator[None]:
    import sys

    saved, sys.stdin = sys.stdin, stream
    try:
        yield
    finally:
        sys.stdin = saved


@contextlib.contextmanager
def _handlers_kept() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in WATCHED_SIGNALS}
    failed = True
    try:
        yield
        failed = False
    finally:
        changed = {
            signal.Signals(sig).name: signal.getsignal(sig)
            for sig, handler in saved.items()
            if signal.getsignal(sig) is not handler
        }
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        assert failed or not changed, f"pfsync left signal handlers installed: {changed}"


@contextlib.contextmanager
def _threads_joined() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    end = time.monotonic() + THREADS_END_WITHIN
    for thread in set(threading.enumerate()) - before:
        thread.join(max(0.0, end - time.monotonic()))
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not left, f"pfsync left threads running: {sorted(left)}"


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    assert (list(root.handlers), root.level) == saved, "pfsync changed the logging setup"


@contextlib.contextmanager
def _deadline(seconds: float, argv: list[str]) -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise RunTimedOut(f"pfsync {' '.join(argv)} still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
