"""`state push --to STORE` and `state pull [--from STORE]`: move a lockfile between stores.

The lockfile moves as it is, lineage and serial included, so the record's identity survives the
move. A copy that would replace another lineage, go back to an older serial, or differ at the same
serial is refused unless forced: each of those could drop creates from the record.

STORE names: `file:PATH`, `git` (the configured or default remote and branch),
`git:REMOTE:BRANCH`, `s3` (the configured bucket and key) or `s3://BUCKET/KEY` (with the
configured endpoint and region when the configured store is s3, else AWS's defaults).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from pfsync.config import Config, StateConfig, journal_beside
from pfsync.errors import LockfileError, StateChangeError
from pfsync.state.lockfile import Lockfile
from pfsync.state.stores.base import StateStore
from pfsync.support.invocation import Invocation

STORE_FORMS = "file:PATH, git, git:REMOTE:BRANCH, s3 or s3://BUCKET/KEY"


def store_named(spec: str, config: Config) -> StateStore:
    """The store a STORE argument names."""
    from pfsync.state.stores.file import FileStore

    kind, _, rest = spec.partition(":")
    if kind == "file" and rest:
        return FileStore(Path(rest).absolute())
    if kind == "git":
        from pfsync.state.stores.git import GitStore

        if not rest:
            return GitStore.for_config(config)
        remote, _, branch = rest.partition(":")
        if remote and branch:
            return GitStore.for_config(config, remote, branch)
    if kind == "s3":
        from pfsync.state.stores.s3 import S3Store, valid_location

        if not rest:
            if config.state.store != "s3":
                raise StateChangeError(
                    "`s3` names the configured s3 store, and pfsync.yaml configures "
                    f"{config.state.store}; name the object: s3://BUCKET/KEY"
                )
            return S3Store.for_config(config)
        bucket, _, key = rest.removeprefix("//").partition("/")
        if rest.startswith("//") and valid_location(bucket, key):
            return S3Store.at(config, bucket, key)
    raise StateChangeError(f"{spec!r} names no state store; use one of: {STORE_FORMS}")


def _check_copy(source: Lockfile, target: Lockfile | None, where: str, force: bool) -> None:
    if target is None or force:
        return
    again = "; check both, then pass --force to replace it"
    if target.lineage != source.lineage:
        raise StateChangeError(
            f"{where} holds another lockfile (lineage {target.lineage}, not {source.lineage})"
            f"{again}"
        )
    if target.serial > source.serial:
        raise StateChangeError(
            f"{where} is newer (serial {target.serial}) than the copy (serial {source.serial}): "
            f"replacing it could forget creates recorded since{again}"
        )
    if target.serial == source.serial and not target.same_content(source):
        raise StateChangeError(
            f"{where} differs from the copy at the same serial {source.serial}{again}"
        )
    # Serials count every write (a remote store writes several per apply), so a newer serial
    # does not prove a copy holds everything: refuse to drop anything the target records.
    missing = sorted(_trigger_ids(target) - _trigger_ids(source))
    missing += sorted(
        f"the uncertain create of {address}"
        for address, pending in target.pending.items()
        if not _settles(source, address, pending.idempotency_key)
    )
    if missing:
        listed = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise StateChangeError(
            f"{where} records what the copy lacks ({listed}): replacing it would forget "
            f"creates{again}"
        )


def _trigger_ids(lockfile: Lockfile) -> set[str]:
    """Every trigger id a lockfile knows, history included."""
    ids = {f"trigger {r.id}" for r in lockfile.triggers.values() if r.id}
    for record in lockfile.triggers.values():
        ids.update(f"trigger {entry.id}" for entry in record.history if entry.id)
    for entries in lockfile.forgotten.values():
        ids.update(f"trigger {entry.id}" for entry in entries if entry.id)
    return ids


def _settles(lockfile: Lockfile, address: str, key: str) -> bool:
    """Whether `lockfile` still holds, or has settled, the pending create `key` of `address`."""
    pending = lockfile.pending.get(address)
    if pending is not None and pending.idempotency_key == key:
        return True
    return address in lockfile.triggers or address in lockfile.forgotten


def copy_lockfile(
    source: Lockfile, target: StateStore, force: bool, what: str, invocation: Invocation
) -> list[str]:
    """Write `source` (as it is) into `target`; the lines to print (`invocation` builds the
    command a refusal names)."""
    snapshot = target.read()
    current = snapshot.lockfile
    if current is not None and current.lock is not None:
        raise StateChangeError(
            f"{target.description} is locked by {current.lock.describe()}; wait for that run, "
            f"or `{invocation.command('state unlock', current.lock.id)}` if it is dead"
        )
    _check_copy(source, current, target.description, force)
    copy = replace(source, lock=None)
    if current is not None and current.dumps() == copy.dumps():
        return [f"{target.description} already holds this lockfile (serial {copy.serial})."]
    target.write(copy, snapshot, f"pfsync: {what} (serial {copy.serial}) [skip ci]")
    return [
        f"Wrote the lockfile (lineage {copy.lineage}, serial {copy.serial}) to "
        f"{target.description}."
    ]


def push(config: Config, to: str, force: bool, lock_timeout: float) -> list[str]:
    """`state push --to STORE`: the local lockfile file into STORE."""
    from pfsync.state.access import locked_state

    local = replace(config, state=StateConfig())
    target = store_named(to, config)
    with (
        locked_state(local, lock_timeout) as transaction,
        _file_target(target, config, lock_timeout),
    ):
        source = transaction.lockfile
        if source is None:
            raise StateChangeError(f"there is no lockfile at {config.shown_lockfile} to push")
        return copy_lockfile(source, target, force, "state push", config.invocation)


@contextlib.contextmanager
def _file_target(target: StateStore, config: Config, lock_timeout: float) -> Iterator[None]:
    """A lockfile file pushed into is another repository's state: written under its state lock,
    as that repository's pfsync writes it, with the journal an interrupted apply left beside it
    folded in first (so the copy is checked against every create it records)."""
    from pfsync.state.journal import settle_journal
    from pfsync.state.lock import state_lock
    from pfsync.state.lockfile import read_lockfile
    from pfsync.state.stores.file import FileStore

    if not isinstance(target, FileStore) or target.path.resolve() == config.lockfile.resolve():
        yield  # (pushing the lockfile onto itself: its lock is held already)
        return
    if not target.path.parent.is_dir():
        raise StateChangeError(
            f"cannot push into {target.description}: its folder does not exist; create it first"
        )
    with state_lock(target.path, lock_timeout):
        try:
            settle_journal(journal_beside(target.path), target.path, read_lockfile(target.path))
        except LockfileError as exc:
            raise StateChangeError(f"cannot push into {target.description}: {exc}") from None
        yield


def pull(config: Config, source_spec: str | None, force: bool, lock_timeout: float) -> list[str]:
    """`state pull`: the configured store's lockfile (or STORE's) into the local lockfile file."""
    from pfsync.state.access import locked_state
    from pfsync.state.stores import open_store
    from pfsync.state.stores.file import FileStore

    source_store = store_named(source_spec, config) if source_spec else open_store(config)
    snapshot = source_store.read()
    if snapshot.lockfile is None:
        raise StateChangeError(f"there is no lockfile in {source_store.description} to pull")
    lines = [f"Warning: {warning}" for warning in snapshot.warnings]
    if snapshot.lockfile.lock is not None:
        lines.append(
            f"Warning: {source_store.description} is locked by "
            f"{snapshot.lockfile.lock.describe()}; this copy may soon be out of date."
        )
    local = replace(config, state=StateConfig())
    with locked_state(local, lock_timeout):  # folds a local journal first
        return lines + copy_lockfile(
            snapshot.lockfile, FileStore(config.lockfile), force, "state pull", config.invocation
        )
