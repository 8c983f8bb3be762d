"""Fuzzing the lockfile and journal readers: a clear error naming the problem, or the data.

Never a traceback, never a lost record, never an overwritten lockfile: a lockfile cut at every
byte or randomly corrupted is refused with a LockfileError and left byte-identical; a journal with
a torn last record is recovered with every earlier record kept; a corrupt earlier record stops
with an error naming its line.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from project_helpers import LINEAGE, body, record

from pfsync.config import Config
from pfsync.errors import LockfileError
from pfsync.models import DesiredTrigger
from pfsync.state.access import locked_state
from pfsync.state.journal import Journal, folded_state, read_journal
from pfsync.state.journal_records import Created, Failed, Pending, Uncertain
from pfsync.state.lockfile import Lockfile, parse_lockfile, read_lockfile, save_lockfile
from pfsync.state.trigger_records import HistoryEntry, PendingCreate
from pfsync.support.canonical import body_digest

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
API = "https://api.pocketflows.com"


def real_lockfile() -> Lockfile:
    """A lockfile using every part of the format, with non-ASCII text (cuts inside a character)."""
    spec = body("Bienvenue \U0001f389 — été")
    history = (HistoryEntry("trg_old", "2026-01-01T00:00:00Z", "replaced", "created", 0),)
    created = record("trg_1", "Bienvenue \U0001f389 — été", revision=1, key="welcome")
    return Lockfile(
        lineage=LINEAGE,
        serial=7,
        api_url=API,
        triggers={
            "biz_1/welcome": created.__class__(**{**created.__dict__, "history": history}),
            "biz_1/imported": record("trg_2", "Imported", key="imported"),
            "biz_1/unknown": record(None, "Id unknown", key="unknown"),
        },
        pending={
            "biz_1/maybe": PendingCreate(
                DesiredTrigger.at_address(
                    "biz_1/maybe", spec, body_digest(spec), 0, "triggers/maybe.yaml"
                ),
                str(uuid.UUID(int=1)),
                "2026-01-02T00:00:00Z",
                "no outcome was recorded",
            )
        },
        forgotten={"biz_1/gone": history},
    )


@functools.cache
def real_lockfile_bytes() -> bytes:
    """`real_lockfile()` as save_lockfile writes it, written once (each save fsyncs)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pfsync.lock"
        save_lockfile(path, None, real_lockfile())
        return path.read_bytes()


def saved(tmp_path: Path) -> tuple[Path, bytes]:
    """The saved real lockfile at tmp_path/pfsync.lock, and its bytes."""
    path, data = tmp_path / "pfsync.lock", real_lockfile_bytes()
    path.write_bytes(data)
    return path, data


def test_the_real_lockfile_reads_back(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    assert read_lockfile(path) == replace(real_lockfile(), serial=1)


def test_truncation_at_every_byte_is_refused_by_name(tmp_path: Path) -> None:
    path, data = saved(tmp_path)
    original = read_lockfile(path)
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        try:
            lockfile = read_lockfile(path)
        except LockfileError as exc:
            assert "the lockfile pfsync.lock" in str(exc) or "lockfile " in str(exc)
            assert "never overwrites" in str(exc) or "not UTF-8" in str(exc), str(exc)
            continue
        # Only the trailing newline can go without changing the document.
        assert cut == len(data) - 1 and lockfile == original, cut


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete"]),
            st.integers(0),
            st.binary(min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_random_corruption_is_refused_or_still_verified(
    tmp_path: Path, edits: list[tuple[str, int, bytes]]
) -> None:
    path, data = saved(tmp_path)
    corrupt = bytearray(data)
    for operation, position, junk in edits:
        at = position % (len(corrupt) + 1)
        if operation == "flip" and at < len(corrupt):
            corrupt[at] ^= junk[0] or 1
        elif operation == "insert":
            corrupt[at:at] = junk
        else:
            del corrupt[at : at + len(junk)]
    path.write_bytes(bytes(corrupt))
    try:
        parsed = read_lockfile(path)
    except LockfileError:
        pass
    else:
        assert parsed is not None  # still verified: JSON, schema and every digest hold
    assert path.read_bytes() == bytes(corrupt)


def test_a_corrupt_lockfile_is_never_overwritten_by_a_state_command(tmp_path: Path) -> None:
    path, data = saved(tmp_path)
    corrupt = data[: len(data) // 2]
    path.write_bytes(corrupt)
    config = Config(None, tmp_path, "biz_1", API, ("triggers/*.yaml",), path)
    with pytest.raises(LockfileError, match="never overwrites"), locked_state(config):
        pass  # pragma: no cover
    assert path.read_bytes() == corrupt
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("pfsync.lock.l")] == [
        "pfsync.lock"
    ]  # no journal, no temporary file: nothing but the state lock's sidecar


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        '{"version": 1, "triggers": ' + "[" * 5_000 + "]" * 5_000 + "}",
    ],
)
def test_regression_deeply_nested_json_is_refused_not_a_traceback(text: str) -> None:
    # Was: RecursionError from json.loads, a traceback instead of a LockfileError.
    with pytest.raises(LockfileError, match=r"pfsync\.lock is nested too deeply to be a lockfile"):
        parse_lockfile(text, "pfsync.lock")


