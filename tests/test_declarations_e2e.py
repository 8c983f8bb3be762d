"""Record changes through review, end to end: the installed `pfsync`, the sandbox over loopback,
and a real git remote on disk whose main holds the lockfiles (the git state store).

A pull request renames a key and declares its `Moved`: its plan shows the move and exits 2 (a
change apply can make); after the merge, apply carries the record over and sends nothing, in
every environment that recorded the old key, while an environment that never did creates the
new key once.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from project_helpers import DRAFTS, NOT_A_REPOSITORY

from apply_helpers import BUSINESS, lock_ids, make_repo, manifest_text, posts
from conftest import RunPfsync, normalise
from fixtures_background import MakeGate, Spawn, wait_until
from fixtures_sandbox import MakeSandbox
from git_helpers import clone, git, make_remote, remote_lockfile
from pfsync.sandbox import Sandbox
from s3_helpers import S3Server, make_s3_repo, runner, s3_env, s3_server, without_aws_settings

ENVIRONMENTS = ("staging", "production", "fresh")
MOVED = "---\napiVersion: pfsync/v1\nkind: Moved\nfrom: t001\nto: welcome\n"


def three_environment_remote(tmp_path: Path) -> Path:
    """A remote whose main has manifests t000 and t001 and three environments in the git store
    (state on main, each its own business and lockfile)."""
    remote = make_remote(tmp_path, 2)
    seed = clone(remote, tmp_path / "environments")
    (seed / "pfsync.yaml").write_text(
        "state: {store: git, branch: main}\n"
        "environments:\n"
        + "".join(
            f"  {name}: {{business: biz_{name}, lockfile: state/{name}.lock}}\n"
            for name in ENVIRONMENTS
        )
    )
    (seed / ".gitignore").write_text("*.journal\n*.lck\n.pfsync/\n")
    git(seed, "commit", "--quiet", "-am", "three environments")
    git(seed, "push", "--quiet", "origin", "main")
    return remote


def ids(remote: Path, environment: str) -> dict[str, str | None]:
    lockfile = remote_lockfile(remote, f"state/{environment}.lock")
    assert lockfile is not None
    return {address: record["id"] for address, record in lockfile["triggers"].items()}


def posted_to(sandbox: Sandbox, business: str) -> int:
    return len([r for r in posts(sandbox) if f"/businesses/{business}/" in r["path"]])


def test_a_renamed_key_with_its_moved_is_carried_over_in_every_environment_without_a_create(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    env = sandbox.environment()
    remote = three_environment_remote(tmp_path)
    for name in ("staging", "production"):
        runner = clone(remote, tmp_path / f"{name}-first")
        run = run_pfsync(
            "-e", name, "apply", "--auto-approve", "--new-lockfile", cwd=runner, env=env
        )
        assert run.code == 0, run
    assert len(posts(sandbox)) == 4
    before = {name: ids(remote, name) for name in ("staging", "production")}

    # The pull request: t001 renamed to welcome (the same body), with its Moved.
    branch = clone(remote, tmp_path / "pull-request")
    git(branch, "checkout", "--quiet", "-b", "rename")
    (branch / "triggers" / "t001.yaml").unlink()
    (branch / "triggers" / "welcome.yaml").write_text(
        manifest_text("welcome", "Trigger t001").replace("et_welcome", "et_t001") + MOVED
    )
    git(branch, "add", "-A")
    git(branch, "commit", "--quiet", "-m", "rename t001 to welcome")
    assert run_pfsync("validate", cwd=branch).code == 0
    staging_id = before["staging"]["biz_staging/t001"]
    plan = run_pfsync("-e", "staging", "plan", "--detailed-exitcode", cwd=branch, env=env)
    head, state = git(branch, "rev-parse", "HEAD").strip(), git(remote, "rev-parse", "main")
    assert plan.normalised(URL=sandbox.url, ID=str(staging_id)) == (
        2,
        "Environment: staging\n"
        "Business: biz_staging\n"
        "API: <URL>\n"
        f"Lockfile: state/staging.lock on origin/main (serial 3, commit {state[:12]})\n"
        f"Planned from: commit {head[:12]}. {DRAFTS}\n"
        "\n"
        "> biz_staging/welcome  moved  triggers/welcome.yaml:13  (trigger <ID>; from "
        "biz_staging/t001)\n"
        "    note: The record of biz_staging/t001 (trigger <ID>) becomes the record of "
        "biz_staging/welcome; nothing is sent to Pocketflows.\n"
        "\n"
        "Plan: 0 to create, 0 to replace, 1 to move. Needs a person: 0 update, 0 delete, "
        "0 uncertain. 1 unchanged.\n",
        "",
    )
    markdown = run_pfsync("-e", "production", "plan", "--format", "markdown", cwd=branch, env=env)
    assert markdown.code == 0, markdown
    assert "<details><summary>→ 1 to move in the record (nothing sent)</summary>" in markdown.out
    fresh = run_pfsync("-e", "fresh", "plan", "--detailed-exitcode", cwd=branch, env=env)
    assert fresh.code == 2, fresh
    assert (
        "  biz_fresh/welcome  no-op  triggers/welcome.yaml:13\n"
        "    note: Moved biz_fresh/t001 → biz_fresh/welcome: nothing to act on, biz_fresh/t001 "
        "is not recorded here; biz_fresh/welcome is planned as usual.\n"
    ) in fresh.out

    # The merge, then the applies after it: nothing is sent where the old key was recorded.
    git(branch, "push", "--quiet", "origin", "rename:main")
    for name in ("staging", "production"):
        runner = clone(remote, tmp_path / f"{name}-after-merge")
        old_id = before[name][f"biz_{name}/t001"]
        run = run_pfsync("-e", name, "apply", "--auto-approve", cwd=runner, env=env)
        assert (run.code, normalise(run.err, URL=sandbox.url, ID=str(old_id))) == (
            0,
            f"biz_{name}/welcome: moved from biz_{name}/t001 (<ID>, triggers/welcome.yaml:13); "
            "nothing was sent\n"
            f"Apply ({name}): 0 created, 0 failed, 0 uncertain, 1 moved. Needs a person: 0 "
            "update, 0 delete, 0 uncertain.\n",
        ), run
        assert len(posts(sandbox)) == 4
        assert ids(remote, name) == {
            f"biz_{name}/t000": before[name][f"biz_{name}/t000"],
            f"biz_{name}/welcome": old_id,
        }
        lockfile = remote_lockfile(remote, f"state/{name}.lock")
        assert lockfile is not None
        (moved,) = lockfile["triggers"][f"biz_{name}/welcome"]["history"]
        assert {k: v for k, v in moved.items() if k != "at"} == {
            "id": old_id,
            "reason": "moved",
            "origin": "created",
            "revision": 0,
            "moved_from": f"biz_{name}/t001",
            "declared_by": "triggers/welcome.yaml:13",
        }
        again = run_pfsync("-e", name, "plan", "--detailed-exitcode", cwd=runner, env=env)
        assert again.code == 0, again
        assert f"Moved biz_{name}/t001 → biz_{name}/welcome is done" in again.out
        assert "this declaration may be deleted" in again.out

    # An environment that never recorded t001: the Moved does nothing, welcome is created once.
    runner = clone(remote, tmp_path / "fresh-runner")
    run = run_pfsync(
        "-e", "fresh", "apply", "--auto-approve", "--new-lockfile", cwd=runner, env=env
    )
    assert run.code == 0, run
    assert posted_to(sandbox, "biz_fresh") == 2
    assert sorted(ids(remote, "fresh")) == ["biz_fresh/t000", "biz_fresh/welcome"]
    again = run_pfsync("-e", "fresh", "apply", "--auto-approve", cwd=runner, env=env)
    assert again.code == 0, again
    assert posted_to(sandbox, "biz_fresh") == 2
    assert len(sandbox.triggers("biz_staging")) == len(sandbox.triggers("biz_production")) == 2


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """The session's S3 server, with no AWS setting of this process leaking into the test."""
    with without_aws_settings():
        yield s3_server()


