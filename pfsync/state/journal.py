"""The journal `pfsync.lock.journal`: durable JSON lines written during apply, folded afterwards.

Why a journal: rewriting the whole lockfile per trigger would make apply quadratic, and a create
whose outcome is not on disk before the next POST could be sent twice. Each record is durable
(written and fsynced) before `append` returns; parallel workers share fsyncs (group commit).

Public API:

    Journal.open(path, lockfile) -> Journal
        start the journal of a saved lockfile (a `begin` record with its lineage and serial), or
        continue an unfolded one of the same lockfile after cutting away a torn last line
    Journal.append(record)       durable and thread-safe; JournalWriteError when the disk fails,
                                 and every later append fails too (no POST may follow)
    Journal.close()
    read_journal(path) -> JournalContents | None
    fold(lockfile, records) -> Lockfile
        pure: pending → pending create; created → trigger record (replaced id to history);
        failed → pending removed; uncertain → stays pending with its reason
    folded_state(lockfile, journal_path) -> Lockfile | None
        read-only (plan, state list/show): the lockfile with an unfolded journal folded in
    settle_journal(journal_path, lockfile_path, lockfile) -> Lockfile | None
        under the state lock: fold, save the lockfile durably, then remove the journal

A torn last line (a crash mid-append) is ignored; any earlier corrupt line stops with an error
naming the line, since guessing could lose a created trigger or send a second create.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from pfsync.errors import JournalWriteError, LockfileError, StateChangeError
from pfsync.state.changes import CreateOutcomes, pending_create
from pfsync.state.journal_records import (
    Begin,
    Created,
    Event,
    Failed,
    Folded,
    Pending,
    Record,
    record_from_json,
    record_to_json,
)
from pfsync.state.lockfile import Lockfile, read_if_present, save_lockfile
from pfsync.support.atomic import fsync_directory
from pfsync.support.paths import shown_path
from pfsync.support.textsafety import json_text

# O_BINARY: Windows opens files in text mode unless told, writing each "\n" as "\r\n".
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class JournalContents:
    """What a journal file holds, up to its last complete line."""

    begin: Begin | None
    events: tuple[Event, ...]
    event_lines: tuple[int, ...]  # the 1-based line of each event, for error messages
    folded: Folded | None
    valid_size: int  # bytes up to the end of the last good line
    torn: bool  # a torn last line follows valid_size


def _corrupt(path: Path, line: int, problem: str) -> LockfileError:
    shown = shown_path(path)
    return LockfileError(
        f"the journal {shown} is corrupt at line {line}: {problem}. pfsync stops rather than "
        f"guess which creates happened. The lines before {line} are intact; keep the file, look "
        "for the triggers it names in Pocketflows, and repair or remove the bad line by hand"
    )


def read_journal(path: Path) -> JournalContents | None:
    """The records of the journal at `path`, or None when there is none."""
    raw = read_if_present(path, "journal")
    if raw is None:
        return None
    lines = raw.split(b"\n")
    # The element after the last newline is empty unless the last append was torn.
    complete, tail = lines[:-1], lines[-1]
    begin: Begin | None = None
    events: list[Event] = []
    event_lines: list[int] = []
    folded: Folded | None = None
    offset = 0
    torn = bool(tail)
    for index, line in enumerate(complete):
        number = index + 1
        try:
            record = record_from_json(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            if number == len(complete) and not tail:
                # The last line, even newline-terminated, may be a torn write padded by the file
                # system after a crash; nothing after it depends on it.
                torn = True
                break
            raise _corrupt(path, number, str(exc)) from None
        if number == 1 and not isinstance(record, Begin):
            raise _corrupt(path, 1, "the first record must be `begin`")
        if number > 1 and isinstance(record, Begin):
            raise _corrupt(path, number, "a second `begin` record")
        if folded is not None and not isinstance(record, Folded):
            raise _corrupt(path, number, "a record after `folded`")
        if isinstance(record, Begin):
            begin = record
        elif isinstance(record, Folded):
            folded = record  # a fold interrupted before its rename is followed by another
        else:
            events.append(record)
            event_lines.append(number)
        offset += len(line) + 1
    return JournalContents(begin, tuple(events), tuple(event_lines), folded, offset, torn)


def fold(lockfile: Lockfile, events: Sequence[Event]) -> Lockfile:
    """The lockfile with the journal's events applied in order (pure; StateChangeError if odd)."""
    changes = CreateOutcomes(lockfile)
    for event in events:
        _apply_event(changes, event)
    return changes.lockfile()


