"""The s3 state store end to end: a real S3 API server (moto) over loopback, the sandbox as the
Pocketflows API, and the installed `pfsync` as a subprocess.

Each CI runner is a separate working directory of the same repository; nothing is shared between
runners but the bucket. What is checked is what a user of the store relies on: a create is sent
only after its pending record is in the object; every write is conditional (a changed object is
never overwritten, and is merged into by address); one run holds the lock at a time, and a dead
run's lock is removed only by `pfsync state unlock`; an unreachable endpoint, refused
credentials or a denied write stop the run before anything is sent; `state push` / `state pull`
move a lockfile in and out of the bucket with its lineage and serial.

The server checks every request's signature and the caller's IAM policy, as S3 does. Concurrency
is made deterministic with a gate on the in-process sandbox (`s3_helpers.Gate`): chosen creates
are held until the test releases them. Waits are bounded; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from project_helpers import NOT_A_REPOSITORY

from apply_helpers import (
    BUSINESS,
    describe_lock,
    held_error,
    make_repo,
    posts,
    recorded_ids,
    sandbox_ids,
)
from conftest import REPO, Run, RunPfsync
from fixtures_background import Background, Gate, MakeGate, Spawn, wait_until
from fixtures_sandbox import MakeSandbox
from pfsync.errors import StoreConflict
from pfsync.sandbox import Sandbox
from pfsync.state.lockfile import Lockfile
from pfsync.state.stores import Snapshot
from pfsync.state.stores.s3 import ABSENT, S3Store
from s3_helpers import (
    REGION,
    Credentials,
    S3Server,
    make_s3_repo,
    runner,
    s3_env,
    s3_server,
    start_runners,
    without_aws_settings,
)

SLOW_READS = ("--read-timeout", "300")  # a held create must not time out in pfsync
PLAN_SUMMARY = "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain."


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    """The session's S3 server, with no AWS setting of this process leaking into the tests."""
    with without_aws_settings():
        yield s3_server()


@pytest.fixture
def bucket(server: S3Server) -> str:
    return server.make_bucket()


