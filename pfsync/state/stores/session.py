"""The apply protocol over a remote store (git, s3): every step one compare-and-swap write.

    with remote_state(config, store, ...) as state: ...
        1. read the store (for git: the checkout must be the branch tip)
        2. take the lock: write a lock record (or wait up to lock_timeout, else name the holder)
        3. state.start_journal() -> StoreJournal: before a batch of creates is sent, its pending
           records are written; the next batch's are written while the current one is in flight
        4. outcomes go out with the next write (or when a batch's worth has gathered)
        5. state.finish_journal(journal): the last outcomes, the unsent batches' pending records
           withdrawn, and the lock released, in one final write

A write that fails stops the run before anything more is sent; what was pending in the store stays
uncertain for the next run. When the lockfile changed underneath (a person ran `state unlock`
meanwhile), the run's outcomes are merged by address into the newer lockfile, never overwriting it
(`merge_run`). Without a lock (`take_lock=False`: state rm/mv/import) a change is one write.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pfsync.errors import JournalWriteError, LockHeldError, SignalStop, StoreConflict, StoreError
from pfsync.state.journal import Event, fold, pending_create
from pfsync.state.journal_records import Created, Failed, Pending, Record, Uncertain
from pfsync.state.lockfile import (
    REASON_OVERWRITTEN,
    HistoryEntry,
    Lockfile,
    StateLockRecord,
    belonging,
    utc_now,
)
from pfsync.state.stores.base import Snapshot, StateStore, next_lockfile
from pfsync.support.textsafety import shown_id

if TYPE_CHECKING:
    from pfsync.config import Config
    from pfsync.state.journal import Journal

LOCK_POLL_SECONDS = 2.0
FINAL_WRITE_ATTEMPTS = 5
NOT_SENT = "not sent: the run stopped before this create was sent"
COMMIT_SUFFIX = " [skip ci]"


def ci_run_url(environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """The URL of the CI run this process belongs to, when a known CI says it."""
    github = [environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if all(github):
        return f"{github[0]}/{github[1]}/actions/runs/{github[2]}"
    return environ.get("CI_JOB_URL") or None


def new_lock(operation: str) -> StateLockRecord:
    """A lock record naming this process."""
    return StateLockRecord(
        id=str(uuid.uuid4()),
        host=socket.gethostname() or "unknown",
        pid=os.getpid(),
        run_url=ci_run_url(),
        since=utc_now(),
        operation=operation,
    )


def held_message(store: StateStore, holder: StateLockRecord, waited: float) -> str:
    """Why a command cannot take the lock, and how a person frees a dead run's lock."""
    after = f" after waiting {waited:g}s" if waited > 0 else ""
    return (
        f"the state lock of {store.description} is held by {holder.describe()}{after}. Wait for "
        "that run to finish, or pass --lock-timeout SECONDS. If that run is dead (its job was "
        f"killed), a person removes its lock with `pfsync state unlock {holder.id}`; its "
        "pending creates stay uncertain"
    )


@dataclass
class MergeResult:
    """A lockfile with a run's events merged in, and what could not be merged."""

    lockfile: Lockfile
    warnings: list[str]


