"""A later attempt of the same CI job takes over the state lock its killed attempt left.

GitHub re-runs a job (GITHUB_RUN_ATTEMPT + 1) and GitLab retries one (a higher CI_JOB_ID in the
same pipeline) only once the earlier attempt has ended: its lock is dead, and the re-run takes it
over without a person, saying so and recording it. The dead attempt's pending creates stay
uncertain (never sent again). Any other holder (another job or run, the same or a later
attempt, no CI job known) still refuses and needs `state unlock`.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from apply_helpers import BUSINESS, create_entry, make_repo
from conftest import LOOPBACK_URL, RunPfsync, clean_env, pfsync_executable
from fixtures_background import wait_until
from fixtures_sandbox import MakeSandbox
from git_helpers import clone, git, make_remote, remote_lockfile
from kill_helpers import leftovers_alive
from pfsync.errors import LockHeldError
from pfsync.state.ci_job import CiJob, ci_job
from pfsync.state.lock_record import StateLockRecord
from pfsync.state.lockfile import Lockfile, parse_lockfile
from pfsync.state.stores.lock_records import new_lock, taken_over

GITHUB = {
    "GITHUB_SERVER_URL": "https://github.example",
    "GITHUB_REPOSITORY": "acme/triggers",
    "GITHUB_RUN_ID": "4242",
    "GITHUB_JOB": "apply",
}
RUN_URL = "https://github.example/acme/triggers/actions/runs/4242"


def uncertain(key: str) -> str:
    """The plan's entry for a create of `key` the killed attempt left uncertain."""
    address = f"{BUSINESS}/{key}"
    return (
        f"? {address}  uncertain  triggers/{key}.yaml:3\n"
        f"    remedy: A create of {address} was started at <TIME> (Idempotency-Key <UUID>) and "
        "its outcome is unknown; pfsync will not send it again by itself. Look for the trigger "
        "in Pocketflows: if it exists, paste the Import below into a manifest file with its id "
        f"(or run `pfsync state import {address} ID`); if not, paste the NotCreated below "
        "instead, and apply sends the create once more with its original Idempotency-Key (or "
        f"run `pfsync state rm {address}`, and the next plan creates it anew).\n"
        "    paste:\n---\napiVersion: pfsync/v1\nkind: Import\n"
        f'key: {key}\nid: ""  # the id of the trigger found in Pocketflows\n---\n'
        f"apiVersion: pfsync/v1\nkind: NotCreated\nkey: {key}\nintent: <UUID>\n\n"
    )


def kill_while_sending(repo: Path, env: dict[str, str], sending: Callable[[], bool]) -> int:
    """Start a first `pfsync apply` (one create at a time) in `repo` and SIGKILL it once
    `sending()` holds; its pid. Its stderr is kept beside `repo` (killed.stderr)."""
    with (repo.parent / "killed.stderr").open("w") as stderr:
        proc = subprocess.Popen(
            [pfsync_executable(), "apply", "--auto-approve", "--parallelism=1", "--new-lockfile"],
            cwd=repo,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its git children stay findable
        )
        try:
            wait_until(sending, "the first create in flight")
        finally:
            proc.kill()
            proc.wait(timeout=30)
    return proc.pid


def github(attempt: int, job: str = "apply") -> dict[str, str]:
    """A GitHub Actions job's variables: run 4242, `job`, `attempt`."""
    return {**GITHUB, "GITHUB_JOB": job, "GITHUB_RUN_ATTEMPT": str(attempt)}


