"""Shared test fixtures: run the installed `pfsync` as a subprocess and capture everything.

Compare a run's whole outcome in one assertion, so a failure shows exit code and both streams:

    assert (run.code, run.out, run.err) == (0, "...", "")
    assert run.normalised(URL=sandbox.url, KEY=key) == (3, "...<URL>...", "...<KEY>...")

`normalise` names what a test knows (`TMP=tmp_path` gives `<TMP>`) and replaces each class of
token that changes between runs with a placeholder: `<ID>` a trigger id the sandbox chose,
`<UUID>` an Idempotency-Key or lineage, `<TIME>` a timestamp, `<SECONDS>` a duration.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["fixtures_sandbox", "fixtures_background"]

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


Known = str | Path | re.Pattern[str]

# Tokens that change from run to run, each shown as its class's placeholder.
VOLATILE = (
    (re.compile(r"\btrg_[0-9a-f]{24}\b"), "<ID>"),  # the sandbox's trigger ids
    (re.compile(r"\b[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}\b"), "<UUID>"),
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)"), "<TIME>"),
    (re.compile(r"\b\d+\.\d+ s\b"), "<SECONDS> s"),
)
# A loopback URL whose port a test cannot know (an in-process sandbox's), as a known value.
LOOPBACK_URL = re.compile(r"http://127\.0\.0\.1:\d+")


def normalise(text: str, **known: Known) -> str:
    """`text` with each known value shown as `<NAME>`, then each volatile token as its class.

    Known strings and paths go first, longest first (so `REPO=tmp_path / "repo"` wins over
    `TMP=tmp_path`), then known patterns: a test names what it knows (`KEY=key`,
    `URL=sandbox.url`), and a class placeholder is left only for what it could not know.
    """
    literals = {name: str(v) for name, v in known.items() if not isinstance(v, re.Pattern)}
    assert all(literals.values()), f"an empty known value would match everywhere: {known}"
    for name, value in sorted(literals.items(), key=lambda item: -len(item[1])):
        text = text.replace(value, f"<{name}>")
    for name, pattern in known.items():
        if isinstance(pattern, re.Pattern):
            text = pattern.sub(f"<{name}>", text)
    for pattern, placeholder in VOLATILE:
        text = pattern.sub(placeholder, text)
    return text


@dataclass(frozen=True)
class Run:
    """Exit code and both streams of one `pfsync` run."""

    code: int
    out: str
    err: str

    def __str__(self) -> str:  # shown by pytest when an assertion fails
        return f"exit {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"

    def normalised(self, **known: Known) -> tuple[int, str, str]:
        """Exit code, stdout and stderr, each through `normalise(text, **known)`."""
        return self.code, normalise(self.out, **known), normalise(self.err, **known)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without PFSYNC_* variables, colour forcing or GITHUB_ACTIONS, plus
    `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PFSYNC_")}
    env.pop("FORCE_COLOR", None)
    env.pop("GITHUB_ACTIONS", None)  # a plan on GitHub Actions adds workflow annotations
    env.update(extra or {})
    return env


RunPfsync = Callable[..., Run]
# How long one pfsync run may take before the test fails (a loaded 2-core machine).
DEADLINE = 60.0
# What only a new interpreter reads: a run that sets one needs a child process.
INTERPRETER_VARIABLES = ("PYTHON", "LANG", "LC_")
# PFSYNC_TEST_SUBPROCESS=1: every run_pfsync in a child process (does a failure depend on it?).
ALL_IN_CHILD_PROCESSES = os.environ.get("PFSYNC_TEST_SUBPROCESS") == "1"


# Every property test names its example count, sized for the suite on two cores under -n auto.
# What they share: no deadline per example (a loaded machine is not a failure), and the blob
# that reproduces a failure. HYPOTHESIS_PROFILE picks another registered profile.
# (The other Pythons' smoke runs a few tests with pytest alone: no Hypothesis there.)
try:
    from hypothesis import settings
except ImportError:
    pass
else:
    settings.register_profile("default", deadline=None, print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# The files whose tests take longest (SIGKILL trials, the tutorial, store faults and timeouts),
# slowest first. They start first, so that under `-n` no worker is left running one of them
# alone at the end while the others are done.
SLOWEST_FIRST = (
    "test_s3_store_kills.py",
    "test_git_store_kills.py",
    "test_tutorial.py",
    "test_s3_store_faults.py",
    "test_apply_safety.py",
    "test_store_timeouts.py",
    "test_git_store.py",
    "test_s3_store.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests of SLOWEST_FIRST first, in its order; the rest keep theirs."""
    rank = {name: n for n, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(autouse=True, scope="session")
def _cache_key_outside_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The manifest cache's key (under XDG_CACHE_HOME) in a folder of the test run, not ~."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


def run_subprocess(
    *args: str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
) -> Run:
    """`pfsync ARGS` as the installed console script in a child process; returns a Run."""
    proc = subprocess.run(
        [pfsync_executable(), *args],
        cwd=cwd,
        env=clean_env(env),
        input=input,
        capture_output=True,
        text=True,
        timeout=DEADLINE if timeout is None else timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def run_pfsync_anyhow(
    *args: str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
    subprocess: bool = False,
) -> Run:
    """`pfsync ARGS` in this process where that behaves as the installed script would, else in a
    child process: when asked (`subprocess=True`), off the main thread, or when `env` sets what
    only a new interpreter reads (PYTHON*, the locale). `timeout` bounds the run either way."""
    if (
        subprocess
        or ALL_IN_CHILD_PROCESSES
        or threading.current_thread() is not threading.main_thread()
        or any(name.startswith(INTERPRETER_VARIABLES) for name in env or {})
    ):
        return run_subprocess(*args, cwd=cwd, env=env, input=input, timeout=timeout)
    from in_process import in_process

    return in_process(
        list(args), cwd=cwd, env=env, input=input, deadline=DEADLINE if timeout is None else timeout
    )


@pytest.fixture
def run_pfsync() -> RunPfsync:
    """Run `pfsync ARGS...` in `cwd` with a clean environment and `input` on stdin; a Run.

    In this process (`pfsync.cli.main(argv)`, isolated: see `in_process`) unless the child
    process is the point: `subprocess=True`, or see `run_pfsync_anyhow`.
    """
    return run_pfsync_anyhow


@pytest.fixture(name="run_pfsync_subprocess")
def run_pfsync_subprocess_fixture() -> RunPfsync:
    """Run the installed `pfsync` console script as a child process; returns a Run."""
    return run_subprocess


# What no output may hold raw: anything a terminal would act on, and what UTF-8 cannot carry.
UNSAFE_OUTPUT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def run_in_process(
    argv: list[str], cwd: Path, env: Mapping[str, str] | None = None
) -> tuple[int, str]:
    """`pfsync ARGV` in this process (see `in_process`): its exit code, and stdout then stderr."""
    from in_process import in_process

    run = in_process(argv, cwd=cwd, env=env)
    return run.code, run.out + run.err
