"""Shared test fixtures: run the installed `pfsync` as a subprocess and capture everything."""

from __future__ import annotations

import os
import re
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


# What no output may hold raw: anything a terminal would act on, and what UTF-8 cannot carry.
UNSAFE_OUTPUT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def run_in_process(
    argv: list[str], cwd: Path, env: Mapping[str, str] | None = None
) -> tuple[int, str]:
    """`pfsync ARGV` in this process (fast, for property tests): its exit code and stdout then
    stderr, written through strict UTF-8 streams so an unencodable character fails the test."""
    import contextlib
    import io

    from pfsync.cli import main

    out, err = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", errors="strict", write_through=True)
    stderr = io.TextIOWrapper(err, encoding="utf-8", errors="strict", write_through=True)
    env = env or {}
    saved = {name: os.environ.get(name) for name in env}
    previous = os.getcwd()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(argv)
    finally:
        os.chdir(previous)
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
    return code, (out.getvalue() + err.getvalue()).decode("utf-8")
