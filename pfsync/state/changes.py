"""Pure transitions of a Lockfile: each takes a state and returns a new one (no I/O).

Used by the journal fold (pending → created / failed / uncertain) and by the `pfsync state`
commands (forget, move, import). A retired id always goes to its address's history, with when and
why, so no id pfsync ever knew is silently lost.

    CreateOutcomes(lockfile)     the four below, many in one pass (the journal fold)
    start_pending(lockfile, address, pending)
    record_created(lockfile, address, idempotency_key, trigger_id, created_at, status, at)
    record_failed(lockfile, address, idempotency_key)
    record_uncertain(lockfile, address, idempotency_key, reason)
    forget(lockfile, address, at) -> (lockfile, Forgotten)
    move(lockfile, old, new)
    record_import(lockfile, address, trigger_id, body, revision, file, at, force)
    pending_create(pending) -> PendingCreate     a journal's pending record, as the lockfile's
    merge_run(newer, events, lock_id) -> MergeResult
        a run's events merged by address into a lockfile that changed underneath it

Each raises StateChangeError (a complete user message) when the change does not make sense.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pfsync.errors import StateChangeError
from pfsync.state.journal_records import Created, Event, Failed, Pending, Uncertain
from pfsync.state.lockfile import Lockfile
from pfsync.state.trigger_records import (
    ORIGIN_CREATED,
    ORIGIN_IMPORTED,
    REASON_OVERWRITTEN,
    REASON_REMOVED,
    REASON_REPLACED,
    HistoryEntry,
    PendingCreate,
    TriggerRecord,
)
from pfsync.support.canonical import body_digest
from pfsync.support.invocation import BARE, Invocation
from pfsync.support.textsafety import shown_id

NO_OUTCOME_REASON = "the run stopped before the outcome of the create was recorded"


def _history_of(lockfile: Lockfile, address: str) -> tuple[HistoryEntry, ...]:
    """The history a new record for `address` starts with (earlier record, else forgotten)."""
    record = lockfile.triggers.get(address)
    if record is not None:
        return record.history
    return lockfile.forgotten.get(address, ())


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


class CreateOutcomes:
    """A lockfile taking many create events in one pass: the journal fold.

    The functions below copy the lockfile's tables for each change, which is what a single
    change wants but made folding n events cost n copies of up to n records (quadratic). This
    changes one private copy of each table in place and makes the new Lockfile once, at the end.
    Each method is the transition of the function of the same name.
    """

    def __init__(self, lockfile: Lockfile) -> None:
        self._base = lockfile
        self.triggers = dict(lockfile.triggers)
        self.pending = dict(lockfile.pending)
        self.forgotten = dict(lockfile.forgotten)

    def lockfile(self) -> Lockfile:
        """The lockfile with every change so far."""
        return replace(
            self._base,
            triggers=dict(self.triggers),
            pending=dict(self.pending),
            forgotten=dict(self.forgotten),
        )

    def start_pending(self, address: str, pending: PendingCreate) -> None:
        """Record a create that has started (a retry replaces the earlier pending create)."""
        self.pending[address] = pending

    def _pending_for(self, address: str, idempotency_key: str) -> PendingCreate:
        pending = self.pending.get(address)
        if pending is None or pending.idempotency_key != idempotency_key:
            raise StateChangeError(
                f"an outcome was recorded for {address} (Idempotency-Key {idempotency_key}) "
                "but no such create was started"
            )
        return pending

    def record_created(
        self,
        address: str,
        idempotency_key: str,
        trigger_id: str | None,
        created_at: str | None,
        status: str | None,
        at: str,
    ) -> None:
        """The pending create becomes the record; a replaced id goes to history."""
        pending = self._pending_for(address, idempotency_key)
        old = self.triggers.get(address)
        history = old.history if old is not None else self.forgotten.get(address, ())
        if old is not None:
            history = (*history, old.retired(REASON_REPLACED, at))
        self.triggers[address] = TriggerRecord(
            id=trigger_id,
            origin=ORIGIN_CREATED,
            created_at=created_at,
            status=status,
            revision=pending.trigger.revision,
            body=pending.trigger.body,
            digest=pending.trigger.digest,
            file=pending.trigger.file,
            history=history,
            document_digest=pending.trigger.document_digest,
        )
        del self.pending[address]
        self.forgotten.pop(address, None)

    def record_failed(self, address: str, idempotency_key: str) -> None:
        """Surely nothing was created, so it is not pending any more."""
        self._pending_for(address, idempotency_key)
        del self.pending[address]

    def record_uncertain(self, address: str, idempotency_key: str, reason: str) -> None:
        """The create may have happened: it stays pending, with the reason it is uncertain."""
        pending = self._pending_for(address, idempotency_key)
        self.pending[address] = replace(pending, reason=reason)


class Forgotten(enum.Enum):
    """What `forget` removed."""

    RECORD = "record"  # the trigger record (its id moved to history)
    PENDING = "pending"  # only the uncertain create; the address's record is kept


def forget(lockfile: Lockfile, address: str, at: str) -> tuple[Lockfile, Forgotten]:
    """`state rm`: settle an uncertain create if there is one, else forget the record."""
    if address in lockfile.pending:
        # "rm" answers the uncertain remedy "the create did not happen": keep the record a
        # pending replace would have retired, so the replace is simply planned again.
        return replace(lockfile, pending=_without(lockfile.pending, address)), Forgotten.PENDING
    record = lockfile.triggers.get(address)
    if record is None:
        raise StateChangeError(f"{address} is not in the lockfile; nothing to forget")
    history = (*record.history, record.retired(REASON_REMOVED, at))
    return (
        replace(
            lockfile,
            triggers=_without(lockfile.triggers, address),
            forgotten={**lockfile.forgotten, address: history},
        ),
        Forgotten.RECORD,
    )


def move(lockfile: Lockfile, old: str, new: str, invocation: Invocation = BARE) -> Lockfile:
    """`state mv`: the record (and any pending create) of `old` now belongs to `new`
    (`invocation` builds the command a refusal names)."""
    if not lockfile.recorded(old):
        raise StateChangeError(f"{old} is not in the lockfile; nothing to move")
    if lockfile.recorded(new):
        raise StateChangeError(
            f"{new} is already in the lockfile; run `{invocation.command('state rm', new)}` "
            "first if it is really to be forgotten"
        )
    if old.split("/", 1)[0] != new.split("/", 1)[0]:
        raise StateChangeError(
            f"cannot move {old} to {new}: a trigger belongs to one business for good (a "
            "different business needs its own trigger)"
        )
    triggers = _without(lockfile.triggers, old)
    if old in lockfile.triggers:
        record = lockfile.triggers[old]
        triggers[new] = replace(record, history=(*lockfile.forgotten.get(new, ()), *record.history))
    pending = _without(lockfile.pending, old)
    if old in lockfile.pending:
        pending[new] = lockfile.pending[old]
    forgotten = (
        _without(lockfile.forgotten, new) if old in lockfile.triggers else lockfile.forgotten
    )
    return replace(lockfile, triggers=triggers, pending=pending, forgotten=forgotten)


def record_import(
    lockfile: Lockfile,
    address: str,
    trigger_id: str,
    body: dict[str, Any],
    revision: int,
    file: str,
    at: str,
    force: bool,
) -> Lockfile:
    """`state import`: record an existing trigger for `address` with the manifest's body."""
    history = _history_of(lockfile, address)
    old = lockfile.triggers.get(address)
    pending = lockfile.pending.get(address)
    document_digest = None
    if pending is not None:
        # Settles the uncertain create: the trigger found in Pocketflows is its outcome. With the
        # body it was sent with, it came from the same manifest document (which --after reads).
        if pending.trigger.digest == body_digest(body):
            document_digest = pending.trigger.document_digest
        if old is not None:
            history = (*history, old.retired(REASON_REPLACED, at))
    elif old is not None:
        if not force:
            shown_id = old.id if old.id is not None else "with unknown id"
            raise StateChangeError(
                f"{address} is already recorded (trigger {shown_id}); pass --force to "
                "overwrite the record (its id is kept in the history)"
            )
        history = (*history, old.retired(REASON_OVERWRITTEN, at))
    record = TriggerRecord(
        id=trigger_id,
        origin=ORIGIN_IMPORTED,
        created_at=None,
        status=None,
        revision=revision,
        body=body,
        digest=body_digest(body),
        file=file,
        history=history,
        document_digest=document_digest,
    )
    return replace(
        lockfile,
        triggers={**lockfile.triggers, address: record},
        pending=_without(lockfile.pending, address),
        forgotten=_without(lockfile.forgotten, address),
    )