@pytest.fixture
def aws(server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Credentials:
    """The admin's keys in this process's environment (for S3Store objects made in a test)."""
    for name, value in s3_env(server.admin).items():
        monkeypatch.setenv(name, value)
    return server.admin


def address(n: int) -> str:
    return f"{BUSINESS}/t{n:03d}"


def addresses(numbers: Iterable[int]) -> set[str]:
    return {address(n) for n in numbers}


def env_for(sandbox: Sandbox, credentials: Credentials | None) -> dict[str, str]:
    """What apply needs: the Pocketflows credentials and URL, and these AWS keys."""
    return {**sandbox.environment(), **s3_env(credentials)}


def read_env(sandbox: Sandbox, credentials: Credentials | None) -> dict[str, str]:
    """What a read-only command needs: the API URL the lockfile records, and these AWS keys."""
    return {"PFSYNC_API_URL": sandbox.url, **s3_env(credentials)}


def wait_for_pending(server: S3Server, bucket: str, count: int) -> dict[str, Any]:
    """Wait until the object holds a lock and `count` pending creates; returns the lockfile."""
    seen: dict[str, Any] = {}

    def ready() -> bool:
        lockfile = server.lockfile(bucket)
        if lockfile is None:
            return False
        seen.clear()
        seen.update(lockfile)
        return "lock" in lockfile and len(lockfile["pending"]) == count

    wait_until(ready, f"{count} pending creates and the lock in the bucket")
    return seen


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# 0. The server is one whose conditional writes can be trusted


def test_the_test_server_enforces_conditional_writes(server: S3Server, bucket: str) -> None:
    # moto before 5.1.5 ignored If-Match on PutObject: every conflict test would then pass
    # writes that S3 refuses. Fail loudly on such a server instead.
    client = server.client()
    first = client.put_object(Bucket=bucket, Key="probe", Body=b"1", IfNoneMatch="*")["ETag"]
    with pytest.raises(client.exceptions.ClientError) as exists:
        client.put_object(Bucket=bucket, Key="probe", Body=b"2", IfNoneMatch="*")
    assert exists.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(client.exceptions.ClientError) as other:
        client.put_object(Bucket=bucket, Key="probe", Body=b"2", IfMatch='"0123456789abcdef"')
    assert other.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    second = client.put_object(Bucket=bucket, Key="probe", Body=b"3", IfMatch=first)["ETag"]
    with pytest.raises(client.exceptions.ClientError) as stale:
        client.put_object(Bucket=bucket, Key="probe", Body=b"4", IfMatch=first)
    assert stale.value.response["Error"]["Code"] == "PreconditionFailed"
    assert client.get_object(Bucket=bucket, Key="probe")["ETag"] == second


# 1. The store itself: create, conditional overwrite, conflict


def test_create_then_conditional_overwrite_and_a_second_writer_conflicts(
    server: S3Server, bucket: str, aws: Credentials
) -> None:
    first = S3Store(bucket, "pfsync.lock", server.url, REGION)
    second = S3Store(bucket, "pfsync.lock", server.url, REGION)  # another runner
    assert first.description == f"s3://{bucket}/pfsync.lock"
    empty = first.read()
    assert empty == Snapshot(None, ABSENT)
    new = replace(Lockfile.new("https://api.test"), serial=1)

    created = first.write(new, empty, "pfsync: state import")
    assert created.lockfile is not None and created.version != ABSENT
    assert server.text(bucket) == created.lockfile.dumps()
    # Creating again over an object that exists now is a conflict, never an overwrite.
    another = replace(Lockfile.new("https://api.test"), serial=1)  # another lineage
    with pytest.raises(StoreConflict, match="changed underneath since it was read"):
        second.write(another, empty, "pfsync: state import")

    # Both runners read the same version; the first to write wins, the second conflicts.
    seen_by_first, seen_by_second = first.read(), second.read()
    assert seen_by_first == seen_by_second == created
    lockfile = created.lockfile
    won = first.write(replace(lockfile, serial=2), seen_by_first, "a")
    assert won.version not in (ABSENT, created.version)
    assert second.read() == won
    with pytest.raises(StoreConflict):
        second.write(replace(lockfile, serial=3), seen_by_second, "b")
    assert first.read() == won  # the loser wrote nothing

    # A write that meets exactly its own content (a retried request whose first attempt landed,
    # its response lost) stands.
    assert won.lockfile is not None
    assert second.write(won.lockfile, seen_by_second, "a") == won

    # The object deleted underneath is a conflict too (If-Match on a missing object).
    server.client().delete_object(Bucket=bucket, Key="pfsync.lock")
    with pytest.raises(StoreConflict, match="was deleted underneath"):
        first.write(replace(lockfile, serial=4), won, "c")
    operations = [v["Operation"] for v in server.versions(bucket)]
    assert operations == ["a", "pfsync: state import"]


# 2. Apply: every write in the bucket, conditional, the lock released at the end


def test_apply_records_every_create_in_the_bucket(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, server: S3Server, bucket: str, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_s3_repo(tmp_path / "repo", 5, bucket=bucket, endpoint_url=server.url)
    one = runner(repo, tmp_path / "runner1")

    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=one, env=env_for(sandbox, server.admin)
    )
    assert run.code == 0, run
    created = sandbox_ids(sandbox)
    assert sorted(created) == sorted(addresses(range(5)))
    assert run.out.startswith(
        f"Business: {BUSINESS}\nAPI: {sandbox.url}\nLockfile: s3://{bucket}/pfsync.lock (serial 1)"
        "\n\n+ biz_e2e/t000  create  triggers/t000.yaml:3\n"
    ), run
    assert sorted(run.err.splitlines()) == sorted(
        [f"{where}: created {id_}" for where, id_ in created.items()]
        + [
            "Apply: 5 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
            "0 uncertain."
        ]
    )
    lockfile = server.lockfile(bucket)
    assert lockfile is not None
    assert recorded_ids(lockfile) == created
    assert lockfile["pending"] == {} and "lock" not in lockfile
    # Every version of the object, oldest last: lock, pending records, outcomes and unlock.
    assert [v["Operation"] for v in server.versions(bucket)] == [
        "pfsync: record apply outcomes, unlock",
        "pfsync: record pending creates",
        "pfsync: lock for apply",
    ]
    assert not (one / "pfsync.lock").exists()  # nothing written beside the manifests

    # Another runner (a laptop, the next CI job) sees everything that exists.
    two = runner(repo, tmp_path / "runner2")
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=two, env=read_env(sandbox, server.admin))
    assert plan == Run(
        0,
        f"Business: {BUSINESS}\n"
        f"API: {sandbox.url}\n"
        f"Lockfile: s3://{bucket}/pfsync.lock (serial {lockfile['serial']}, version "
        f"{server.versions(bucket)[0]['VersionId']})\n"
        f"{NOT_A_REPOSITORY}\n"
        f"{PLAN_SUMMARY} 5 unchanged.\n",
        "",
    )
    listing = run_pfsync(
        "state", "list", "--format", "json", cwd=two, env=read_env(sandbox, server.admin)
    )
    assert listing.code == 0, listing
    assert {r["address"]: r["id"] for r in json.loads(listing.out)["addresses"]} == created

    # State commands write through the bucket, one conditional write each.
    forget = run_pfsync("state", "rm", address(4), cwd=two, env=read_env(sandbox, server.admin))
    assert forget == Run(
        0,
        f"Removed {address(4)} from the lockfile; trigger {created[address(4)]} moved to its "
        "history. Nothing was deleted in Pocketflows: deactivate the trigger there if it should "
        "stop running.\n"
        f"Wrote the lockfile to s3://{bucket}/pfsync.lock.\n",
        "",
    )
    after = server.lockfile(bucket)
    assert after is not None and address(4) not in after["triggers"]
    assert after["serial"] == lockfile["serial"] + 1
    assert server.versions(bucket)[0]["Operation"] == "pfsync: state rm"
    no_push = run_pfsync(
        "state", "rm", address(3), "--no-push", cwd=two, env=read_env(sandbox, server.admin)
    )
    assert no_push == Run(1, "", "Error: --no-push is for the git store, not s3\n")