def _apply_event(changes: CreateOutcomes, event: Event) -> None:
    if isinstance(event, Pending):
        changes.start_pending(event.address, pending_create(event))
    elif isinstance(event, Created):
        changes.record_created(
            event.address,
            event.idempotency_key,
            event.id,
            event.created_at,
            event.status,
            event.at,
        )
    elif isinstance(event, Failed):
        changes.record_failed(event.address, event.idempotency_key)
    else:
        changes.record_uncertain(event.address, event.idempotency_key, event.reason)


def _fold_contents(lockfile: Lockfile, contents: JournalContents, path: Path) -> Lockfile:
    changes = CreateOutcomes(lockfile)
    for event, line in zip(contents.events, contents.event_lines, strict=True):
        try:
            _apply_event(changes, event)
        except StateChangeError as exc:
            raise _corrupt(path, line, str(exc)) from None
    return changes.lockfile()


def _text_sha256(lockfile: Lockfile) -> str:
    return hashlib.sha256(lockfile.dumps().encode("utf-8")).hexdigest()


def _unfolded(
    lockfile: Lockfile | None, contents: JournalContents | None, path: Path
) -> JournalContents | None:
    """The journal's contents if they still have to be folded into `lockfile`, else None."""
    if contents is None or contents.begin is None:
        return None  # no journal, or one torn before its first record was durable
    begin = contents.begin
    shown = shown_path(path)
    if lockfile is None:
        lockfile_shown = shown.removesuffix(".journal")  # the journal is LOCKFILE.journal
        raise LockfileError(
            f"the journal {shown} records creates, but its lockfile does not exist. Restore the "
            f"lockfile from git (git checkout -- {lockfile_shown}) and run again; do not delete "
            "the journal, it is the only record of those creates"
        )
    folded = contents.folded
    if (
        folded is not None
        and lockfile.lineage == begin.lineage
        and lockfile.serial == folded.serial
        and _text_sha256(lockfile) == folded.sha256
    ):
        return None  # folded already; a crash only kept the journal from being removed
    if lockfile.lineage != begin.lineage or lockfile.serial != begin.serial:
        raise LockfileError(
            f"the journal {shown} belongs to another lockfile (lineage {begin.lineage}, serial "
            f"{begin.serial}) than the one beside it (lineage {lockfile.lineage}, serial "
            f"{lockfile.serial}). If the lockfile was replaced (git checkout, pull), restore the "
            "version the journal was started against; the next pfsync apply or state command in "
            "that repository folds the journal in. Do not delete the journal, it may be the only "
            "record of creates"
        )
    return contents


def folded_state(lockfile: Lockfile | None, journal_path: Path) -> Lockfile | None:
    """The lockfile with any unfolded journal folded in, writing nothing (plan, state list)."""
    contents = _unfolded(lockfile, read_journal(journal_path), journal_path)
    if contents is None or lockfile is None:
        return lockfile
    return _fold_contents(lockfile, contents, journal_path)


def settle_journal(
    journal_path: Path, lockfile_path: Path, lockfile: Lockfile | None
) -> Lockfile | None:
    """Fold an unfolded journal into the lockfile and remove it (call under the state lock)."""
    contents = read_journal(journal_path)
    if contents is None:
        return lockfile
    unfolded = _unfolded(lockfile, contents, journal_path)
    if unfolded is not None and lockfile is not None:
        new = _fold_contents(lockfile, unfolded, journal_path)
        if not new.same_content(lockfile):
            expected = replace(new, serial=lockfile.serial + 1)
            # Say in the journal which lockfile the fold writes before writing it: a crash after
            # the rename but before the journal is removed then cannot fold the journal twice.
            folded = Folded(serial=expected.serial, sha256=_text_sha256(expected))
            with Journal._continue(journal_path, unfolded) as journal:
                journal.append(folded)
            lockfile = save_lockfile(lockfile_path, lockfile, expected)  # its text is made once
    try:
        os.unlink(journal_path)
        fsync_directory(journal_path.parent)
    except OSError as exc:
        raise LockfileError(
            f"cannot remove the folded journal {shown_path(journal_path)}: {exc.strerror}"
        ) from None
    return lockfile


