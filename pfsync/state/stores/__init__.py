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

from typing import TYPE_CHECKING

from pfsync.state.stores.base import Snapshot, StateStore, next_lockfile

if TYPE_CHECKING:
    from pfsync.config import Config

__all__ = ["Snapshot", "StateStore", "lost_lockfile", "next_lockfile", "open_store"]


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


def lost_lockfile(config: Config) -> tuple[str, str]:
    """Where the lockfile lives, as a person would look for it, and how to get it back there
    when it was lost (an error message names both)."""
    state = config.state
    if state.store == "s3":
        from pfsync.state.stores.s3 import restore_advice
        from pfsync.state.stores.s3_errors import object_url

        where = object_url(state.bucket or "", state.key or "")
        return where, restore_advice(where)
    if state.store == "git":
        from pfsync.errors import StoreError
        from pfsync.state.stores.git import GitStore

        try:  # as the store resolves it: the path from the repository's top, the branch
            store = GitStore.for_config(config)
        except StoreError:
            branch = state.branch or "(the current branch)"
            return (
                f"{config.shown_lockfile} on {state.remote}/{branch}",
                "restore it on the state branch from the commit before it was removed",
            )
        return store.description, store.restore_advice("the commit before it was removed")
    from pfsync.state.lockfile import restore_from_git

    return config.shown_lockfile, restore_from_git(config.shown_lockfile)