# 3. Two runners


def held_apply(
    count: int,
    sandbox: Sandbox,
    gate: Gate,
    server: S3Server,
    bucket: str,
    tmp_path: Path,
    spawn: Spawn,
) -> tuple[Path, Background, dict[str, Any]]:
    """A repository of `count` manifests in the bucket's store, and an apply of it from runner1
    held by `gate` at its first create, its first 16 pending records written: the repository,
    the running apply and its lock record."""
    repo = make_s3_repo(
        tmp_path / "repo", count, bucket=bucket, endpoint_url=server.url, intent_batch=8
    )
    apply = spawn(
        runner(repo, tmp_path / "runner1"),
        env_for(sandbox, server.admin),
        "apply",
        "--auto-approve",
        "--new-lockfile",
        "--parallelism",
        "1",
        *SLOW_READS,
    )
    gate.wait_for(0)
    lock: dict[str, Any] = wait_for_pending(server, bucket, 16)["lock"]
    return repo, apply, lock


def test_a_second_runner_fails_at_once_naming_the_holder(
    run_pfsync: RunPfsync,
    make_sandbox: MakeSandbox,
    make_gate: MakeGate,
    server: S3Server,
    bucket: str,
    tmp_path: Path,
    spawn: Spawn,
) -> None:
    sandbox = make_sandbox()
    gate = make_gate(sandbox, 0)
    env = env_for(sandbox, server.admin)
    repo, first, lock = held_apply(20, sandbox, gate, server, bucket, tmp_path, spawn)
    assert lock["pid"] == first.pid

    second = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=runner(repo, tmp_path / "runner2"), env=env
    )
    assert second == Run(1, "", held_error(f"s3://{bucket}/pfsync.lock", lock))

    gate.release_all()
    assert first.finish().code == 0
    created = sandbox_ids(sandbox)  # each trigger exactly once
    assert sorted(created) == sorted(addresses(range(20)))
    assert len(posts(sandbox)) == 20
    final = server.lockfile(bucket)
    assert final is not None and recorded_ids(final) == created


