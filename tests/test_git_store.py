"""The git state store end to end: real `git`, bare remotes on disk, the sandbox over loopback.

Each CI runner is a separate clone of one bare remote, and the installed `pfsync` runs in it as a
subprocess. What is checked is what a user of the store relies on: a create is sent only
after its pending record is pushed; pfsync's commits are its own (author `pfsync`, `[skip ci]`,
the lockfile only, never forced); unrelated commits pushed meanwhile are kept; a lockfile that
changed underneath is merged into, never overwritten; one run holds the lock at a time, and a dead
run's lock is removed only by `pfsync state unlock`.

Concurrency is made deterministic with a gate on the in-process sandbox: chosen create requests
(counted in arrival order) are held until the test releases them, so "during an apply" means a
known point of the run, not a guess about timing. Waits are bounded and generous; nothing asserts
on wall-clock time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from apply_helpers import (
    BUSINESS,
    describe_lock,
    held_error,
    make_repo,
    posts,
    recorded_ids,
    sandbox_ids,
)
from conftest import Run, RunPfsync
from fixtures_background import Background, MakeGate, Spawn, wait_until
from fixtures_sandbox import MakeSandbox
from git_helpers import (
    GIT_ENV,
    allow_pushes,
    clone,
    git,
    make_remote,
    planned_from,
    refuse_pushes,
    remote_lockfile,
    remote_log,
    stale_warning,
)
from pfsync.sandbox import Sandbox

BATCHED = "{store: git, intent_batch: 8}"
# A held create must not time out in pfsync while the test acts around it.
SLOW_READS = ("--read-timeout", "300")


def address(n: int) -> str:
    return f"{BUSINESS}/t{n:03d}"


def addresses(numbers: Iterable[int]) -> set[str]:
    return {address(n) for n in numbers}


def rev(repository: Path, ref: str) -> str:
    return git(repository, "rev-parse", ref).strip()


def api_env(sandbox: Sandbox) -> dict[str, str]:
    """What a read-only command needs: the API URL the lockfile records."""
    return {"PFSYNC_API_URL": sandbox.url}


def remote_lock(remote: Path) -> dict[str, Any]:
    """The lockfile on the remote's main, which must exist."""
    lockfile = remote_lockfile(remote)
    assert lockfile is not None, "the remote has no lockfile"
    return lockfile


def plan_actions(run_pfsync: RunPfsync, repo: Path, sandbox: Sandbox) -> dict[str, str]:
    plan = run_pfsync("plan", "--format", "json", cwd=repo, env=api_env(sandbox))
    assert plan.code == 0, plan
    return {e["address"]: e["action"] for e in json.loads(plan.out)["entries"]}


def pfsync_commits(remote: Path, since: str) -> list[str]:
    """Commits on the remote's main after `since` made by pfsync, oldest first."""
    commits = git(remote, "rev-list", "--reverse", f"{since}..main").split()
    return [c for c in commits if git(remote, "show", "-s", "--format=%an", c).strip() == "pfsync"]


def assert_lockfile_only_commit(repository: Path, commit: str, skip_ci: bool = True) -> None:
    """Authored and committed by pfsync, one parent, only pfsync.lock, `[skip ci]` or not."""
    shown = git(repository, "show", "-s", "--format=%an <%ae>|%cn <%ce>|%P|%s", commit).strip()
    author, committer, parents, subject = shown.split("|")
    assert author == committer == "pfsync <pfsync@localhost>", shown
    assert len(parents.split()) == 1, shown
    assert subject.startswith("pfsync: "), shown
    assert subject.endswith(" [skip ci]") is skip_ci, shown
    changed = git(repository, "show", "--name-only", "--format=", commit).split()
    assert changed == ["pfsync.lock"], (shown, changed)


def assert_never_forced(remote: Path) -> None:
    """Every update of the remote's main (its reflog) was a fast-forward; no merge commits."""
    assert git(remote, "rev-list", "--merges", "main") == ""
    zero = "0" * 40
    for line in (remote / "logs" / "refs" / "heads" / "main").read_text().splitlines():
        old, new = line.split()[:2]
        if old != zero:
            git(remote, "merge-base", "--is-ancestor", old, new)  # asserts exit 0


def keep_reflog(remote: Path) -> None:
    """Make the bare remote log every update of its branches (to prove none was forced)."""
    git(remote, "config", "core.logAllRefUpdates", "always")


def start_apply(spawn: Spawn, runner: Path, sandbox: Sandbox, *args: str) -> Background:
    return spawn(runner, sandbox.environment(), "apply", "--auto-approve", *SLOW_READS, *args)


def wait_for_pending(remote: Path, count: int) -> dict[str, Any]:
    """Wait until the remote's lockfile holds a lock and `count` pending creates; returns it."""
    seen: dict[str, Any] = {}

    def ready() -> bool:
        lockfile = remote_lockfile(remote)
        if lockfile is None:
            return False
        seen.update(lockfile)
        return "lock" in lockfile and len(lockfile["pending"]) == count

    wait_until(ready, f"{count} pending creates and the lock on the remote")
    return seen


