"""The state lock: one state-changing command at a time; a killed holder never blocks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from project_helpers import manifest_yaml, read_json, write_project

from conftest import RunPfsync
from pfsync.errors import LockHeldError
from pfsync.models import DesiredTrigger
from pfsync.schemas import LOCKFILE, validator
from pfsync.state.journal import Journal
from pfsync.state.journal_records import Pending
from pfsync.state.lock import sidecar_path, state_lock
from pfsync.state.lockfile import Lockfile, read_lockfile, save_lockfile
from pfsync.support.canonical import body_digest

HOLDER = """
import sys, time
from pathlib import Path
from pfsync.state.lock import state_lock
with state_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


def hold_lock(lockfile: Path) -> subprocess.Popen[str]:
    """A separate process holding the state lock until killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lockfile)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "locked\n"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    """Kill the holder (if still alive) and close its pipe."""
    proc.kill()
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


def test_second_holder_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    lockfile = tmp_path / "pfsync.lock"
    with state_lock(lockfile) as holder:
        assert sidecar_path(lockfile).read_text() == f"{os.getpid()} {holder.host} {holder.since}\n"
        with pytest.raises(LockHeldError) as info, state_lock(lockfile):
            pass
    assert f"is held by pid {os.getpid()} on host {socket.gethostname()} since " in str(info.value)
    with state_lock(lockfile):  # released at the end of the block
        pass


def test_state_command_refused_while_another_holds_the_lock(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = write_project(tmp_path, {"a.yaml": manifest_yaml("alpha", "Alpha")})
    holder = hold_lock(root / "pfsync.lock")
    try:
        _, host, since = (root / "pfsync.lock.lck").read_text().split()
        run = run_pfsync("state", "import", "biz_1/alpha", "trg_a", cwd=root)
        assert (run.code, run.out) == (1, "")
        assert run.err == (
            f"Error: the state lock of pfsync.lock is held by pid {holder.pid} on host {host} "
            f"since {since}; another pfsync command is changing the state. Wait for it to "
            "finish, or pass --lock-timeout SECONDS to wait for it\n"
        )
        run = run_pfsync("state", "rm", "biz_1/alpha", "--lock-timeout", "0.2", cwd=root)
        assert run.code == 1 and "since " + since + " after waiting 0.2s;" in run.err
        assert not (root / "pfsync.lock").exists()
    finally:
        stop(holder)


def test_holder_killed_with_sigkill_does_not_block(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    root = write_project(tmp_path, {"a.yaml": manifest_yaml("alpha", "Alpha")})
    holder = hold_lock(root / "pfsync.lock")
    os.kill(holder.pid, signal.SIGKILL)
    stop(holder)
    run = run_pfsync("state", "import", "biz_1/alpha", "trg_a", cwd=root)
    assert (run.code, run.err) == (0, ""), run


def test_racing_state_commands_wait_and_keep_the_lockfile_valid(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    from conftest import clean_env, pfsync_executable

    keys = [f"t{i}" for i in range(6)]
    root = write_project(tmp_path, {f"{k}.yaml": manifest_yaml(k, k.upper()) for k in keys})
    assert run_pfsync("state", "import", "biz_1/t0", "trg_t0", cwd=root).code == 0
    procs = [
        subprocess.Popen(
            [
                pfsync_executable(),
                "state",
                "import",
                f"biz_1/{k}",
                f"trg_{k}",
                "--lock-timeout",
                "30",
            ],
            cwd=root,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in keys[1:]
    ]
    results = [(p.wait(timeout=60), p.communicate()) for p in procs]
    assert [code for code, _ in results] == [0] * 5, results
    data = read_json(root / "pfsync.lock")
    assert validator(LOCKFILE).is_valid(data)
    assert sorted(data["triggers"]) == [f"biz_1/{k}" for k in keys]
    assert data["serial"] == 6


def test_racing_without_timeout_one_fails_cleanly(tmp_path: Path) -> None:
    from conftest import clean_env, pfsync_executable

    keys = [f"t{i}" for i in range(8)]
    root = write_project(tmp_path, {f"{k}.yaml": manifest_yaml(k, k.upper()) for k in keys})
    procs = [
        subprocess.Popen(
            [pfsync_executable(), "state", "import", f"biz_1/{k}", f"trg_{k}"],
            cwd=root,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in keys
    ]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    succeeded = [k for k, (code, _, _) in zip(keys, results, strict=True) if code == 0]
    for code, _, err in results:
        assert code == 0 or (code == 1 and "Error: the state lock of pfsync.lock is held" in err)
    data = read_json(root / "pfsync.lock")
    assert validator(LOCKFILE).is_valid(data)
    assert sorted(data["triggers"]) == sorted(f"biz_1/{k}" for k in succeeded)


NOW = "2026-02-01T00:00:00Z"
API = "https://api.pocketflows.com"


def beta() -> DesiredTrigger:
    spec = {"name": "Beta"}
    return DesiredTrigger.at_address("biz_1/beta", spec, body_digest(spec), 0, "triggers/b.yaml")


def project_with_alpha(tmp_path: Path, run_pfsync: RunPfsync) -> Path:
    """A repository whose lockfile records biz_1/alpha, the lockfile to push."""
    root = write_project(tmp_path / "repo", {"a.yaml": manifest_yaml("alpha", "Alpha")})
    assert run_pfsync("state", "import", "biz_1/alpha", "trg_a", cwd=root).code == 0
    return root


def push_to(
    target: Path, root: Path, run_pfsync: RunPfsync, tmp_path: Path
) -> tuple[int, str, str]:
    """`state push --to file:TARGET` from `root`: exit code, stdout, stderr (<TMP> for tmp)."""
    run = run_pfsync("state", "push", "--to", f"file:{target}", cwd=root)
    return run.code, run.out, run.err.replace(str(tmp_path), "<TMP>")


def journal_beta(journal_path: Path, lockfile: Lockfile | None) -> None:
    """A journal of `lockfile` recording a pending create of biz_1/beta (an interrupted apply)."""
    assert lockfile is not None
    with Journal.open(journal_path, lockfile) as journal:
        journal.append(Pending(beta(), "11111111-2222-4333-8444-555555555555", at=NOW))


def test_state_push_to_a_file_waits_for_that_files_lock_and_refuses_its_unfolded_journal(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = project_with_alpha(tmp_path, run_pfsync)
    target = tmp_path / "other" / "pfsync.lock"
    assert push_to(target, root, run_pfsync, tmp_path) == (
        1,
        "",
        "Error: cannot push into <TMP>/other/pfsync.lock: its folder does not exist; create it "
        "first\n",
    )
    target.parent.mkdir()
    # Another repository's pfsync is changing the target: the push must not write under it.
    holder = hold_lock(target)
    try:
        _, host, since = sidecar_path(target).read_text().split()
        assert push_to(target, root, run_pfsync, tmp_path) == (
            1,
            "",
            f"Error: the state lock of <TMP>/other/pfsync.lock is held by pid {holder.pid} on "
            f"host {host} since {since}; another pfsync command is changing the state. Wait "
            "for it to finish, or pass --lock-timeout SECONDS to wait for it\n",
        )
        assert not target.exists()
    finally:
        stop(holder)
    assert push_to(target, root, run_pfsync, tmp_path)[0] == 0
    assert read_json(target)["triggers"]["biz_1/alpha"]["id"] == "trg_a"

    # An apply there was interrupted: its journal records a create the target's lockfile does
    # not hold yet. The push folds it in first, then refuses to forget it.
    journal_path = target.with_name("pfsync.lock.journal")
    journal_beta(journal_path, read_lockfile(target))
    assert push_to(target, root, run_pfsync, tmp_path) == (
        1,
        "",
        "Error: <TMP>/other/pfsync.lock is newer (serial 2) than the copy (serial 1): "
        "replacing it could forget creates recorded since; check both, then pass --force to "
        "replace it\n",
    )
    assert not journal_path.exists()
    assert "biz_1/beta" in read_json(target)["pending"]


def test_state_push_to_a_file_beside_a_journal_of_another_lockfile_says_where_to_settle_it(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = project_with_alpha(tmp_path, run_pfsync)
    target = tmp_path / "other" / "pfsync.lock"
    target.parent.mkdir()
    assert push_to(target, root, run_pfsync, tmp_path)[0] == 0
    # A journal started against another lockfile (then replaced by a checkout, say).
    elsewhere = save_lockfile(tmp_path / "elsewhere.lock", None, Lockfile.new(API, None))
    journal_path = target.with_name("pfsync.lock.journal")
    journal_beta(journal_path, elsewhere)
    (tmp_path / "elsewhere.lock").rename(tmp_path / "elsewhere.kept")
    before = target.read_bytes()
    assert push_to(target, root, run_pfsync, tmp_path) == (
        1,
        "",
        "Error: cannot push into <TMP>/other/pfsync.lock: the journal "
        "<TMP>/other/pfsync.lock.journal belongs to another lockfile (lineage "
        f"{elsewhere.lineage}, serial 1) than the one beside it (lineage "
        f"{read_json(target)['lineage']}, serial 1). If the lockfile was replaced (git checkout, "
        "pull), restore the version the journal was started against; the next pfsync apply or "
        "state command in that repository folds the journal in. Do not delete the journal, it "
        "may be the only record of creates\n",
    )
    assert target.read_bytes() == before and journal_path.exists()