def pending_create(event: Pending) -> PendingCreate:
    """The lockfile's pending create for a journal's `pending` record (no outcome yet)."""
    return PendingCreate(event.trigger, event.idempotency_key, event.at, NO_OUTCOME_REASON)


@dataclass
class MergeResult:
    """A lockfile with a run's events merged in, and what could not be merged."""

    lockfile: Lockfile
    warnings: list[str]


def merge_run(
    newer: Lockfile,
    events: Sequence[Event],
    lock_id: str | None,
    invocation: Invocation = BARE,
) -> MergeResult:
    """`newer` with this run's events merged by address, never overwriting what it records.

    An address whose pending record (same Idempotency-Key) is still in `newer` takes the outcome
    as a fold would. A created trigger whose address has no record any more is recorded (it
    exists); one whose address now records another trigger (or another pending create) is left
    as it is, its id kept in the address's history, with a warning. A create that may have
    happened (uncertain, or in flight) whose pending record was removed meanwhile is pending
    again: a person's `state rm` made before it could land must not turn it into a `create`.
    `invocation` builds the commands the warnings name.
    """
    ours: dict[str, Pending] = {}
    outcomes: dict[str, Event] = {}
    for event in events:
        if isinstance(event, Pending):
            ours[event.address] = event
        else:
            outcomes[event.address] = event
    changes = CreateOutcomes(newer)
    warnings = []
    for address, pending in ours.items():
        warning = _merge_address(changes, pending, outcomes.get(address), invocation)
        if warning is not None:
            warnings.append(f"{address}: {warning}")
    merged = changes.lockfile()
    if merged.lock is not None and merged.lock.id == lock_id:
        merged = replace(merged, lock=None)
    return MergeResult(merged, warnings)