def moved_or_ended(remote: Path, tip: str, run: Background) -> bool:
    """Whether `remote`'s main is no longer at `tip`, or `run` has ended."""
    return rev(remote, "main") != tip or not run.running()


class Committer:
    """Another clone that pushes commits beside the lockfile (ordinary merges to main)."""

    def __init__(self, remote: Path, where: Path) -> None:
        self.repo = clone(remote, where)
        self.pushed: list[str] = []

    def push(self, name: str) -> None:
        """Commit NAME and push it, pulling (rebasing) first whenever main has moved."""
        (self.repo / name).write_text(f"unrelated change {name}\n")
        git(self.repo, "add", name)
        git(self.repo, "commit", "--quiet", "-m", f"unrelated change to {name}")
        for _ in range(100):
            pushed = subprocess.run(
                ["git", "push", "--quiet", "origin", "main"],
                cwd=self.repo,
                capture_output=True,
                text=True,
                env={**os.environ, **GIT_ENV},
                timeout=60,
            )
            if pushed.returncode == 0:
                self.pushed.append(name)
                return
            git(self.repo, "pull", "--quiet", "--rebase", "origin", "main")
        raise AssertionError(f"could not push {name}: {pushed.stderr}")


# 1. The happy path


def test_apply_records_every_create_on_the_remote_branch(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 5)
    keep_reflog(remote)
    original = rev(remote, "main")
    runner = clone(remote, tmp_path / "runner1")

    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=runner, env=sandbox.environment()
    )
    assert run.code == 0, run
    created = sandbox_ids(sandbox)
    assert sorted(created) == sorted(addresses(range(5)))
    assert sorted(run.err.splitlines()) == sorted(
        [f"{where}: created {id_}" for where, id_ in created.items()]
        + [
            "Apply: 5 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
            "0 uncertain."
        ]
    )

    lockfile = remote_lock(remote)
    assert recorded_ids(lockfile) == created  # the ids the sandbox gave
    assert lockfile["pending"] == {}
    assert "lock" not in lockfile  # released

    commits = pfsync_commits(remote, original)
    subjects = [git(remote, "show", "-s", "--format=%s", c).strip() for c in commits]
    assert subjects[0] == "pfsync: lock for apply [skip ci]"
    assert subjects[-1] == "pfsync: record apply outcomes, unlock [skip ci]"
    assert set(subjects[1:-1]) == {"pfsync: record pending creates [skip ci]"}
    assert git(remote, "rev-list", f"{original}..main").split() == commits[::-1]
    for commit in commits:
        assert_lockfile_only_commit(remote, commit)
    git(remote, "merge-base", "--is-ancestor", original, "main")
    assert_never_forced(remote)

    # The runner's checkout is untouched: same HEAD, clean work tree, no lockfile written there.
    assert rev(runner, "HEAD") == original
    assert git(runner, "status", "--porcelain") == ""
    assert not (runner / "pfsync.lock").exists()

    # A fresh clone (another runner, a laptop) sees everything that exists.
    fresh = clone(remote, tmp_path / "fresh")
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=fresh, env=api_env(sandbox))
    assert plan.code == 0, plan
    tip = rev(remote, "main")[:12]
    assert plan.out == (
        f"Business: {BUSINESS}\n"
        f"API: {sandbox.url}\n"
        f"Lockfile: pfsync.lock on origin/main (serial {lockfile['serial']}, commit {tip})\n"
        + planned_from(fresh)
        + "\n"
        "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "5 unchanged.\n"
    )
    listing = run_pfsync("state", "list", "--format", "json", cwd=fresh, env=api_env(sandbox))
    assert listing.code == 0, listing
    rows = json.loads(listing.out)["addresses"]
    assert {row["address"]: row["id"] for row in rows} == created


def test_apply_names_the_remote_branch_it_writes(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    # `plan` says `pfsync.lock on origin/main`; apply's header must name the same branch.
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 1)
    runner = clone(remote, tmp_path / "runner1")
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=runner, env=sandbox.environment()
    )
    assert run.code == 0, run
    header = run.out.splitlines()[:3]
    assert header[:2] == [f"Business: {BUSINESS}", f"API: {sandbox.url}"], run
    assert header[2].startswith("Lockfile: pfsync.lock on origin/main "), run


# 2. A push the remote refuses


def test_a_refused_first_push_sends_nothing(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 3)
    runner = clone(remote, tmp_path / "runner1")
    tip = rev(remote, "main")
    refuse_pushes(remote, "main is protected: changes need a pull request")

    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=runner, env=sandbox.environment()
    )
    assert run.code == 1, run
    assert run.out == ""
    assert run.err.startswith(
        "Error: git refused to push the lockfile to origin/main: remote: main is protected: "
        "changes need a pull request; "
    ), run
    assert "(pre-receive hook declined)" in run.err
    assert run.err.count("\n") == 1, run
    assert posts(sandbox) == []
    assert rev(remote, "main") == tip
    assert remote_lockfile(remote) is None

    allow_pushes(remote)
    again = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=runner, env=sandbox.environment()
    )
    assert again.code == 0, again
    assert recorded_ids(remote_lock(remote)) == sandbox_ids(sandbox)
    assert len(sandbox_ids(sandbox)) == 3


