"""The journal: durable group-commit appends, the fold, crash recovery and corruption."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from project_helpers import body, lockfile, record

from pfsync.errors import JournalWriteError, LockfileError, StateChangeError
from pfsync.models import DesiredTrigger
from pfsync.state.changes import NO_OUTCOME_REASON
from pfsync.state.journal import Journal, fold, folded_state, read_journal, settle_journal
from pfsync.state.journal_records import Created, Failed, Pending, Uncertain
from pfsync.state.lockfile import Lockfile, read_lockfile, save_lockfile
from pfsync.state.trigger_records import PendingCreate
from pfsync.support.canonical import body_digest

KEY = "11111111-2222-4333-8444-555555555555"


def pending(address: str, name: str, key: str = KEY, replaces: str | None = None) -> Pending:
    spec = body(name)
    revision = 1 if replaces else 0
    trigger = DesiredTrigger.at_address(
        address, spec, body_digest(spec), revision, "triggers/x.yaml", replaces
    )
    return Pending(trigger, key, at="2026-02-01T00:00:00Z")


def created(address: str, trigger_id: str | None, key: str = KEY) -> Created:
    return Created(
        address, key, trigger_id, "2026-02-01T00:00:01Z", "draft", "2026-02-01T00:00:01Z"
    )


# --- the fold (pure) -------------------------------------------------------------------------


def test_fold_created_records_the_trigger() -> None:
    state = fold(lockfile(), [pending("biz_1/a", "A"), created("biz_1/a", "trg_a")])
    assert state.pending == {}
    got = state.triggers["biz_1/a"]
    assert (got.id, got.origin, got.status, got.body, got.history) == (
        "trg_a",
        "created",
        "draft",
        body("A"),
        (),
    )


def test_fold_created_with_unknown_id() -> None:
    state = fold(lockfile(), [pending("biz_1/a", "A"), created("biz_1/a", None)])
    assert state.triggers["biz_1/a"].id is None


def test_fold_replace_moves_the_old_id_to_history() -> None:
    before = lockfile(a=record("trg_old", "A"))
    state = fold(
        before, [pending("biz_1/a", "A2", replaces="trg_old"), created("biz_1/a", "trg_new")]
    )
    got = state.triggers["biz_1/a"]
    assert got.id == "trg_new" and got.revision == 1
    assert [(h.id, h.reason, h.at) for h in got.history] == [
        ("trg_old", "replaced", "2026-02-01T00:00:01Z")
    ]


def test_fold_failed_removes_the_pending_create() -> None:
    failed = Failed("biz_1/a", KEY, "name is required", 422, "2026-02-01T00:00:01Z")
    assert fold(lockfile(), [pending("biz_1/a", "A"), failed]) == lockfile()


def test_fold_uncertain_stays_pending_with_its_reason() -> None:
    uncertain = Uncertain("biz_1/a", KEY, "HTTP 504 Gateway Timeout", "2026-02-01T00:00:01Z")
    state = fold(lockfile(), [pending("biz_1/a", "A"), uncertain])
    assert state.pending["biz_1/a"] == PendingCreate(
        DesiredTrigger.at_address(
            "biz_1/a", body("A"), body_digest(body("A")), 0, "triggers/x.yaml"
        ),
        KEY,
        "2026-02-01T00:00:00Z",
        "HTTP 504 Gateway Timeout",
    )


def test_fold_pending_without_outcome_is_uncertain() -> None:
    state = fold(lockfile(), [pending("biz_1/a", "A")])
    assert state.pending["biz_1/a"].reason == NO_OUTCOME_REASON


def test_fold_outcome_without_pending_is_an_error() -> None:
    with pytest.raises(StateChangeError, match="no such create was started"):
        fold(lockfile(), [created("biz_1/a", "trg_a")])


# --- writing -----------------------------------------------------------------------------------


def start(tmp_path: Path) -> tuple[Path, Path, Lockfile]:
    lock_path = tmp_path / "pfsync.lock"
    state = save_lockfile(lock_path, None, lockfile())
    return lock_path, tmp_path / "pfsync.lock.journal", state


def test_journal_starts_with_begin_and_appends_lines(tmp_path: Path) -> None:
    _, journal_path, state = start(tmp_path)
    with Journal.open(journal_path, state) as journal:
        journal.append(pending("biz_1/a", "A"))
    lines = [json.loads(line) for line in journal_path.read_text(encoding="utf-8").splitlines()]
    assert [line["type"] for line in lines] == ["begin", "pending"]
    assert (lines[0]["lineage"], lines[0]["serial"]) == (state.lineage, state.serial)


def test_concurrent_appends_share_fsyncs_and_all_become_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, journal_path, state = start(tmp_path)
    journal = Journal.open(journal_path, state)
    real_fsync = os.fsync
    calls = []

    def slow_fsync(fd: int) -> None:
        calls.append(fd)
        time.sleep(0.02)  # a slow disk, so other workers queue up behind the leader
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    threads, count = 8, 10

    def worker(n: int) -> None:
        for i in range(count):
            key = str(uuid.uuid4())
            journal.append(pending(f"biz_1/t{n}-{i}", f"T{n}-{i}", key=key))
            journal.append(created(f"biz_1/t{n}-{i}", f"trg_{n}_{i}", key=key))

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    journal.close()
    appends = threads * count * 2
    assert 0 < len(calls) < appends  # fsyncs were shared, never skipped entirely
    folded = folded_state(state, journal_path)
    assert folded is not None and len(folded.triggers) == threads * count and not folded.pending


def test_failed_fsync_fails_this_and_every_later_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, journal_path, state = start(tmp_path)
    journal = Journal.open(journal_path, state)

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(JournalWriteError, match=r"cannot fsync the journal .*Input/output error"):
        journal.append(pending("biz_1/a", "A"))
    monkeypatch.undo()
    with pytest.raises(JournalWriteError, match="no further create will be sent"):
        journal.append(pending("biz_1/b", "B"))
    journal.close()


def test_failed_write_raises_journal_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, journal_path, state = start(tmp_path)
    journal = Journal.open(journal_path, state)

    def broken_write(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", broken_write)
    with pytest.raises(JournalWriteError, match="No space left on device"):
        journal.append(pending("biz_1/a", "A"))
    journal.close()


# --- recovery ----------------------------------------------------------------------------------


def test_torn_last_line_is_ignored_then_cut_before_appending(tmp_path: Path) -> None:
    _, journal_path, state = start(tmp_path)
    with Journal.open(journal_path, state) as journal:
        journal.append(pending("biz_1/a", "A"))
    complete = journal_path.read_bytes()
    with open(journal_path, "ab") as f:
        f.write(b'{"type":"created","address":"biz_1/a","idem')  # killed mid-append
    contents = read_journal(journal_path)
    assert contents is not None and contents.torn and len(contents.events) == 1
    folded = folded_state(state, journal_path)
    assert folded is not None and folded.pending["biz_1/a"].reason == NO_OUTCOME_REASON
    with Journal.open(journal_path, state) as journal:
        journal.append(created("biz_1/a", "trg_a"))
    text = journal_path.read_bytes()
    assert text.startswith(complete) and b"idem\n" not in text and text.count(b"\n") == 3
    folded = folded_state(state, journal_path)
    assert folded is not None and folded.triggers["biz_1/a"].id == "trg_a"


def test_corrupt_earlier_line_stops_naming_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _, journal_path, state = start(tmp_path)
    with Journal.open(journal_path, state) as journal:
        journal.append(pending("biz_1/a", "A"))
        journal.append(created("biz_1/a", "trg_a"))
    lines = journal_path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = "{not json\n"
    journal_path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(LockfileError) as info:
        folded_state(state, journal_path)
    assert str(info.value).startswith(
        "the journal pfsync.lock.journal is corrupt at line 2: Expecting property name"
    )
    assert "The lines before 2 are intact" in str(info.value)


def test_schema_violation_in_a_line_is_corruption(tmp_path: Path) -> None:
    _, journal_path, state = start(tmp_path)
    with Journal.open(journal_path, state) as journal:
        journal.append(pending("biz_1/a", "A"))
        journal.append(created("biz_1/a", "trg_a"))
    lines = journal_path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace('"revision":0', '"revision":-1')
    journal_path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(LockfileError, match="corrupt at line 2: -1 is less than the minimum of 0"):
        read_journal(journal_path)


def test_journal_of_another_lockfile_is_refused(tmp_path: Path) -> None:
    _, journal_path, state = start(tmp_path)
    with Journal.open(journal_path, state) as journal:
        journal.append(pending("biz_1/a", "A"))
    other = replace(state, lineage="99999999-8888-4777-8666-555555555555")
    with pytest.raises(LockfileError, match="belongs to another lockfile"):
        folded_state(other, journal_path)
    with pytest.raises(LockfileError, match="belongs to another lockfile"):
        folded_state(replace(state, serial=4), journal_path)
    with pytest.raises(LockfileError, match="its lockfile does not exist"):
        folded_state(None, journal_path)


def test_a_journal_without_its_lockfile_names_that_lockfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state").mkdir()
    lock_path = tmp_path / "state" / "staging.lock"
    journal_path = tmp_path / "state" / "staging.lock.journal"
    with Journal.open(journal_path, save_lockfile(lock_path, None, lockfile())) as journal:
        journal.append(pending("biz_1/a", "A"))
    lock_path.unlink()
    with pytest.raises(LockfileError) as raised:
        folded_state(None, journal_path)
    assert str(raised.value) == (
        "the journal state/staging.lock.journal records creates, but its lockfile does not "
        "exist. Restore the lockfile from git (git checkout -- state/staging.lock) and run "
        "again; do not delete the journal, it is the only record of those creates"
    )


def test_settle_folds_saves_and_removes_the_journal(tmp_path: Path) -> None:
    lock_path, journal_path, state = start(tmp_path)
    with Journal.open(journal_path, state) as journal:
        journal.append(pending("biz_1/a", "A"))
        journal.append(created("biz_1/a", "trg_a"))
    settled = settle_journal(journal_path, lock_path, state)
    assert not journal_path.exists()
    assert settled is not None and settled.serial == state.serial + 1
    assert read_lockfile(lock_path) == settled
    assert settled.triggers["biz_1/a"].id == "trg_a"


def test_settle_of_a_journal_without_changes_writes_nothing(tmp_path: Path) -> None:
    lock_path, journal_path, state = start(tmp_path)
    before = lock_path.read_bytes()
    with Journal.open(journal_path, state):
        pass
    assert settle_journal(journal_path, lock_path, state) == state
    assert lock_path.read_bytes() == before and not journal_path.exists()


def test_crash_after_the_fold_rename_does_not_fold_twice(tmp_path: Path) -> None:
    lock_path, journal_path, state = start(tmp_path)
    with Journal.open(journal_path, state) as journal:
        journal.append(pending("biz_1/a", "A2", replaces="trg_old"))
        journal.append(created("biz_1/a", "trg_new"))
    before = replace(state, triggers={"biz_1/a": record("trg_old", "A")})
    state = save_lockfile(lock_path, state, before)
    journal_path.unlink()
    with Journal.open(journal_path, state) as journal:
        journal.append(pending("biz_1/a", "A2", replaces="trg_old"))
        journal.append(created("biz_1/a", "trg_new"))
    kept = journal_path.read_bytes()
    settled = settle_journal(journal_path, lock_path, state)
    assert settled is not None
    journal_path.write_bytes(kept + journal_tail(settled))  # the journal survived the crash
    assert folded_state(settled, journal_path) == settled
    again = settle_journal(journal_path, lock_path, settled)
    assert again == settled and not journal_path.exists()
    assert [h.id for h in again.triggers["biz_1/a"].history] == ["trg_old"]


def journal_tail(settled: Lockfile) -> bytes:
    import hashlib

    sha = hashlib.sha256(settled.dumps().encode()).hexdigest()
    record = {
        "type": "folded",
        "serial": settled.serial,
        "sha256": sha,
        "at": "2026-02-01T00:00:02Z",
    }
    return (json.dumps(record) + "\n").encode()


def test_crash_before_the_fold_rename_folds_again(tmp_path: Path) -> None:
    lock_path, journal_path, state = start(tmp_path)
    with Journal.open(journal_path, state) as journal:
        journal.append(pending("biz_1/a", "A"))
        journal.append(created("biz_1/a", "trg_a"))
    expected = replace(
        fold(state, [pending("biz_1/a", "A"), created("biz_1/a", "trg_a")]),
        serial=state.serial + 1,
    )
    with open(journal_path, "ab") as f:
        f.write(journal_tail(expected))  # the fold announced itself, then the process died
    settled = settle_journal(journal_path, lock_path, state)
    assert settled == read_lockfile(lock_path) == expected
    assert not journal_path.exists()


def test_fold_in_one_pass_equals_the_events_folded_one_by_one() -> None:
    import random

    rng = random.Random(7)
    addresses = [f"biz_1/t{n}" for n in range(40)]
    events: list[Pending | Created | Failed | Uncertain] = []
    for step in range(300):
        address = rng.choice(addresses)
        key = f"{step:08d}-2222-4333-8444-555555555555"
        events.append(pending(address, f"N{step}", key, replaces=rng.choice([None, "trg_old"])))
        outcome = rng.random()
        if outcome < 0.6:
            events.append(created(address, rng.choice([f"trg_{step}", None]), key))
        elif outcome < 0.75:
            events.append(Failed(address, key, "bad", 422, "2026-02-01T00:00:02Z"))
        elif outcome < 0.9:
            events.append(Uncertain(address, key, "HTTP 500", "2026-02-01T00:00:02Z"))

    # One pass shares one set of dictionaries between events; one event at a time starts
    # from a finished lockfile each time. Both must end in the same state.
    one_by_one = lockfile()
    for event in events:
        one_by_one = fold(one_by_one, [event])

    folded = fold(lockfile(), events)
    assert folded == one_by_one
    assert folded.dumps() == one_by_one.dumps()
    assert any(record.history for record in folded.triggers.values())
    assert any(pending.trigger.replaces for pending in folded.pending.values())


def test_record_check_by_type_agrees_with_the_oneof_schema() -> None:
    """record_from_json checks only the named type's schema: journal_record's verdict."""
    from pfsync.schemas import LOCKFILE, validator
    from pfsync.state.journal_records import record_from_json

    whole = validator(LOCKFILE).evolve(schema={"$ref": f"{LOCKFILE}#/$defs/journal_record"})
    digest = "sha256:" + "0" * 64
    key = "0b8f1f5e-2b4c-4c8e-9a4e-3f1c2d3e4f50"
    at = "2026-01-01T00:00:00Z"
    pending = {
        "type": "pending",
        "address": "b/k",
        "idempotency_key": key,
        "digest": digest,
        "body": {},
        "revision": 0,
        "file": "f.yaml",
        "replaces": None,
        "at": at,
    }
    created = {
        "type": "created",
        "address": "b/k",
        "idempotency_key": key,
        "id": "trg_1",
        "created_at": None,
        "status": None,
        "at": at,
    }
    candidates = [
        pending,
        created,
        {**pending, "type": "created"},
        {**created, "type": "pending"},
        {**created, "id": 5},
        {k: v for k, v in pending.items() if k != "digest"},
        {**pending, "extra": 1},
        {"type": "folded", "serial": 2, "sha256": "a" * 64, "at": at},
        {"type": "begin", "lineage": key, "serial": 1, "at": at},
        {"type": "begin", "lineage": key, "serial": "1", "at": at},
    ]
    for data in candidates:
        try:
            record_from_json(data)
            accepted = True
        except ValueError:
            accepted = False
        assert accepted == whole.is_valid(data), data


def test_an_empty_lockfile_with_an_unfolded_journal_keeps_its_api_url(tmp_path: Path) -> None:
    # An empty lockfile takes another configured API URL, but not while a crashed run's journal
    # holds creates sent to the recorded API: their ids would be filed under the other one.
    from pfsync.config import load_config
    from pfsync.state.access import locked_state, read_state

    lock_path, journal_path, state = start(tmp_path)
    (tmp_path / "pfsync.yaml").write_text("business: biz_1\napi_url: http://127.0.0.1:8787\n")
    config = load_config(str(tmp_path / "pfsync.yaml"), environ={})
    assert read_state(config).state is not None  # nothing recorded: the URL is taken
    with Journal.open(journal_path, state) as journal:
        journal.append(pending("biz_1/a", "A"))
        journal.append(created("biz_1/a", "trg_a"))
    before = (lock_path.read_bytes(), journal_path.read_bytes())
    with pytest.raises(LockfileError, match=r"describes the API https://api\.pocketflows\.com"):
        read_state(config)
    with pytest.raises(LockfileError, match="describes the API"), locked_state(config):
        pass
    assert (lock_path.read_bytes(), journal_path.read_bytes()) == before