def test_a_rerun_of_a_killed_git_store_apply_takes_its_lock_over(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    sandbox.script("slow")  # the first create is stored, its response held back
    remote = make_remote(tmp_path, 3, state="{store: git, intent_batch: 1}")
    first = clone(remote, tmp_path / "attempt1")
    env = {**sandbox.environment(), **github(1)}

    # t000 is in flight (stored, no response yet); t001's pending record is written ahead of
    # it; t002 is neither written nor sent.
    pid = kill_while_sending(
        first,
        env,
        lambda: (
            len(sandbox.triggers(BUSINESS)) == 1
            and len((remote_lockfile(remote) or {"pending": {}})["pending"]) == 2
        ),
    )
    wait_until(lambda: not leftovers_alive(pid, first), "the killed run's git", timeout=60)
    dead = remote_lockfile(remote)
    assert dead is not None and dead["lock"] is not None
    assert dead["lock"]["ci_job"] == {"ci": "github", "run": "4242", "job": "apply", "attempt": 1}
    assert sorted(dead["pending"]) == [f"{BUSINESS}/t000", f"{BUSINESS}/t001"]
    lock_id = dead["lock"]["id"]
    known: dict[str, Any] = {
        "LOCK": lock_id,
        "PID": f"pid {pid} ",
        "HOST": socket.gethostname(),
        "URL": LOOPBACK_URL,
    }
    held = (
        "Error: the state lock of pfsync.lock on origin/main is held by apply by <PID>on host "
        f"<HOST> since <TIME> ({RUN_URL}, attempt 1 of job apply in GitHub Actions run 4242), "
        "lock <LOCK>. Wait for that run to finish, or pass --lock-timeout SECONDS. If that run "
        "is dead (its job was killed), a person removes its lock with `pfsync state unlock "
        "<LOCK>`; its pending creates stay uncertain\n"
    )

    # The same attempt again, another job of the run, a later attempt of another job: refused.
    for n, other in enumerate((github(1), github(2, job="apply-production"))):
        again = clone(remote, tmp_path / f"other{n}")
        refused = run_pfsync("apply", "--auto-approve", cwd=again, env={**env, **other})
        assert refused.normalised(**known) == (1, "", held), refused
    assert len(sandbox.triggers(BUSINESS)) == 1

    rerun = clone(remote, tmp_path / "attempt2")
    took = run_pfsync("apply", "--auto-approve", cwd=rerun, env={**env, **github(2)})
    assert took.normalised(**known) == (
        3,
        "Business: biz_e2e\nAPI: <URL>\nLockfile: pfsync.lock on origin/main (serial 4)\n\n"
        + uncertain("t000")
        + uncertain("t001")
        + create_entry("t002")
        + "Plan: 1 to create, 0 to replace. Needs a person: 0 update, 0 delete, 2 uncertain. "
        "0 unchanged.\n",
        "Took over the state lock of attempt 1 of this job, which ended without releasing it (a "
        "CI runs a job again only once its earlier attempt has ended): apply by <PID>on host "
        f"<HOST> since <TIME> ({RUN_URL}, attempt 1 of job apply in GitHub Actions run 4242), "
        "lock <LOCK>. That attempt's pending creates stay uncertain; they are not sent again.\n"
        "biz_e2e/t002: created <ID>\n"
        "Apply: 1 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "2 uncertain.\n",
    ), took

    # Only t002 was sent by the re-run: t000 (in flight when killed) and t001 (written ahead)
    # stay uncertain.
    assert len(sandbox.triggers(BUSINESS)) == 2
    after = remote_lockfile(remote)
    assert after is not None and "lock" not in after
    assert sorted(after["pending"]) == [f"{BUSINESS}/t000", f"{BUSINESS}/t001"]
    assert sorted(after["triggers"]) == [f"{BUSINESS}/t002"]
    # The takeover is recorded in the re-run's lock record (its lock commit).
    locked = git(remote, "log", "--format=%H", "--grep", "lock for apply", "-1", "main").strip()
    record = json.loads(git(remote, "show", f"{locked}:pfsync.lock"))["lock"]
    assert record["took_over"] == {"id": lock_id, "ci_job": dead["lock"]["ci_job"]}
    assert record["ci_job"] == {"ci": "github", "run": "4242", "job": "apply", "attempt": 2}


# The rules, in-process.

GITLAB = {"CI_PIPELINE_ID": "77", "CI_JOB_NAME": "apply staging", "CI_JOB_ID": "901"}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (github(2), CiJob("github", "4242", "apply", 2)),
        (GITLAB, CiJob("gitlab", "77", "apply staging", 901)),
        ({**GITHUB}, None),  # no attempt: not known enough to take anything over
        (github(2) | {"GITHUB_RUN_ATTEMPT": "\uff12"}, None),  # a fullwidth 2: not a number
        ({k: v for k, v in GITLAB.items() if k != "CI_JOB_ID"}, None),
        ({}, None),
    ],
)
def test_the_ci_job_comes_from_the_ci_variables(
    environ: dict[str, str], expected: CiJob | None
) -> None:
    assert ci_job(environ) == expected