def test_a_push_refused_mid_apply_stops_sending_at_once(
    make_sandbox: MakeSandbox, make_gate: MakeGate, spawn: Spawn, tmp_path: Path
) -> None:
    # A write that cannot succeed stops the run before anything more is sent. The run's
    # first writes are accepted; then the remote starts refusing (a branch protection switched
    # on): from the refused write on, no further create may leave.
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 40, state=BATCHED)
    refuse_from_now, refused = tmp_path / "refuse-from-now", tmp_path / "refused"
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        f"if [ -e '{refuse_from_now}' ]; then\n"
        "  echo 'main is protected' >&2\n"
        f"  touch '{refused}'\n"
        "  exit 1\n"
        "fi\n"
    )
    hook.chmod(0o755)
    runner = clone(remote, tmp_path / "runner1")
    gate = make_gate(sandbox, 0, 8)
    trace = tmp_path / "git-trace.json"  # git's own account of each git command the run starts
    env = {**sandbox.environment(), "GIT_TRACE2_EVENT": str(trace)}

    args = ("--auto-approve", *SLOW_READS, "--new-lockfile", "--parallelism", "1")
    apply = spawn(runner, env, "apply", *args)
    gate.wait_for(0)
    # The lock and two batches of pending records are pushed; the store writer is idle until
    # the first batch's outcomes are in (t000 is held), so the next push is the refused one.
    locked = wait_for_pending(remote, 16)
    credential_reads = git_exits(trace, "config", "--get-regexp")
    refuse_from_now.touch()
    gate.release(0)
    wait_until(refused.exists, "the remote to refuse a push")
    wait_until(lambda: gate.arrived(8) or not apply.running(), "t008 or the end of the run")
    # After the refused `git push`, the run fetches, sees the tip unmoved, and reads the
    # credentials its git configuration holds to hide them in git's message: the last git
    # command before the error that stops the sending. Then the held create answers.
    wait_until(
        lambda: git_exits(trace, "config", "--get-regexp") > credential_reads,
        "the run to word the refusal",
    )
    gate.release(8)
    run = apply.finish()

    assert run.code == 1, run
    assert "Error: git refused to push the lockfile to origin/main: remote: main is protected" in (
        run.err
    )
    created = sandbox_ids(sandbox)
    # t000..t007 were sent before the write that failed; t008 went out while it was in flight.
    assert set(created) <= addresses(range(9)), (
        f"created after the store refused a write: {sorted(set(created) - addresses(range(9)))}"
        f"\n{run}"
    )

    # Nothing created is lost: recorded, or pending in the store and named with its id.
    lockfile = remote_lock(remote)
    assert lockfile.get("lock") == locked["lock"]  # the refused run could not release it
    for where, id_ in created.items():
        recorded = lockfile["triggers"].get(where, {}).get("id")
        assert where in lockfile["pending"] or recorded == id_, (where, id_, recorded)
        if recorded != id_:
            assert (
                f"NOT RECORDED: {where} was created as {id_}; once the disk or state store is "
                f"fixed run `pfsync state import {where} {id_}`"
            ) in run.err
    assert f"run `pfsync state unlock {locked['lock']['id']}`" in run.err


# 3. Unrelated commits pushed to main during an apply


def git_exits(trace: Path, *words: str) -> int:
    """How many git commands whose arguments hold `words` have exited (a GIT_TRACE2_EVENT file)."""
    started: set[str] = set()
    exited = 0
    lines = trace.read_text(encoding="utf-8").splitlines() if trace.exists() else []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:  # a line still being written
            continue
        if event["event"] == "start" and all(word in event["argv"] for word in words):
            started.add(event["sid"])
        elif event["event"] == "exit" and event["sid"] in started:
            exited += 1
    return exited


def test_unrelated_commits_pushed_during_an_apply_are_kept(
    make_sandbox: MakeSandbox, make_gate: MakeGate, spawn: Spawn, tmp_path: Path
) -> None:
    # The rebase over an unrelated commit is shown at a known point: NOTES-0, pushed while a
    # create is held. The racing pushes after it land at moments no test chose; how many fit
    # is the run's length against the other clone's pace (commit, push, pull when refused,
    # push): 150 creates gave three, these 64 (8 batches of pending records, a dozen writes)
    # give one or two, at a third of the cost, each checked by the same rules below.
    sandbox = make_sandbox(latency_ms=20)
    remote = make_remote(tmp_path, 64, state=BATCHED)
    keep_reflog(remote)
    original = rev(remote, "main")
    runner = clone(remote, tmp_path / "runner1")
    other = Committer(remote, tmp_path / "other")
    gate = make_gate(sandbox, 0)

    apply = start_apply(spawn, runner, sandbox, "--new-lockfile")
    gate.wait_for(0)
    wait_for_pending(remote, 16)
    other.push("NOTES-0.md")  # the run's next write has to rebase over this one
    gate.release(0)
    while apply.running() and len(other.pushed) < 20:  # more, racing the run's own pushes
        # A merge to main right after each of the run's writes, which its next must rebase over.
        wait_until(partial(moved_or_ended, remote, rev(remote, "main"), apply), "a write")
        other.push(f"NOTES-{len(other.pushed)}.md")
    run = apply.finish()

    assert run.code == 0, run
    assert run.err.endswith(
        "Apply: 64 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n"
    ), run
    lockfile = remote_lock(remote)
    assert recorded_ids(lockfile) == sandbox_ids(sandbox)
    assert len(lockfile["triggers"]) == 64
    assert lockfile["pending"] == {}
    assert "lock" not in lockfile

    # Every unrelated commit is in main's history and its file at the tip.
    log = remote_log(remote)
    for name in other.pushed:
        assert f"unrelated change to {name}" in log
        git(remote, "cat-file", "-e", f"main:{name}")
    first = log.index("unrelated change to NOTES-0.md")
    assert "pfsync: lock for apply [skip ci]" in log[first + 1 :]  # pfsync commits before it
    assert log[0:first].count("pfsync: record apply outcomes, unlock [skip ci]") == 1  # after
    for commit in pfsync_commits(remote, original):
        assert_lockfile_only_commit(remote, commit)
    assert_never_forced(remote)


