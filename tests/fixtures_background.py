"""Fixtures for tests that hold creates in the sandbox and run pfsync in the background.

WAIT_SECONDS                bound of every wait for another process
wait_until(condition, what) poll until it holds; AssertionError naming `what` if it never does
make_gate(sandbox, *n)      hold the creates numbered n (arrival order) until released
spawn(cwd, env, *args)      `pfsync ARGS` in the background, its output in files
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Run, clean_env, pfsync_executable
from fixtures_sandbox import MakeSandbox
from pfsync.sandbox import Sandbox

WAIT_SECONDS = 120.0  # bound of every wait for another process (a loaded 2-core machine)


def wait_until(
    condition: Callable[[], object],
    what: str,
    timeout: float = WAIT_SECONDS,
    interval: float = 0.02,
) -> None:
    """Poll `condition` until it holds; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


# The gate: hold chosen create requests in the sandbox until the test releases them.


class Gate:
    """Holds the create requests numbered in `held` (0-based, in arrival order) until released.

    A held request has not been stored yet; once released it is processed as usual.
    """

    def __init__(self, sandbox: Sandbox, held: Iterable[int]) -> None:
        self._next_outcome = sandbox.faults.next_outcome
        self._count = 0
        self._lock = threading.Lock()
        self._arrived = {n: threading.Event() for n in held}
        self._release = {n: threading.Event() for n in self._arrived}

    def next_outcome(self) -> tuple[str, int | None]:
        with self._lock:
            number, self._count = self._count, self._count + 1
        if number in self._arrived:
            self._arrived[number].set()
            self._release[number].wait(WAIT_SECONDS * 2)
        return self._next_outcome()

    def arrived(self, number: int) -> bool:
        return self._arrived[number].is_set()

    def wait_for(self, number: int) -> None:
        assert self._arrived[number].wait(WAIT_SECONDS), f"create #{number} never arrived"

    def release(self, number: int) -> None:
        self._release[number].set()

    def release_all(self) -> None:
        for event in self._release.values():
            event.set()


MakeGate = Callable[..., Gate]


@pytest.fixture
def make_gate(make_sandbox: MakeSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeGate]:
    """make_gate(sandbox, *numbers): hold those creates; all are released after the test."""
    gates: list[Gate] = []

    def make(sandbox: Sandbox, *held: int) -> Gate:
        gate = Gate(sandbox, held)
        monkeypatch.setattr(sandbox.faults, "next_outcome", gate.next_outcome)
        gates.append(gate)
        return gate

    yield make
    for gate in gates:  # before the sandboxes stop: they wait for their handler threads
        gate.release_all()


# pfsync running in the background, its output in files (a full pipe would stall it).


@dataclass
class Background:
    """A `pfsync` process started by the test."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def finish(self) -> Run:
        code = self.proc.wait(timeout=WAIT_SECONDS)
        return Run(code, self.out.read_text(), self.err.read_text())


Spawn = Callable[..., Background]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """spawn(cwd, env, *args): start `pfsync ARGS` in the background; killed after the test."""
    started: list[Background] = []

    def start(cwd: Path, env: Mapping[str, str], *args: str) -> Background:
        name = f"pfsync-{len(started)}"
        out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with out.open("wb") as out_file, err.open("wb") as err_file:
            proc = subprocess.Popen(
                [pfsync_executable(), *args],
                cwd=cwd,
                env=clean_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out_file,
                stderr=err_file,
            )
        background = Background(proc, out, err)
        started.append(background)
        return background

    yield start
    for background in started:
        if background.running():
            background.proc.kill()
        background.proc.wait(timeout=WAIT_SECONDS)
