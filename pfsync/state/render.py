"""What `pfsync state list` and `pfsync state show` print (pure functions of a Lockfile)."""

from __future__ import annotations

from typing import Any

from pfsync.state.lockfile import Lockfile
from pfsync.state.trigger_records import HistoryEntry
from pfsync.support.textsafety import escape, json_text, shown_id

LIST_FORMAT_VERSION = 1


def _row(lockfile: Lockfile, address: str) -> dict[str, Any]:
    record = lockfile.triggers.get(address)
    pending = lockfile.pending.get(address)
    return {
        "address": address,
        "id": record.id if record else None,
        "origin": record.origin if record else None,
        "status": record.status if record else None,
        "created_at": record.created_at if record else None,
        "revision": record.revision if record else None,
        "file": record.file if record else None,
        "digest": record.digest if record else None,
        "history": len(record.history) if record else len(lockfile.forgotten.get(address, ())),
        # the ids this address's triggers replaced: active in Pocketflows until a person
        # deactivates them and a `Removed` (or `state rm`) settles them
        "replaced_still_active": record.replaced_still_active() if record else [],
        "uncertain": None
        if pending is None
        else {
            "idempotency_key": pending.idempotency_key,
            "started_at": pending.started_at,
            "reason": pending.reason,
            "replaces": pending.trigger.replaces,
            "revision": pending.trigger.revision,
            "file": pending.trigger.file,
            "digest": pending.trigger.digest,
        },
    }


def list_json(lockfile: Lockfile | None, lockfile_name: str, journal_unfolded: bool) -> str:
    """`state list --format json`: one row per recorded address."""
    rows = [_row(lockfile, a) for a in sorted(lockfile.addresses())] if lockfile else []
    document = {
        "format_version": LIST_FORMAT_VERSION,
        "lockfile": {
            "path": lockfile_name,
            "exists": lockfile is not None,
            "lineage": lockfile.lineage if lockfile else None,
            "serial": lockfile.serial if lockfile else None,
            "api_url": lockfile.api_url if lockfile else None,
            "journal_unfolded": journal_unfolded,
        },
        "addresses": rows,
    }
    return json_text(document, indent=2) + "\n"


def list_text(lockfile: Lockfile) -> str:
    """`state list`: an aligned table, one row per recorded address."""
    header = ("ADDRESS", "ID", "ORIGIN", "REVISION", "FILE", "NOTE")
    rows = [header]
    for address in sorted(lockfile.addresses()):
        row = _row(lockfile, address)
        notes = []
        if row["origin"] is not None and row["id"] is None:
            notes.append("id unknown")
        if row["uncertain"] is not None:
            notes.append("uncertain create")
        if row["replaced_still_active"]:
            ids = ", ".join(shown_id(i) for i in row["replaced_still_active"])
            notes.append(f"replaced, still active: {ids}")
        rows.append(
            (
                address,
                shown_id(row["id"], "-"),
                escape(row["origin"] or "-"),
                str(row["revision"] if row["revision"] is not None else "-"),
                escape(row["file"] or row["uncertain"]["file"]),
                ", ".join(notes),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        + "\n"
        for row in rows
    )


def _history_lines(history: tuple[HistoryEntry, ...]) -> list[str]:
    return [
        f"  - {shown_id(entry.id, '(id unknown)')}  {escape(entry.reason)} at {escape(entry.at)}  "
        f"({escape(entry.origin)}, revision {entry.revision}{_declared(entry)})"
        for entry in history
    ]


def _declared(entry: HistoryEntry) -> str:
    moved = f"; from {escape(entry.moved_from)}" if entry.moved_from else ""
    by = f"; declared at {escape(entry.declared_by)}" if entry.declared_by else ""
    return moved + by


def _indented_json(value: Any) -> list[str]:
    return ["  " + line for line in json_text(value, indent=2).splitlines()]


def show_text(lockfile: Lockfile, address: str) -> str:
    """`state show ADDR`: everything the lockfile records for one address."""
    lines = [f"address: {address}"]
    record = lockfile.triggers.get(address)
    if record is not None:
        lines += [
            f"id: {shown_id(record.id, '(unknown: find it in Pocketflows)')}",
            f"origin: {escape(record.origin)}",
            f"created_at: {escape(record.created_at or '-')}",
            f"status: {escape(record.status or '-')}",
            f"revision: {record.revision}",
            f"file: {escape(record.file)}",
            f"digest: {record.digest}",
            "body:",
            *_indented_json(record.body),
        ]
    history = record.history if record else lockfile.forgotten.get(address, ())
    lines.append("history:" if history else "history: (none)")
    lines += _history_lines(history)
    pending = lockfile.pending.get(address)
    if pending is not None:
        lines += [
            "uncertain create:",
            f"  idempotency_key: {pending.idempotency_key}",
            f"  started_at: {escape(pending.started_at)}",
            f"  reason: {escape(pending.reason)}",
            f"  replaces: {shown_id(pending.trigger.replaces, '-')}",
            f"  revision: {pending.trigger.revision}",
            f"  file: {escape(pending.trigger.file)}",
            f"  digest: {pending.trigger.digest}",
        ]
    return "\n".join(lines) + "\n"


def show_json(lockfile: Lockfile, address: str) -> str:
    """`state show ADDR --format json`: the lockfile's records for one address."""
    record = lockfile.triggers.get(address)
    pending = lockfile.pending.get(address)
    history = record.history if record else lockfile.forgotten.get(address, ())
    document = {
        "format_version": LIST_FORMAT_VERSION,
        "address": address,
        "trigger": record.to_json() if record else None,
        "history": [entry.to_json() for entry in history],
        "uncertain": pending.to_json() if pending else None,
    }
    return json_text(document, indent=2) + "\n"