# 4. Two runners at once


def test_a_second_runner_fails_at_once_or_waits_for_the_lock(
    run_pfsync: RunPfsync,
    make_sandbox: MakeSandbox,
    make_gate: MakeGate,
    spawn: Spawn,
    tmp_path: Path,
) -> None:
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 20, state=BATCHED)
    runner1 = clone(remote, tmp_path / "runner1")
    runner2 = clone(remote, tmp_path / "runner2")
    runner3 = clone(remote, tmp_path / "runner3")
    gate = make_gate(sandbox, 0)

    first = start_apply(spawn, runner1, sandbox, "--new-lockfile", "--parallelism", "2")
    gate.wait_for(0)
    lock = wait_for_pending(remote, 16)["lock"]
    assert lock["pid"] == first.pid

    second = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=runner2, env=sandbox.environment()
    )
    assert second == Run(1, "", held_error("pfsync.lock on origin/main", lock))

    third = start_apply(spawn, runner3, sandbox, "--new-lockfile", "--lock-timeout", "60")
    # Once runner3 has fetched the locked tip, it is waiting for the lock. (The first run may
    # still be pushing its last batch of pending creates: the tip is the remote's as it is now.)
    wait_until(
        lambda: rev(runner3, "refs/remotes/origin/main") == rev(remote, "main"),
        "runner3 to fetch",
    )
    assert third.running()
    gate.release(0)
    assert first.finish().code == 0
    after_first = rev(remote, "main")
    waited = third.finish()

    assert waited.code == 0, waited
    assert waited.out.endswith(
        "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "20 unchanged.\n"
    ), waited
    assert waited.err == (
        "Apply: 0 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n"
    )
    assert rev(remote, "main") == after_first  # nothing to do: no lock taken, no commit
    created = sandbox_ids(sandbox)  # each trigger exactly once
    assert sorted(created) == sorted(addresses(range(20)))
    assert len(posts(sandbox)) == 20
    assert recorded_ids(remote_lock(remote)) == created


# 5. The lockfile changed on the remote during an apply


def test_a_lockfile_changed_during_an_apply_is_merged_into_never_overwritten(
    run_pfsync: RunPfsync,
    make_sandbox: MakeSandbox,
    make_gate: MakeGate,
    spawn: Spawn,
    tmp_path: Path,
) -> None:
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 40, state=BATCHED)
    keep_reflog(remote)
    runner = clone(remote, tmp_path / "runner1")
    gate = make_gate(sandbox, 0)

    apply = start_apply(spawn, runner, sandbox, "--new-lockfile", "--parallelism", "1")
    gate.wait_for(0)
    at_unlock = wait_for_pending(remote, 16)
    lock_id = at_unlock["lock"]["id"]
    durable = set(at_unlock["pending"])
    assert durable == addresses(range(16))

    # A person takes the run for dead: unlocks it, then settles some of its "uncertain" creates
    # and adopts a trigger made by hand, each a pushed commit.
    person = clone(remote, tmp_path / "person")
    env = api_env(sandbox)
    unlock = run_pfsync("state", "unlock", lock_id, cwd=person, env=env)
    assert unlock.code == 0, unlock
    assert unlock.out.endswith(
        "16 pending create(s) stay uncertain: `pfsync plan` lists them; look for each in "
        "Pocketflows, then `pfsync state import ADDRESS ID` or `pfsync state rm ADDRESS`.\n"
    ), unlock
    for args in (
        ("state", "import", address(2), "trg_by_hand_2"),  # says t002 exists with this id
        ("state", "rm", address(3)),  # says t003 was never created
        ("state", "import", address(39), "trg_by_hand_39"),  # adopts a trigger made by hand
    ):
        settled = run_pfsync(*args, cwd=person, env=env)
        assert settled.code == 0, settled
    theirs = rev(remote, "main")
    gate.release(0)
    run = apply.finish()

    assert run.code == 1, run
    assert "the lockfile pfsync.lock on origin/main changed underneath" in run.err
    assert "merging this run's outcomes by address into it" in run.err
    assert "no further create will be sent" in run.err
    created = sandbox_ids(sandbox)
    assert set(created) <= durable  # nothing sent whose pending record was not pushed first

    lockfile = remote_lock(remote)
    assert "lock" not in lockfile
    git(remote, "merge-base", "--is-ancestor", theirs, "main")  # built on the person's commits
    assert_never_forced(remote)
    # What the person wrote stands.
    assert lockfile["triggers"][address(39)]["id"] == "trg_by_hand_39"
    assert lockfile["triggers"][address(39)]["origin"] == "imported"
    assert lockfile["triggers"][address(2)]["id"] == "trg_by_hand_2"
    assert (
        f"Warning: {address(2)}: this run created trigger {created[address(2)]}, but the lockfile "
        "now records trg_by_hand_2 for it (changed meanwhile); it was not overwritten and is "
        "kept in the address's history: look at both in Pocketflows"
    ) in run.err
    # Every other trigger the sandbox holds is recorded with its id or still pending: never
    # absent (t003, forgotten by the person but created by the run, exists: it is recorded).
    for where, id_ in created.items():
        recorded = lockfile["triggers"].get(where, {}).get("id")
        if where != address(2):
            assert where in lockfile["pending"] or recorded == id_, (where, id_, recorded)

    fresh = clone(remote, tmp_path / "fresh")
    actions = plan_actions(run_pfsync, fresh, sandbox)
    assert [where for where in created if actions[where] == "create"] == []
    assert actions[address(39)] == "no-op"