def test_two_runners_started_together_create_each_trigger_once(
    make_sandbox: MakeSandbox, server: S3Server, bucket: str, tmp_path: Path, spawn: Spawn
) -> None:
    # No gate: both race for the lock with conditional writes; the loser waits for the winner
    # (--lock-timeout), then finds nothing left to create.
    sandbox = make_sandbox(latency_ms=20)
    repo = make_s3_repo(
        tmp_path / "repo", 30, bucket=bucket, endpoint_url=server.url, intent_batch=4
    )
    env = env_for(sandbox, server.admin)
    apply = ("apply", "--auto-approve", "--new-lockfile", "--lock-timeout", "60")
    runs = start_runners(spawn, repo, env, tmp_path, *apply)
    finished = [run.finish() for run in runs]
    assert [run.code for run in finished] == [0, 0], finished
    created = sandbox_ids(sandbox)
    assert sorted(created) == sorted(addresses(range(30)))
    assert len(posts(sandbox)) == 30
    summaries = sorted(run.err.splitlines()[-1] for run in finished)
    assert summaries == [
        "Apply: 0 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, 0 uncertain.",
        "Apply: 30 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, 0 "
        "uncertain.",
    ]
    final = server.lockfile(bucket)
    assert final is not None and recorded_ids(final) == created and "lock" not in final


# 4. A dead run's lock, `state unlock`, and a lockfile changed during an apply


def test_a_killed_run_leaves_its_lock_until_a_person_unlocks_it(
    run_pfsync: RunPfsync,
    make_sandbox: MakeSandbox,
    make_gate: MakeGate,
    server: S3Server,
    bucket: str,
    tmp_path: Path,
    spawn: Spawn,
) -> None:
    sandbox = make_sandbox()
    gate = make_gate(sandbox, 0)
    repo, apply, lock = held_apply(40, sandbox, gate, server, bucket, tmp_path, spawn)
    apply.proc.kill()  # SIGKILL: no chance to release anything
    assert apply.finish().code == -9
    gate.release_all()  # the create in flight is processed after all: t000 exists
    wait_until(lambda: address(0) in sandbox_ids(sandbox), "the sandbox to store t000")

    fresh = runner(repo, tmp_path / "fresh")
    env = read_env(sandbox, server.admin)
    blocked = run_pfsync("apply", "--auto-approve", cwd=fresh, env=env_for(sandbox, server.admin))
    assert blocked == Run(1, "", held_error(f"s3://{bucket}/pfsync.lock", lock))
    refused = run_pfsync("state", "rm", address(0), cwd=fresh, env=env)
    assert refused == Run(1, "", held_error(f"s3://{bucket}/pfsync.lock", lock))
    wrong = run_pfsync("state", "unlock", "not-the-lock", cwd=fresh, env=env)
    assert wrong == Run(
        1,
        "",
        f"Error: the state lock of s3://{bucket}/pfsync.lock is {lock['id']}, not not-the-lock "
        f"(held by {describe_lock(lock)}); nothing was changed\n",
    )
    unlocked = run_pfsync("state", "unlock", lock["id"], cwd=fresh, env=env)
    assert unlocked == Run(
        0,
        f"Removed the lock {lock['id']} ({describe_lock(lock)}).\n"
        "16 pending create(s) stay uncertain: `pfsync plan` lists them; look for each in "
        "Pocketflows, then `pfsync state import ADDRESS ID` or `pfsync state rm ADDRESS`.\n",
        "",
    )
    lockfile = server.lockfile(bucket)
    assert lockfile is not None and "lock" not in lockfile
    assert set(lockfile["pending"]) == addresses(range(16))  # they stay, as uncertain
    assert server.versions(bucket)[0]["Operation"] == f"pfsync: unlock {lock['id']}"
    again = run_pfsync("state", "unlock", lock["id"], cwd=fresh, env=env)
    assert again == Run(1, "", f"Error: the state lock of s3://{bucket}/pfsync.lock is not held\n")

    plan = run_pfsync("plan", "--format", "json", cwd=fresh, env=env)
    actions = {e["address"]: e["action"] for e in json.loads(plan.out)["entries"]}
    assert {a for a, action in actions.items() if action == "uncertain"} == addresses(range(16))
    assert {a for a, action in actions.items() if action == "create"} == addresses(range(16, 40))
    # The next apply never re-sends an uncertain create by itself.
    rest = run_pfsync("apply", "--auto-approve", cwd=fresh, env=env_for(sandbox, server.admin))
    assert rest.code == 3, rest
    assert set(sandbox_ids(sandbox)) == {address(0)} | addresses(range(16, 40))


