"""The apply protocol over a remote store, against an in-memory compare-and-swap store.

The invariant under test: a create is sent only after its pending record is in the store; a
failed store write stops sending; a store that moved on gets the run's outcomes merged by address,
never overwritten. The git store itself is tested end to end in test_git_store.py.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fixtures_sandbox import trigger_body
from pfsync.apply.applier import Applier, ApplyItem
from pfsync.apply.client import Attempt
from pfsync.config import Config, StateConfig
from pfsync.errors import LockHeldError, StoreConflict, StoreError
from pfsync.models import DesiredTrigger
from pfsync.state.changes import merge_run
from pfsync.state.journal_records import Created, Failed, Pending, Uncertain
from pfsync.state.lockfile import Lockfile
from pfsync.state.stores import Snapshot, session
from pfsync.state.stores.lock_records import new_lock
from pfsync.state.stores.session import remote_state
from pfsync.state.trigger_records import TriggerRecord
from pfsync.support.canonical import body_digest
from pfsync.support.invocation import BARE

API = "https://api.example.test"
BUSINESS = "biz_s"


class MemoryStore:
    """A compare-and-swap store in memory; `fail_at` makes that write (1-based) fail."""

    description = "memory"

    def __init__(self, lockfile: Lockfile | None = None) -> None:
        self.lockfile = lockfile
        self.version = 0
        self.writes: list[Lockfile] = []
        self.fail_at: int | None = None
        self.keep_failing = False  # else only that one write fails
        self.after_write: Any = None  # called with the write number after a write
        self._lock = threading.Lock()

    def read(self, *, strict: bool = True) -> Snapshot:
        with self._lock:
            return Snapshot(self.lockfile, str(self.version))

    def write(self, lockfile: Lockfile, expected: Snapshot, message: str) -> Snapshot:
        with self._lock:
            if self.fail_at == len(self.writes) + 1:
                if not self.keep_failing:
                    self.fail_at = None
                raise StoreError("the store is unreachable")
            if expected.version != str(self.version):
                raise StoreConflict("the lockfile changed underneath")
            self.lockfile = lockfile
            self.version += 1
            self.writes.append(lockfile)
            written = Snapshot(lockfile, str(self.version))
        if self.after_write is not None:
            self.after_write(len(self.writes))
        return written

    def require_tip_checkout(self, snapshot: Snapshot) -> None:
        """No checkout to check."""

    def outside_write(self, lockfile: Lockfile) -> None:
        """Another writer (a person's `state unlock`, say) changes the store."""
        with self._lock:
            self.lockfile = replace(lockfile, serial=lockfile.serial + 1)
            self.version += 1


class StoreCheckingClient:
    """A client whose every create asserts its pending record is already in the store."""

    def __init__(self, store: MemoryStore, fail: set[str] | None = None) -> None:
        self.store = store
        self.sent: list[str] = []
        self.fail = fail or set()
        self._lock = threading.Lock()

    def create_trigger(self, business: str, body: dict[str, Any], idempotency_key: str) -> Attempt:
        address = f"{business}/{body['name']}"
        stored = self.store.lockfile
        assert stored is not None and address in stored.pending, f"{address} sent before intent"
        assert stored.pending[address].idempotency_key == idempotency_key
        with self._lock:
            self.sent.append(address)
        if address in self.fail:
            return Attempt("failed", 422, "invalid")
        return Attempt("created", 200, "", f"trg_{body['name']}", "2026-01-01T00:00:00Z", "draft")


def config(tmp_path: Path, batch: int = 2) -> Config:
    return Config(
        path=None,
        root=tmp_path,
        business=BUSINESS,
        api_url=API,
        manifests=(),
        lockfile=tmp_path / "pfsync.lock",
        state=StateConfig(store="git", intent_batch=batch),
    )


def items(count: int) -> list[ApplyItem]:
    result = []
    for n in range(count):
        body = trigger_body(f"t{n}")
        result.append(ApplyItem(DesiredTrigger(BUSINESS, f"t{n}", body, body_digest(body), 0, "f")))
    return result


def run(
    store: MemoryStore, cfg: Config, to_send: list[ApplyItem], client: StoreCheckingClient
) -> tuple[Applier, Lockfile | None, list[str]]:
    warnings: list[str] = []
    with remote_state(cfg, store, warn=warnings.append) as state:
        journal = state.start_journal()
        applier = Applier(client, journal, parallelism=3)
        applier.run(to_send)
        try:
            final: Lockfile | None = state.finish_journal()
        except StoreError as exc:
            warnings.append(str(exc))
            final = None
    return applier, final, warnings


def test_every_create_is_sent_after_its_pending_record_is_stored(tmp_path: Path) -> None:
    store = MemoryStore()
    client = StoreCheckingClient(store, fail={f"{BUSINESS}/t3"})
    _applier, final, warnings = run(store, config(tmp_path), items(9), client)
    assert warnings == []
    assert sorted(client.sent) == sorted(i.address for i in items(9))
    assert final is not None and final.lock is None and final.pending == {}
    assert sorted(final.triggers) == sorted(
        i.address for i in items(9) if i.address != f"{BUSINESS}/t3"
    )
    # lock, 5 batches of 2 (pipelined, outcomes riding along), final: far fewer than 9 creates
    # would need, and the lock is held in every write but the last.
    assert all(w.lock is not None for w in store.writes[:-1])
    assert len(store.writes) <= 1 + 5 + 1
    assert [w.serial for w in store.writes] == list(range(1, len(store.writes) + 1))


def test_a_failed_store_write_stops_sending_and_leaves_pending_uncertain(tmp_path: Path) -> None:
    store = MemoryStore()
    store.fail_at = 3  # the lock and the first batch are stored; the second batch is not
    client = StoreCheckingClient(store)
    applier, final, _warnings = run(store, config(tmp_path), items(9), client)
    report = applier.report(items(9))
    assert report.stop_reason == "disk"
    assert "the store is unreachable" in report.stop_message
    # Only what was durable was sent: the first batch (and a second one if it was stored).
    assert set(client.sent) <= {f"{BUSINESS}/t{n}" for n in range(2)}
    assert final is not None  # the final write merged the outcomes (the store works again)
    assert set(final.triggers) == set(client.sent)
    assert final.lock is None


def test_a_store_that_moved_on_gets_the_outcomes_merged_by_address(tmp_path: Path) -> None:
    imported = TriggerRecord("trg_hand", "imported", None, None, 0, {}, body_digest({}), "x.yaml")
    store = MemoryStore()

    def person_unlocks_and_imports(number: int) -> None:
        if number == 2:  # after the first batch: the lock is removed, another address imported
            current = store.lockfile
            assert current is not None
            triggers = {**current.triggers, f"{BUSINESS}/other": imported}
            store.outside_write(replace(current, lock=None, triggers=triggers))

    store.after_write = person_unlocks_and_imports
    client = StoreCheckingClient(store)
    applier, final, warnings = run(store, config(tmp_path), items(9), client)
    assert applier.report(items(9)).stop_reason == "disk"
    assert any("changed underneath" in w for w in warnings)
    assert final is not None
    assert final.triggers[f"{BUSINESS}/other"] == imported  # never overwritten
    assert set(client.sent) <= set(final.triggers)  # every create that was sent is recorded
    assert final.pending == {}
    assert final.lock is None


def test_a_held_lock_names_its_holder(tmp_path: Path) -> None:
    holder = new_lock("apply")
    store = MemoryStore(replace(Lockfile.new(API), serial=1, lock=holder))
    with pytest.raises(LockHeldError) as caught, remote_state(config(tmp_path), store):
        pass
    assert f"pfsync state unlock {holder.id}" in str(caught.value)
    assert f"pid {holder.pid}" in str(caught.value)
    assert store.writes == []


class FakeClock:
    """Stands in for the `time` module of a lock wait: `sleep` records and advances at once."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


class ReleasedAfterReads(MemoryStore):
    """A store whose lock another run holds until this many reads have seen it."""

    def __init__(self, lockfile: Lockfile, held_for: int) -> None:
        super().__init__(lockfile)
        self.held_for = held_for
        self.reads = 0

    def read(self, *, strict: bool = True) -> Snapshot:
        self.reads += 1
        if self.reads > self.held_for and self.lockfile is not None:
            self.outside_write(replace(self.lockfile, lock=None))  # the holder finished
        return super().read(strict=strict)


def test_a_waiting_run_looks_again_soon_then_ever_less_often(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each look is a git fetch or an S3 GET: it comes soon after a short holder ends, yet a long
    # wait costs a look every 2 s at most.
    clock = FakeClock()
    monkeypatch.setattr(session, "time", clock)
    held = replace(Lockfile.new(API), serial=1, lock=new_lock("apply"))

    store = ReleasedAfterReads(held, held_for=7)
    with remote_state(config(tmp_path), store, lock_timeout=60) as state:
        assert state.lock is not None  # taken once the holder released it
    assert clock.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]

    clock = FakeClock()
    monkeypatch.setattr(session, "time", clock)
    never_released = MemoryStore(held)
    with (
        pytest.raises(LockHeldError),
        remote_state(config(tmp_path), never_released, lock_timeout=2),
    ):
        pass
    assert clock.sleeps == [0.1, 0.2, 0.4, 0.8, 0.5]  # the last look at the deadline, not after
    assert never_released.writes == []


def test_nothing_to_send_takes_no_lock(tmp_path: Path) -> None:
    store = MemoryStore(replace(Lockfile.new(API), serial=1))
    with remote_state(config(tmp_path), store, needs_lock=lambda lockfile: False) as state:
        assert state.lock is None
    assert store.writes == []


def _pending(address: str, key: str) -> Pending:
    body = trigger_body(address)
    return Pending(DesiredTrigger.at_address(address, body, body_digest(body), 0, "f"), key)


def test_merge_run_rules() -> None:
    keys = {n: f"0f8fad5b-d9cb-469f-a165-7086772895{n:02d}" for n in range(6)}
    a = {n: f"{BUSINESS}/a{n}" for n in range(6)}
    ours = [_pending(a[n], keys[n]) for n in range(6)]
    base = Lockfile.new(API)
    from pfsync.state.journal import fold

    # The newer lockfile holds a0..a3 pending with our keys; a4 was settled by a person with
    # another trigger; a5's pending is gone (state rm) although this run created it.
    newer = fold(base, ours[:4])
    other = TriggerRecord("trg_person", "imported", None, None, 0, {}, body_digest({}), "f")
    lock = new_lock("apply")
    newer = replace(newer, triggers={a[4]: other}, lock=lock)
    events: list[Pending | Created | Failed | Uncertain] = [
        *ours,
        Created(a[0], keys[0], "trg_0", None, "draft"),
        Failed(a[1], keys[1], "invalid", 422),
        Uncertain(a[2], keys[2], "connection lost"),
        Created(a[4], keys[4], "trg_4", None, "draft"),
        Created(a[5], keys[5], "trg_5", None, "draft"),
    ]
    merged = merge_run(newer, events, lock.id)
    result = merged.lockfile
    assert result.triggers[a[0]].id == "trg_0"
    assert a[1] not in result.pending and a[1] not in result.triggers
    assert result.pending[a[2]].reason == "connection lost"
    assert result.pending[a[3]].idempotency_key == keys[3]  # in flight: stays uncertain
    kept = result.triggers[a[4]]
    assert (kept.id, kept.origin, kept.body) == (other.id, other.origin, other.body)  # never
    assert [e.id for e in kept.history] == ["trg_4"]  # overwritten, and our id is not lost…
    assert any("trg_4" in w and "trg_person" in w for w in merged.warnings)  # …but said loudly
    assert result.triggers[a[5]].id == "trg_5"  # it exists: recorded again
    assert result.lock is None  # our lock released
    someone_else = new_lock("apply")
    theirs = merge_run(replace(newer, lock=someone_else), events, lock.id).lockfile
    assert theirs.lock == someone_else


def test_a_store_that_stays_unreachable_keeps_the_lock_and_says_how_to_free_it(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    store.fail_at, store.keep_failing = 3, True
    client = StoreCheckingClient(store)
    _applier, final, warnings = run(store, config(tmp_path), items(9), client)
    assert final is None
    assert warnings[0] == "the store is unreachable"
    assert warnings[1].startswith("Error: the state lock ")
    lock = store.writes[0].lock
    assert lock is not None
    assert warnings[1].endswith(f"run `pfsync state unlock {lock.id}`")
    # What was sent is pending in the store: uncertain for the next run, never `create`.
    stored = store.lockfile
    assert stored is not None and set(client.sent) <= set(stored.pending)


# Regressions found by review (each failed before its fix).


def someone_deletes_the_lockfile(store: MemoryStore, after: int) -> Any:
    """An `after_write` that deletes the store's lockfile after the run's write number `after`."""

    def delete(number: int) -> None:
        if number == after:
            with store._lock:
                store.lockfile, store.version = None, store.version + 1

    return delete


def test_a_lockfile_removed_during_the_run_is_never_replaced_by_a_new_one(tmp_path: Path) -> None:
    store = MemoryStore()
    store.after_write = someone_deletes_the_lockfile(store, after=2)
    client = StoreCheckingClient(store)
    _applier, final, warnings = run(store, config(tmp_path), items(9), client)
    assert final is None
    assert store.lockfile is None  # nothing written: the next apply refuses, it does not re-create
    assert any("holds no lockfile any more since this run started" in w for w in warnings)


@pytest.mark.parametrize(
    ("state", "advice"),
    [
        (
            StateConfig(store="s3", bucket="acme-pfsync-state", key="production/pfsync.lock"),
            "Restore an earlier version of s3://acme-pfsync-state/production/pfsync.lock (a "
            "bucket with versioning on keeps them)",
        ),
        (  # not a git repository here: the advice without the branch's log
            StateConfig(store="git"),
            "Restore it on the state branch from the commit before it was removed",
        ),
    ],
)
def test_a_lockfile_lost_during_the_run_is_restored_where_its_store_keeps_it(
    tmp_path: Path, state: StateConfig, advice: str
) -> None:
    store = MemoryStore()
    store.after_write = someone_deletes_the_lockfile(store, after=2)
    cfg = replace(config(tmp_path), state=replace(state, intent_batch=2))
    _applier, final, warnings = run(store, cfg, items(9), StoreCheckingClient(store))
    assert final is None
    assert [w for w in warnings if " holds no lockfile " in w] == [
        "memory holds no lockfile any more since this run started; nothing was written. "
        f"{advice}, then record each of this run's creates with `pfsync state import ADDRESS ID`"
    ]


def test_an_in_flight_create_whose_pending_record_was_removed_is_pending_again() -> None:
    key = "0f8fad5b-d9cb-469f-a165-708677289500"
    pending = _pending(f"{BUSINESS}/a", key)
    newer = replace(Lockfile.new(API), serial=5)  # a person removed the pending record
    merged = merge_run(newer, [pending], None)
    assert merged.lockfile.pending[f"{BUSINESS}/a"].idempotency_key == key
    assert merged.warnings and "uncertain again" in merged.warnings[0]


def test_release_keeps_another_runs_lock(tmp_path: Path) -> None:
    from pfsync.state.stores.session import RemoteState

    ours, theirs = new_lock("apply"), new_lock("apply")
    store = MemoryStore(replace(Lockfile.new(API), serial=2, lock=theirs))
    snapshot = store.read()
    state = RemoteState(config(tmp_path), store, snapshot, ours, None, lambda line: None)
    state.release()
    assert store.lockfile is not None and store.lockfile.lock == theirs


class ExplodingStore(MemoryStore):
    """Its third write raises something that is not a StoreError (a full disk, say)."""

    def write(self, lockfile: Lockfile, expected: Snapshot, message: str) -> Snapshot:
        if len(self.writes) == 2 and self.fail_at is None:
            self.fail_at = -1
            raise OSError(28, "No space left on device")
        return super().write(lockfile, expected, message)


def test_an_unexpected_writer_error_stops_the_run_instead_of_hanging(tmp_path: Path) -> None:
    store = ExplodingStore()
    client = StoreCheckingClient(store)
    result: list[Any] = []
    runner = threading.Thread(
        target=lambda: result.append(run(store, config(tmp_path), items(9), client)), daemon=True
    )
    runner.start()
    runner.join(60)  # a hang guard, not a timing assertion
    assert not runner.is_alive(), "the run hung"
    applier, _final, _warnings = result[0]
    report = applier.report(items(9))
    assert report.stop_reason == "disk"
    assert "No space left on device" in report.stop_message


def test_push_refuses_a_copy_that_lacks_a_trigger_the_target_records(tmp_path: Path) -> None:
    from pfsync.errors import StateChangeError
    from pfsync.state.stores.file import FileStore
    from pfsync.state.stores.transfer import copy_lockfile

    body = spec_body = trigger_body("ci")
    record = TriggerRecord("trg_ci", "created", None, None, 0, body, body_digest(spec_body), "f")
    base = replace(Lockfile.new(API), serial=9)
    target = FileStore(tmp_path / "target.lock")
    target.write(replace(base, triggers={f"{BUSINESS}/ci": record}), target.read(), "seed")
    newer_fork = replace(base, serial=12)  # a higher serial, but it never saw trg_ci
    with pytest.raises(StateChangeError) as caught:
        copy_lockfile(newer_fork, target, False, "state push", BARE)
    assert "records what the copy lacks (trigger trg_ci)" in str(caught.value)
    assert copy_lockfile(newer_fork, target, True, "state push", BARE)  # --force still can


class BrokenAfterSending(MemoryStore):
    """From its third write on (the final one, after the creates), every write and read raises
    something that is not a StoreError: a bug, not a failure of the store."""

    def read(self, *, strict: bool = True) -> Snapshot:
        if len(self.writes) >= 2 and self.fail_at == -1:
            raise RuntimeError("the store broke")
        return super().read(strict=strict)

    def write(self, lockfile: Lockfile, expected: Snapshot, message: str) -> Snapshot:
        if len(self.writes) >= 2:
            self.fail_at = -1
            raise RuntimeError("the store broke")
        return super().write(lockfile, expected, message)


def test_an_unexpected_store_error_after_the_creates_still_names_them_and_summarises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever fails after creates went out, the log must keep their ids (NOT RECORDED) and the
    # summary: an exception that is not a PfsyncError still surfaces (a bug), but after them.
    from pfsync.apply.run import ApplyIO, ApplyOptions, run_apply

    store = BrokenAfterSending()
    monkeypatch.setattr("pfsync.state.stores.open_store", lambda config: store)
    lines: list[str] = []
    io = ApplyIO(
        show_plan=lambda plan, where: None, confirm=lambda items: True, progress=lines.append
    )
    to_send = items(1)
    with pytest.raises(RuntimeError, match="the store broke"):
        run_apply(
            config(tmp_path),
            [item.trigger for item in to_send],
            ApplyOptions(auto_approve=True, new_lockfile=True),
            lambda: StoreCheckingClient(store),
            io,
        )
    assert lines == [
        f"{BUSINESS}/t0: created trg_t0",
        f"NOT RECORDED: {BUSINESS}/t0 was created as trg_t0; once the disk or state store is "
        f"fixed run `pfsync state import {BUSINESS}/t0 trg_t0`",
        "Apply: 1 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, 0 uncertain.",
    ]


class LandsThenTimesOut(MemoryStore):
    """Write `fail_at` lands in the store, but its caller is told it failed: a remote store's
    write given up at `state.timeout` while its request was already on its way."""

    def write(self, lockfile: Lockfile, expected: Snapshot, message: str) -> Snapshot:
        landing = self.fail_at == len(self.writes) + 1
        if landing:
            self.fail_at = None
        written = super().write(lockfile, expected, message)
        if landing:
            raise StoreError("the store did not answer within 15 s (state.timeout)")
        return written


def test_a_pending_write_given_up_but_landed_leaves_no_unsent_create_uncertain(
    tmp_path: Path,
) -> None:
    """The run stops at the failed write and sends none of that batch: the report says `not
    sent`, so the store must not keep their pending records (the next plan would call creates
    that were never sent uncertain, each for a person to settle)."""
    store = LandsThenTimesOut()
    store.fail_at = 3  # the lock, the first batch; the second batch's write lands, "fails"
    client = StoreCheckingClient(store)
    applier, final, warnings = run(store, config(tmp_path), items(9), client)
    report = applier.report(items(9))
    assert report.stop_reason == "disk"
    not_sent = {r.address for r in report.results if r.kind == "not-sent"}
    assert final is not None and final.lock is None, warnings
    assert set(final.triggers) == set(client.sent)
    assert sorted(final.pending) == []
    assert not_sent == {i.address for i in items(9)} - set(client.sent)