# 6. A dead run's lock and `state unlock`


def test_a_killed_run_leaves_its_lock_until_a_person_unlocks_it(
    run_pfsync: RunPfsync,
    make_sandbox: MakeSandbox,
    make_gate: MakeGate,
    spawn: Spawn,
    tmp_path: Path,
) -> None:
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 40, state=BATCHED)
    runner = clone(remote, tmp_path / "runner1")
    gate = make_gate(sandbox, 0)

    apply = start_apply(spawn, runner, sandbox, "--new-lockfile", "--parallelism", "1")
    gate.wait_for(0)
    lock = wait_for_pending(remote, 16)["lock"]
    apply.proc.kill()  # SIGKILL: no chance to release anything
    assert apply.finish().code == -9
    gate.release(0)  # the create in flight is processed after all: t000 exists
    wait_until(lambda: address(0) in sandbox_ids(sandbox), "the sandbox to store t000")

    fresh = clone(remote, tmp_path / "fresh")
    env = api_env(sandbox)
    blocked = run_pfsync("apply", "--auto-approve", cwd=fresh, env=sandbox.environment())
    assert blocked == Run(1, "", held_error("pfsync.lock on origin/main", lock))
    refused = run_pfsync("state", "rm", address(0), cwd=fresh, env=env)
    assert refused == Run(1, "", held_error("pfsync.lock on origin/main", lock))

    wrong = run_pfsync("state", "unlock", "not-the-lock", cwd=fresh, env=env)
    assert wrong == Run(
        1,
        "",
        f"Error: the state lock of pfsync.lock on origin/main is {lock['id']}, not not-the-lock "
        f"(held by {describe_lock(lock)}); nothing was changed\n",
    )
    tip = rev(remote, "main")
    unlocked = run_pfsync("state", "unlock", lock["id"], cwd=fresh, env=env)
    assert unlocked == Run(
        0,
        f"Removed the lock {lock['id']} ({describe_lock(lock)}).\n"
        "16 pending create(s) stay uncertain: `pfsync plan` lists them; look for each in "
        "Pocketflows, then `pfsync state import ADDRESS ID` or `pfsync state rm ADDRESS`.\n",
        "",
    )
    assert git(remote, "rev-list", f"{tip}..main").split() == [rev(remote, "main")]
    assert_lockfile_only_commit(remote, "main")
    lockfile = remote_lock(remote)
    assert "lock" not in lockfile
    assert set(lockfile["pending"]) == addresses(range(16))  # they stay, as uncertain
    again = run_pfsync("state", "unlock", lock["id"], cwd=fresh, env=env)
    assert again == Run(1, "", "Error: the state lock of pfsync.lock on origin/main is not held\n")

    actions = plan_actions(run_pfsync, fresh, sandbox)
    assert {a for a, action in actions.items() if action == "uncertain"} == addresses(range(16))
    assert {a for a, action in actions.items() if action == "create"} == addresses(range(16, 40))
    # The next apply never re-sends an uncertain create by itself.
    rest = run_pfsync("apply", "--auto-approve", cwd=fresh, env=sandbox.environment())
    assert rest.code == 3, rest
    assert set(sandbox_ids(sandbox)) == {address(0)} | addresses(range(16, 40))