def test_a_moved_is_carried_out_in_one_compare_and_swap_of_the_s3_store(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, s3: S3Server, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    bucket = s3.make_bucket()
    env = {**sandbox.environment(), **s3_env(s3.admin)}
    repo = make_s3_repo(tmp_path / "repo", 2, bucket=bucket, endpoint_url=s3.url)
    first = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=runner(repo, tmp_path / "one"), env=env
    )
    assert first.code == 0, first
    before = s3.lockfile(bucket)
    assert before is not None
    old_id = before["triggers"][f"{BUSINESS}/t001"]["id"]

    (repo / "triggers" / "t001.yaml").unlink()
    (repo / "triggers" / "welcome.yaml").write_text(
        manifest_text("welcome", "Trigger t001").replace("et_welcome", "et_t001") + MOVED
    )
    two = runner(repo, tmp_path / "two")
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=two, env=env)
    assert (plan.code, plan.err) == (2, ""), plan
    run = run_pfsync("apply", "--auto-approve", cwd=two, env=env)
    assert (run.code, normalise(run.err, ID=old_id)) == (
        0,
        f"{BUSINESS}/welcome: moved from {BUSINESS}/t001 (<ID>, triggers/welcome.yaml:13); "
        "nothing was sent\n"
        "Apply: 0 created, 0 failed, 0 uncertain, 1 moved. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n",
    ), run
    assert len(posts(sandbox)) == 2
    after = s3.lockfile(bucket)
    assert after is not None
    assert after["serial"] == before["serial"] + 1  # one write
    assert {a: r["id"] for a, r in after["triggers"].items()} == {
        f"{BUSINESS}/t000": before["triggers"][f"{BUSINESS}/t000"]["id"],
        f"{BUSINESS}/welcome": old_id,
    }
    clean = run_pfsync("plan", "--detailed-exitcode", cwd=runner(repo, tmp_path / "three"), env=env)
    assert clean.code == 0, clean


