"""Shared test fixtures: run the installed `pfsync` as a subprocess and capture everything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["fixtures_sandbox"]

TESTS = Path(__file__).parent
REPO = TESTS.parent


def pfsync_executable() -> str:
    """The installed console script next to this interpreter (the one CI installed)."""
    candidate = Path(sys.executable).parent / "pfsync"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("pfsync")
    assert found, "pfsync is not installed; run: pip install '.[test]'"
    return found


@dataclass(frozen=True)
class Run:
    """Exit code and both streams of one `pfsync` run."""

    code: int
    out: str
    err: str

    def __str__(self) -> str:  # shown by pytest when an assertion fails
        return f"exit {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without PFSYNC_* variables or colour forcing, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PFSYNC_")}
    env.pop("FORCE_COLOR", None)
    env.update(extra or {})
    return env


RunPfsync = Callable[..., Run]


@pytest.fixture
def run_pfsync() -> RunPfsync:
    """Run `pfsync ARGS...` in `cwd` with a clean environment; returns a Run."""

    def run(
        *args: str,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
    ) -> Run:
        proc = subprocess.run(
            [pfsync_executable(), *args],
            cwd=cwd,
            env=clean_env(env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    return run
