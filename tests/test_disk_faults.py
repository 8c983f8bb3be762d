"""Disk trouble: a journal or lockfile that cannot be written stops the run safely.

Faults are injected in-process (tests run as root, so a read-only chmod would not stop writes):
`os.write`, `os.fsync` and `os.open` fail with ENOSPC, EIO or EROFS, but only for the journal or
the lockfile's temporary file (found through /proc/self/fd), so the sandbox and httpx are
untouched. The run goes through `run_apply` against the real sandbox over loopback, and once end
to end through the installed CLI with the fault loaded by `sitecustomize`.

The properties: no POST is sent whose pending record is not durable (every Idempotency-Key the
sandbox received is in a pending record on disk); a trigger created before the failure is
reported on stderr with its id, exit 1, and never forgotten (the next run knows it as created
or uncertain and never sends it again by itself).
"""

from __future__ import annotations

import errno
import json
import os
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from apply_helpers import BUSINESS, make_repo
from conftest import RunPfsync
from fixtures_sandbox import MakeSandbox
from pfsync.apply.client import PocketflowsClient, Timeouts
from pfsync.apply.run import ApplyIO, ApplyOptions, run_apply
from pfsync.config import Config, load_config
from pfsync.errors import PfsyncError
from pfsync.manifests.load import load_manifests
from pfsync.sandbox import Sandbox
from pfsync.state.journal import read_journal
from pfsync.state.journal_records import Created, Pending
from pfsync.state.lockfile import read_lockfile

JOURNAL = "pfsync.lock.journal"


def fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