def test_a_removed_forgets_exactly_the_trigger_it_names(
    run_pfsync: RunPfsync, sandbox: Sandbox, tmp_path: Path
) -> None:
    env = sandbox.environment()
    root = make_repo(tmp_path / "repo", 2)
    assert run_pfsync("apply", "--auto-approve", "--new-lockfile", cwd=root, env=env).code == 0
    gone_id = lock_ids(root)[f"{BUSINESS}/t001"]
    (root / "triggers" / "t001.yaml").unlink()
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=root, env=env)
    assert plan.code == 3, plan
    paste = f"---\napiVersion: pfsync/v1\nkind: Removed\nkey: t001\nid: {gone_id}\n"
    assert "".join(line + "\n" for line in plan.out.splitlines()[8:13]) == (  # as shown
        paste
    ), plan

    # A stale or mistaken id is refused, and nothing changes.
    (root / "triggers" / "removed.yaml").write_text(paste.replace(gone_id, "trg_someone_else"))
    before = (root / "pfsync.lock").read_bytes()
    refused = run_pfsync("plan", "--detailed-exitcode", cwd=root, env=env)
    conflict = (
        f"triggers/removed.yaml:3:1: Removed {BUSINESS}/t001 names trigger trg_someone_else, but "
        f"the lockfile records trigger <ID> for {BUSINESS}/t001 (a Removed forgets exactly the "
        f"trigger it names: check the id in Pocketflows and with `pfsync state show "
        f"{BUSINESS}/t001`) [$.id]\n"
    )
    assert refused.normalised() == (
        1,
        "",
        conflict + "Error: 1 problem(s) in the manifests; fix them (see `pfsync validate`) "
        "and run again.\n",
    )
    applied = run_pfsync("apply", "--auto-approve", cwd=root, env=env)
    assert applied.normalised() == (1, "", "Error: " + conflict)
    assert (root / "pfsync.lock").read_bytes() == before

    # The id pasted from the remedy: forgotten, its id kept in history, nothing sent.
    (root / "triggers" / "removed.yaml").write_text(paste)
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=root, env=env)
    assert plan.normalised(URL=sandbox.url) == (
        2,
        f"Business: {BUSINESS}\n"
        "API: <URL>\n"
        "Lockfile: pfsync.lock (serial 2)\n" + NOT_A_REPOSITORY + "\n"
        f"x {BUSINESS}/t001  forget  triggers/removed.yaml:3  (trigger <ID>)\n"
        f"    note: The record forgets trigger <ID> of {BUSINESS}/t001 (its id is kept in the "
        "history); nothing is sent to Pocketflows, where it stays as a person left it.\n"
        "\n"
        "Plan: 0 to create, 0 to replace, 1 to forget. Needs a person: 0 update, 0 delete, "
        "0 uncertain. 1 unchanged.\n",
        "",
    )
    applied = run_pfsync("apply", "--auto-approve", cwd=root, env=env)
    assert (applied.code, normalise(applied.err, ID=gone_id)) == (
        0,
        f"{BUSINESS}/t001: forgot trigger <ID> (kept in its history, triggers/removed.yaml:3); "
        "nothing was sent\n"
        "Apply: 0 created, 0 failed, 0 uncertain, 1 forgotten. Needs a person: 0 update, "
        "0 delete, 0 uncertain.\n",
    )
    assert len(posts(sandbox)) == 2
    data = json.loads((root / "pfsync.lock").read_text())
    assert sorted(data["triggers"]) == [f"{BUSINESS}/t000"]
    (entry,) = data["forgotten"][f"{BUSINESS}/t001"]
    assert (entry["id"], entry["reason"], entry["declared_by"]) == (
        gone_id,
        "removed",
        "triggers/removed.yaml:3",
    )
    done = run_pfsync("plan", "--detailed-exitcode", cwd=root, env=env)
    assert done.code == 0, done
    assert f"Removed {BUSINESS}/t001 (trigger {gone_id}) is done" in done.out