def test_a_lockfile_changed_during_an_apply_is_merged_into_never_overwritten(
    run_pfsync: RunPfsync,
    make_sandbox: MakeSandbox,
    make_gate: MakeGate,
    server: S3Server,
    bucket: str,
    tmp_path: Path,
    spawn: Spawn,
) -> None:
    sandbox = make_sandbox()
    gate = make_gate(sandbox, 0)
    repo, apply, lock = held_apply(40, sandbox, gate, server, bucket, tmp_path, spawn)
    lock_id = lock["id"]

    # A person takes the run for dead: unlocks it, settles one of its creates by hand and adopts
    # a trigger made by hand, each one conditional write to the object.
    person = runner(repo, tmp_path / "person")
    env = read_env(sandbox, server.admin)
    for args in (
        ("state", "unlock", lock_id),
        ("state", "import", address(2), "trg_by_hand_2"),
        ("state", "import", address(39), "trg_by_hand_39"),
    ):
        done = run_pfsync(*args, cwd=person, env=env)
        assert done.code == 0, done
    gate.release_all()
    run = apply.finish()

    assert run.code == 1, run
    assert (
        f"Warning: the lockfile s3://{bucket}/pfsync.lock changed underneath since it was "
        "read; merging this run's outcomes by address into it" in run.err
    ), run
    assert "no further create will be sent" in run.err
    created = sandbox_ids(sandbox)
    assert set(created) <= addresses(range(16))  # nothing sent before its pending record
    lockfile = server.lockfile(bucket)
    assert lockfile is not None and "lock" not in lockfile
    assert lockfile["triggers"][address(39)]["id"] == "trg_by_hand_39"  # the person's stands
    assert lockfile["triggers"][address(2)]["id"] == "trg_by_hand_2"
    for where, id_ in created.items():
        recorded = lockfile["triggers"].get(where, {}).get("id")
        if where != address(2):
            assert where in lockfile["pending"] or recorded == id_, (where, id_, recorded)


# 5. Failures before anything is sent


def test_an_unreachable_endpoint_stops_before_anything_is_sent(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, server: S3Server, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    endpoint = f"http://127.0.0.1:{closed_port()}"
    repo = make_s3_repo(tmp_path / "repo", 3, bucket="pfsync-state", endpoint_url=endpoint)
    error = (
        "Error: cannot read s3://pfsync-state/pfsync.lock: the S3 endpoint "
        f"{endpoint} is unreachable (could not connect)\n"
    )
    apply = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=env_for(sandbox, server.admin)
    )
    assert apply == Run(1, "", error)
    plan = run_pfsync("plan", cwd=repo, env=read_env(sandbox, server.admin))
    assert plan == Run(1, "", error)
    assert posts(sandbox) == []