HELD_GITHUB = CiJob("github", "4242", "apply", 2)
HELD_GITLAB = CiJob("gitlab", "77", "apply staging", 901)


@pytest.mark.parametrize(
    ("job", "takes_over"),
    [
        (CiJob("github", "4242", "apply", 3), True),  # the re-run of that job
        (CiJob("github", "4242", "apply", 2), False),  # the same attempt: it may be running
        (CiJob("github", "4242", "apply", 1), False),  # an older attempt
        (CiJob("github", "4242", "apply-production", 3), False),  # another job of the run
        (CiJob("github", "4243", "apply", 3), False),  # another run
        (CiJob("gitlab", "4242", "apply", 3), False),  # another CI
        (None, False),  # no CI job known
    ],
)
def test_only_a_later_attempt_of_the_same_github_job_takes_over(
    job: CiJob | None, takes_over: bool
) -> None:
    held = replace(new_lock("apply"), ci_job=HELD_GITHUB)
    assert taken_over(held, job) is takes_over


@pytest.mark.parametrize(
    ("job", "takes_over"),
    [
        (CiJob("gitlab", "77", "apply staging", 950), True),  # the retry: a higher job id
        (CiJob("gitlab", "77", "apply staging", 901), False),
        (CiJob("gitlab", "77", "apply staging", 900), False),
        (CiJob("gitlab", "77", "apply production", 950), False),
        (CiJob("gitlab", "78", "apply staging", 950), False),  # another pipeline
    ],
)
def test_only_a_retry_of_the_same_gitlab_job_in_its_pipeline_takes_over(
    job: CiJob, takes_over: bool
) -> None:
    held = replace(new_lock("apply"), ci_job=HELD_GITLAB)
    assert taken_over(held, job) is takes_over


def test_a_lock_without_a_ci_job_is_never_taken_over() -> None:
    held = replace(new_lock("apply"), ci_job=None)
    assert not taken_over(held, CiJob("github", "4242", "apply", 9))


def test_lock_records_without_the_ci_fields_stay_readable_and_the_new_ones_round_trip() -> None:
    old = Lockfile.new("https://api.example.test")
    old_lock: dict[str, Any] = {
        "id": "9ca6fa15-874b-464d-b9ef-9f1cb8d03f54",
        "host": "ci-7",
        "pid": 12,
        "run_url": None,
        "since": "2026-01-31T12:00:00Z",
        "operation": "apply",
    }
    document = {**replace(old, serial=1).to_json(), "lock": old_lock}
    read = parse_lockfile(json.dumps(document), "pfsync.lock")
    assert read.lock == StateLockRecord(**old_lock)
    assert read.lock.to_json() == old_lock  # written back as it was

    dead = replace(read.lock, ci_job=HELD_GITHUB)
    taking = replace(
        new_lock("apply"),
        ci_job=CiJob("github", "4242", "apply", 3),
        took_over=(dead.id, HELD_GITHUB),
    )
    again = parse_lockfile(replace(read, lock=taking).dumps(), "pfsync.lock")
    assert again.lock == taking
    assert json.loads(again.dumps())["lock"]["took_over"] == {
        "id": dead.id,
        "ci_job": {"ci": "github", "run": "4242", "job": "apply", "attempt": 2},
    }


