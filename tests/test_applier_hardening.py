"""Applier regressions found while hardening: a hostile Retry-After, a client that raises.

Both used to end a worker thread or stall the whole run; each address must instead end with an
outcome in the journal and the report.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fixtures_sandbox import trigger_body
from pfsync.apply.applier import Applier, ApplyItem, RetryPolicy
from pfsync.apply.client import MAX_RETRY_AFTER_SECONDS, Attempt
from pfsync.models import DesiredTrigger
from pfsync.state.journal import Journal, read_journal
from pfsync.state.journal_records import Pending, Uncertain
from pfsync.state.lockfile import Lockfile, save_lockfile
from pfsync.support.canonical import body_digest

POLICY = RetryPolicy(max_attempts=4, max_total_seconds=60, base_seconds=0.01, cap_seconds=0.05)


def item(n: int) -> ApplyItem:
    spec = trigger_body(f"Trigger {n}")
    return ApplyItem(DesiredTrigger("biz_1", f"t{n}", spec, body_digest(spec), 0, f"t{n}.yaml"))


class ScriptedClient:
    """Answers by trigger name: `answers[name]` is an Attempt or an exception to raise."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def create_trigger(self, business: str, body: dict[str, Any], idempotency_key: str) -> Attempt:
        with self.lock:
            self.calls.append(body["name"])
        answer = self.answers.get(body["name"], Attempt("created", 200, trigger_id="trg_x"))
        if isinstance(answer, BaseException):
            raise answer
        return Attempt(**answer.__dict__)


def run(tmp_path: Path, client: ScriptedClient, items: list[ApplyItem]) -> Applier:
    lockfile = save_lockfile(tmp_path / "pfsync.lock", None, Lockfile.new("https://x.test"))
    with Journal.open(tmp_path / "pfsync.lock.journal", lockfile) as journal:
        applier = Applier(client, journal, parallelism=2, policy=POLICY)
        runner = threading.Thread(target=applier.run, args=(items,), daemon=True)
        runner.start()
        runner.join(30)  # a hang guard, not a timing assertion
        stalled = runner.is_alive()
        applier.request_stop("interrupt")  # frees a stalled run so the test can end
        runner.join(5)
    assert not stalled, "the run stalled"
    return applier


def test_regression_retry_after_beyond_the_budget_holds_nobody_back(tmp_path: Path) -> None:
    # Was: the 429's Retry-After (here the clamp, ~4 months) was imposed on every worker before
    # this one gave up, so the rest of the run waited that long.
    far = Attempt("retryable", 429, "slow down", retry_after=float(MAX_RETRY_AFTER_SECONDS))
    client = ScriptedClient({"Trigger 0": far})
    items = [item(n) for n in range(6)]
    applier = run(tmp_path, client, items)
    report = applier.report(items)
    kinds = {r.address: r.kind for r in report.results}
    assert kinds == {"biz_1/t0": "failed", **{f"biz_1/t{n}": "created" for n in range(1, 6)}}
    [failed] = report.of_kind("failed")
    assert failed.message == "HTTP 429: gave up after 1 attempts (slow down)"
    assert client.calls.count("Trigger 0") == 1


def test_regression_a_client_exception_is_uncertain_not_a_dead_worker(tmp_path: Path) -> None:
    # Was: the exception ended the worker thread (a traceback on stderr); its address, pending in
    # the journal, was reported "not sent" and the worker's remaining items were never sent.
    client = ScriptedClient({"Trigger 1": RuntimeError("boom")})
    items = [item(n) for n in range(4)]
    applier = run(tmp_path, client, items)
    report = applier.report(items)
    [uncertain] = report.of_kind("uncertain")
    assert uncertain.address == "biz_1/t1"
    assert uncertain.message == "unexpected error: RuntimeError: boom"
    assert len(report.of_kind("created")) == 3
    contents = read_journal(tmp_path / "pfsync.lock.journal")
    assert contents is not None
    events = [e for e in contents.events if e.address == "biz_1/t1"]
    assert [type(e) for e in events] == [Pending, Uncertain]


class OutcomeFailingJournal:
    """A journal whose outcome records raise an unexpected error (as a lone surrogate did)."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    def announce(self, pendings: Any) -> None:
        pass

    def append(self, record: Any) -> None:
        if not isinstance(record, Pending):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        self.records.append(record)


def test_regression_an_error_while_recording_stops_the_run_and_stays_uncertain() -> None:
    # Was: the worker thread died with a traceback; 4 POSTs went out, the report said
    # "20 not sent, 0 uncertain" while the next plan showed 4 uncertain.
    client = ScriptedClient({})
    items = [item(n) for n in range(20)]
    applier = Applier(client, OutcomeFailingJournal(), parallelism=4, policy=POLICY)
    applier.run(items)
    report = applier.report(items)
    assert report.stop_reason == "disk"
    assert report.stop_message.startswith("internal error while recording biz_1/t")
    uncertain = report.of_kind("uncertain")
    assert len(uncertain) == len(client.calls)  # every request that left is uncertain
    assert 1 <= len(client.calls) <= 4  # no worker sent another after the stop
    assert not report.of_kind("created")
    assert len(report.of_kind("not-sent")) == 20 - len(client.calls)