def merge_run(newer: Lockfile, events: Sequence[Event], lock_id: str | None) -> MergeResult:
    """`newer` with this run's events merged by address, never overwriting what it records.

    An address whose pending record (same Idempotency-Key) is still in `newer` takes the outcome
    as a fold would. A created trigger whose address has no record any more is recorded (it
    exists); one whose address now records another trigger (or another pending create) is left
    as it is, its id kept in the address's history, with a warning. A create that may have
    happened (uncertain, or in flight) whose pending record was removed meanwhile is pending
    again: a person's `state rm` made before it could land must not turn it into a `create`.
    """
    from pfsync.state.changes import CreateOutcomes

    ours: dict[str, Pending] = {}
    outcomes: dict[str, Event] = {}
    for event in events:
        if isinstance(event, Pending):
            ours[event.address] = event
        else:
            outcomes[event.address] = event
    changes = CreateOutcomes(newer)
    warnings = []
    for address, pending in ours.items():
        outcome = outcomes.get(address)
        theirs = changes.pending.get(address)
        still_ours = theirs is not None and theirs.idempotency_key == pending.idempotency_key
        if isinstance(outcome, Created):
            if not still_ours and address in changes.triggers:
                record = changes.triggers[address]
                if record.id != outcome.id:
                    warnings.append(
                        f"{address}: this run created trigger "
                        f"{shown_id(outcome.id, '(id unknown)')}, but the lockfile now records "
                        f"{shown_id(record.id, '(id unknown)')} for it (changed meanwhile); it was "
                        "not overwritten and is kept in the address's history: look at both in "
                        "Pocketflows"
                    )
                    entry = HistoryEntry(
                        outcome.id,
                        outcome.at,
                        REASON_OVERWRITTEN,
                        "created",
                        pending.trigger.revision,
                    )
                    changes.triggers[address] = replace(record, history=(*record.history, entry))
                continue
            if not still_ours and theirs is not None:
                warnings.append(
                    f"{address}: this run created trigger {shown_id(outcome.id, '(id unknown)')}, "
                    "but another create of it is pending in the lockfile now; it was not "
                    "overwritten and is kept in the address's history: look in Pocketflows, then "
                    "`pfsync state import`"
                )
                entry = HistoryEntry(
                    outcome.id, outcome.at, REASON_OVERWRITTEN, "created", pending.trigger.revision
                )
                changes.forgotten[address] = (*changes.forgotten.get(address, ()), entry)
                continue
            if not still_ours:
                changes.start_pending(address, pending_create(pending))
            changes.record_created(
                address,
                pending.idempotency_key,
                outcome.id,
                outcome.created_at,
                outcome.status,
                outcome.at,
            )
        elif isinstance(outcome, Failed) and still_ours:
            changes.record_failed(address, pending.idempotency_key)
        elif isinstance(outcome, Uncertain) and still_ours:
            changes.record_uncertain(address, pending.idempotency_key, outcome.reason)
        elif (
            (outcome is None or isinstance(outcome, Uncertain))
            and not still_ours
            and theirs is None
            and address not in changes.triggers
        ):
            changes.start_pending(address, pending_create(pending))
            if isinstance(outcome, Uncertain):
                changes.record_uncertain(address, pending.idempotency_key, outcome.reason)
            warnings.append(
                f"{address}: its create by this run may have happened, but its pending record "
                "was removed meanwhile; it is uncertain again: look in Pocketflows, then "
                "`pfsync state import` or `pfsync state rm`"
            )
    merged = changes.lockfile()
    if merged.lock is not None and merged.lock.id == lock_id:
        merged = replace(merged, lock=None)
    return MergeResult(merged, warnings)


