"""The journal's record types (one JSON object per line of `pfsync.lock.journal`).

    Begin      first line: the lineage and serial of the lockfile the journal belongs to
    Pending    before a POST: address, idempotency_key (fresh UUID, also the header), digest,
               body, revision, file, replaces (the id a replace retires, or None)
    Created    a 2xx: address, idempotency_key, id (None when the response had no usable id),
               created_at, status
    Failed     the API refused it (not created, not pending any more): message, http_status
    Uncertain  the create may have happened: reason (the address stays pending)
    Folded     written just before the folded lockfile replaces the old one (crash recovery)

Every record has `at` (UTC, filled in when the record is made). The schema is
`lockfile.schema.json#/$defs/journal_record`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from pfsync.models import DesiredTrigger
from pfsync.state.lockfile import utc_now

if TYPE_CHECKING:
    from jsonschema.protocols import Validator


@dataclass(frozen=True)
class Begin:
    """Ties the journal to its lockfile."""

    type: ClassVar[str] = "begin"
    lineage: str
    serial: int
    at: str = field(default_factory=utc_now)


@dataclass(frozen=True)
class Pending:
    """A create is about to be sent; durable before the POST."""

    type: ClassVar[str] = "pending"
    trigger: DesiredTrigger
    idempotency_key: str
    at: str = field(default_factory=utc_now)

    @property
    def address(self) -> str:
        """The address about to be created."""
        return self.trigger.address


@dataclass(frozen=True)
class Created:
    """The API answered 2xx: the trigger exists (id None when no usable id came back)."""

    type: ClassVar[str] = "created"
    address: str
    idempotency_key: str
    id: str | None
    created_at: str | None
    status: str | None
    at: str = field(default_factory=utc_now)


@dataclass(frozen=True)
class Failed:
    """The API refused the create; nothing was created."""

    type: ClassVar[str] = "failed"
    address: str
    idempotency_key: str
    message: str
    http_status: int | None
    at: str = field(default_factory=utc_now)


@dataclass(frozen=True)
class Uncertain:
    """The create may or may not have happened."""

    type: ClassVar[str] = "uncertain"
    address: str
    idempotency_key: str
    reason: str
    at: str = field(default_factory=utc_now)


@dataclass(frozen=True)
class Folded:
    """The lockfile about to be written by the fold: its serial and the sha256 of its text."""

    type: ClassVar[str] = "folded"
    serial: int
    sha256: str
    at: str = field(default_factory=utc_now)


Outcome = Created | Failed | Uncertain
Record = Begin | Pending | Created | Failed | Uncertain | Folded
Event = Pending | Created | Failed | Uncertain  # what changes a lockfile (a fold applies it)
_TYPES: dict[str, type[Record]] = {
    cls.type: cls for cls in (Begin, Pending, Created, Failed, Uncertain, Folded)
}


_FIELDS = {kind: tuple(f.name for f in fields(cls)) for kind, cls in _TYPES.items()}


def record_to_json(record: Record) -> dict[str, Any]:
    """The JSON object written for `record`."""
    if isinstance(record, Pending):
        return {
            "type": record.type,
            "address": record.address,
            "idempotency_key": record.idempotency_key,
            **record.trigger.record_fields(),
            "at": record.at,
        }
    # Fields hold JSON values already: no deep copy (asdict) needed to serialise them.
    return {"type": record.type, **{name: getattr(record, name) for name in _FIELDS[record.type]}}


def record_from_json(data: Any) -> Record:
    """The record a journal line holds; ValueError saying why when it is not one."""
    from pfsync.schemas import LOCKFILE, check

    kind = data.get("type") if isinstance(data, dict) else None
    if not isinstance(kind, str) or kind not in _TYPES:
        raise ValueError("not a journal record (unknown or missing `type`)")
    # Each record schema pins its `type`, so `journal_record`'s oneOf holds exactly when the
    # schema of the named type does: check that one alone instead of all six.
    if not check(LOCKFILE, f"/$defs/journal_{kind}")(data):
        error = next(_kind_validator(kind).iter_errors(data), None)
        raise ValueError(error.message if error else "not a journal record")
    if kind == Pending.type:
        trigger = DesiredTrigger.from_record(data["address"], data)
        return Pending(trigger, data["idempotency_key"], data["at"])
    fields = {k: v for k, v in data.items() if k != "type"}
    return _TYPES[data["type"]](**fields)


@functools.cache
def _kind_validator(kind: str) -> Validator:
    """jsonschema's validator of one record type, to word what is wrong with a bad line."""
    from pfsync.schemas import LOCKFILE, validator

    return validator(LOCKFILE).evolve(schema={"$ref": f"{LOCKFILE}#/$defs/journal_{kind}"})
