"""The lockfile `pfsync.lock`: the record of which triggers exist, read with full checks.

Public API:

    Lockfile                      the whole file: version, lineage, serial, api_url,
                                  triggers {address: TriggerRecord},
                                  pending {address: PendingCreate},
                                  forgotten {address: (HistoryEntry, ...)}: the history of
                                  addresses whose record `state rm` removed,
                                  lock: StateLockRecord | None (remote stores only)
    Lockfile.new(api_url)         a fresh, unsaved lockfile (new lineage, serial 0)
    read_lockfile(path)           Lockfile, or None when the file does not exist;
                                  LockfileError when it cannot be trusted (never overwritten)
    save_lockfile(path, before, after)
                                  write `after` atomically with serial + 1, unless its content
                                  equals `before` (then nothing is written: byte-identical)
    require_api_url(lockfile, api_url, path)
                                  LockfileError when the lockfile describes another API
    belonging(lockfile, config)   the lockfile if it is the configured API's and environment's
                                  record (LockfileError if not); an empty one (what `init`
                                  writes) takes the configured API URL
    utc_now()                     the timestamp format used in the lockfile and journal

Values are frozen; changes make new values (see `pfsync.state.changes`), so the planner and the
journal fold stay pure functions.

The records of each address (TriggerRecord, HistoryEntry, PendingCreate) are
`pfsync.state.trigger_records`; this module reads, checks and writes the file that holds them.
"""

from __future__ import annotations

import json
import shlex
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfsync.errors import LockfileError
from pfsync.state.lock_record import StateLockRecord
from pfsync.state.trigger_records import HistoryEntry, PendingCreate, TriggerRecord
from pfsync.support.atomic import atomic_write_text
from pfsync.support.canonical import body_digest
from pfsync.support.paths import shown_path
from pfsync.support.textsafety import json_text

if TYPE_CHECKING:
    from pfsync.config import Config

LOCKFILE_VERSION = 1
_MAX_SCHEMA_PROBLEMS = 5