class Journal:
    """An open journal: durable, thread-safe appends with group commit."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._cond = threading.Condition()
        self._written = 0  # records written to the file (not yet necessarily durable)
        self._synced = 0  # records covered by a completed fsync
        self._syncing = False
        self._error: JournalWriteError | None = None
        self._closed = False

    @classmethod
    def open(cls, path: Path, lockfile: Lockfile) -> Journal:
        """Start the journal of the saved `lockfile`, or continue its unfolded journal."""
        if lockfile.serial < 1:
            raise ValueError("save the lockfile before starting its journal")
        contents = _unfolded(lockfile, read_journal(path), path)
        if contents is not None:
            if contents.folded is not None:
                # settle_journal, which every caller runs first under the lock, finishes a fold.
                raise ValueError("settle the journal (settle_journal) before opening it")
            return cls._continue(path, contents)
        try:
            fd = os.open(path, _APPEND_FLAGS | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise JournalWriteError(
                f"cannot open the journal {shown_path(path)}: {exc.strerror}; nothing was sent"
            ) from None
        journal = cls(path, fd)
        try:
            journal.append(Begin(lineage=lockfile.lineage, serial=lockfile.serial))
            fsync_directory(path.parent)  # the new file's name must survive a crash too
        except OSError as exc:
            journal.close()
            raise JournalWriteError(
                f"cannot write the journal {shown_path(path)}: {exc.strerror}; nothing was sent"
            ) from None
        except BaseException:
            journal.close()
            raise
        return journal

    @classmethod
    def _continue(cls, path: Path, contents: JournalContents) -> Journal:
        """Reopen an existing journal for appending, cutting away a torn last line first."""
        try:
            fd = os.open(path, _APPEND_FLAGS)
            if contents.torn:
                # Truncate so the next record starts on a line of its own.
                os.ftruncate(fd, contents.valid_size)
                os.fsync(fd)
        except OSError as exc:
            raise JournalWriteError(
                f"cannot open the journal {shown_path(path)}: {exc.strerror}; nothing was sent"
            ) from None
        return cls(path, fd)

    def append(self, record: Record) -> None:
        """Write `record` and return once it is on disk (fsynced), sharing fsyncs across threads."""
        data = (
            json_text(record_to_json(record), sort_keys=True, separators=(",", ":")) + "\n"
        ).encode("utf-8")
        with self._cond:
            self._raise_if_failed()
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError as exc:
                self._fail(f"cannot write the journal {shown_path(self.path)}: {exc.strerror}")
            self._written += 1
            mine = self._written
            while self._synced < mine:
                self._raise_if_failed()
                if self._syncing:
                    self._cond.wait()  # a leader's fsync is running; it may cover this record
                    continue
                # Lead: fsync everything written so far, without holding the lock, so other
                # threads can write their records meanwhile and share the next fsync.
                self._syncing = True
                target = self._written
                self._cond.release()
                error: OSError | None = None
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    error = exc
                finally:
                    self._cond.acquire()
                    self._syncing = False
                if error is not None:
                    self._fail(
                        f"cannot fsync the journal {shown_path(self.path)}: {error.strerror}"
                    )
                self._synced = max(self._synced, target)
                self._cond.notify_all()

    def announce(self, pendings: Sequence[Pending]) -> None:
        """Nothing to prepare: each pending record is written when it is appended."""

    def unwritten_created(self) -> set[str]:
        """None: a record is durable before `append` returns (a remote store's may wait)."""
        return set()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise JournalWriteError(f"the journal {shown_path(self.path)} is closed")

    def _fail(self, message: str) -> None:
        # Called with the lock held. Every later append fails too: the file's tail is unknown.
        self._error = JournalWriteError(message + "; no further create will be sent")
        self._cond.notify_all()
        raise self._error

    def close(self) -> None:
        """Close the file (records already appended are durable)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            # A leader may be fsyncing without the lock: closing (or reusing) its fd under it
            # would fail that fsync, or sync another file.
            while self._syncing:
                self._cond.wait()
            os.close(self._fd)

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
