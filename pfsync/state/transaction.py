"""The roles every state store's changes play, whichever store holds the lockfile.

    Transaction     the state a command changes, under the store's lock (`open_state` yields one):
                    `pfsync.state.access.StateTransaction` (the file store: flock and a journal
                    file) and `pfsync.state.stores.session.RemoteState` (git, s3: a lock record
                    and compare-and-swap writes)
    RunJournal      what apply's creates are recorded in, started and finished by its transaction:
                    `pfsync.state.journal.Journal` (a file beside the lockfile) and
                    `pfsync.state.stores.store_journal.StoreJournal` (batched writes to the store)

A transaction owns its journal: `finish_journal()` finishes the one `start_journal()` started, so
no caller ever needs to know which kind it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pfsync.config import Config
    from pfsync.state.journal_records import Pending, Record
    from pfsync.state.lockfile import Lockfile


class RunJournal(Protocol):
    """Apply's record of its creates: a pending record durable before each POST."""

    def announce(self, pendings: Sequence[Pending]) -> None:
        """The run's pending records in sending order, before the first is appended."""
        ...

    def append(self, record: Record) -> None:
        """Record `record`; a pending one is durable when this returns (JournalWriteError if
        not: no POST may follow)."""
        ...

    def unwritten_created(self) -> set[str]:
        """Addresses created by this run whose outcome no durable write carries yet."""
        ...

    def close(self) -> None:
        """No more appends (records already appended stay as they are)."""
        ...


class Transaction(Protocol):
    """The lockfile held by a state-changing command; every change is one durable write."""

    @property
    def config(self) -> Config:
        """The configuration the state belongs to."""
        ...

    @property
    def lockfile(self) -> Lockfile | None:
        """The current state (None: no lockfile yet)."""
        ...

    @property
    def before_lock(self) -> Lockfile | None:
        """The state before this command took the lock (what a saved plan was made against)."""
        ...

    @property
    def where(self) -> str | None:
        """Where a remote store keeps the lockfile (`pfsync.lock on origin/main`); None for the
        file store, whose path says it."""
        ...

    @property
    def merge_warnings(self) -> int:
        """Outcomes a merge into a newer lockfile could not record as they were."""
        ...

    def write(self, new: Lockfile, what: str) -> Lockfile:
        """Store `new` (serial + 1) unless its content is unchanged; `what` names the change
        where the store keeps a message (a commit)."""
        ...

    def save(self, new: Lockfile) -> Lockfile:
        """`write` named after the command that holds the transaction."""
        ...

    def start_journal(self) -> RunJournal:
        """Open this transaction's journal (save a lockfile first)."""
        ...

    def finish_journal(self) -> Lockfile:
        """Close the journal `start_journal` opened, record its outcomes, release what it
        holds; returns the lockfile as recorded."""
        ...
