"""State stores: where the lockfile lives, read and written with compare-and-swap.

    StateStore          read() -> Snapshot (the lockfile and an opaque version);
                        write(lockfile, expected, message) -> Snapshot, a compare-and-swap that
                        fails with StoreConflict when the store no longer holds `expected`
    Snapshot            lockfile (None: the store holds none yet) and version
    open_store(config)  the configured store: `file` (the default), `git` or `s3`

    StoreError          the store cannot be read or written (unreachable, refused, permission)
    StoreConflict       the lockfile changed underneath since it was read

The `file` store keeps today's local behaviour: flock on a sidecar and a journal during apply
(`pfsync.state.access`). Remote stores (`git`, `s3`) carry the lock inside the lockfile and make
every change one compare-and-swap write; the apply protocol over them is
`pfsync.state.stores.session`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pfsync.config import Config
    from pfsync.state.lockfile import Lockfile


@dataclass(frozen=True)
class Snapshot:
    """The lockfile a store holds and the version it was read at."""

    lockfile: Lockfile | None
    version: str
    warnings: tuple[str, ...] = ()


class StateStore(Protocol):
    """Read, and compare-and-swap write, one lockfile."""

    @property
    def description(self) -> str:
        """Where the lockfile is, for messages: `pfsync.lock on origin/main`."""
        ...

    def read(self, *, strict: bool = True) -> Snapshot:
        """The current lockfile; `strict=False` may fall back to a cached copy with a warning."""
        ...

    def write(self, lockfile: Lockfile, expected: Snapshot, message: str) -> Snapshot:
        """Store `lockfile` if the store still holds `expected`; StoreConflict if not."""
        ...


def next_lockfile(before: Lockfile | None, after: Lockfile) -> Lockfile | None:
    """`after` with the serial that follows `before`'s, or None when nothing changed."""
    from dataclasses import replace

    if before is not None and before.serial > 0 and before.same_content(after):
        return None
    return replace(after, serial=(before.serial if before is not None else 0) + 1)


def open_store(config: Config) -> StateStore:
    """The store `config.state` names."""
    if config.state.store == "git":
        from pfsync.state.stores.git import GitStore

        return GitStore.for_config(config)
    if config.state.store == "s3":
        from pfsync.state.stores.s3 import S3Store

        return S3Store.for_config(config)
    from pfsync.state.stores.file import FileStore

    return FileStore(config.lockfile)