def test_unlock_with_the_file_store_explains_there_is_nothing_to_unlock(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, 1)
    run = run_pfsync("state", "unlock", "5f0c6c2e-8d7a-4d0e-9c53-2b1f3f1d9a10", cwd=repo)
    assert run == Run(
        1,
        "",
        "Error: the file store keeps no lock record: its lock (an flock on pfsync.lock.lck) is "
        "released by the operating system when the holding process exits, so there is nothing "
        "to unlock\n",
    )


# 7. Moving a lockfile between stores


def test_state_push_and_pull_move_the_lockfile_with_its_lineage_and_serial(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    env = api_env(sandbox)
    remote = make_remote(tmp_path, 3, state="{store: file}")
    runner = clone(remote, tmp_path / "runner1")
    applied = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=runner, env=sandbox.environment()
    )
    assert applied.code == 0, applied
    text = (runner / "pfsync.lock").read_text()
    local = json.loads(text)
    tip = rev(remote, "main")

    pushed = run_pfsync("state", "push", "--to", "git", cwd=runner, env=env)
    assert pushed == Run(
        0,
        f"Wrote the lockfile (lineage {local['lineage']}, serial {local['serial']}) to "
        "pfsync.lock on origin/main.\n",
        "",
    )
    assert git(remote, "show", "main:pfsync.lock") == text  # as it is: lineage and serial
    assert git(remote, "rev-list", f"{tip}..main").split() == [rev(remote, "main")]
    assert_lockfile_only_commit(remote, "main")
    same = run_pfsync("state", "push", "--to", "git", cwd=runner, env=env)
    assert same == Run(
        0,
        f"pfsync.lock on origin/main already holds this lockfile (serial {local['serial']}).\n",
        "",
    )

    # Another lineage (a lockfile started elsewhere) is refused without --force.
    elsewhere = clone(remote, tmp_path / "elsewhere")
    (elsewhere / "pfsync.lock").unlink()
    started = run_pfsync("state", "import", address(0), "trg_other", cwd=elsewhere, env=env)
    assert started.code == 0, started
    other_lineage = json.loads((elsewhere / "pfsync.lock").read_text())["lineage"]
    before = rev(remote, "main")
    clash = run_pfsync("state", "push", "--to", "git", cwd=elsewhere, env=env)
    assert clash == Run(
        1,
        "",
        f"Error: pfsync.lock on origin/main holds another lockfile (lineage {local['lineage']}, "
        f"not {other_lineage}); check both, then pass --force to replace it\n",
    )
    assert rev(remote, "main") == before

    # Pulled into a fresh clone's working tree, and pushed to a file.
    fresh = clone(remote, tmp_path / "fresh")
    (fresh / "pfsync.lock").unlink()
    pulled = run_pfsync("state", "pull", "--from", "git", cwd=fresh, env=env)
    assert pulled == Run(
        0,
        f"Wrote the lockfile (lineage {local['lineage']}, serial {local['serial']}) to "
        "pfsync.lock.\n",
        "",
    )
    assert (fresh / "pfsync.lock").read_text() == text
    backup = tmp_path / "backup" / "pfsync.lock"
    backup.parent.mkdir()
    copied = run_pfsync("state", "push", "--to", f"file:{backup}", cwd=runner, env=env)
    assert copied.code == 0, copied
    assert backup.read_text() == text


# 8. --no-push: a local commit for a pull request


def test_no_push_commits_locally_without_skip_ci_and_push_is_the_default(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    env = api_env(sandbox)
    remote = make_remote(tmp_path, 3)
    runner = clone(remote, tmp_path / "runner1")
    applied = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=runner, env=sandbox.environment()
    )
    assert applied.code == 0, applied
    ids = sandbox_ids(sandbox)
    serial = remote_lock(remote)["serial"]
    tip = rev(remote, "main")

    laptop = clone(remote, tmp_path / "laptop")
    head = rev(laptop, "HEAD")
    forgot = run_pfsync("state", "rm", address(1), "--no-push", cwd=laptop, env=env)
    assert forgot == Run(
        0,
        f"Removed {address(1)} from the lockfile; trigger {ids[address(1)]} moved to its "
        "history. Nothing was deleted in Pocketflows: deactivate the trigger there if it should "
        "stop running.\n"
        "Committed the lockfile on the current branch (not pushed): propose it in a pull "
        "request.\n",
        "",
    )
    assert rev(laptop, "HEAD~1") == head
    assert_lockfile_only_commit(laptop, "HEAD", skip_ci=False)  # a pull request's plan must run
    assert git(laptop, "status", "--porcelain") == ""
    committed = json.loads(git(laptop, "show", "HEAD:pfsync.lock"))
    assert address(1) not in committed["triggers"]
    assert committed["serial"] == serial + 1
    assert rev(remote, "main") == tip  # not pushed
    assert rev(laptop, "refs/remotes/origin/main") == tip

    # Without --no-push the change is pushed (serial + 1), and state pull brings it home.
    other = clone(remote, tmp_path / "other")
    pushed = run_pfsync("state", "rm", address(2), cwd=other, env=env)
    assert pushed.code == 0, pushed
    assert pushed.out.endswith("Pushed the lockfile to origin.\n"), pushed
    lockfile = remote_lock(remote)
    assert lockfile["serial"] == serial + 1
    assert address(2) not in lockfile["triggers"]
    assert git(remote, "rev-list", f"{tip}..main").split() == [rev(remote, "main")]
    assert_lockfile_only_commit(remote, "main")
    assert git(remote, "show", "-s", "--format=%s", "main").strip() == "pfsync: state rm [skip ci]"
    (other / "pfsync.lock").unlink()
    pulled = run_pfsync("state", "pull", cwd=other, env=env)
    assert pulled.code == 0, pulled
    assert (other / "pfsync.lock").read_text() == git(remote, "show", "main:pfsync.lock")


