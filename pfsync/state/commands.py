"""The state-changing `pfsync state` commands: rm, mv, import, unlock. No Pocketflows call.

Each takes the state lock (file store) or checks that no run holds the store's lock (git), folds
a journal left by a crash, checks the whole request before changing anything, writes the
lockfile atomically or as one compare-and-swap write to the store, and returns the lines to
print. `no_push` (git) commits the change on the current branch instead, for a pull request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pfsync.config import Config
from pfsync.config.rehearsal import is_sandbox
from pfsync.errors import StateChangeError
from pfsync.models import DesiredTrigger
from pfsync.state.access import open_state
from pfsync.state.changes import Forgotten, forget, move, record_import
from pfsync.state.lockfile import Lockfile, utc_now
from pfsync.state.stores import lost_lockfile
from pfsync.state.transaction import Transaction

_ADDRESS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}/[a-z0-9][a-z0-9._-]{0,99}")
_TRIGGER_ID_RE = re.compile(r"\S{1,200}")


def check_address(address: str) -> None:
    """StateChangeError unless `address` looks like BUSINESS/KEY."""
    if not _ADDRESS_RE.fullmatch(address):
        raise StateChangeError(
            f"{address!r} is not an address; an address is BUSINESS/KEY, e.g. biz_123/welcome"
        )


def no_sandbox_lockfile(config: Config, what: str) -> StateChangeError:
    """The refusal of a sandbox-mode change when sandbox mode has no lockfile yet."""
    return StateChangeError(
        f"there is no sandbox lockfile at {config.shown_lockfile} yet, so there is nothing to "
        f"{what}: `{config.invocation.command('apply')}` starts one"
    )


def _list_command(config: Config) -> str:
    return config.invocation.command("state list")


def _current(transaction: Transaction, what: str) -> Lockfile:
    if transaction.lockfile is None:
        if is_sandbox(transaction.config):
            raise no_sandbox_lockfile(transaction.config, what)
        where, restore = lost_lockfile(transaction.config)
        raise StateChangeError(
            f"there is no lockfile at {where}, so there is nothing to {what}. If it was lost, "
            f"{restore}"
        )
    return transaction.lockfile


def _written(config: Config, no_push: bool) -> list[str]:
    """Where a remote store's change went."""
    if not config.state.is_remote:
        return []
    if no_push:
        return [
            "Committed the lockfile on the current branch (not pushed): propose it in a pull "
            "request."
        ]
    if config.state.store == "s3":
        return [f"Wrote the lockfile to s3://{config.state.bucket}/{config.state.key}."]
    return [f"Pushed the lockfile to {config.state.remote}."]


def remove_addresses(
    config: Config, addresses: Sequence[str], lock_timeout: float, no_push: bool = False
) -> list[str]:
    """`state rm`: forget each address (or settle its uncertain create); nothing remote."""
    for address in addresses:
        check_address(address)
    with open_state(
        config, lock_timeout, operation="state rm", take_lock=False, no_push=no_push
    ) as transaction:
        lockfile = _current(transaction, "remove")
        missing = [a for a in dict.fromkeys(addresses) if not lockfile.recorded(a)]
        if missing:
            raise StateChangeError(
                f"not in the lockfile: {', '.join(missing)}; nothing was changed "
                f"(`{_list_command(config)}` shows what is recorded)"
            )
        messages = []
        at = utc_now()
        for address in dict.fromkeys(addresses):
            record = lockfile.triggers.get(address)
            lockfile, what = forget(lockfile, address, at)
            if what is Forgotten.PENDING:
                kept = f"; its recorded trigger {record.id} is kept" if record else ""
                messages.append(
                    f"Settled {address}: the uncertain create is forgotten{kept}. Nothing was "
                    "changed in Pocketflows."
                )
            else:
                assert record is not None
                shown = record.id or "(id unknown)"
                messages.append(
                    f"Removed {address} from the lockfile; trigger {shown} moved to its "
                    "history. Nothing was deleted in Pocketflows: deactivate the trigger there "
                    "if it should stop running."
                )
        transaction.save(lockfile)
    return messages + _written(config, no_push)


