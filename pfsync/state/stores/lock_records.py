"""The lock a run holds inside a remote store's lockfile: made here, and explained when held.

new_lock(operation) -> StateLockRecord        naming this process (and its CI run)
held_message(store, holder, waited) -> str    why the lock cannot be taken, what to do
"""

from __future__ import annotations

import os
import socket
import uuid

from pfsync.state.ci_job import ci_run_url
from pfsync.state.lockfile import StateLockRecord, utc_now
from pfsync.state.stores.base import StateStore


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
