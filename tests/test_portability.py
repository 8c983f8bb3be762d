"""pfsync where its users are: Windows (no fcntl, no fork, no SIGHUP) and macOS (fork unsafe).

Run on Linux by simulating what is missing (tests/simulated_windows.py): in this process with
monkeypatch, and for whole `pfsync` runs with a sitecustomize that removes fcntl, os.fork and the
other POSIX-only pieces and supplies an msvcrt. Each fallback must give what POSIX gives.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import simulated_windows
from project_helpers import manifest_yaml, write_project

from conftest import REPO, TESTS, Run, RunPfsync, clean_env, pfsync_executable
from fixtures_sandbox import MakeSandbox
from pfsync.errors import LockfileError, LockHeldError
from pfsync.state.lock import sidecar_path, state_lock
from pfsync.support import workers
from pfsync.support.paths import shown_path

needs_simulation = pytest.mark.skipif(
    not simulated_windows.supported(), reason="the simulated msvcrt needs Linux's OFD locks"
)


def simulate_windows_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import fcntl` fails in this process and `import msvcrt` gives the simulated one."""
    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.setitem(sys.modules, "msvcrt", simulated_windows.msvcrt_module())


@pytest.fixture(params=["posix", pytest.param("windows", marks=needs_simulation)])
def platform(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each state-lock test runs with flock and with msvcrt.locking, expecting the same."""
    if request.param == "windows":
        simulate_windows_lock(monkeypatch)
    return str(request.param)


def held_message(lockfile: Path, holder: str, waited: str = "") -> str:
    return (
        f"the state lock of {shown_path(lockfile)} is held by {holder}{waited}; another pfsync "
        "command is changing the state. Wait for it to finish, or pass --lock-timeout SECONDS "
        "to wait for it"
    )


# ---------------------------------------------------------------------------------- state lock


def test_a_second_holder_is_refused_naming_the_first(platform: str, tmp_path: Path) -> None:
    lockfile = tmp_path / "pfsync.lock"
    sidecar = sidecar_path(lockfile)
    with state_lock(lockfile) as holder:
        assert (holder.pid, holder.host) == (os.getpid(), socket.gethostname())
        assert sidecar.read_bytes() == f"{holder.pid} {holder.host} {holder.since}\n".encode()
        with pytest.raises(LockHeldError) as info, state_lock(lockfile):
            pass
        assert str(info.value) == held_message(lockfile, holder.describe())
        if platform == "windows":  # Windows locks are mandatory: the holder text stays unlocked
            assert simulated_windows.is_locked(sidecar, 0, 0)
            assert not simulated_windows.is_locked(sidecar, 0, 4096)
    assert sidecar.read_bytes() == b""
    if platform == "windows":
        assert not simulated_windows.is_locked(sidecar, 0, 0)
    with state_lock(lockfile):  # released at the end of the block
        pass


def test_the_wait_for_a_held_lock_ends_naming_the_holder(platform: str, tmp_path: Path) -> None:
    lockfile = tmp_path / "pfsync.lock"
    with state_lock(lockfile) as holder:
        started = time.monotonic()
        with pytest.raises(LockHeldError) as info, state_lock(lockfile, timeout=0.2):
            pass
        assert time.monotonic() - started >= 0.2
    assert str(info.value) == held_message(lockfile, holder.describe(), " after waiting 0.2s")


def test_a_waiting_command_gets_the_lock_once_it_is_released(platform: str, tmp_path: Path) -> None:
    lockfile = tmp_path / "pfsync.lock"
    taken, release = threading.Event(), threading.Event()

    def first() -> None:
        with state_lock(lockfile):
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert taken.wait(10)
        threading.Timer(0.3, release.set).start()
        started = time.monotonic()
        with state_lock(lockfile, timeout=10) as holder:
            assert time.monotonic() - started >= 0.2
            assert sidecar_path(lockfile).read_text().split()[0] == str(holder.pid)
    finally:
        release.set()
        thread.join()


@needs_simulation
def test_a_windows_lock_that_fails_otherwise_is_a_lockfile_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulate_windows_lock(monkeypatch)

    def locking(fd: int, mode: int, nbytes: int) -> None:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    monkeypatch.setattr(sys.modules["msvcrt"], "locking", locking)
    lockfile = tmp_path / "pfsync.lock"
    with pytest.raises(LockfileError) as info, state_lock(lockfile):
        pass
    assert not isinstance(info.value, LockHeldError)
    assert str(info.value) == f"cannot lock {shown_path(sidecar_path(lockfile))}: Invalid argument"


# ------------------------------------------------------------------------------------ workers


def shares_tagged(share: tuple[int, str, int]) -> tuple[int, str]:
    """(share number, the process that computed it). The first share waits for the others to be
    done elsewhere, so that spawned children have time to start; a child fails if told to."""
    number, markers, count = share
    if number == 0:
        deadline = time.monotonic() + 60
        while len(os.listdir(markers)) < count - 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    elif os.environ.get("PFSYNC_TEST_CHILDREN_FAIL") and os.getpid() != int(
        os.environ["PFSYNC_TEST_PARENT"]
    ):
        Path(markers, str(number)).touch()
        raise RuntimeError("a child that fails")
    else:
        Path(markers, str(number)).touch()
    return number, multiprocessing.current_process().name  # a forked child says MainProcess


def share_and_pid(share: int) -> tuple[int, int]:
    return share, os.getpid()


@pytest.fixture(params=["no fork", "macOS"])
def without_fork(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where fork is missing (Windows) or unsafe (macOS): children must be spawned."""
    if request.param == "no fork":
        monkeypatch.delattr(os, "fork")
    else:
        monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("PFSYNC_TEST_PARENT", str(os.getpid()))
    return str(request.param)


# Spawning children is the same code whichever condition chose it (no fork, or macOS), and it
# costs a fresh interpreter per child: the two tests below spawn where there is no fork only.
# That macOS chooses spawning too is shown with real children by the large repository test.
only_without_fork = pytest.mark.parametrize("without_fork", ["no fork"], indirect=True)


@only_without_fork
def test_spawned_children_compute_their_shares(without_fork: str, tmp_path: Path) -> None:
    shares = [(n, str(tmp_path), 3) for n in range(3)]
    results = workers.map_in_processes(shares_tagged, shares)
    assert results is not None
    assert [number for number, _ in results] == [0, 1, 2]
    assert [name.split("-")[0] for _, name in results] == ["MainProcess", *["SpawnProcess"] * 2]
    assert multiprocessing.active_children() == []


@only_without_fork
def test_a_failing_spawned_child_is_silent_and_its_share_done_here(
    without_fork: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PFSYNC_TEST_CHILDREN_FAIL", "1")
    shares = [(n, str(tmp_path), 3) for n in range(3)]
    assert workers.map_in_processes(shares_tagged, shares) == [(n, "MainProcess") for n in range(3)]
    assert capfd.readouterr() == ("", "")
    assert multiprocessing.active_children() == []


def test_children_still_starting_are_stopped_and_their_shares_done_here(
    without_fork: str,
) -> None:
    # A share this small is done long before a fresh interpreter has imported anything.
    assert workers.map_in_processes(share_and_pid, [0, 1, 2]) == [
        (n, os.getpid()) for n in range(3)
    ]
    assert multiprocessing.active_children() == []


def large_repository(root: Path) -> Path:
    """PARALLEL_MIN_FILES manifests and the bad corpus, with duplicate keys across shares."""
    from pfsync.manifests.load import PARALLEL_MIN_FILES

    shutil.copytree(TESTS / "data" / "bad", root / "triggers" / "bad")
    good = (REPO / "examples" / "triggers" / "welcome-series.yaml").read_text()
    for n in range(PARALLEL_MIN_FILES):
        text = good.replace("key: welcome-series", f"key: t-{n - n % 10 if n % 10 == 9 else n}")
        (root / "triggers" / f"t{n:04d}.yaml").write_text(text)
    (root / "pfsync.yaml").write_text('business: biz\nmanifests: ["triggers/**/*.yaml"]\n')
    return root


def spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Record the number of shares each call of workers.`name` receives."""
    calls: list[int] = []
    real: Callable[..., Any] = getattr(workers, name)

    def recording(function: Any, shares: Any) -> Any:
        calls.append(len(shares))
        return real(function, shares)

    monkeypatch.setattr(workers, name, recording)
    return calls


def test_a_large_repository_loads_the_same_with_spawned_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pfsync.config import load_config
    from pfsync.manifests.load import load_manifests
    from pfsync.manifests.results import LoadResult

    def load(name: str) -> LoadResult:  # a copy of its own, so nothing is reused between loads
        root = large_repository(tmp_path / name)
        return load_manifests(load_config(None, str(root)), cwd=root)

    forked, spawned = spy(monkeypatch, "_map_in_forked"), spy(monkeypatch, "_map_in_spawned")
    by_fork = load("fork")
    assert forked and not spawned
    with monkeypatch.context() as patch:
        patch.setattr(workers, "map_in_processes", lambda function, shares: None)
        here = load("here")
    with monkeypatch.context() as patch:
        patch.delattr(os, "fork")
        assert load("no fork") == by_fork == here
    with monkeypatch.context() as patch:
        patch.setattr(sys, "platform", "darwin")
        assert load("macOS") == by_fork
    assert len(forked) == 1 and len(spawned) == 2 and spawned[0] > 1
    assert len([d for d in here.diagnostics if "biz/t-" in d.message]) > 1


def test_usable_cores_without_cpu_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert workers.usable_cores() == (os.cpu_count() or 1)


def test_atomic_writes_where_directories_cannot_be_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pfsync.support.atomic import atomic_write_text

    real_open = os.open

    def windows_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if os.path.isdir(path):  # as on Windows: a directory is not a file to os.open
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", windows_open)
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.delattr(os, "fchmod")
    atomic_write_text(tmp_path / "pfsync.lock", "{}\n")
    atomic_write_text(tmp_path / "pfsync.lock", "[]\n")
    assert [p.name for p in tmp_path.iterdir()] == ["pfsync.lock"]
    assert (tmp_path / "pfsync.lock").read_text() == "[]\n"


# ---------------------------------------------------------------- whole runs, as on Windows


@pytest.fixture
def windows_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a `pfsync` run (and of its children) simulating Windows; the log of
    what the simulation saw is at windows_env[simulated_windows.LOG_ENV]."""
    if not simulated_windows.supported():
        pytest.skip("the simulated msvcrt needs Linux's OFD locks")
    shim = tmp_path / "simulated-windows"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import simulated_windows\nsimulated_windows.install()\n"
    )
    log = tmp_path / "simulated-windows.log"
    return {
        "PYTHONPATH": os.pathsep.join([str(shim), str(TESTS)]),
        simulated_windows.LOG_ENV: str(log),
    }


def simulation_log(env: dict[str, str]) -> str:
    path = Path(env[simulated_windows.LOG_ENV])
    return path.read_text() if path.exists() else ""


def normalised(run: Run) -> Run:
    """Without what differs between any two runs: the sandbox's port, the ids it gives."""

    def clean(text: str) -> str:
        text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
        return re.sub(r"trg_[0-9a-f]{24}", "trg_ID", text)

    return Run(run.code, clean(run.out), clean(run.err))


SANDBOX_RUN = (
    ("validate",),
    ("plan", "--sandbox"),
    ("apply", "--sandbox", "--auto-approve", "--parallelism", "1"),
    ("plan", "--sandbox", "--detailed-exitcode"),
)


def test_validate_plan_apply_print_the_same_on_simulated_windows(
    tmp_path: Path, run_pfsync: RunPfsync, windows_env: dict[str, str]
) -> None:
    manifests = {
        f"{key}.yaml": manifest_yaml(key, key.title()) for key in ("alpha", "beta", "gamma")
    }
    posix = write_project(tmp_path / "posix", manifests)
    windows = write_project(tmp_path / "windows", manifests)
    for args in SANDBOX_RUN:
        expected = normalised(run_pfsync(*args, cwd=posix))
        assert normalised(run_pfsync(*args, cwd=windows, env=windows_env)) == expected, args
    assert expected.code == 0  # the last plan: in sync
    log = simulation_log(windows_env)
    assert re.search(r"^\d+ locking 2 4096 1$", log, re.M), log  # taken with msvcrt.locking
    assert re.search(r"^\d+ locking 0 4096 1$", log, re.M), log  # and released
    assert (windows / ".pfsync" / "pfsync.lock").read_text().startswith("{")


def test_a_large_repository_validates_the_same_on_simulated_windows(
    tmp_path: Path, run_pfsync: RunPfsync, windows_env: dict[str, str]
) -> None:
    expected = run_pfsync("validate", cwd=large_repository(tmp_path / "posix"))
    assert expected.code == 1 and "biz/t-" in expected.out + expected.err
    windows = large_repository(tmp_path / "windows")
    assert run_pfsync("validate", cwd=windows, env=windows_env) == expected
    assert " spawns a child\n" in simulation_log(windows_env)


HOLDER = """
import sys
from pathlib import Path
from pfsync.state.lock import state_lock
with state_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_windows_holder_in_another_process_refuses_state_commands(
    tmp_path: Path, run_pfsync: RunPfsync, windows_env: dict[str, str]
) -> None:
    root = write_project(tmp_path, {"a.yaml": manifest_yaml("alpha", "Alpha")})
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root / "pfsync.lock")],
        env=clean_env(windows_env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline() == "locked\n", "the holder did not take the lock"
        _, host, since = (root / "pfsync.lock.lck").read_text().split()
        named = f"pid {holder.pid} on host {host} since {since}"
        for args, waited in ((), ""), (("--lock-timeout", "0.2"), " after waiting 0.2s"):
            run = run_pfsync(
                "state", "import", "biz_1/alpha", "trg_a", *args, cwd=root, env=windows_env
            )
            assert run == Run(1, "", f"Error: {held_message(Path('pfsync.lock'), named, waited)}\n")
    finally:
        holder.stdin.close()
        holder.wait(10)
        holder.stdout.close()
    run = run_pfsync("state", "import", "biz_1/alpha", "trg_a", cwd=root, env=windows_env)
    assert (run.code, run.err) == (0, ""), run


def test_the_sandbox_server_stops_on_ctrl_c_without_signal_pause(
    tmp_path: Path, windows_env: dict[str, str]
) -> None:
    runs = []
    for env in ({}, windows_env):
        proc = subprocess.Popen(
            [pfsync_executable(), "sandbox", "--port", "0"],
            cwd=tmp_path,
            env=clean_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        url, started = proc.stdout.readline(), proc.stderr.readline()  # then it waits
        assert url.startswith("http://127.0.0.1:") and started.startswith("Sandbox "), started
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        runs.append(normalised(Run(proc.returncode, url + out, started + err)))
    assert runs[1] == runs[0] and runs[0].code == 0


def test_an_apply_holding_a_git_store_lock_prints_the_same_on_simulated_windows(
    tmp_path: Path, run_pfsync: RunPfsync, make_sandbox: MakeSandbox, windows_env: dict[str, str]
) -> None:
    from git_helpers import GIT_ENV, clone, make_remote

    sandbox = make_sandbox()
    runs = []
    for name, env in (("posix", GIT_ENV), ("windows", {**GIT_ENV, **windows_env})):
        (tmp_path / name).mkdir()
        runner = clone(make_remote(tmp_path / name, manifests=2), tmp_path / name / "runner")
        # Holds the store's lock while it sends: SIGTERM (and SIGHUP where there is one) release it.
        args = ("apply", "--auto-approve", "--new-lockfile", "--parallelism", "1")
        run = run_pfsync(*args, cwd=runner, env={**sandbox.environment(), **env})
        runs.append(
            normalised(Run(run.code, re.sub(r"\b[0-9a-f]{7,40}\b", "SHA", run.out), run.err))
        )
    assert runs[1] == runs[0] and runs[0].code == 0, runs