def test_no_push_on_a_new_pull_request_branch(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    # The pull-request flow: a new local branch, the state change committed on it, then pushed
    # by the person with `git push -u`. The branch does not exist on the remote yet.
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 2)
    runner = clone(remote, tmp_path / "runner1")
    applied = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=runner, env=sandbox.environment()
    )
    assert applied.code == 0, applied
    tip = rev(remote, "main")
    laptop = clone(remote, tmp_path / "laptop")
    git(laptop, "switch", "--quiet", "-c", "forget-t001")

    run = run_pfsync("state", "rm", address(1), "--no-push", cwd=laptop, env=api_env(sandbox))
    assert run.code == 0, run
    assert rev(laptop, "forget-t001~1") == tip
    assert_lockfile_only_commit(laptop, "forget-t001", skip_ci=False)
    assert address(1) not in json.loads(git(laptop, "show", "forget-t001:pfsync.lock"))["triggers"]
    assert rev(remote, "main") == tip


# 9. Apply runs from the tip of the remote branch


def test_apply_refuses_a_checkout_that_is_not_the_tip(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 2)
    behind = clone(remote, tmp_path / "behind")
    ahead = clone(remote, tmp_path / "ahead")
    merged = clone(remote, tmp_path / "merged")
    (merged / "triggers" / "t000.yaml").write_text(
        (merged / "triggers" / "t000.yaml").read_text().replace("Trigger t000", "Welcome")
    )
    git(merged, "commit", "--quiet", "-am", "rename t000")
    git(merged, "push", "--quiet", "origin", "main")
    tip = rev(remote, "main")

    # Behind by a commit that changes a manifest: the plan would be of an older repository.
    head = rev(behind, "HEAD")
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=behind, env=sandbox.environment()
    )
    assert run == Run(
        1,
        "",
        f"Error: this checkout (commit {head[:12]}) is not the tip of origin/main (commit "
        f"{tip[:12]}); pfsync applies from the tip: pull or check out origin/main and run "
        "again. Nothing was sent\n",
    )
    # Ahead by a commit not on main (an unmerged change): refused the same way.
    git(ahead, "pull", "--quiet", "--ff-only", "origin", "main")
    (ahead / "triggers" / "t009.yaml").write_text(
        (ahead / "triggers" / "t000.yaml").read_text().replace("t000", "t009")
    )
    git(ahead, "add", ".")
    git(ahead, "commit", "--quiet", "-m", "unmerged manifest")
    head = rev(ahead, "HEAD")
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=ahead, env=sandbox.environment()
    )
    assert run.code == 1, run
    assert f"this checkout (commit {head[:12]}) is not the tip of origin/main" in run.err
    assert posts(sandbox) == []
    assert rev(remote, "main") == tip


def test_apply_proceeds_when_behind_only_by_lockfile_commits(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 5)
    older = clone(remote, tmp_path / "older")  # cloned before anything was applied
    runner = clone(remote, tmp_path / "runner1")
    first = run_pfsync(
        "apply",
        "--auto-approve",
        "--new-lockfile",
        "--target",
        address(0),
        "--target",
        address(1),
        cwd=runner,
        env=sandbox.environment(),
    )
    assert first.code == 0, first

    # The older checkout is behind by lockfile commits only: it applies, reading the remote's
    # lockfile, so it creates only what the first run did not.
    rest = run_pfsync("apply", "--auto-approve", cwd=older, env=sandbox.environment())
    assert rest.code == 0, rest
    created = sandbox_ids(sandbox)
    assert sorted(created) == sorted(addresses(range(5)))
    assert recorded_ids(remote_lock(remote)) == created

    tip = rev(remote, "main")
    nothing = run_pfsync("apply", "--auto-approve", cwd=older, env=sandbox.environment())
    assert nothing.code == 0, nothing
    assert nothing.err == (
        "Apply: 0 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n"
    )
    assert rev(remote, "main") == tip  # nothing to do: no commit at all
    assert len(posts(sandbox)) == 5


def two_environment_remote(tmp_path: Path, production_lockfile: str) -> tuple[Path, Path]:
    """A remote whose main has two manifests and the environments staging and production (its
    lockfile at `production_lockfile`), both in the git store on main; and the clone that
    pushed that."""
    remote = make_remote(tmp_path, 2)
    seed = clone(remote, tmp_path / "environments")
    (seed / "pfsync.yaml").write_text(
        "state: {store: git}\n"
        "environments:\n"
        "  staging: {business: biz_staging, lockfile: state/staging.lock}\n"
        f"  production: {{business: biz_production, lockfile: {production_lockfile}}}\n"
    )
    (seed / ".gitignore").write_text("*.journal\n*.lck\n.pfsync/\n")
    git(seed, "commit", "--quiet", "-am", "two environments")
    git(seed, "push", "--quiet", "origin", "main")
    return remote, seed


