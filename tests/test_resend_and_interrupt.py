"""Two holes in apply's promise, reproduced first: a failed re-send must not forget, and an
interrupted run must report its abandoned in-flight creates as uncertain, like the next plan does.

The installed `pfsync` runs against the sandbox over loopback; the unit tests drive the applier
directly for the failures a sandbox cannot script quickly (connection refused, a stop before the
request left).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from apply_helpers import (
    BUSINESS,
    lock_pending,
    make_repo,
    plan_of_creates,
    posts,
    start_apply,
    wait_for_line,
)
from conftest import RunPfsync, normalise
from fixtures_background import wait_until
from fixtures_sandbox import MakeSandbox, trigger_body
from pfsync.apply.applier import Applier, ApplyItem, RetryPolicy
from pfsync.apply.client import PocketflowsClient, Timeouts
from pfsync.apply.run import interrupt_notice
from pfsync.models import DesiredTrigger
from pfsync.sandbox import Sandbox
from pfsync.state.journal import Journal, settle_journal
from pfsync.state.lockfile import Lockfile, save_lockfile
from pfsync.support.canonical import body_digest

ADDRESS = f"{BUSINESS}/t000"
KEY = "0f8fad5b-d9cb-469f-a165-70867728950e"
FAST = RetryPolicy(max_attempts=3, max_total_seconds=5, base_seconds=0.01, cap_seconds=0.02)


def plan_actions(run_pfsync: RunPfsync, repo: Path, sandbox: Sandbox) -> dict[str, str]:
    plan = run_pfsync("plan", "--format", "json", cwd=repo, env={"PFSYNC_API_URL": sandbox.url})
    assert plan.code == 0, plan
    return {e["address"]: e["action"] for e in json.loads(plan.out)["entries"]}


def make_uncertain(run_pfsync: RunPfsync, sandbox: Sandbox, repo: Path) -> str:
    """Apply one manifest whose response is lost; returns its Idempotency-Key."""
    sandbox.script("lose-response")
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=sandbox.environment()
    )
    assert run.code == 3, run
    key: str = lock_pending(repo)[ADDRESS]["idempotency_key"]
    return key


@pytest.mark.parametrize(
    ("outcome", "code"),
    # 401/403 stop the run (exit 1); any other refusal leaves a person to settle it (exit 3).
    [("401", 1), ("403", 1), ("422", 3), ("400", 3)],
)
def test_a_failed_resend_stays_uncertain(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path, outcome: str, code: int
) -> None:
    sandbox = make_sandbox(idempotency_keys=True)
    repo = make_repo(tmp_path, 1)
    key = make_uncertain(run_pfsync, sandbox, repo)
    sandbox.script(outcome)
    retry = run_pfsync(
        "apply", "--auto-approve", "--retry-uncertain", cwd=repo, env=sandbox.environment()
    )
    assert retry.code == code, retry
    assert f"{ADDRESS}: uncertain: the re-send failed" in retry.err, retry
    assert "the first attempt's outcome is still unknown" in retry.err
    assert "1 uncertain. Needs a person: 0 update, 0 delete, 1 uncertain." in retry.err
    # Still pending with the original key: the next plan says uncertain, never create.
    assert lock_pending(repo)[ADDRESS]["idempotency_key"] == key
    assert plan_actions(run_pfsync, repo, sandbox) == {ADDRESS: "uncertain"}
    sent = len(posts(sandbox))
    plain = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert plain.code == 3, plain
    assert len(posts(sandbox)) == sent  # a plain apply never re-sends it
    assert len(sandbox.triggers(BUSINESS)) == 1


def test_a_resend_refused_with_a_rotated_password_stays_uncertain(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 1)
    make_uncertain(run_pfsync, sandbox, repo)
    env = {**sandbox.environment(), "PFSYNC_PASSWORD": "rotated"}
    retry = run_pfsync("apply", "--auto-approve", "--retry-uncertain", cwd=repo, env=env)
    assert retry.code == 1, retry
    assert "Error: the API refused the credentials" in retry.err
    assert "rotated" not in retry.out + retry.err
    assert plan_actions(run_pfsync, repo, sandbox) == {ADDRESS: "uncertain"}


def _resend_item(lockfile_path: Path, url: str) -> tuple[ApplyItem, Lockfile]:
    spec = trigger_body("Trigger t000")
    item = ApplyItem(
        DesiredTrigger.at_address(ADDRESS, spec, body_digest(spec), 0, "t000.yaml"), KEY
    )
    lockfile = save_lockfile(lockfile_path, None, Lockfile.new(url))
    # The first attempt's pending record, as a lost response leaves it.
    journal_path = lockfile_path.with_name("pfsync.lock.journal")
    with Journal.open(journal_path, lockfile) as journal:
        from pfsync.state.journal_records import Pending

        journal.append(Pending(item.trigger, KEY))
    settled = settle_journal(journal_path, lockfile_path, lockfile)
    assert settled is not None and ADDRESS in settled.pending
    return item, settled


def _run_resend(tmp_path: Path, url: str, stop_first: bool) -> tuple[str, str, Lockfile]:
    lockfile_path = tmp_path / "pfsync.lock"
    item, lockfile = _resend_item(lockfile_path, url)
    journal_path = tmp_path / "pfsync.lock.journal"
    with (
        Journal.open(journal_path, lockfile) as journal,
        PocketflowsClient(url, "u", "p", timeouts=Timeouts(0.5, 0.5, 1)) as client,
    ):
        applier = Applier(client, journal, policy=FAST)
        if stop_first:
            applier.request_stop("interrupt")
        applier.run([item])
    [result] = applier.report([item]).results
    folded = settle_journal(journal_path, lockfile_path, lockfile)
    assert folded is not None
    return result.kind, result.message, folded


def test_a_resend_that_cannot_connect_stays_uncertain(tmp_path: Path) -> None:
    # Port 9 on loopback: nothing listens, so every attempt is refused and retries run out.
    kind, message, folded = _run_resend(tmp_path, "http://127.0.0.1:9", stop_first=False)
    assert kind == "uncertain"
    assert message.startswith("the re-send failed (gave up after 3 attempts")
    assert folded.pending[ADDRESS].idempotency_key == KEY
    assert "the re-send failed" in folded.pending[ADDRESS].reason


def test_a_resend_stopped_before_sending_stays_uncertain(tmp_path: Path) -> None:
    kind, message, folded = _run_resend(tmp_path, "http://127.0.0.1:9", stop_first=True)
    assert kind == "uncertain"
    assert "not re-sent" in message
    assert folded.pending[ADDRESS].idempotency_key == KEY


def _wait_for_stored(sandbox: Sandbox, count: int) -> None:
    """Until `count` slow creates are stored (a slow answer is logged only once it is sent)."""
    wait_until(lambda: len(sandbox.triggers(BUSINESS)) >= count, f"{count} creates stored")


# The requests held in flight (60 s) outlast any wait: a short one ends the runs sooner, and the
# default wait is checked in the notice's own test below.
INTERRUPT_WAIT = ("--interrupt-wait", "0.5")
# What the first signal prints at once, before the wait for the requests in flight.
NOTICE = (
    "Interrupted: sending no new creates; waiting up to 0.5 s for the 2 in flight, to record "
    "their outcomes."
)
NOTICE_CTRL_C = (
    " Ctrl-C again stops waiting: those still in flight then stay uncertain, to be settled by hand."
)


@pytest.mark.parametrize(
    ("signum", "code", "notice"),
    [(signal.SIGTERM, 143, NOTICE), (signal.SIGINT, 130, NOTICE + NOTICE_CTRL_C)],
)
def test_abandoned_in_flight_creates_are_reported_uncertain(
    run_pfsync: RunPfsync,
    make_sandbox: MakeSandbox,
    tmp_path: Path,
    signum: int,
    code: int,
    notice: str,
) -> None:
    """The first signal says at once what happens and (for Ctrl-C) what a second one does:
    its line comes before the outcomes of the creates it waits for, not with the summary."""
    sandbox = make_sandbox(slow_seconds=60)
    repo = make_repo(tmp_path, 5)
    sandbox.script("slow", "slow")
    proc = start_apply(repo, sandbox, "--new-lockfile", "--parallelism", "2", *INTERRUPT_WAIT)
    _wait_for_stored(sandbox, 2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    t0, t1 = f"{BUSINESS}/t000", f"{BUSINESS}/t001"
    assert (proc.returncode, normalise(out, URL=sandbox.url), err) == (
        code,
        plan_of_creates([f"t{n:03d}" for n in range(5)]),
        f"{notice}\n"
        f"{t0}: uncertain: still in flight when the run stopped waiting — look for it in "
        "Pocketflows, then declare an Import (found) or a NotCreated (not found), as "
        f"`pfsync plan` prints them, or run `pfsync state import {t0} ID` or "
        f"`pfsync state rm {t0}`\n"
        f"{t1}: uncertain: still in flight when the run stopped waiting — look for it in "
        "Pocketflows, then declare an Import (found) or a NotCreated (not found), as "
        f"`pfsync plan` prints them, or run `pfsync state import {t1} ID` or "
        f"`pfsync state rm {t1}`\n"
        "Interrupted: nothing new was started; 2 create(s) still in flight are uncertain.\n"
        "Apply: 0 created, 0 failed, 2 uncertain, 3 not sent. "
        "Needs a person: 0 update, 0 delete, 2 uncertain.\n",
    )
    actions = plan_actions(run_pfsync, repo, sandbox)
    assert sorted(a for a, action in actions.items() if action == "uncertain") == [t0, t1]
    assert sorted(a for a, action in actions.items() if action == "create") == [
        f"{BUSINESS}/t00{n}" for n in (2, 3, 4)
    ]


def test_a_second_sigint_stops_waiting_at_once(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(slow_seconds=60)
    repo = make_repo(tmp_path, 3)
    sandbox.script("slow")
    proc = start_apply(repo, sandbox, "--new-lockfile", "--parallelism", "1")
    _wait_for_stored(sandbox, 1)
    proc.send_signal(signal.SIGINT)
    seen = wait_for_line(proc, "Ctrl-C again stops waiting")  # as a person reads it
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    t0 = f"{BUSINESS}/t000"
    assert (proc.returncode, "".join(seen) + err) == (
        130,
        "Interrupted: sending no new creates; waiting up to 5 s for the 1 in flight, to record "
        f"its outcome.{NOTICE_CTRL_C}\n"
        f"{t0}: uncertain: still in flight when the run stopped waiting — look for it in "
        "Pocketflows, then declare an Import (found) or a NotCreated (not found), as "
        f"`pfsync plan` prints them, or run `pfsync state import {t0} ID` or "
        f"`pfsync state rm {t0}`\n"
        "Second interrupt: stopped waiting for the requests in flight.\n"
        "Interrupted: nothing new was started; 1 create(s) still in flight are uncertain.\n"
        "Apply: 0 created, 0 failed, 1 uncertain, 2 not sent. "
        "Needs a person: 0 update, 0 delete, 1 uncertain.\n",
    )
    assert plan_actions(run_pfsync, repo, sandbox)[t0] == "uncertain"


@pytest.mark.parametrize(
    ("signum", "in_flight", "waiting", "notice"),
    [
        (signal.SIGINT, 3, True, "Interrupted: sending no new creates; waiting up to 5 s for the "
         f"3 in flight, to record their outcomes.{NOTICE_CTRL_C}"),
        (signal.SIGTERM, 1, True, "Interrupted: sending no new creates; waiting up to 5 s for the "
         "1 in flight, to record its outcome."),
        (signal.SIGINT, 0, True, "Interrupted: sending no new creates; recording the outcomes."),
        # The wait is over (the journal is being folded): nothing more is waited for.
        (signal.SIGINT, 2, False, "Interrupted: sending no new creates; recording the outcomes."),
    ],
)  # fmt: skip
def test_the_first_signal_says_what_it_waits_for(
    signum: int, in_flight: int, waiting: bool, notice: str
) -> None:
    assert interrupt_notice(signum, in_flight, waiting) == notice


def test_the_interrupt_wait_defaults_to_the_appliers_grace() -> None:
    from pfsync.apply.applier import INTERRUPT_GRACE_SECONDS
    from pfsync.cli.apply import apply

    [option] = [p for p in apply.params if p.name == "interrupt_wait"]
    assert option.default == INTERRUPT_GRACE_SECONDS
    assert interrupt_notice(signal.SIGTERM, 1, True, 0.5) == (
        "Interrupted: sending no new creates; waiting up to 0.5 s for the 1 in flight, to record "
        "its outcome."
    )


# A stop signal runs its handler on the main thread, between two of its steps: when that thread
# holds the applier's lock at that moment (reporting, counting the requests in flight), a
# handler that takes the same lock again must not wait for ever.
_SIGNAL_WHILE_LOCKED = """
import os, signal
from pfsync.apply.applier import Applier
from pfsync.apply.run import _signals_stop

applier = Applier(client=None, journal=None)  # type: ignore[arg-type]
received = []
with _signals_stop(applier, received, lambda line: None):
    with applier._lock:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs at one of these steps
            pass
print(received == [signal.SIGINT], applier.stop.is_set())
"""


def test_a_stop_signal_while_the_main_thread_holds_the_applier_lock_does_not_hang() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_WHILE_LOCKED],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "True True\n", "")