def move_address(
    config: Config, old: str, new: str, lock_timeout: float, no_push: bool = False
) -> list[str]:
    """`state mv`: the record of OLD now belongs to NEW (a renamed key)."""
    check_address(old)
    check_address(new)
    with open_state(
        config, lock_timeout, operation="state mv", take_lock=False, no_push=no_push
    ) as transaction:
        lockfile = _current(transaction, "move")
        transaction.save(move(lockfile, old, new, config.invocation))
    moved = f"Moved {old} to {new}. Nothing was changed in Pocketflows."
    return [moved, *_written(config, no_push)]


def import_triggers(
    config: Config,
    imports: Sequence[tuple[DesiredTrigger, str]],
    force: bool,
    lock_timeout: float,
    no_push: bool = False,
) -> list[str]:
    """`state import`: record existing triggers for declared addresses, with their bodies.

    All in one change (one commit or write of a remote store): any refused pair, and nothing is
    recorded.
    """
    for _manifest, trigger_id in imports:
        if not _TRIGGER_ID_RE.fullmatch(trigger_id):
            raise StateChangeError(
                f"{trigger_id!r} is not a trigger id (no spaces, 1-200 characters)"
            )
    addresses = [manifest.address for manifest, _id in imports]
    twice = sorted({address for address in addresses if addresses.count(address) > 1})
    if twice:
        raise StateChangeError(f"{', '.join(twice)} given more than once; nothing was recorded")
    messages: list[str] = []
    with open_state(
        config, lock_timeout, operation="state import", take_lock=False, no_push=no_push
    ) as transaction:
        lockfile = transaction.lockfile
        created = lockfile is None
        if lockfile is None:
            # Adopting triggers made by hand is a deliberate first step: create the lockfile.
            lockfile = Lockfile.new(config.api_url, config.environment)
        now = utc_now()
        for manifest, trigger_id in imports:
            address = manifest.address
            old = lockfile.triggers.get(address)
            pending = lockfile.pending.get(address)
            lockfile = record_import(
                lockfile,
                address,
                trigger_id,
                manifest.body,
                manifest.revision,
                manifest.file,
                now,
                force,
            )
            messages.append(f"Imported trigger {trigger_id} as {address} ({manifest.source}).")
            if pending is not None:
                messages.append("The uncertain create of this address is settled.")
            if old is not None and (pending is not None or force):
                shown = old.id or "(id unknown)"
                messages.append(f"The earlier trigger {shown} moved to its history.")
        saved = transaction.save(lockfile)
    if created and is_sandbox(config):
        messages.append(
            f"Created the sandbox lockfile {config.shown_lockfile} (serial {saved.serial})."
        )
    elif created:
        messages.append(
            f"Created the lockfile {config.lockfile.name} (serial {saved.serial}); commit it."
            if not config.state.is_remote
            else f"Created the lockfile {config.lockfile.name} (serial {saved.serial})."
        )
    return messages + _written(config, no_push)


def unlock(config: Config, lock_id: str) -> list[str]:
    """`state unlock`: remove a remote store's lock left by a dead run; pending creates stay."""
    from dataclasses import replace

    from pfsync.state.stores import next_lockfile, open_store

    if not config.state.is_remote:
        raise StateChangeError(
            "the file store keeps no lock record: its lock (an flock on "
            f"{config.lockfile.name}.lck) is released by the operating system when the holding "
            "process exits, so there is nothing to unlock"
        )
    store = open_store(config)
    snapshot = store.read()
    held = snapshot.lockfile.lock if snapshot.lockfile is not None else None
    if held is None:
        raise StateChangeError(f"the state lock of {store.description} is not held")
    if held.id != lock_id:
        raise StateChangeError(
            f"the state lock of {store.description} is {held.id}, not {lock_id} (held by "
            f"{held.describe()}); nothing was changed"
        )
    assert snapshot.lockfile is not None
    unlocked = next_lockfile(snapshot.lockfile, replace(snapshot.lockfile, lock=None))
    assert unlocked is not None
    store.write(unlocked, snapshot, f"pfsync: unlock {lock_id} [skip ci]")
    pending = len(unlocked.pending)
    return [
        f"Removed the lock {lock_id} ({held.describe()}).",
        f"{pending} pending create(s) stay uncertain: `{config.invocation.command('plan')}` lists "
        f"them; look for each {config.invocation.where_to_look}, then "
        f"`{config.invocation.command('state import', 'ADDRESS', 'ID')}` or "
        f"`{config.invocation.command('state rm', 'ADDRESS')}`.",
    ]