def _merge_address(
    changes: CreateOutcomes, pending: Pending, outcome: Event | None, invocation: Invocation
) -> str | None:
    """Merge one address's create into `changes`; the warning when it could not be as it was."""
    address = pending.address
    theirs = changes.pending.get(address)
    still_ours = theirs is not None and theirs.idempotency_key == pending.idempotency_key
    if isinstance(outcome, Created):
        if not still_ours:
            if address in changes.triggers or theirs is not None:
                return _kept_in_history(changes, pending, outcome, invocation)
            changes.start_pending(address, pending_create(pending))  # it exists: record it
        changes.record_created(
            address,
            pending.idempotency_key,
            outcome.id,
            outcome.created_at,
            outcome.status,
            outcome.at,
        )
    elif isinstance(outcome, Failed) and still_ours:
        changes.record_failed(address, pending.idempotency_key)
    elif isinstance(outcome, Uncertain) and still_ours:
        changes.record_uncertain(address, pending.idempotency_key, outcome.reason)
    elif (
        (outcome is None or isinstance(outcome, Uncertain))
        and not still_ours
        and theirs is None
        and address not in changes.triggers
    ):
        changes.start_pending(address, pending_create(pending))
        if isinstance(outcome, Uncertain):
            changes.record_uncertain(address, pending.idempotency_key, outcome.reason)
        return (
            "its create by this run may have happened, but its pending record was removed "
            f"meanwhile; it is uncertain again: look {invocation.where_to_look}, then "
            f"`{invocation.command('state import', address, 'ID')}` if it is there, else "
            f"`{invocation.command('state rm', address)}`"
        )
    return None


def _kept_in_history(
    changes: CreateOutcomes, pending: Pending, outcome: Created, invocation: Invocation
) -> str | None:
    """A trigger this run created whose address now records another trigger or another pending
    create: its id goes to the address's history, never over what is recorded."""
    address = pending.address
    created = shown_id(outcome.id, "(id unknown)")
    entry = HistoryEntry(
        outcome.id, outcome.at, REASON_OVERWRITTEN, "created", pending.trigger.revision
    )
    record = changes.triggers.get(address)
    if record is not None:
        if record.id == outcome.id:
            return None
        changes.triggers[address] = replace(record, history=(*record.history, entry))
        return (
            f"this run created trigger {created}, but the lockfile now records "
            f"{shown_id(record.id, '(id unknown)')} for it (changed meanwhile); it was not "
            "overwritten and is kept in the address's history: look at both "
            f"{invocation.where_to_look}"
        )
    changes.forgotten[address] = (*changes.forgotten.get(address, ()), entry)
    return (
        f"this run created trigger {created}, but another create of it is pending in the "
        "lockfile now; it was not overwritten and is kept in the address's history: look "
        f"{invocation.where_to_look}, then `{invocation.command('state import', address, 'ID')}`"
    )
