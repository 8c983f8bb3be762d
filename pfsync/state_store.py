"""The lockfile, its journal and the state lock put together for commands.

read_state(config) -> StateView
    read-only (plan, state list/show): the verified lockfile, its API URL checked, with any
    unfolded journal folded in memory; takes no lock and writes nothing
with locked_state(config, lock_timeout) as transaction: ...
    state-changing commands (state rm/mv/import, apply): holds the state lock, reads and
    verifies the lockfile, refuses another API URL, folds a journal left by a crash, then
    yields a StateTransaction:
        transaction.lockfile                 the current state (None: no lockfile yet)
        transaction.save(new) -> Lockfile    atomic write; no-op when content is unchanged
        transaction.start_journal() -> Journal
        transaction.finish_journal(journal) -> Lockfile
                                             close, fold into the lockfile, remove journal
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from pfsync.config import Config
from pfsync.journal import Journal, folded_state, read_journal, settle_journal
from pfsync.lockfile import Lockfile, read_lockfile, require_api_url, save_lockfile
from pfsync.statelock import state_lock


@dataclass(frozen=True)
class StateView:
    """The lockfile as read (`on_disk`) and with an unfolded journal folded in (`state`)."""

    on_disk: Lockfile | None
    state: Lockfile | None
    journal_unfolded: bool


def read_state(config: Config) -> StateView:
    """The current state without taking the lock or writing anything."""
    on_disk = read_lockfile(config.lockfile)
    require_api_url(on_disk, config.api_url, config.lockfile)
    state = folded_state(on_disk, config.journal)
    unfolded = state is not on_disk or _journal_has_events(config)
    return StateView(on_disk, state, unfolded)


def _journal_has_events(config: Config) -> bool:
    contents = read_journal(config.journal)
    return contents is not None and bool(contents.events) and contents.folded is None


class StateTransaction:
    """The state under the lock; every change is saved atomically."""

    def __init__(self, config: Config, lockfile: Lockfile | None) -> None:
        self.config = config
        self.lockfile = lockfile

    def save(self, new: Lockfile) -> Lockfile:
        """Write `new` (serial + 1) unless its content equals the current state."""
        self.lockfile = save_lockfile(self.config.lockfile, self.lockfile, new)
        return self.lockfile

    def start_journal(self) -> Journal:
        """Open the journal of the saved lockfile (save a new lockfile first)."""
        if self.lockfile is None or self.lockfile.serial < 1:
            raise ValueError("save the lockfile before starting its journal")
        return Journal.open(self.config.journal, self.lockfile)

    def finish_journal(self, journal: Journal) -> Lockfile:
        """Close `journal`, fold it into the lockfile durably, and remove it."""
        journal.close()
        settled = settle_journal(self.config.journal, self.config.lockfile, self.lockfile)
        assert settled is not None  # a journal is only started for a saved lockfile
        self.lockfile = settled
        return settled


@contextlib.contextmanager
def locked_state(config: Config, lock_timeout: float = 0.0) -> Iterator[StateTransaction]:
    """Hold the state lock; yield the verified state with any crashed run's journal folded."""
    with state_lock(config.lockfile, lock_timeout):
        lockfile = read_lockfile(config.lockfile)
        require_api_url(lockfile, config.api_url, config.lockfile)
        lockfile = settle_journal(config.journal, config.lockfile, lockfile)
        yield StateTransaction(config, lockfile)