class DiskFaults:
    """Make os.write / os.fsync / os.open fail for chosen files, after a chosen number of calls.

    `durable_keys` collects the Idempotency-Keys of the journal's pending records as each
    successful fsync of the journal makes them durable (what a POST may rely on).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.real_write, self.real_fsync, self.real_open = os.write, os.fsync, os.open
        self.durable_keys: set[str] = set()
        self.fsync_fails: Callable[[str], bool] = lambda path: False
        monkeypatch.setattr(os, "fsync", self._fsync)

    def _fsync(self, fd: int) -> None:
        path = fd_path(fd)
        if self.fsync_fails(path):
            raise OSError(self.fsync_error, os.strerror(self.fsync_error))
        self.real_fsync(fd)
        if is_journal(path):
            with open(path, "rb") as journal:  # what the fsync just made durable
                for line in journal.read().splitlines():
                    record = json.loads(line)
                    if record["type"] == "pending":
                        self.durable_keys.add(record["idempotency_key"])

    def fail_write(self, matches: Callable[[str, bytes], bool], error: int) -> None:
        def write(fd: int, data: Any) -> int:
            if matches(fd_path(fd), bytes(data)):
                raise OSError(error, os.strerror(error))
            return self.real_write(fd, data)

        self.monkeypatch.setattr(os, "write", write)

    def fail_fsync(self, matches: Callable[[str], bool], error: int, after: int = 0) -> None:
        seen = [0]

        def fails(path: str) -> bool:
            if matches(path):
                seen[0] += 1
                return seen[0] > after
            return False

        self.fsync_error = error
        self.fsync_fails = fails

    def fail_open(self, name: str, error: int) -> None:
        def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if str(path).endswith(name) and flags & (os.O_WRONLY | os.O_RDWR):
                raise OSError(error, os.strerror(error))
            return self.real_open(path, flags, *args, **kwargs)

        self.monkeypatch.setattr(os, "open", open_)

    def heal(self) -> None:
        self.monkeypatch.undo()


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> DiskFaults:
    return DiskFaults(monkeypatch)


def is_journal(path: str, data: bytes = b"") -> bool:
    return path.endswith(JOURNAL)


def apply_in_process(
    repo: Path, sandbox: Sandbox, parallelism: int = 1, **options: Any
) -> tuple[int, list[str]]:
    """One `pfsync apply --auto-approve` through run_apply; returns exit code and stderr lines."""
    config: Config = load_config(cwd=repo, environ={"PFSYNC_API_URL": sandbox.url})
    loaded = load_manifests(config, cwd=repo)
    assert loaded.diagnostics == []
    lines: list[str] = []
    clients: list[PocketflowsClient] = []

    def client() -> PocketflowsClient:
        made = PocketflowsClient(
            sandbox.url, sandbox.username, sandbox.password, timeouts=Timeouts(2, 2, 5)
        )
        clients.append(made)
        return made

    io = ApplyIO(
        show_plan=lambda plan, where: None, confirm=lambda plan: True, progress=lines.append
    )
    opts = replace(
        ApplyOptions(auto_approve=True, new_lockfile=True, parallelism=parallelism), **options
    )
    try:
        code = run_apply(config, loaded.manifests, opts, client, io)
    except PfsyncError as exc:  # as the CLI does
        lines.append(f"Error: {exc}")
        code = exc.exit_code
    finally:
        for made in clients:
            made.close()
    return code, lines


def posted_keys(sandbox: Sandbox) -> list[str]:
    return [r["idempotency_key"] for r in sandbox.requests() if r["method"] == "POST"]


def durable_journal(repo: Path) -> tuple[set[str], dict[str, str | None]]:
    """Idempotency-Keys of the pending records on disk, and address -> id of created records."""
    contents = read_journal(repo / JOURNAL)
    if contents is None:
        return set(), {}
    pending = {e.idempotency_key for e in contents.events if isinstance(e, Pending)}
    created = {e.address: e.id for e in contents.events if isinstance(e, Created)}
    return pending, created


def assert_never_forgotten(repo: Path, sandbox: Sandbox, stderr: list[str]) -> None:
    """Each sandbox trigger is in the journal, the lockfile, or named with its id on stderr."""
    _, created = durable_journal(repo)
    lockfile = read_lockfile(repo / "pfsync.lock")
    recorded = {r.id for r in lockfile.triggers.values()} if lockfile else set()
    text = "\n".join(stderr)
    for trigger in sandbox.triggers(BUSINESS):
        assert (
            trigger["id"] in created.values()
            or trigger["id"] in recorded
            or f"was created as {trigger['id']}" in text
        ), trigger["id"]


def settle_after_healing(repo: Path, sandbox: Sandbox, count: int) -> None:
    """The disk is fixed: the next apply knows every created trigger and sends none twice."""
    before = len(sandbox.triggers(BUSINESS))
    code, lines = apply_in_process(repo, sandbox, parallelism=4)
    assert code in (0, 3), lines  # 3: the unrecorded ones are uncertain, for a person
    lockfile = read_lockfile(repo / "pfsync.lock")
    assert lockfile is not None
    names = [t["name"] for t in sandbox.triggers(BUSINESS)]
    assert len(names) == len(set(names)), "a trigger was created twice"
    by_name = {t["name"]: t["id"] for t in sandbox.triggers(BUSINESS)}
    # Uncertain: created but unrecorded, or a pending record that reached the disk whose fsync
    # failed, so it was never sent. Either way a person settles it; pfsync does not resend it.
    assert len(lockfile.triggers) + len(lockfile.pending) == count
    unsent = [p for p in lockfile.pending.values() if p.trigger.body["name"] not in by_name]
    assert len(names) == len(lockfile.triggers) + len(lockfile.pending) - len(unsent)
    assert len(names) >= before
    for address, record in lockfile.triggers.items():
        assert record.id == by_name[record.body["name"]], address


@pytest.mark.parametrize(
    ("kind", "error", "after"),
    [
        ("write", errno.ENOSPC, 0),
        ("fsync", errno.EIO, 3),
        ("fsync", errno.ENOSPC, 0),
    ],
)
def test_journal_failure_mid_run_sends_nothing_more(
    make_sandbox: MakeSandbox,
    tmp_path: Path,
    faults: DiskFaults,
    kind: str,
    error: int,
    after: int,
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 12)
    if kind == "write":
        # The disk fills up after the `begin` record and 5 more records.
        written = [0]

        def full_after_six(path: str, data: bytes) -> bool:
            if not is_journal(path):
                return False
            written[0] += 1
            return written[0] > 6

        faults.fail_write(full_after_six, error)
    else:
        faults.fail_fsync(is_journal, error, after=after)
    code, lines = apply_in_process(repo, sandbox, parallelism=3)
    faults.heal()

    assert code == 1, lines
    text = "\n".join(lines)
    assert f"Error: cannot {kind} the journal" in text
    assert "no further create will be sent" in text
    # No POST whose pending record was not durable first.
    assert set(posted_keys(sandbox)) <= faults.durable_keys
    if kind == "write" or after:
        assert posted_keys(sandbox)  # some creates went out before the failure
    else:
        assert posted_keys(sandbox) == []  # the journal's first record already failed
    assert len(posted_keys(sandbox)) < 12
    assert_never_forgotten(repo, sandbox, lines)
    settle_after_healing(repo, sandbox, 12)


def test_outcome_not_recordable_after_a_2xx_is_printed_with_its_id(
    make_sandbox: MakeSandbox, tmp_path: Path, faults: DiskFaults
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 5)
    faults.fail_write(lambda path, data: is_journal(path) and b'"type":"created"' in data, 28)
    code, lines = apply_in_process(repo, sandbox)
    faults.heal()

    assert code == 1, lines
    [trigger] = sandbox.triggers(BUSINESS)
    assert len(posted_keys(sandbox)) == 1  # the run stopped: nothing more was sent
    assert (
        f"NOT RECORDED: {BUSINESS}/t000 was created as {trigger['id']}; once the disk or state "
        f"store is fixed run `pfsync state import {BUSINESS}/t000 {trigger['id']}`"
    ) in lines
    assert "Error: cannot write the journal" in "\n".join(lines)
    # Never forgotten: its durable pending record makes it uncertain, never sent again by itself.
    lockfile = read_lockfile(repo / "pfsync.lock")
    assert lockfile is not None and list(lockfile.pending) == [f"{BUSINESS}/t000"]
    settle_after_healing(repo, sandbox, 5)
    assert len(posted_keys(sandbox)) == 5  # t000 was not sent again


def test_journal_that_cannot_be_created_sends_nothing(
    make_sandbox: MakeSandbox, tmp_path: Path, faults: DiskFaults
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 3)
    faults.fail_open(JOURNAL, errno.EROFS)
    code, lines = apply_in_process(repo, sandbox)
    faults.heal()
    assert code == 1
    assert lines[-1].startswith("Error: cannot open the journal")
    assert "Read-only file system; nothing was sent" in lines[-1]
    assert posted_keys(sandbox) == []


def test_lockfile_that_cannot_be_written_at_the_fold_keeps_the_journal(
    make_sandbox: MakeSandbox, tmp_path: Path, faults: DiskFaults
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 4)
    code, _ = apply_in_process(repo, sandbox, targets=[f"{BUSINESS}/t000"])
    assert code == 0
    before = (repo / "pfsync.lock").read_bytes()
    # Every fsync of the lockfile's temporary file fails: the fold cannot replace the lockfile.
    faults.fail_fsync(lambda path: "/.pfsync.lock." in path, errno.EIO)
    code, lines = apply_in_process(repo, sandbox)
    faults.heal()

    assert code == 1, lines
    text = "\n".join(lines)
    assert "cannot write the lockfile" in text and "it was not changed" in text
    assert (repo / "pfsync.lock").read_bytes() == before  # never half-written or overwritten
    assert not [p for p in repo.iterdir() if p.name.endswith(".tmp")]
    _, created = durable_journal(repo)
    assert sorted(created) == [f"{BUSINESS}/t00{n}" for n in (1, 2, 3)]  # kept in the journal
    settle_after_healing(repo, sandbox, 4)
    lockfile = read_lockfile(repo / "pfsync.lock")
    assert lockfile is not None and len(lockfile.triggers) == 4 and not lockfile.pending
    assert not (repo / JOURNAL).exists()


SITECUSTOMIZE = textwrap.dedent(
    """
    import os

    if os.environ.get("PFSYNC_TEST_DISK_FULL_ON_CREATED"):
        _write = os.write

        def write(fd, data):
            try:
                path = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                path = ""
            if path.endswith("pfsync.lock.journal") and b'"type":"created"' in bytes(data):
                raise OSError(28, "No space left on device")
            return _write(fd, data)

        os.write = write
    """
)


def test_end_to_end_disk_full_after_a_create(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    sandbox = make_sandbox()
    repo = make_repo(tmp_path / "repo", 6)
    env = {
        **sandbox.environment(),
        "PYTHONPATH": str(hooks),
        "PFSYNC_TEST_DISK_FULL_ON_CREATED": "1",
    }
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", "--parallelism", "1", cwd=repo, env=env
    )
    assert run.code == 1, run
    assert "Traceback" not in run.err
    [trigger] = sandbox.triggers(BUSINESS)
    assert f"NOT RECORDED: {BUSINESS}/t000 was created as {trigger['id']}" in run.err
    assert "No space left on device" in run.err
    assert len(posted_keys(sandbox)) == 1

    healed = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert healed.code == 3, healed  # t000 is uncertain: a person settles it, pfsync never resends
    assert len(sandbox.triggers(BUSINESS)) == 6
    lock = json.loads((repo / "pfsync.lock").read_text())
    assert list(lock["pending"]) == [f"{BUSINESS}/t000"]
    imported = run_pfsync(
        "state", "import", f"{BUSINESS}/t000", trigger["id"], cwd=repo, env=sandbox.environment()
    )
    assert imported.code == 0, imported
    done = run_pfsync("plan", "--detailed-exitcode", cwd=repo, env={"PFSYNC_API_URL": sandbox.url})
    assert done.code == 0, done