class RemoteState:
    """A remote store's lockfile held by this run; the same surface as StateTransaction."""

    def __init__(
        self,
        config: Config,
        store: StateStore,
        snapshot: Snapshot,
        lock: StateLockRecord | None,
        before_lock: Lockfile | None,
        warn: Callable[[str], None],
    ) -> None:
        self.config = config
        self.store = store
        self.snapshot = snapshot
        self.lock = lock
        self.before_lock = before_lock  # what a saved plan was made against
        self.warn = warn
        self.finished = False
        self._write_lock = threading.Lock()
        self.operation = "record state changes"  # names the commits of `save`
        self.merge_warnings = 0  # outcomes a merge could not record as they were

    @property
    def where(self) -> str:
        """Where the lockfile is, for the plan's header: `pfsync.lock on origin/main`."""
        return self.store.description

    @property
    def lockfile(self) -> Lockfile | None:
        """The lockfile as this run last wrote or read it."""
        return self.snapshot.lockfile

    def _message(self, what: str) -> str:
        return f"pfsync: {what}{COMMIT_SUFFIX}"

    def write(self, new: Lockfile, what: str) -> Lockfile:
        """Compare-and-swap `new` (keeping this run's lock) over the last snapshot."""
        with self._write_lock:
            before = self.snapshot.lockfile
            after = next_lockfile(before, replace(new, lock=self.lock))
            if after is None:
                assert before is not None
                return before
            self.snapshot = self.store.write(after, self.snapshot, self._message(what))
            return after

    def save(self, new: Lockfile) -> Lockfile:
        """Write `new` to the store (state commands; apply's first lockfile)."""
        return self.write(new, self.operation)

    def start_journal(self) -> StoreJournal:
        """The applier's journal: pending records durable in the store before each batch."""
        if self.lockfile is None:
            raise ValueError("save the lockfile before starting its journal")
        return StoreJournal(self, self.config.state.intent_batch)

    def finish_journal(self, journal: Journal | StoreJournal) -> Lockfile:
        """The final write: last outcomes, unsent creates withdrawn, the lock released."""
        assert isinstance(journal, StoreJournal), "a remote store's journal"
        journal.close()
        events = journal.final_events()
        current = self.lockfile
        assert current is not None
        problem: StoreError | None = journal.error
        if problem is None:
            try:
                return self._final(fold(current, events), "record apply outcomes, unlock")
            except StoreError as exc:  # moved on, or a passing failure: merge into a fresh read
                problem = exc
        if isinstance(problem, StoreConflict):
            self.warn(f"Warning: {problem}; merging this run's outcomes by address into it")
        return self._merge_final(journal.all_events())

    def _final(self, lockfile: Lockfile, what: str) -> Lockfile:
        lock, self.lock = self.lock, None
        try:
            saved = self.write(lockfile, what)
        except BaseException:
            self.lock = lock
            raise
        self.finished = True
        return saved

    def _merge_final(self, events: Sequence[Event]) -> Lockfile:
        lock_id = self.lock.id if self.lock else None
        for _ in range(FINAL_WRITE_ATTEMPTS):
            self.snapshot = self.store.read()
            newer = self.snapshot.lockfile
            lineage = self.before_lock.lineage if self.before_lock else None
            if newer is None or (lineage is not None and newer.lineage != lineage):
                # The record was removed or replaced meanwhile: writing this run's creates as
                # a new lockfile would hide the loss (the next apply would create every other
                # trigger again). A person restores the lockfile where its store keeps it (an
                # earlier object version for s3, the branch's history for git); the ids are
                # printed.
                from pfsync.state.stores import lost_lockfile

                what = "no lockfile any more" if newer is None else "another lockfile (lineage)"
                _where, restore = lost_lockfile(self.config)
                raise StoreError(
                    f"{self.store.description} holds {what} since this run started; nothing "
                    f"was written. {restore[:1].upper()}{restore[1:]}, then record this run's "
                    "creates with `pfsync state import`"
                )
            merged = merge_run(newer, events, lock_id)
            for warning in merged.warnings:
                self.warn(f"Warning: {warning}")
            self.merge_warnings = len(merged.warnings)
            ours, theirs = self.lock, newer.lock
            self.lock = theirs if theirs is not None and theirs.id != lock_id else None
            try:
                saved = self.write(merged.lockfile, "merge apply outcomes")
            except StoreConflict:
                self.lock = ours
                continue
            except BaseException:
                self.lock = ours  # still ours to release, or for a person to unlock
                raise
            self.lock = None
            self.finished = True
            return saved
        raise StoreError(
            f"the lockfile {self.store.description} kept changing; this run's outcomes could not "
            "be merged"
        )

    def release(self) -> None:
        """Give the lock back (nothing else changes); a failure leaves it for `state unlock`."""
        if self.finished or self.lock is None or self.lockfile is None:
            return
        lock = self.lock
        held = self.lockfile.lock
        try:
            try:
                if held is not None and held.id != lock.id:
                    raise StoreConflict("another run holds the lock now")  # merge: keep theirs
                self._final(self.lockfile, "unlock")
            except StoreConflict:
                # Someone else wrote meanwhile (state unlock, or a merge): release by merging.
                self._merge_final([])
        except StoreError as exc:
            self.warn(
                f"Error: the state lock {lock.id} could not be released ({exc}). Once the store "
                f"is reachable, and no pfsync run is active, run `pfsync state unlock {lock.id}`"
            )


