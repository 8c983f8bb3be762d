"""The lock a run holds inside a remote store's lockfile: made here, and explained when held.

new_lock(operation, took_over) -> StateLockRecord   naming this process and its CI job
taken_over(holder, job) -> bool                      whether `job` may take `holder`'s over
takeover_notice(holder) -> str                       what a takeover says on stderr
held_message(store, holder, waited, invocation) -> str  why the lock is not taken, what to do
"""

from __future__ import annotations

import os
import socket
import uuid

from pfsync.state.ci_job import CiJob, ci_job, ci_run_url
from pfsync.state.lock_record import StateLockRecord
from pfsync.state.lockfile import utc_now
from pfsync.state.stores.base import StateStore
from pfsync.support.invocation import Invocation
from pfsync.support.textsafety import escape


def new_lock(operation: str, took_over: StateLockRecord | None = None) -> StateLockRecord:
    """A lock record naming this process (and the dead attempt's lock it takes over)."""
    replaced = None
    if took_over is not None and took_over.ci_job is not None:
        replaced = (took_over.id, took_over.ci_job)
    return StateLockRecord(
        id=str(uuid.uuid4()),
        host=socket.gethostname() or "unknown",
        pid=os.getpid(),
        run_url=ci_run_url(),
        since=utc_now(),
        operation=operation,
        ci_job=ci_job(),
        took_over=replaced,
    )


def taken_over(holder: StateLockRecord, job: CiJob | None) -> bool:
    """Whether `job` is a later attempt of the CI job holding `holder`: that attempt has ended
    (a CI re-runs or retries a job only then), so its lock is dead. Any other holder (another
    job or run, the same or a later attempt, no CI job known) may still be running."""
    return job is not None and holder.ci_job is not None and job.takes_over(holder.ci_job)


def takeover_notice(holder: StateLockRecord) -> str:
    """What a takeover says on stderr."""
    assert holder.ci_job is not None  # only a CI job's lock is taken over
    return escape(
        f"Took over the state lock of {holder.ci_job.attempt_words()} of this job, which ended "
        "without releasing it (a CI runs a job again only once its earlier attempt has ended): "
        f"{holder.describe()}. That attempt's pending creates stay uncertain; they are not sent "
        "again."
    )


def held_message(
    store: StateStore, holder: StateLockRecord, waited: float, invocation: Invocation
) -> str:
    """Why a command cannot take the lock, and how a person frees a dead run's lock."""
    after = f" after waiting {waited:g}s" if waited > 0 else ""
    return (
        f"the state lock of {store.description} is held by {holder.describe()}{after}. Wait for "
        "that run to finish, or pass --lock-timeout SECONDS. If that run is dead (its job was "
        "killed), a person removes its lock with "
        f"`{invocation.command('state unlock', holder.id)}`; its "
        "pending creates stay uncertain"
    )
