"""Apply's safety rules in real processes: SIGKILL at random moments, signals, races, stale plans.

Every test runs the installed `pfsync` against the sandbox over loopback, WITHOUT idempotency
keys (as the documented API), so any second create for one address would show as a duplicate.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

from apply_helpers import BUSINESS, lock_ids, make_repo, manifest_text, start_apply, wait_for_line
from conftest import RunPfsync
from fixtures_background import MakeGate, wait_until
from fixtures_sandbox import MakeSandbox
from pfsync.sandbox import Sandbox


def settle_like_a_person(run_pfsync: RunPfsync, repo: Path, sandbox: Sandbox) -> int:
    """Resolve every uncertain address from the sandbox listing; returns how many."""
    env = {"PFSYNC_API_URL": sandbox.url}
    plan = run_pfsync("plan", "--format", "json", cwd=repo, env=env)
    assert plan.code == 0, plan
    uncertain = [
        e["address"] for e in json.loads(plan.out)["entries"] if e["action"] == "uncertain"
    ]
    by_name = {}
    for trigger in sandbox.triggers(BUSINESS):
        assert trigger["name"] not in by_name, f"duplicate trigger {trigger['name']}"
        by_name[trigger["name"]] = trigger["id"]
    found = {a: by_name.get("Trigger " + a.split("/", 1)[1]) for a in uncertain}
    forget = [address for address, id_ in found.items() if id_ is None]
    pairs = [word for address, id_ in found.items() if id_ is not None for word in (address, id_)]
    for args in (("rm", *forget), ("import", *pairs)):
        if len(args) > 1:
            run = run_pfsync("state", *args, cwd=repo, env=env)
            assert run.code == 0, run
    return len(uncertain)


def assert_exactly_once(repo: Path, sandbox: Sandbox, count: int) -> None:
    triggers = sandbox.triggers(BUSINESS)
    names = [t["name"] for t in triggers]
    assert len(names) == len(set(names)), "a trigger was created twice"
    assert len(triggers) == count
    assert sorted(lock_ids(repo).values()) == sorted(t["id"] for t in triggers)


def test_sigkill_at_random_moments_never_duplicates(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(latency_ms=15)
    count = 60
    repo = make_repo(tmp_path, count)
    rng = random.Random(int(os.environ.get("PFSYNC_KILL_SEED", "1234")))
    # A moment of the creates (four in flight), however loaded the machine: once 1 to 8 more are
    # stored, or the run has ended. Each of the eight counts once, in a seeded random order: the
    # kill lands with the first wave of four in flight and with the second, at every place in
    # each, where ten random draws from the eight repeated some and could miss others.
    more_stored = list(range(1, 9))
    rng.shuffle(more_stored)
    settled = 0
    for more in more_stored:
        args = [] if (repo / "pfsync.lock").exists() else ["--new-lockfile"]
        proc = start_apply(repo, sandbox, "--parallelism", "4", *args)
        stored = len(sandbox.triggers(BUSINESS)) + more
        wait_until(partial(_stored_or_ended, sandbox, stored, proc), f"{stored} creates")
        proc.kill()
        proc.communicate()
        # The creates it had in flight land (the server finishes them without a client) before
        # a person reads the listing.
        wait_until(lambda: sandbox.open_connections() == 0, "the killed run's creates to land")
        settled += settle_like_a_person(run_pfsync, repo, sandbox)
    final = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert final.code == 0, final
    assert_exactly_once(repo, sandbox, count)
    again = run_pfsync("plan", "--detailed-exitcode", cwd=repo, env={"PFSYNC_API_URL": sandbox.url})
    assert again.code == 0, again


def _stored_or_ended(sandbox: Sandbox, stored: int, proc: subprocess.Popen[str]) -> bool:
    return proc.poll() is not None or len(sandbox.triggers(BUSINESS)) >= stored


def _interrupt_test(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path, signum: int, code: int
) -> None:
    sandbox = make_sandbox(latency_ms=200)
    repo = make_repo(tmp_path, 30)
    proc = start_apply(repo, sandbox, "--new-lockfile", "--parallelism", "2")
    seen = wait_for_line(proc, ": created ")
    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=30)
    err = "".join(seen) + err
    assert proc.returncode == code, err
    assert "Interrupted: nothing new was started; every outcome is recorded." in err
    assert not (repo / "pfsync.lock.journal").exists()
    # In-flight requests finished within the grace period, so nothing is uncertain.
    assert_exactly_once(repo, sandbox, len(sandbox.triggers(BUSINESS)))
    assert len(sandbox.triggers(BUSINESS)) < 30
    # The rest in one wave (each create takes 200 ms): what is proved is that each is created once.
    rest = run_pfsync(
        "apply", "--auto-approve", "--parallelism", "32", cwd=repo, env=sandbox.environment()
    )
    assert rest.code == 0, rest
    assert_exactly_once(repo, sandbox, 30)


def test_sigterm_stops_cleanly_and_records_everything(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    _interrupt_test(run_pfsync, make_sandbox, tmp_path, signal.SIGTERM, 143)


def test_sigint_stops_cleanly_and_records_everything(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    _interrupt_test(run_pfsync, make_sandbox, tmp_path, signal.SIGINT, 130)


def test_two_applies_racing(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, make_gate: MakeGate, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 8)
    gate = make_gate(sandbox, 1)  # the first run's second create is held: it is mid-run
    first = start_apply(repo, sandbox, "--new-lockfile", "--parallelism", "1")
    gate.wait_for(1)
    second = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert second.code == 1, second
    assert "pid" in second.err and "since" in second.err
    # A third waits for the lock (the first still holds it), then finds nothing left to send.
    waited = start_apply(repo, sandbox, "--lock-timeout", "60")
    gate.release(1)
    first.communicate(timeout=60)
    assert first.returncode == 0
    waited.communicate(timeout=60)
    assert waited.returncode == 0
    assert_exactly_once(repo, sandbox, 8)


def test_saved_plan_applies_exactly_and_refuses_when_stale(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 2)
    init = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=sandbox.environment()
    )
    assert init.code == 0, init
    (repo / "triggers" / "t002.yaml").write_text(manifest_text("t002"))
    saved = run_pfsync("plan", "--out", "plan.json", cwd=repo, env=sandbox.environment())
    assert saved.code == 0, saved
    # A manifest changed after the plan was saved: refused, nothing sent.
    (repo / "triggers" / "t002.yaml").write_text(manifest_text("t002", "Changed"))
    stale = run_pfsync("apply", "plan.json", cwd=repo, env=sandbox.environment())
    assert stale.code == 1, stale
    assert "is stale: the manifest of biz_e2e/t002 changed" in stale.err
    assert len(sandbox.triggers(BUSINESS)) == 2
    (repo / "triggers" / "t002.yaml").write_text(manifest_text("t002"))
    exact = run_pfsync("apply", "plan.json", cwd=repo, env=sandbox.environment())
    assert exact.code == 0, exact
    assert len(sandbox.triggers(BUSINESS)) == 3
    # The lockfile changed since (serial moved on): the same plan is now stale.
    again = run_pfsync("apply", "plan.json", cwd=repo, env=sandbox.environment())
    assert again.code == 1
    assert "is stale: the lockfile changed since it was saved" in again.err
    assert len(sandbox.triggers(BUSINESS)) == 3


def test_sandbox_mode_never_touches_the_real_lockfile(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, 3)
    plan = run_pfsync("plan", "--sandbox", "--detailed-exitcode", cwd=repo)
    assert plan.code == 2, plan
    applied = run_pfsync("apply", "--sandbox", "--auto-approve", cwd=repo)
    assert applied.code == 0, applied
    assert "Apply: 3 created" in applied.err
    again = run_pfsync("plan", "--sandbox", "--detailed-exitcode", cwd=repo)
    assert again.code == 0, again
    assert not (repo / "pfsync.lock").exists()
    data: Any = json.loads((repo / ".pfsync" / "pfsync.lock").read_text())
    assert len(data["triggers"]) == 3