@pytest.mark.parametrize("levels", [900, 990, 2000])
def test_deep_body_in_a_lockfile_is_refused(tmp_path: Path, levels: int) -> None:
    # Whether json.loads or the digest check meets the recursion limit first, it is refused.
    path, data = saved(tmp_path)
    deep = '{"a":' * levels + "1" + "}" * levels
    text = data.decode().replace('"name": "Imported"', f'"metadata": {deep}, "name": "Imported"')
    assert text != data.decode()
    path.write_text(text)
    with pytest.raises(LockfileError, match="never overwrites"):
        read_lockfile(path)


# --- the journal --------------------------------------------------------------------------------


def write_journal(tmp_path: Path) -> tuple[Path, Lockfile, list[bytes]]:
    """A journal of 3 creates (one created, one failed, one uncertain) beside its lockfile;
    returns the journal's path, the lockfile and the journal's lines."""
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))  # hypothesis reuses tmp_path across examples
    lockfile, lockfile_data, journal_data = journal_of_three()
    (tmp_path / "pfsync.lock").write_bytes(lockfile_data)
    journal_path = tmp_path / "pfsync.lock.journal"
    journal_path.write_bytes(journal_data)
    return journal_path, lockfile, journal_data.splitlines(keepends=True)


@functools.cache
def journal_of_three() -> tuple[Lockfile, bytes, bytes]:
    """The lockfile, its bytes and the journal's bytes of `write_journal`, written once (each
    save and append fsyncs)."""
    with tempfile.TemporaryDirectory() as folder:
        lock_path = Path(folder) / "pfsync.lock"
        lockfile = save_lockfile(lock_path, None, Lockfile(LINEAGE, 0, API))
        journal_path = Path(folder) / "pfsync.lock.journal"
        append_three_creates(journal_path, lockfile)
        return lockfile, lock_path.read_bytes(), journal_path.read_bytes()


def append_three_creates(journal_path: Path, lockfile: Lockfile) -> None:
    """Through the Journal, as apply writes them: created, failed and uncertain."""
    at = "2026-01-01T00:00:00Z"  # fixed, so every run writes the same bytes
    with Journal.open(journal_path, lockfile) as journal:
        for n, outcome in enumerate(("created", "failed", "uncertain")):
            key = str(uuid.UUID(int=n + 10))
            spec = body(f"T{n} — ü")
            address = f"biz_1/t{n}"
            journal.append(
                Pending(
                    DesiredTrigger.at_address(address, spec, body_digest(spec), 0, f"t{n}.yaml"),
                    key,
                    at,
                )
            )
            if outcome == "created":
                journal.append(Created(address, key, f"trg_{n}", at, "draft", at))
            elif outcome == "failed":
                journal.append(Failed(address, key, "HTTP 422: no", 422, at))
            else:
                journal.append(Uncertain(address, key, "HTTP 500", at))


def test_torn_last_record_at_every_byte_is_recovered(tmp_path: Path) -> None:
    journal_path, lockfile, lines = write_journal(tmp_path)
    head, last = b"".join(lines[:-1]), lines[-1]
    for cut in range(1, len(last)):  # a whole last line is not torn
        journal_path.write_bytes(head + last[:cut])
        contents = read_journal(journal_path)
        assert contents is not None and contents.torn
        assert contents.valid_size == len(head)
        assert len(contents.events) == len(lines) - 2  # all but `begin` and the torn one
        state = folded_state(lockfile, journal_path)
        assert state is not None
        # Nothing before the tear is lost: t0 created, t1 failed, t2 pending (uncertain).
        assert state.triggers["biz_1/t0"].id == "trg_0"
        assert "biz_1/t1" not in state.triggers and "biz_1/t1" not in state.pending
        assert "biz_1/t2" in state.pending


