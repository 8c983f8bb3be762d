"""The apply protocol over a remote store (git, s3): every step one compare-and-swap write.

    with remote_state(config, store, ...) as state: ...
        1. read the store (for git: the checkout must be the branch tip)
        2. take the lock: write a lock record (or wait up to lock_timeout, else name the holder)
        3. state.start_journal() -> StoreJournal: before a batch of creates is sent, its pending
           records are written; the next batch's are written while the current one is in flight
        4. outcomes go out with the next write (or when a batch's worth has gathered)
        5. state.finish_journal(): the last outcomes, the unsent batches' pending records
           withdrawn, and the lock released, in one final write

A write that fails stops the run before anything more is sent; what was pending in the store stays
uncertain for the next run. When the lockfile changed underneath (a person ran `state unlock`
meanwhile), the run's outcomes are merged by address into the newer lockfile, never overwriting it
(`pfsync.state.changes.merge_run`). Without a lock (`take_lock=False`: state rm/mv/import) a
change is one write.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from pfsync.errors import LockHeldError, SignalStop, StoreConflict, StoreError
from pfsync.state.changes import merge_run
from pfsync.state.ci_job import ci_job
from pfsync.state.journal import fold
from pfsync.state.journal_records import Event
from pfsync.state.lock_record import StateLockRecord
from pfsync.state.lockfile import Lockfile, belonging
from pfsync.state.stores.base import Snapshot, StateStore, next_lockfile
from pfsync.state.stores.lock_records import held_message, new_lock, taken_over, takeover_notice
from pfsync.state.stores.store_journal import StoreJournal
from pfsync.support.signals import raising, stop_signals

if TYPE_CHECKING:
    from pfsync.config import Config

# A runner waiting on another's lock looks again soon (a short holder, such as a state command
# or an apply with little to send, is often gone within a second), then ever less often: each
# look is a git fetch or an S3 GET, so the interval doubles up to the cap.
LOCK_POLL_FIRST_SECONDS = 0.1
LOCK_POLL_MAX_SECONDS = 2.0
FINAL_WRITE_ATTEMPTS = 5
COMMIT_SUFFIX = " [skip ci]"


class RemoteState:
    """A remote store's lockfile held by this run: a `pfsync.state.transaction.Transaction`."""

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
        self._journal: StoreJournal | None = None

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
        self._journal = StoreJournal(self, self.config.state.intent_batch)
        return self._journal

    def finish_journal(self) -> Lockfile:
        """The final write: last outcomes, unsent creates withdrawn, the lock released."""
        journal = self._journal
        if journal is None:
            raise ValueError("no journal was started")
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
                    f"was written. {restore[:1].upper()}{restore[1:]}, then record each of this "
                    "run's creates with "
                    f"`{self.config.invocation.command('state import', 'ADDRESS', 'ID')}`"
                )
            merged = merge_run(newer, events, lock_id, self.config.invocation)
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
                "is reachable, and no pfsync run is active, run "
                f"`{self.config.invocation.command('state unlock', lock.id)}`"
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
    poll = LOCK_POLL_FIRST_SECONDS
    while True:
        snapshot = store.read()
        for warning in snapshot.warnings:
            warn(f"Warning: {warning}")
        before = belonging(snapshot.lockfile, config)
        snapshot = replace(snapshot, lockfile=before)  # an empty record's adopted api_url
        if require_tip:
            store.require_tip_checkout(snapshot)
        if before is None and refuse_missing is not None:
            raise refuse_missing()
        holder = before.lock if before is not None else None
        # A later attempt of the CI job whose lock this is: that attempt has ended, and its lock
        # is taken over (and released at the end) even when there is nothing to send.
        dead = holder if take_lock and holder and taken_over(holder, ci_job()) else None
        if holder is not None and dead is None:
            if time.monotonic() < deadline:
                time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
                poll = min(poll * 2, LOCK_POLL_MAX_SECONDS)
                continue
            raise LockHeldError(held_message(store, holder, lock_timeout, config.invocation))
        state = RemoteState(config, store, snapshot, None, before, warn)
        state.operation = operation
        if not take_lock or (dead is None and not needs_lock(before)):
            break
        state.lock = new_lock(operation, took_over=dead)
        try:
            state.write(
                before or Lockfile.new(config.api_url, config.environment), f"lock for {operation}"
            )
        except StoreConflict:
            continue  # someone wrote between our read and our write: look again
        if dead is not None:
            warn(takeover_notice(dead))
        break
    # While the lock is held, SIGTERM (a cancelled CI job) or SIGHUP (a closed terminal) unwinds
    # through `release` instead of killing the process with the lock left for a person. While
    # creates are being sent, apply's own handlers stop the run gracefully instead.
    stopping = stop_signals(interrupt=False) if take_lock else ()
    try:
        with raising(stopping, SignalStop):
            yield state
    finally:
        if take_lock:
            state.release()