def test_state_list_shows_a_replaced_trigger_still_active_until_a_removed_settles_it(
    run_pfsync: RunPfsync, sandbox: Sandbox, tmp_path: Path
) -> None:
    env = sandbox.environment()
    root = make_repo(tmp_path / "repo", 1)
    assert run_pfsync("apply", "--auto-approve", "--new-lockfile", cwd=root, env=env).code == 0
    old_id = lock_ids(root)[f"{BUSINESS}/t000"]
    (root / "triggers" / "t000.yaml").write_text(manifest_text("t000", "Trigger t000", revision=1))
    assert run_pfsync("apply", "--auto-approve", cwd=root, env=env).code == 0
    new_id = lock_ids(root)[f"{BUSINESS}/t000"]
    listed = run_pfsync("state", "list", cwd=root, env=env)
    assert listed.normalised(OLD=old_id, NEW=new_id) == (
        0,
        "ADDRESS       ID                            ORIGIN   REVISION  FILE                NOTE\n"
        f"{BUSINESS}/t000  <NEW>  created  1         triggers/t000.yaml  replaced, still active: "
        "<OLD>\n",
        "",
    )
    (root / "triggers" / "removed.yaml").write_text(
        f"apiVersion: pfsync/v1\nkind: Removed\nkey: t000\nid: {old_id}\n"
    )
    applied = run_pfsync("apply", "--auto-approve", cwd=root, env=env)
    assert applied.code == 0, applied
    assert len(posts(sandbox)) == 2
    listed = run_pfsync("state", "list", cwd=root, env=env)
    assert listed.normalised(NEW=new_id)[1].splitlines()[1].rstrip() == (
        f"{BUSINESS}/t000  <NEW>  created  1         triggers/t000.yaml"
    )