def test_two_environments_apply_from_checkouts_behind_each_others_lockfile_commits(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    remote, _ = two_environment_remote(tmp_path, production_lockfile="state/production.lock")
    production = clone(remote, tmp_path / "production-runner")  # cloned before staging applied
    staging = clone(remote, tmp_path / "staging-runner")
    env = sandbox.environment()
    first = run_pfsync(
        "-e", "staging", "apply", "--auto-approve", "--new-lockfile", cwd=staging, env=env
    )
    assert first.code == 0, first

    # Behind only by staging's lockfile commits: nothing it applies from changed.
    second = run_pfsync(
        "-e", "production", "apply", "--auto-approve", "--new-lockfile", cwd=production, env=env
    )
    assert second.code == 0, second
    for business in ("biz_staging", "biz_production"):
        names = sorted(trigger["name"] for trigger in sandbox.triggers(business))
        assert names == ["Trigger t000", "Trigger t001"], business
    assert remote_lockfile(remote, "state/staging.lock") is not None
    assert remote_lockfile(remote, "state/production.lock") is not None


def test_a_file_named_as_another_environments_lockfile_but_not_one_is_not_a_lockfile_commit(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    # Misconfigured: production's `lockfile:` is a manifest. A commit changing that manifest
    # changes what staging applies, so staging's older checkout must still be refused.
    sandbox = make_sandbox()
    remote, seed = two_environment_remote(tmp_path, production_lockfile="triggers/t001.yaml")
    staging = clone(remote, tmp_path / "staging-runner")
    manifest = seed / "triggers" / "t001.yaml"
    manifest.write_text(manifest.read_text().replace("Trigger t001", "Renamed"))
    git(seed, "commit", "--quiet", "-am", "rename t001")
    git(seed, "push", "--quiet", "origin", "main")
    head, tip = rev(staging, "HEAD"), rev(remote, "main")
    run = run_pfsync(
        "-e",
        "staging",
        "apply",
        "--auto-approve",
        "--new-lockfile",
        cwd=staging,
        env=sandbox.environment(),
    )
    assert run == Run(
        1,
        "",
        f"Error: this checkout (commit {head[:12]}) is not the tip of origin/main (commit "
        f"{tip[:12]}); pfsync applies from the tip: pull or check out origin/main and run "
        "again. Nothing was sent\n",
    )
    assert posts(sandbox) == []


# 10. plan reads the remote


def test_plan_reads_the_remote_branch_and_falls_back_to_the_last_fetch(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    env = api_env(sandbox)
    remote = make_remote(tmp_path, 5)
    runner2 = clone(remote, tmp_path / "runner2")  # an older clone, never pulled
    runner1 = clone(remote, tmp_path / "runner1")
    applied = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=runner1, env=sandbox.environment()
    )
    assert applied.code == 0, applied
    serial, tip = remote_lock(remote)["serial"], rev(remote, "main")[:12]
    header = (
        f"Business: {BUSINESS}\n"
        f"API: {sandbox.url}\n"
        f"Lockfile: pfsync.lock on origin/main (serial {serial}, commit {tip})\n"
        + planned_from(runner2)  # the older clone's commit, the state branch's lockfile
    )
    summary = (
        "\nPlan: 0 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "5 unchanged.\n"
    )
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=runner2, env=env)
    assert plan == Run(0, header + summary, "")
    assert not (runner2 / "pfsync.lock").exists()  # read from the remote, not the work tree

    # The remote goes away: plan and state list use the last fetched lockfile, with a warning.
    shutil.move(remote, tmp_path / "elsewhere.git")
    offline = run_pfsync("plan", "--detailed-exitcode", cwd=runner2, env=env)
    assert offline.code == 0, offline
    assert offline.err.startswith("Warning: cannot fetch origin/main: "), offline
    assert offline.err.endswith(
        "; using the lockfile of the last fetched origin/main, which may be out of date\n"
    ), offline
    assert offline.err.count("\n") == 1
    reason = offline.err.removeprefix("Warning: ").removesuffix("\n")
    assert offline.out == header + stale_warning(reason) + summary
    listing = run_pfsync("state", "list", cwd=runner2, env=env)
    assert listing.code == 0, listing
    assert listing.err == offline.err
    assert len(listing.out.splitlines()) == 1 + 5

    # apply needs the store itself: it stops before sending anything.
    (runner2 / "triggers" / "t005.yaml").write_text(
        (runner2 / "triggers" / "t000.yaml").read_text().replace("t000", "t005")
    )
    sent = len(posts(sandbox))
    refused = run_pfsync("apply", "--auto-approve", cwd=runner2, env=sandbox.environment())
    assert refused.code == 1, refused
    assert refused.out == ""
    assert refused.err.startswith("Error: cannot fetch origin/main: "), refused
    assert len(posts(sandbox)) == sent
