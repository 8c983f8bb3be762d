"""The applier against the real sandbox over loopback: every failure class of apply, scripted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures_sandbox import MakeSandbox, trigger_body
from pfsync.apply.applier import Applier, ApplyItem, ItemResult, RetryPolicy
from pfsync.apply.client import PocketflowsClient, Timeouts
from pfsync.models import DesiredTrigger
from pfsync.sandbox import Sandbox
from pfsync.state.journal import Journal, settle_journal
from pfsync.state.lockfile import Lockfile, read_lockfile, save_lockfile
from pfsync.support.canonical import body_digest

FAST = RetryPolicy(max_attempts=4, max_total_seconds=20, base_seconds=0.01, cap_seconds=0.05)
# What these tests check of a retry is its count, its key and its outcome's class; that the
# Retry-After is honoured is apply's end-to-end test (test_apply_cli's verbose retries). So the
# sandbox names `Retry-After: 0` and the retries here go at once.
NO_RETRY_AFTER = {"retry_after_seconds": 0}


def item(n: int, business: str = "biz_t", **body: Any) -> ApplyItem:
    spec = trigger_body(f"Trigger {n}", **body)
    return ApplyItem(DesiredTrigger(business, f"t{n}", spec, body_digest(spec), 0, f"t{n}.yaml"))


def run_items(
    sandbox: Sandbox, tmp_path: Path, items: list[ApplyItem], parallelism: int = 1, **kw: Any
) -> tuple[list[ItemResult], Lockfile, Applier]:
    lockfile_path = tmp_path / "pfsync.lock"
    lockfile = read_lockfile(lockfile_path) or save_lockfile(
        lockfile_path, None, Lockfile.new(sandbox.url)
    )
    journal_path = tmp_path / "pfsync.lock.journal"
    with (
        Journal.open(journal_path, lockfile) as journal,
        PocketflowsClient(
            sandbox.url,
            kw.pop("username", sandbox.username),
            sandbox.password,
            timeouts=kw.pop("timeouts", Timeouts(2, 2, 5)),
        ) as client,
    ):
        applier = Applier(client, journal, parallelism=parallelism, policy=FAST)
        applier.run(items)
    folded = settle_journal(journal_path, lockfile_path, lockfile)
    assert folded is not None
    assert not journal_path.exists()
    return applier.report(items).results, folded, applier


def test_creates_and_records_ids(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox()
    items = [item(n) for n in range(20)]
    results, lockfile, _ = run_items(sandbox, tmp_path, items, parallelism=4)
    assert {r.kind for r in results} == {"created"}
    remote = {t["id"] for t in sandbox.triggers("biz_t")}
    assert {lockfile.triggers[i.address].id for i in items} == remote
    assert len(remote) == 20
    assert lockfile.pending == {}
    keys = [r["idempotency_key"] for r in sandbox.requests() if r["method"] == "POST"]
    assert len(set(keys)) == 20


@pytest.mark.parametrize(
    ("script", "kind", "posts", "created"),
    [
        (["429", "ok"], "created", 2, 1),
        (["503-retry-after", "ok"], "created", 2, 1),
        (["drop", "ok"], "uncertain", 1, 0),
        (["503"], "uncertain", 1, 0),
        (["500"], "uncertain", 1, 0),
        (["502"], "uncertain", 1, 0),
        (["504"], "uncertain", 1, 0),
        (["409"], "uncertain", 1, 0),
        (["lose-response"], "uncertain", 1, 1),
        (["422"], "failed", 1, 0),
        (["ok-no-id"], "created", 1, 1),
    ],
)
def test_failure_classes(
    make_sandbox: MakeSandbox,
    tmp_path: Path,
    script: list[str],
    kind: str,
    posts: int,
    created: int,
) -> None:
    sandbox = make_sandbox(**NO_RETRY_AFTER)
    sandbox.script(*script)
    [result], lockfile, _ = run_items(sandbox, tmp_path, [item(1)])
    assert result.kind == kind, result
    post_requests = [r for r in sandbox.requests() if r["method"] == "POST"]
    assert len(post_requests) == posts
    assert len({r["idempotency_key"] for r in post_requests}) == 1  # retries keep their key
    assert len(sandbox.triggers()) == created
    if kind == "uncertain":
        assert list(lockfile.pending) == ["biz_t/t1"]
        assert "biz_t/t1" not in lockfile.triggers
    elif kind == "failed":
        assert lockfile.pending == {} and lockfile.triggers == {}
        assert result.http_status == 422 and "HTTP 422" in result.message
    else:
        record = lockfile.triggers["biz_t/t1"]
        assert record.id == (None if script == ["ok-no-id"] else sandbox.triggers()[0]["id"])


def test_drop_is_uncertain_even_though_nothing_was_stored(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    # A connection closed after the request was sent cannot be told apart from a lost response.
    sandbox = make_sandbox()
    sandbox.script("drop")
    [result], _, _ = run_items(sandbox, tmp_path, [item(1)])
    assert result.kind == "uncertain"


def test_read_timeout_is_uncertain(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(slow_seconds=3)
    sandbox.script("slow")
    [result], lockfile, _ = run_items(sandbox, tmp_path, [item(1)], timeouts=Timeouts(1, 0.1, 1))
    assert result.kind == "uncertain"
    assert "no response in time" in result.message
    assert list(lockfile.pending) == ["biz_t/t1"]


def test_auth_failure_stops_the_run(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox()
    items = [item(n) for n in range(5)]
    results, lockfile, applier = run_items(sandbox, tmp_path, items, username="wrong")
    assert applier.report(items).stop_reason == "auth"
    assert [r.kind for r in results] == ["failed"] + ["not-sent"] * 4
    assert len([r for r in sandbox.requests() if r["method"] == "POST"]) == 1
    assert lockfile.pending == {} and lockfile.triggers == {}


def test_429_exhausted_is_failed_not_pending(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(**NO_RETRY_AFTER)
    sandbox.script("429", "429", "429", "429")
    [result], lockfile, _ = run_items(sandbox, tmp_path, [item(1)])
    assert result.kind == "failed"
    assert result.message.startswith("HTTP 429: gave up after 4 attempts (")
    assert lockfile.pending == {}
