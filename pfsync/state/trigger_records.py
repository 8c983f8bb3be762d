"""The records a lockfile holds per address: the trigger recorded, its history, a pending create.

    TriggerRecord                 id (None: created, id unknown), origin, created_at, status,
                                  revision, body, digest, file, history (HistoryEntry, oldest first)
    HistoryEntry                  an earlier trigger of an address: its id, when and why it
                                  stopped being the record (REASON_*)
    PendingCreate                 a create whose outcome is unknown: idempotency_key, digest, body,
                                  revision, file, replaces (old id or None), started_at, reason

Apart from the file (`pfsync.state.lockfile`: reading, checking and writing `pfsync.lock`)
because the planner, the journal fold and the declarations work on these values and never on the
file. Values are frozen; `to_json` gives each one's lockfile form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pfsync.models import DesiredTrigger

ORIGIN_CREATED = "created"
ORIGIN_IMPORTED = "imported"
REASON_REPLACED = "replaced"
REASON_REMOVED = "removed"
REASON_OVERWRITTEN = "overwritten"
REASON_MOVED = "moved"
REASON_RESENT = "resent"


@dataclass(frozen=True)
class HistoryEntry:
    """An earlier trigger of an address: its id, when and why it stopped being the record."""

    id: str | None
    at: str
    reason: str  # replaced | removed | overwritten | moved
    origin: str
    revision: int
    moved_from: str | None = None  # moved: the address it was recorded under before
    declared_by: str | None = None  # the `file:line` of the declaration that made the change
    intent: str | None = None  # resent: the Idempotency-Key of the create sent once more

    def to_json(self) -> dict[str, Any]:
        """The lockfile form (the optional fields only when set: older files stay identical)."""
        document: dict[str, Any] = {
            "id": self.id,
            "at": self.at,
            "reason": self.reason,
            "origin": self.origin,
            "revision": self.revision,
        }
        if self.moved_from is not None:
            document["moved_from"] = self.moved_from
        if self.declared_by is not None:
            document["declared_by"] = self.declared_by
        if self.intent is not None:
            document["intent"] = self.intent
        return document


@dataclass(frozen=True)
class TriggerRecord:
    """The trigger recorded for one address."""

    id: str | None
    origin: str  # created | imported
    created_at: str | None
    status: str | None
    revision: int
    body: dict[str, Any]
    digest: str
    file: str
    history: tuple[HistoryEntry, ...] = ()
    # the digest of the manifest document it was created from, before values were substituted
    # (None: imported, or created before pfsync recorded it); what `--after` compares
    document_digest: str | None = None

    def retired(self, reason: str, at: str, declared_by: str | None = None) -> HistoryEntry:
        """This record as a history entry."""
        return HistoryEntry(
            self.id, at, reason, self.origin, self.revision, declared_by=declared_by
        )

    def replaced_still_active(self) -> list[str]:
        """The ids this address's triggers replaced that no one has said are gone (a `Removed`
        settles one): each stays active in Pocketflows until a person deactivates it."""
        active: dict[str, None] = {}
        for entry in self.history:
            if entry.id is None:
                continue
            if entry.reason == REASON_REPLACED:
                active[entry.id] = None
            elif entry.reason == REASON_REMOVED:
                active.pop(entry.id, None)
        return list(active)

    def to_json(self) -> dict[str, Any]:
        """The lockfile form (`document_digest` only when known: older files stay identical)."""
        document = {
            "id": self.id,
            "origin": self.origin,
            "created_at": self.created_at,
            "status": self.status,
            "revision": self.revision,
            "body": self.body,
            "digest": self.digest,
            "file": self.file,
            "history": [entry.to_json() for entry in self.history],
        }
        if self.document_digest is not None:
            document["document_digest"] = self.document_digest
        return document


@dataclass(frozen=True)
class PendingCreate:
    """A create that was started and whose outcome is not known (an `uncertain` address).

    `trigger.replaces` is the id a replace retires once created, None for a first create.
    """

    trigger: DesiredTrigger
    idempotency_key: str
    started_at: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The lockfile form."""
        return {
            "idempotency_key": self.idempotency_key,
            **self.trigger.record_fields(),
            "started_at": self.started_at,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, address: str, data: dict[str, Any]) -> PendingCreate:
        """The pending create a lockfile records for `address` (already schema-checked)."""
        trigger = DesiredTrigger.from_record(address, data)
        return cls(trigger, data["idempotency_key"], data["started_at"], data["reason"])
