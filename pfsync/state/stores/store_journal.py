"""The applier's journal over a remote store (git, s3): pending records written batch by batch.

    journal = state.start_journal()    (`pfsync.state.stores.session.RemoteState`)
    journal.announce(pendings)         every pending record of the run, in sending order
    journal.append(record)             a pending record: returns once its batch is in the store;
                                       an outcome: buffered for the next write
    state.finish_journal()             the final write: `final_events()`, the lock released

A write that fails stops the run before anything more is sent; what was pending in the store
stays uncertain for the next run.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pfsync.errors import JournalWriteError, StoreError
from pfsync.state.journal import fold
from pfsync.state.journal_records import Created, Event, Failed, Pending, Record, Uncertain

if TYPE_CHECKING:
    from pfsync.state.transaction import Transaction

NOT_SENT = "not sent: the run stopped before this create was sent"


class StoreJournal:
    """The applier's journal over a remote store: pipelined, batched write-ahead intents.

    `announce` gives every pending record in sending order. A background writer keeps the
    batch after the one being sent durable already, so a write's latency overlaps the creates
    in flight; `append(pending)` returns once that pending record's batch is in the store.
    Outcomes are buffered and go out with the next write.
    """

    def __init__(self, state: Transaction, batch_size: int) -> None:
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
                    else StoreError(f"cannot write {self.state.where}: {type(exc).__name__}: {exc}")
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