def utc_now() -> str:
    """The current UTC time as `2026-01-31T12:00:00Z`."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Lockfile:
    """The whole lockfile. `serial` 0 means never saved."""

    lineage: str
    serial: int
    api_url: str
    triggers: dict[str, TriggerRecord] = field(default_factory=dict)
    pending: dict[str, PendingCreate] = field(default_factory=dict)
    # The history of addresses that have no trigger record any more (`state rm`), carried into
    # the next record of that address so an address's earlier ids are never lost.
    forgotten: dict[str, tuple[HistoryEntry, ...]] = field(default_factory=dict)
    version: int = LOCKFILE_VERSION
    lock: StateLockRecord | None = None
    environment: str | None = None  # the pfsync.yaml environment it records (None: none)

    @classmethod
    def new(cls, api_url: str, environment: str | None = None) -> Lockfile:
        """A lockfile that does not exist yet; its lineage is fixed here, once."""
        return cls(lineage=str(uuid.uuid4()), serial=0, api_url=api_url, environment=environment)

    def recorded(self, address: str) -> bool:
        """Whether the address has a trigger record or a pending create."""
        return address in self.triggers or address in self.pending

    def addresses(self) -> set[str]:
        """Every address with a trigger record or a pending create."""
        return set(self.triggers) | set(self.pending)

    def to_json(self) -> dict[str, Any]:
        """The lockfile document (`lock` only while held, so older files stay byte-identical)."""
        document: dict[str, Any] = {
            "version": self.version,
            "lineage": self.lineage,
            "serial": self.serial,
            "api_url": self.api_url,
            "triggers": {address: r.to_json() for address, r in self.triggers.items()},
            "pending": {address: p.to_json() for address, p in self.pending.items()},
            "forgotten": {
                address: [entry.to_json() for entry in entries]
                for address, entries in self.forgotten.items()
            },
        }
        if self.lock is not None:
            document["lock"] = self.lock.to_json()
        if self.environment is not None:
            document["environment"] = self.environment
        return document

    def dumps(self) -> str:
        """The exact file text: sorted keys, 2-space indent, trailing newline."""
        # Computed once per value (json's indented encoder is pure Python, slow for thousands
        # of records): a Lockfile and its tables are never changed after it is made.
        text: str | None = self.__dict__.get("_text")
        if text is None:
            text = json_text(self.to_json(), sort_keys=True, indent=2) + "\n"
            object.__setattr__(self, "_text", text)
        return text

    def same_content(self, other: Lockfile) -> bool:
        """Equal apart from `serial` (what decides whether a write is needed)."""
        return replace(self, serial=0).to_json() == replace(other, serial=0).to_json()


def lockfile_from_json(data: dict[str, Any]) -> Lockfile:
    """A Lockfile from an already verified document."""
    return Lockfile(
        lineage=data["lineage"],
        serial=data["serial"],
        api_url=data["api_url"],
        environment=data.get("environment"),
        version=data["version"],
        triggers={
            address: TriggerRecord(
                id=r["id"],
                origin=r["origin"],
                created_at=r["created_at"],
                status=r["status"],
                revision=r["revision"],
                body=r["body"],
                digest=r["digest"],
                file=r["file"],
                history=tuple(HistoryEntry(**h) for h in r["history"]),
                document_digest=r.get("document_digest"),
            )
            for address, r in data["triggers"].items()
        },
        pending={
            address: PendingCreate.from_json(address, p) for address, p in data["pending"].items()
        },
        forgotten={
            address: tuple(HistoryEntry(**h) for h in entries)
            for address, entries in data["forgotten"].items()
        },
        lock=StateLockRecord.from_json(data["lock"]) if data.get("lock") else None,
    )


def restore_from_git(shown: str) -> str:
    """How a person gets back a lockfile kept in the work tree (the file store)."""
    return f"restore it from git (git checkout -- {shlex.quote(shown)})"


def _untrusted(shown: str, problem: str, restore: str | None = None) -> LockfileError:
    return LockfileError(
        f"the lockfile {shown} {problem}. pfsync never overwrites a lockfile it cannot trust: "
        f"{restore or restore_from_git(shown)} or repair it, then run again"
    )


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_lockfile(text: str, shown: str, restore: str | None = None) -> Lockfile:
    """Verify lockfile text (JSON, version, schema, digests) and return it; LockfileError if not.

    `restore` says how a person gets an earlier version back where the lockfile is kept (by
    default: from git, for a file in the work tree).
    """
    try:
        return _parse_lockfile(text, shown, restore)
    except RecursionError:  # pfsync writes at most ~100 levels (yamlload.MAX_NESTING_DEPTH)
        raise _untrusted(shown, "is nested too deeply to be a lockfile", restore) from None


def _parse_lockfile(text: str, shown: str, restore: str | None) -> Lockfile:
    if not text.strip():
        raise _untrusted(shown, "is empty (truncated?)", restore)
    try:
        data = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        # Some of json's messages end in "at" already ("Unterminated string starting at").
        at = "" if exc.msg.endswith(" at") else " at"
        where = f"line {exc.lineno}, column {exc.colno}"
        raise _untrusted(shown, f"is not valid JSON ({exc.msg}{at} {where})", restore) from None
    except ValueError as exc:
        raise _untrusted(shown, f"is not valid JSON ({exc})", restore) from None
    if not isinstance(data, dict):
        raise _untrusted(shown, "is not a JSON object", restore)
    version = data.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > LOCKFILE_VERSION:
        raise LockfileError(
            f"the lockfile {shown} has format version {version}, written by a newer pfsync; "
            f"this pfsync reads version {LOCKFILE_VERSION}. Upgrade pfsync (the file is left "
            "untouched)"
        )
    _check_schema(data, shown, restore)
    for kind, records in (("trigger", data["triggers"]), ("pending create", data["pending"])):
        for address, record in records.items():
            if body_digest(record["body"]) != record["digest"]:
                raise _untrusted(
                    shown,
                    f"records a body for the {kind} {address} that does not match its digest "
                    "(edited by hand?)",
                    restore,
                )
    return lockfile_from_json(data)


def _check_schema(data: dict[str, Any], shown: str, restore: str | None) -> None:
    from pfsync.schemas import LOCKFILE, check, validator
    from pfsync.support.diagnostics import json_path

    if check(LOCKFILE)(data):
        return
    errors = sorted(validator(LOCKFILE).iter_errors(data), key=lambda e: list(map(str, e.path)))
    if not errors:
        return
    details = [f"{json_path(e.absolute_path)}: {_short(e.message)}" for e in errors]
    more = len(details) - _MAX_SCHEMA_PROBLEMS
    listed = "; ".join(details[:_MAX_SCHEMA_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
    raise _untrusted(shown, f"fails the lockfile schema ({listed})", restore)


def _short(message: str) -> str:
    return message if len(message) <= 200 else message[:200] + "…"


def read_if_present(path: Path, what: str) -> bytes | None:
    """The bytes of `path` (the lockfile or its journal: `what`), or None when there is none."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockfileError(f"cannot read the {what} {shown_path(path)}: {exc.strerror}") from None