def test_an_s3_store_lock_of_an_earlier_attempt_is_taken_over(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from test_store_session import config as memory_config

    from pfsync.config import StateConfig
    from pfsync.state.stores import s3
    from pfsync.state.stores.base import Snapshot
    from pfsync.state.stores.session import remote_state
    from s3_helpers import REGION, s3_env, s3_server, without_aws_settings

    server = s3_server()
    bucket = server.make_bucket()
    with without_aws_settings():
        for name, value in s3_env(server.admin, server.url).items():
            monkeypatch.setenv(name, value)
        for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "CI_JOB_URL", *GITLAB):
            monkeypatch.delenv(name, raising=False)
        store = s3.S3Store(bucket, "pfsync.lock", server.url, REGION)
        dead = replace(new_lock("apply"), ci_job=CiJob("github", "4242", "apply", 1))
        seeded = replace(Lockfile.new("https://api.example.test"), serial=1, lock=dead)
        store.write(seeded, Snapshot(None, s3.ABSENT), "pfsync: seed")
        s3_state = StateConfig(store="s3", bucket=bucket, key="pfsync.lock")
        config = replace(memory_config(tmp_path), state=s3_state)
        for other in (github(1), github(2, job="apply-production")):
            for name, value in other.items():
                monkeypatch.setenv(name, value)
            with pytest.raises(LockHeldError), remote_state(config, store):
                pass
        for name, value in github(2).items():
            monkeypatch.setenv(name, value)
        said: list[str] = []
        with remote_state(config, store, warn=said.append) as state:
            held = store.read().lockfile
            assert held is not None and held.lock is not None and held.lock == state.lock
            assert held.lock.took_over == (dead.id, dead.ci_job)
            assert held.lock.ci_job == CiJob("github", "4242", "apply", 2)
        assert said == [
            "Took over the state lock of attempt 1 of this job, which ended without releasing it "
            "(a CI runs a job again only once its earlier attempt has ended): "
            f"{dead.describe()}. That attempt's pending creates stay uncertain; they are not "
            "sent again."
        ]
        released = store.read().lockfile
        assert released is not None and released.lock is None


def test_the_file_store_lock_names_its_ci_job(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pfsync.state.lock import state_lock

    for name, value in github(1).items():
        monkeypatch.setenv(name, value)
    lockfile = tmp_path / "pfsync.lock"
    with state_lock(lockfile) as holder, pytest.raises(LockHeldError) as refused:  # noqa: SIM117
        with state_lock(lockfile):
            pass
    assert str(refused.value) == (
        f"the state lock of {lockfile} is held by pid {holder.pid} on host {holder.host} since "
        f"{holder.since} (attempt 1 of job apply in GitHub Actions run 4242); another pfsync "
        "command is changing the state. Wait for it to finish, or pass --lock-timeout SECONDS "
        "to wait for it"
    )


def test_a_rerun_of_a_killed_file_store_apply_needs_no_person(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    # The OS releases the file store's lock when its holder dies: nothing to take over.
    sandbox = make_sandbox()
    sandbox.script("slow")  # the first create is stored, its response held back
    repo = make_repo(tmp_path / "repo", 3)
    env = {**sandbox.environment(), **github(1)}
    kill_while_sending(repo, env, lambda: len(sandbox.triggers(BUSINESS)) == 1)
    rerun = run_pfsync(
        "apply", "--auto-approve", "--parallelism=1", cwd=repo, env={**env, **github(2)}
    )
    assert rerun.normalised(URL=LOOPBACK_URL) == (
        3,
        "Business: biz_e2e\nAPI: <URL>\nLockfile: pfsync.lock (serial 2)\n\n"
        + uncertain("t000")
        + create_entry("t001")
        + create_entry("t002")
        + "Plan: 2 to create, 0 to replace. Needs a person: 0 update, 0 delete, 1 uncertain. "
        "0 unchanged.\n",
        "biz_e2e/t001: created <ID>\nbiz_e2e/t002: created <ID>\n"
        "Apply: 2 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "1 uncertain.\n",
    ), rerun
    assert len(sandbox.triggers(BUSINESS)) == 3  # t000 was not sent again