def test_a_torn_tail_is_cut_before_the_next_append(tmp_path: Path) -> None:
    journal_path, lockfile, lines = write_journal(tmp_path)
    journal_path.write_bytes(b"".join(lines[:-1]) + lines[-1][:17])
    with Journal.open(journal_path, lockfile) as journal:
        journal.append(Uncertain("biz_1/t2", str(uuid.UUID(int=12)), "again"))
    contents = read_journal(journal_path)
    assert contents is not None and not contents.torn
    assert len(contents.events) == len(lines) - 1


def test_a_torn_tail_padded_with_zeros_is_recovered(tmp_path: Path) -> None:
    # After a crash some file systems show the unwritten tail of the file as zero bytes.
    journal_path, _, lines = write_journal(tmp_path)
    journal_path.write_bytes(b"".join(lines[:-1]) + b"\x00" * 40 + b"\n")
    contents = read_journal(journal_path)
    assert contents is not None and contents.torn and len(contents.events) == len(lines) - 2


@FUZZ
@given(st.data())
def test_a_corrupt_earlier_record_stops_naming_its_line(
    tmp_path: Path, data: st.DataObject
) -> None:
    journal_path, lockfile, lines = write_journal(tmp_path)
    index = data.draw(st.integers(0, len(lines) - 2), label="line index")  # never the last
    line = lines[index]
    kind = data.draw(st.sampled_from(["cut", "junk", "flip", "deep", "empty"]), label="kind")
    if kind == "cut":
        bad = line[: data.draw(st.integers(0, len(line) - 2))] + b"\n"
    elif kind == "junk":
        bad = data.draw(st.binary(min_size=1, max_size=40)).replace(b"\n", b"") + b"\n"
    elif kind == "flip":
        at = data.draw(st.integers(0, len(line) - 2))
        bad = line[:at] + bytes([line[at] ^ data.draw(st.integers(1, 255))]) + line[at + 1 :]
        bad = bad.replace(b"\n", b" ")[:-1] + b"\n"
    elif kind == "deep":
        bad = b"[" * 50_000 + b"]" * 50_000 + b"\n"  # was a RecursionError traceback
    else:
        bad = b"\n"
    lines[index] = bad
    journal_path.write_bytes(b"".join(lines))
    try:
        folded_state(lockfile, journal_path)
    except LockfileError as exc:
        message = str(exc)
        assert "pfsync.lock.journal" in message
        if "belongs to another lockfile" in message:
            assert index == 0  # the `begin` line names another lineage or serial
        else:
            # The bad line itself, or a later one whose meaning it broke (an outcome whose
            # pending record no longer matches).
            named = int(message.split("corrupt at line ")[1].split(":")[0])
            assert index + 1 <= named <= len(lines), message
    # else: the change kept a valid record (e.g. one letter of a name); nothing to refuse.


def test_regression_close_waits_for_a_running_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Was: close() closed the fd while a leader fsynced it without the lock (EBADF, or an fsync
    # of whichever file reused the number), failing a record that had been written.
    lock_path = tmp_path / "pfsync.lock"
    lockfile = save_lockfile(lock_path, None, Lockfile.new(API))
    journal = Journal.open(tmp_path / "pfsync.lock.journal", lockfile)
    real_fsync, real_close = os.fsync, os.close
    in_fsync, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow_fsync(fd: int) -> None:
        in_fsync.set()
        release.wait(10)
        real_fsync(fd)
        order.append("fsync done")

    def recording_close(fd: int) -> None:
        order.append("close")
        real_close(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    monkeypatch.setattr(os, "close", recording_close)
    errors: list[BaseException] = []

    def append() -> None:
        try:
            journal.append(Uncertain("biz_1/a", str(uuid.UUID(int=1)), "x"))
        except BaseException as exc:
            errors.append(exc)

    appender = threading.Thread(target=append)
    appender.start()
    assert in_fsync.wait(10)
    closer = threading.Thread(target=journal.close)
    closer.start()
    closer.join(0.2)  # give a racing close the chance to run
    release.set()
    appender.join(10)
    closer.join(10)
    assert errors == []
    assert order == ["fsync done", "close"]