def read_lockfile(path: Path) -> Lockfile | None:
    """The verified lockfile at `path`, or None when it does not exist."""
    shown = shown_path(path)
    raw = read_if_present(path, "lockfile")
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _untrusted(shown, f"is not UTF-8 (byte {exc.start})") from None
    return parse_lockfile(text, shown)


def save_lockfile(path: Path, before: Lockfile | None, after: Lockfile) -> Lockfile:
    """Write `after` (serial = before's + 1) atomically; unchanged content writes nothing.

    Returns the lockfile as it now is on disk.
    """
    if before is not None and before.serial > 0 and before.same_content(after):
        return before
    base_serial = before.serial if before is not None else 0
    saved = after if after.serial == base_serial + 1 else replace(after, serial=base_serial + 1)
    try:
        atomic_write_text(path, saved.dumps())
    except OSError as exc:
        raise LockfileError(
            f"cannot write the lockfile {shown_path(path)}: {exc.strerror}; it was not changed"
        ) from None
    return saved


def belonging(
    lockfile: Lockfile | None, config: Config, unfolded_journal: bool = False
) -> Lockfile | None:
    """`lockfile` if it is the configured API's and environment's record, else LockfileError.

    A record of nothing (no trigger, pending create, forgotten history or lock: what `init`
    writes) names no id of any API, so it takes the configured API URL, which the next write
    records: an `api_url:` set after `init` is not refused. Anything recorded keeps it pinned,
    and so does an `unfolded_journal` (a crashed run's creates at the recorded API).
    """
    # The environment first: another environment's record usually names another API too.
    require_environment(lockfile, config.environment, config.lockfile)
    if lockfile is not None and records_nothing(lockfile) and not unfolded_journal:
        same = lockfile.api_url.rstrip("/") == config.api_url.rstrip("/")
        return lockfile if same else replace(lockfile, api_url=config.api_url)
    require_api_url(lockfile, config.api_url, config.lockfile)
    return lockfile


def records_nothing(lockfile: Lockfile) -> bool:
    """Whether the lockfile holds no trigger, pending create, forgotten history or lock."""
    return not (lockfile.triggers or lockfile.pending or lockfile.forgotten or lockfile.lock)


def require_environment(lockfile: Lockfile | None, environment: str | None, path: Path) -> None:
    """LockfileError unless the lockfile records no environment or the selected one."""
    if lockfile is None or lockfile.environment in (None, environment):
        return
    selected = (
        f"this run is for environment {environment}"
        if environment
        else ("no environment was selected")
    )
    raise LockfileError(
        f"the lockfile {shown_path(path)} records the triggers of environment "
        f"{lockfile.environment}, but {selected}. Run with -e {lockfile.environment} if that is "
        "the environment meant, or check the `lockfile:` of each environment in pfsync.yaml; "
        "nothing was changed"
    )


def require_api_url(lockfile: Lockfile | None, api_url: str, path: Path) -> None:
    """Refuse when the lockfile records another API than the configured one: its ids live there."""
    if lockfile is None or lockfile.api_url.rstrip("/") == api_url.rstrip("/"):
        return
    raise LockfileError(
        f"the lockfile {shown_path(path)} describes the API {lockfile.api_url}, but the "
        f"configured API URL is {api_url} (PFSYNC_API_URL or api_url in pfsync.yaml). Use one "
        "lockfile per API: for another API (a staging business, a local sandbox), "
        "add an environment to pfsync.yaml with its own `api_url:` and `lockfile:`, and choose "
        "it with -e NAME"
    )