def test_a_missing_lockfile_object_is_refused_with_how_to_restore_it(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, server: S3Server, bucket: str, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_s3_repo(tmp_path / "repo", 2, bucket=bucket, endpoint_url=server.url)
    apply = run_pfsync("apply", "--auto-approve", cwd=repo, env=env_for(sandbox, server.admin))
    assert apply == Run(
        1,
        "",
        f"Error: there is no lockfile at s3://{bucket}/pfsync.lock: it is the only record of "
        "which triggers exist, and applying without it would create every trigger again. If it "
        f"was lost, restore an earlier version of s3://{bucket}/pfsync.lock (a bucket with "
        "versioning on keeps them). If this is the first apply of this repository, run again "
        "with --new-lockfile\n",
    )
    remove = run_pfsync(
        "state", "rm", f"{BUSINESS}/t000", cwd=repo, env=env_for(sandbox, server.admin)
    )
    assert remove == Run(
        1,
        "",
        f"Error: there is no lockfile at s3://{bucket}/pfsync.lock, so there is nothing to "
        f"remove. If it was lost, restore an earlier version of s3://{bucket}/pfsync.lock (a "
        "bucket with versioning on keeps them)\n",
    )
    assert posts(sandbox) == []


def test_refused_credentials_or_a_denied_write_stop_before_anything_is_sent(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, server: S3Server, bucket: str, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_s3_repo(tmp_path / "repo", 3, bucket=bucket, endpoint_url=server.url)
    where = f"s3://{bucket}/pfsync.lock"

    # Keys the server does not know, or a wrong secret: refused at the first read.
    unknown = Credentials("AKIAUNKNOWNUNKNOWN00", "not-a-secret-1234")
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=env_for(sandbox, unknown)
    )
    assert run == Run(
        1,
        "",
        f"Error: cannot read {where}: the S3 endpoint {server.url} refused the credentials (403 "
        "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.); "
        "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the role) for this endpoint\n",
    )
    wrong_secret = Credentials(server.admin.access_key, "wrong-secret-value-1234")
    run = run_pfsync("plan", cwd=repo, env=read_env(sandbox, wrong_secret))
    assert run.code == 1 and run.out == "", run
    assert run.err.startswith(
        f"Error: cannot read {where}: the S3 endpoint {server.url} refused the credentials (403 "
        "SignatureDoesNotMatch: "
    ), run
    assert "wrong-secret-value-1234" not in run.err

    # No credentials at all (and no instance role to ask).
    run = run_pfsync("plan", cwd=repo, env=read_env(sandbox, None))
    assert run == Run(
        1,
        "",
        f"Error: cannot read {where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run with an instance or container role\n",
    )

    # A read-only role: plan works, apply is denied at its lock write, before any create.
    reader = server.user(
        f"reader-{bucket}",
        [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/pfsync.lock"],
            }
        ],
    )
    plan = run_pfsync("plan", cwd=repo, env=read_env(sandbox, reader))
    assert plan.code == 0 and plan.err == "", plan
    assert plan.out.startswith(
        f"Business: {BUSINESS}\nAPI: {sandbox.url}\nLockfile: {where} does not exist yet: every "
        "declared trigger is a create.\n"
    ), plan
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=env_for(sandbox, reader)
    )
    assert run == Run(  # the first write is the check of conditional writes, beside the key
        1,
        "",
        f"Error: cannot write {where}.cas-probe: access denied (403 AccessDenied: Access "
        "Denied); the credentials need s3:PutObject on pfsync.lock and on pfsync.lock.cas-probe "
        "beside it\n",
    )

    # A bucket that does not exist.
    missing = make_s3_repo(
        tmp_path / "missing", 3, bucket="no-such-bucket", endpoint_url=server.url
    )
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=missing, env=env_for(sandbox, server.admin)
    )
    assert run == Run(
        1,
        "",
        "Error: cannot read s3://no-such-bucket/pfsync.lock: the bucket no-such-bucket does not "
        f"exist at {server.url} (create it, with versioning on, before the first write)\n",
    )
    assert posts(sandbox) == []
    assert server.lockfile(bucket) is None


def documented_policy(bucket: str) -> dict[str, Any]:
    """The least-privilege policy docs/state-stores.md gives, for `bucket`."""
    text = (REPO / "docs" / "state-stores.md").read_text()
    [block] = re.findall(r"```json\n( *\{\n *\"Version\".*?)\n *```", text, re.S)
    policy: dict[str, Any] = json.loads(
        block.replace("acme-pfsync-state", bucket).replace("production/pfsync.lock", "pfsync.lock")
    )
    return policy


def test_the_documented_least_privilege_policy_is_enough_for_everything(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, server: S3Server, bucket: str, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    policy = documented_policy(bucket)
    ci = server.user(f"ci-{bucket}", policy["Statement"])
    repo = make_s3_repo(tmp_path / "repo", 3, bucket=bucket, endpoint_url=server.url)
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=env_for(sandbox, ci)
    )
    assert run.code == 0, run
    rm = run_pfsync("state", "rm", address(0), cwd=repo, env=read_env(sandbox, ci))
    assert rm.code == 0, rm
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=repo, env=read_env(sandbox, ci))
    assert plan.code == 2, plan
    # ... and it reaches no other object.
    other = make_s3_repo(
        tmp_path / "other", 1, bucket=bucket, endpoint_url=server.url, key="other.lock"
    )
    denied = run_pfsync("plan", cwd=other, env=read_env(sandbox, ci))
    assert denied.code == 1, denied
    assert "access denied (403 AccessDenied" in denied.err


# 6. Moving a lockfile in and out of the bucket


