"""The lockfile, its journal and the state lock put together for commands.

read_state(config) -> StateView
    read-only (plan, state list/show): the verified lockfile, its API URL checked, with any
    unfolded journal folded in memory; takes no lock and writes nothing. For a remote store
    (state.store: git) the store's lockfile (for git: the remote branch's, after a fetch)
with open_state(config, ...) as transaction: ...
    state-changing commands: `locked_state` for the file store, else the remote store's lock
    and compare-and-swap writes (`pfsync.state.stores.session.remote_state`)
with locked_state(config, lock_timeout) as transaction: ...
    state-changing commands (state rm/mv/import, apply): holds the state lock, reads and
    verifies the lockfile, refuses another API URL, folds a journal left by a crash, then
    yields a StateTransaction:
        transaction.lockfile                 the current state (None: no lockfile yet)
        transaction.save(new) -> Lockfile    atomic write; no-op when content is unchanged
        transaction.start_journal() -> Journal
        transaction.finish_journal() -> Lockfile
                                             close, fold into the lockfile, remove journal

Both kinds are a `pfsync.state.transaction.Transaction`, the only type callers see.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from pfsync.config import Config
from pfsync.state.journal import Journal, folded_state, read_journal, settle_journal
from pfsync.state.lock import state_lock
from pfsync.state.lockfile import Lockfile, belonging, read_lockfile, save_lockfile
from pfsync.state.transaction import Transaction


@dataclass(frozen=True)
class StateView:
    """The lockfile with an unfolded journal folded in, and what the reader should know."""

    state: Lockfile | None
    journal_unfolded: bool
    warnings: tuple[str, ...] = ()
    where: str | None = None  # a remote store's description: `pfsync.lock on origin/main`
    # Where the lockfile was read, field by field, and the version read (`Snapshot`'s).
    location: Mapping[str, str] = field(default_factory=dict)
    version: str | None = None


def read_state(config: Config) -> StateView:
    """The current state without taking the lock or writing anything."""
    if config.state.is_remote:
        from pfsync.state.stores import open_store

        store = open_store(config)
        snapshot = store.read(strict=False)
        lockfile = belonging(snapshot.lockfile, config)
        return StateView(
            lockfile,
            False,
            snapshot.warnings,
            store.description,
            snapshot.location,
            snapshot.shown_version,
        )
    on_disk = belonging(read_lockfile(config.lockfile), config, _journal_has_events(config))
    state = folded_state(on_disk, config.journal)
    unfolded = state is not on_disk or _journal_has_events(config)
    return StateView(state, unfolded, location={"path": config.shown_lockfile})


def _journal_has_events(config: Config) -> bool:
    contents = read_journal(config.journal)
    return contents is not None and bool(contents.events) and contents.folded is None


class StateTransaction:
    """The file store's state under the lock (a `Transaction`); every change saved atomically."""

    def __init__(self, config: Config, lockfile: Lockfile | None) -> None:
        self.config = config
        self.lockfile = lockfile
        self.before_lock = lockfile  # the state a saved plan was made against
        self.merge_warnings = 0  # only a remote store's merge has any
        self.where: str | None = None  # the file store: the lockfile's path says it
        self._journal: Journal | None = None

    def write(self, new: Lockfile, what: str) -> Lockfile:
        """Write `new` (serial + 1) unless its content equals the current state; a file keeps
        no message, so `what` is not recorded."""
        self.lockfile = save_lockfile(self.config.lockfile, self.lockfile, new)
        return self.lockfile

    def save(self, new: Lockfile) -> Lockfile:
        """Write `new` (serial + 1) unless its content equals the current state."""
        return self.write(new, "save")

    def start_journal(self) -> Journal:
        """Open the journal of the saved lockfile (save a new lockfile first)."""
        if self.lockfile is None or self.lockfile.serial < 1:
            raise ValueError("save the lockfile before starting its journal")
        self._journal = Journal.open(self.config.journal, self.lockfile)
        return self._journal

    def finish_journal(self) -> Lockfile:
        """Close the journal, fold it into the lockfile durably, and remove it."""
        if self._journal is None:
            raise ValueError("no journal was started")
        self._journal.close()
        settled = settle_journal(self.config.journal, self.config.lockfile, self.lockfile)
        assert settled is not None  # a journal is only started for a saved lockfile
        self.lockfile = settled
        return settled


@contextlib.contextmanager
def locked_state(config: Config, lock_timeout: float = 0.0) -> Iterator[StateTransaction]:
    """Hold the state lock; yield the verified state with any crashed run's journal folded."""
    # `lockfile: state/staging.lock` in a new repository: its folder holds the lock sidecar too.
    with contextlib.suppress(OSError):  # if it cannot be made, the lock says why
        config.lockfile.parent.mkdir(parents=True, exist_ok=True)
    with state_lock(config.lockfile, lock_timeout):
        lockfile = read_lockfile(config.lockfile)
        lockfile = belonging(lockfile, config, _journal_has_events(config))
        lockfile = settle_journal(config.journal, config.lockfile, lockfile)
        yield StateTransaction(config, lockfile)


@contextlib.contextmanager
def open_state(
    config: Config,
    lock_timeout: float = 0.0,
    *,
    operation: str,
    take_lock: bool = True,
    require_tip: bool = False,
    refuse_missing: Callable[[], Exception] | None = None,
    needs_lock: Callable[[Lockfile | None], bool] = lambda lockfile: True,
    no_push: bool = False,
    warn: Callable[[str], None] = lambda line: None,
) -> Iterator[Transaction]:
    """The state under the configured store's lock, for a command that changes it.

    The file store: flock and the journal (`refuse_missing` is the caller's to check).
    A remote store: its lock record (apply), or one compare-and-swap write per change (state
    commands, `take_lock=False`); `no_push` commits locally instead (git, for a pull request).
    """
    if not config.state.is_remote:
        with locked_state(config, lock_timeout) as transaction:
            yield transaction
        return
    from pfsync.state.stores import open_store
    from pfsync.state.stores.session import remote_state

    store = open_store(config)
    if no_push:
        from pfsync.state.stores.git import CheckedOutLockfile, GitStore

        if not isinstance(store, GitStore):
            from pfsync.errors import StoreError

            raise StoreError(f"--no-push is for the git store, not {config.state.store}")
        store = CheckedOutLockfile(store)
    with remote_state(
        config,
        store,
        lock_timeout=lock_timeout,
        operation=operation,
        take_lock=take_lock and not no_push,
        require_tip=require_tip,
        refuse_missing=refuse_missing,
        needs_lock=needs_lock,
        warn=warn,
    ) as state:
        yield state