def test_an_uncertain_create_found_in_pocketflows_is_imported_without_a_create(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    env = sandbox.environment()
    root = make_repo(tmp_path / "repo", 2)
    sandbox.script("ok", "lose-response")  # t001 is stored, but its answer is lost
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", "--parallelism", "1", cwd=root, env=env
    )
    assert run.code == 3, run
    assert sorted(json.loads((root / "pfsync.lock").read_text())["pending"]) == [f"{BUSINESS}/t001"]
    plan = run_pfsync("plan", cwd=root, env=env)
    assert '\nid: ""  # the id of the trigger found in Pocketflows\n' in plan.out, plan

    # A person finds it in Pocketflows (`sandbox list` here) and proposes the Import.
    found = next(t["id"] for t in sandbox.triggers(BUSINESS) if t["name"] == "Trigger t001")
    (root / "triggers" / "found.yaml").write_text(
        f"apiVersion: pfsync/v1\nkind: Import\nkey: t001\nid: {found}\n"
    )
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=root, env=env)
    assert plan.normalised(URL=sandbox.url, FOUND=found) == (
        2,
        f"Business: {BUSINESS}\n"
        "API: <URL>\n"
        "Lockfile: pfsync.lock (serial 2)\n" + NOT_A_REPOSITORY + "\n"
        f"<= {BUSINESS}/t001  import  triggers/found.yaml:2  (trigger <FOUND>)\n"
        f"    note: Trigger <FOUND> becomes the record of {BUSINESS}/t001 (origin imported, with "
        "this manifest's body); nothing is sent to Pocketflows.\n"
        "\n"
        "Plan: 0 to create, 0 to replace, 1 to import. Needs a person: 0 update, 0 delete, "
        "0 uncertain. 1 unchanged.\n",
        "",
    )
    applied = run_pfsync("apply", "--auto-approve", cwd=root, env=env)
    assert (applied.code, normalise(applied.err, FOUND=found)) == (
        0,
        f"{BUSINESS}/t001: imported trigger <FOUND> (triggers/found.yaml:2); nothing was sent\n"
        "Apply: 0 created, 0 failed, 0 uncertain, 1 imported. Needs a person: 0 update, "
        "0 delete, 0 uncertain.\n",
    )
    assert len(posts(sandbox)) == 2
    assert lock_ids(root)[f"{BUSINESS}/t001"] == found
    assert run_pfsync("plan", "--detailed-exitcode", cwd=root, env=env).code == 0