def test_state_push_to_s3_from_a_file_lockfile_and_pull_back(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, server: S3Server, bucket: str, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path / "repo", 3)  # the file store: the lockfile beside pfsync.yaml
    applied = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=sandbox.environment()
    )
    assert applied.code == 0, applied
    text = (repo / "pfsync.lock").read_text()
    local = json.loads(text)

    # Adopting the s3 store: pfsync.yaml names the bucket, then the lockfile is pushed there.
    make_s3_repo(repo, 3, bucket=bucket, endpoint_url=server.url)
    env = read_env(sandbox, server.admin)
    pushed = run_pfsync("state", "push", "--to", f"s3://{bucket}/pfsync.lock", cwd=repo, env=env)
    assert pushed == Run(
        0,
        f"Wrote the lockfile (lineage {local['lineage']}, serial {local['serial']}) to "
        f"s3://{bucket}/pfsync.lock.\n",
        "",
    )
    assert server.text(bucket) == text  # as it is: lineage and serial
    same = run_pfsync("state", "push", "--to", "s3", cwd=repo, env=env)
    assert same == Run(
        0,
        f"s3://{bucket}/pfsync.lock already holds this lockfile (serial {local['serial']}).\n",
        "",
    )
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=runner(repo, tmp_path / "ci"), env=env)
    assert plan == Run(
        0,
        f"Business: {BUSINESS}\nAPI: {sandbox.url}\n"
        f"Lockfile: s3://{bucket}/pfsync.lock (serial {local['serial']}, version "
        f"{server.versions(bucket)[0]['VersionId']})\n{NOT_A_REPOSITORY}\n"
        f"{PLAN_SUMMARY} 3 unchanged.\n",
        "",
    )

    # Another lineage (a lockfile started elsewhere) is refused without --force.
    elsewhere = runner(repo, tmp_path / "elsewhere")
    make_repo(elsewhere, 3)  # back to the file store there
    started = run_pfsync("state", "import", address(0), "trg_other", cwd=elsewhere, env=env)
    assert started.code == 0, started
    other_lineage = json.loads((elsewhere / "pfsync.lock").read_text())["lineage"]
    clash = run_pfsync(
        "state", "push", "--to", f"s3://{bucket}/pfsync.lock", cwd=elsewhere, env=env
    )
    assert clash == Run(
        1,
        "",
        f"Error: s3://{bucket}/pfsync.lock holds another lockfile (lineage {local['lineage']}, "
        f"not {other_lineage}); check both, then pass --force to replace it\n",
    )
    assert server.text(bucket) == text
    unnamed = run_pfsync("state", "push", "--to", "s3", cwd=elsewhere, env=env)
    assert unnamed == Run(
        1,
        "",
        "Error: `s3` names the configured s3 store, and pfsync.yaml configures file; name the "
        "object: s3://BUCKET/KEY\n",
    )
    bad = run_pfsync("state", "push", "--to", "s3://Not_A_Bucket/x", cwd=elsewhere, env=env)
    assert bad == Run(
        1,
        "",
        "Error: 's3://Not_A_Bucket/x' names no state store; use one of: file:PATH, git, "
        "git:REMOTE:BRANCH, s3 or s3://BUCKET/KEY\n",
    )

    # Pulled into a fresh working directory's lockfile file.
    fresh = runner(repo, tmp_path / "fresh")
    pulled = run_pfsync("state", "pull", cwd=fresh, env=env)
    assert pulled == Run(
        0,
        f"Wrote the lockfile (lineage {local['lineage']}, serial {local['serial']}) to "
        "pfsync.lock.\n",
        "",
    )
    assert (fresh / "pfsync.lock").read_text() == text


# 7. The extra is optional


def test_without_the_s3_extra_the_error_names_it(
    run_pfsync: RunPfsync, server: S3Server, bucket: str, tmp_path: Path
) -> None:
    # boto3 made unimportable, as on an install without `pfsync[s3]`.
    shadow = tmp_path / "no-boto3"
    shadow.mkdir()
    (shadow / "boto3.py").write_text("raise ImportError('No module named boto3')\n")
    repo = make_s3_repo(tmp_path / "repo", 1, bucket=bucket, endpoint_url=server.url)
    env = {**s3_env(server.admin), "PYTHONPATH": str(shadow), "PFSYNC_API_URL": server.url}
    message = (
        "Error: the s3 state store needs boto3, which is not installed: pip install "
        "'pfsync[s3] @ git+https://github.com/pocketflows-tools/pfsync@v0.2.0'\n"
    )
    assert run_pfsync("plan", cwd=repo, env=env) == Run(1, "", message)
    assert run_pfsync("state", "list", cwd=repo, env=env) == Run(1, "", message)
    # Commands that do not read the state need no extra.
    valid = run_pfsync("validate", cwd=repo, env=env)
    assert valid.code == 0, valid