@contextlib.contextmanager
def remote_state(
    config: Config,
    store: StateStore,
    *,
    lock_timeout: float = 0.0,
    operation: str = "apply",
    take_lock: bool = True,
    require_tip: bool = False,
    refuse_missing: Callable[[], Exception] | None = None,
    needs_lock: Callable[[Lockfile | None], bool] = lambda lockfile: True,
    warn: Callable[[str], None] = lambda line: None,
) -> Iterator[RemoteState]:
    """Read the store and (with `take_lock`) hold its lock for the block.

    `needs_lock(lockfile)` False (apply with nothing to send) skips the lock and its commit; the
    lock write is a compare-and-swap on the snapshot just judged, so a change in between makes
    the loop read and judge again.
    """
    deadline = time.monotonic() + lock_timeout
    while True:
        snapshot = store.read()
        for warning in snapshot.warnings:
            warn(f"Warning: {warning}")
        before = belonging(snapshot.lockfile, config)
        snapshot = replace(snapshot, lockfile=before)  # an empty record's adopted api_url
        if require_tip:
            check = getattr(store, "require_tip_checkout", None)
            if check is not None:
                check(snapshot)
        if before is None and refuse_missing is not None:
            raise refuse_missing()
        holder = before.lock if before is not None else None
        if holder is not None:
            if time.monotonic() < deadline:
                time.sleep(min(LOCK_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
                continue
            raise LockHeldError(held_message(store, holder, lock_timeout))
        state = RemoteState(config, store, snapshot, None, before, warn)
        state.operation = operation
        if not take_lock or not needs_lock(before):
            break
        lock = new_lock(operation)
        state.lock = lock
        try:
            state.write(
                before or Lockfile.new(config.api_url, config.environment), f"lock for {operation}"
            )
        except StoreConflict:
            continue  # someone wrote between our read and our write: look again
        break
    try:
        with _stop_on_termination(take_lock):
            yield state
    finally:
        if take_lock:
            state.release()


@contextlib.contextmanager
def _stop_on_termination(active: bool) -> Iterator[None]:
    """While a lock is held: SIGTERM (a cancelled CI job) or SIGHUP (a closed terminal) unwinds
    through `release` instead of killing the process with the lock left for a person.

    While creates are being sent, apply's own handlers stop the run gracefully instead.
    """
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SignalStop(signum)

    stopping = [signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):  # not on Windows
        stopping.append(signal.SIGHUP)
    previous = {sig: signal.signal(sig, stop) for sig in stopping}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class StoreJournal:
    """The applier's journal over a remote store: pipelined, batched write-ahead intents.

    `announce` gives every pending record in sending order. A background writer keeps the
    batch after the one being sent durable already, so a write's latency overlaps the creates
    in flight; `append(pending)` returns once that pending record's batch is in the store.
    Outcomes are buffered and go out with the next write.
    """

    def __init__(self, state: RemoteState, batch_size: int) -> None:
        self.state = state
        self.batch_size = max(1, batch_size)
        self.error: StoreError | None = None
        self._cond = threading.Condition()
        self._batches: list[list[Pending]] = []
        self._index: dict[str, int] = {}
        self._resends: set[str] = set()
        self._written = 0  # batches durable in the store
        # Batches a failed write carried: it may have landed all the same (a remote store's write
        # given up at its bound while its request was on its way). None of them was sent.
        self._maybe_written = 0
        self._requested = -1  # the highest batch a worker is sending from
        self._asked: set[str] = set()  # addresses whose POST may have been sent
        self._outcomes: list[Event] = []  # not yet written
        self._unresolved: list[int] = []  # per batch: creates without an outcome yet
        self._settled = 0  # batches before this one all have their outcomes
        self._history: list[Event] = []  # every event of the run, for a merge
        self._closed = False
        self._writer: threading.Thread | None = None

    def announce(self, pendings: Sequence[Pending]) -> None:
        """The pending records of this run, in the order they will be sent."""
        current = self.state.lockfile
        with self._cond:
            for n, pending in enumerate(pendings):
                self._index[pending.address] = n
                recorded = current.pending.get(pending.address) if current else None
                if recorded is not None and recorded.idempotency_key == pending.idempotency_key:
                    self._resends.add(pending.address)
            self._batches = [
                list(pendings[n : n + self.batch_size])
                for n in range(0, len(pendings), self.batch_size)
            ]
            self._unresolved = [len(batch) for batch in self._batches]
        self._writer = threading.Thread(target=self._write_loop, name="pfsync-store", daemon=True)
        self._writer.start()

    def append(self, record: Record) -> None:
        """A pending record: wait until its batch is durable. An outcome: buffer it."""
        with self._cond:
            if self._closed:
                raise JournalWriteError("the run's store session is closed")
            if not isinstance(record, Pending):
                assert isinstance(record, (Created, Failed, Uncertain))
                self._outcomes.append(record)
                self._history.append(record)
                n = self._index.get(record.address)
                if n is not None:
                    self._unresolved[n // self.batch_size] -= 1
                self._cond.notify_all()
                return
            batch = self._index[record.address] // self.batch_size
            self._requested = max(self._requested, batch)
            self._cond.notify_all()
            while self._written <= batch and self.error is None and not self._closed:
                self._cond.wait()
            if self._closed:
                raise JournalWriteError("the run's store session is closed; not sent")
            if self.error is not None:
                # Even when this batch is durable: once a write failed, nothing more is sent.
                raise JournalWriteError(f"{self.error}; no further create will be sent")
            self._asked.add(record.address)

    def _target(self) -> int:
        """How many batches the next write makes durable.

        The batch being sent, and the next one only once every earlier batch has its outcomes
        (which go out in the same write): the store then never holds more than two batches'
        pending records without outcomes, so a kill leaves at most those uncertain.
        """
        while self._settled < len(self._batches) and self._unresolved[self._settled] <= 0:
            self._settled += 1
        ahead = 2 if self._settled >= self._requested else 1
        return min(len(self._batches), max(self._written, self._requested + ahead))

    def _want_write(self) -> bool:
        if self.error is not None or self._closed:
            return False  # closed: the final write carries what is left
        return self._written < self._target() or len(self._outcomes) >= self.batch_size

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._want_write():
                    if self._closed:
                        return
                    self._cond.wait()
                target = self._target()
                pendings: list[Event] = [
                    p for b in self._batches[self._written : target] for p in b
                ]
                outcomes, self._outcomes = self._outcomes, []
            current = self.state.lockfile
            assert current is not None
            try:
                self.state.write(fold(current, [*outcomes, *pendings]), "record pending creates")
            except Exception as exc:  # any failure: no worker may wait for this write for ever
                error = (
                    exc
                    if isinstance(exc, StoreError)
                    else StoreError(
                        f"cannot write {self.state.store.description}: {type(exc).__name__}: {exc}"
                    )
                )
                with self._cond:
                    self.error = error
                    self._outcomes = outcomes + self._outcomes
                    # In the history, so that the final merge withdraws them if they landed
                    # (a re-send's pending record was in the store before: left as it is).
                    self._maybe_written = target
                    self._history.extend(p for p in pendings if p.address not in self._resends)
                    self._cond.notify_all()
                return
            with self._cond:
                self._history.extend(pendings)
                self._written = target
                self._cond.notify_all()

    def close(self) -> None:
        """Stop the writer; appends after this fail (an abandoned request stays pending)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join()

    def final_events(self) -> list[Event]:
        """Unwritten outcomes, and the withdrawal of written creates that were never sent
        (those of a failed write too: it may have landed)."""
        with self._cond:
            written = max(self._written, self._maybe_written)
            withdrawn: list[Event] = [
                Failed(p.address, p.idempotency_key, NOT_SENT, None)
                for batch in self._batches[:written]
                for p in batch
                if p.address not in self._asked and p.address not in self._resends
            ]
            return [*self._outcomes, *withdrawn]

    def unwritten_created(self) -> set[str]:
        """Addresses created by this run whose outcome no store write has carried."""
        with self._cond:
            return {o.address for o in self._outcomes if isinstance(o, Created)}

    def all_events(self) -> list[Event]:
        """Every event of the run that may be in the store or must be (for a merge)."""
        with self._cond:
            withdrawn = self.final_events()
            return [*self._history, *withdrawn[len(self._outcomes) :]]