def test_after_a_sigkill_one_uncertain_create_is_imported_and_one_sent_once_more(
    run_pfsync: RunPfsync,
    make_sandbox: MakeSandbox,
    make_gate: MakeGate,
    spawn: Spawn,
    tmp_path: Path,
) -> None:
    sandbox = make_sandbox()
    env = sandbox.environment()
    root = make_repo(tmp_path / "repo", 2)
    gate = make_gate(sandbox, 0, 1)
    apply = spawn(root, env, "apply", "--auto-approve", "--new-lockfile")
    gate.wait_for(0)
    gate.wait_for(1)
    os.kill(apply.pid, signal.SIGKILL)
    assert apply.proc.wait(timeout=60) == -signal.SIGKILL
    # What Pocketflows did is unknown to pfsync: the first create was stored, the second not.
    sandbox.script("ok", "drop")
    gate.release(0)
    wait_until(lambda: len(sandbox.triggers(BUSINESS)) == 1, "the first create to be stored")
    gate.release(1)
    wait_until(lambda: len(posts(sandbox)) == 2 and gate.arrived(1), "the second create")

    plan = run_pfsync("plan", "--format", "json", cwd=root, env=env)
    entries = {e["address"]: e for e in json.loads(plan.out)["entries"]}
    assert {a: e["action"] for a, e in entries.items()} == {
        f"{BUSINESS}/t000": "uncertain",
        f"{BUSINESS}/t001": "uncertain",
    }
    (stored,) = sandbox.triggers(BUSINESS)
    found_key = "t000" if stored["name"] == "Trigger t000" else "t001"
    lost_key = "t001" if found_key == "t000" else "t000"
    lost_paste = entries[f"{BUSINESS}/{lost_key}"]["paste"]
    not_created = lost_paste[lost_paste.index("---\napiVersion: pfsync/v1\nkind: NotCreated") :]
    intent = not_created.split("intent: ")[1].split("\n")[0]
    import_ = f"---\napiVersion: pfsync/v1\nkind: Import\nkey: {found_key}\nid: {stored['id']}\n"

    # A NotCreated naming another create's Idempotency-Key is refused.
    other = entries[f"{BUSINESS}/{found_key}"]["paste"].split("intent: ")[1].split("\n")[0]
    (root / "triggers" / "settle.yaml").write_text(import_ + not_created.replace(intent, other))
    refused = run_pfsync("plan", "--detailed-exitcode", cwd=root, env=env)
    assert (refused.code, refused.out) == (1, ""), refused
    assert (
        f"NotCreated {BUSINESS}/{lost_key} names the create with Idempotency-Key {other}, but "
        f"the uncertain create of {BUSINESS}/{lost_key} has Idempotency-Key {intent}"
    ) in refused.err

    # The pull request as pasted: plan exits 2; apply imports one and sends the other once.
    (root / "triggers" / "settle.yaml").write_text(import_ + not_created)
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=root, env=env)
    assert plan.code == 2, plan
    assert f"++ {BUSINESS}/{lost_key}  resend  triggers/settle.yaml:" in plan.out
    assert f"<= {BUSINESS}/{found_key}  import  triggers/settle.yaml:3" in plan.out
    applied = run_pfsync("apply", "--auto-approve", cwd=root, env=env)
    assert applied.code == 0, applied
    sent = posts(sandbox)
    assert len(sent) == 3
    assert sent[-1]["idempotency_key"] == intent
    assert sorted(t["name"] for t in sandbox.triggers(BUSINESS)) == ["Trigger t000", "Trigger t001"]
    ids = lock_ids(root)
    assert ids[f"{BUSINESS}/{found_key}"] == stored["id"]
    assert ids[f"{BUSINESS}/{lost_key}"] not in (None, stored["id"])
    again = run_pfsync("apply", "--auto-approve", cwd=root, env=env)
    assert again.code == 0, again
    assert len(posts(sandbox)) == 3
    done = run_pfsync("plan", "--detailed-exitcode", cwd=root, env=env)
    assert done.code == 0, done
    assert f"NotCreated {BUSINESS}/{lost_key} (Idempotency-Key {intent}) is done" in done.out


def test_a_moved_and_a_create_in_one_apply_of_the_git_store(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    env = sandbox.environment()
    remote = make_remote(tmp_path, 2)
    first = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=clone(remote, tmp_path / "one"), env=env
    )
    assert first.code == 0, first
    before = remote_lockfile(remote)
    assert before is not None
    old_id = before["triggers"][f"{BUSINESS}/t001"]["id"]

    change = clone(remote, tmp_path / "change")
    (change / "triggers" / "t001.yaml").unlink()
    (change / "triggers" / "welcome.yaml").write_text(
        manifest_text("welcome", "Trigger t001").replace("et_welcome", "et_t001") + MOVED
    )
    (change / "triggers" / "t002.yaml").write_text(manifest_text("t002"))
    git(change, "add", "-A")
    git(change, "commit", "--quiet", "-m", "rename t001, add t002")
    git(change, "push", "--quiet", "origin", "main")

    runner = clone(remote, tmp_path / "runner")
    run = run_pfsync("apply", "--auto-approve", cwd=runner, env=env)
    assert run.code == 0, run
    lines = run.err.splitlines()
    # the record change is written before the create is sent
    assert lines[0] == (
        f"{BUSINESS}/welcome: moved from {BUSINESS}/t001 ({old_id}, triggers/welcome.yaml:13); "
        "nothing was sent"
    ), run
    assert lines[1].startswith(f"{BUSINESS}/t002: created trg_"), run
    assert len(posts(sandbox)) == 3
    after = remote_lockfile(remote)
    assert after is not None
    assert sorted(after["triggers"]) == [f"{BUSINESS}/{k}" for k in ("t000", "t002", "welcome")]
    assert after["triggers"][f"{BUSINESS}/welcome"]["id"] == old_id
    assert "lock" not in after
    clean = run_pfsync("plan", "--detailed-exitcode", cwd=runner, env=env)
    assert clean.code == 0, clean
