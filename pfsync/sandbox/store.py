"""The sandbox's state: created triggers, idempotency records, the request log, persistence.

With a data file, triggers and completed idempotency records survive restarts: every change is
written before the response goes out (temp file in the same directory, fsync, rename, fsync of
the directory), and concurrent writers share one write (group commit) so parallel clients do not
queue behind one fsync each. The request log is kept in memory only.
"""

from __future__ import annotations

import collections
import copy
import datetime
import hashlib
import json
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pfsync.errors import SandboxDataError
from pfsync.support.atomic import atomic_write_text

DATA_FORMAT = "pfsync-sandbox-data"
DATA_VERSION = 1
REQUEST_LOG_LIMIT = 100_000  # enough for any benchmark; bounds memory of a long-running sandbox


def utc_now() -> str:
    """The current time in ISO 8601 UTC with milliseconds, e.g. `2024-05-01T12:00:00.123Z`."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_trigger(body: dict[str, Any]) -> dict[str, Any]:
    """A complete Trigger object, as the API returns it, for a valid create request `body`."""
    now = utc_now()
    return {
        "id": "trg_" + uuid.uuid4().hex[:24],
        "created_at": now,
        "updated_at": now,
        "name": body["name"],
        "project_defined_event": body["project_defined_event"],
        # The reference does not say what this holds for a project-defined event; its fields are
        # typed only, so the sandbox names the event kind and leaves no segment.
        "internal_event_definition": {"type": "project_defined_event", "segment": None},
        "trigger": None,
        "steps": copy.deepcopy(body["steps"]),
        "status": "draft",
        "filter": body.get("filter"),
        "email_address": body.get("email_address"),
        "phone_number": body.get("phone_number"),
        "attributed_revenue": body.get("attributed_revenue"),
        # Not in the documented response; echoed so tests can see every field that was sent.
        "metadata": copy.deepcopy(body.get("metadata")),
        "excluded_customers": list(body.get("excluded_customers", [])),
        "statistics": {
            "total_customers_enrolled": 0,
            "total_customers_started": 0,
            "total_customers_finished": 0,
            "emails": dict.fromkeys(
                ("sent", "delivered", "opened", "soft_bounced", "hard_bounced", "clicked"), 0
            ),
            "custom_steps": [],
        },
    }


def fingerprint(method: str, path: str, body: Any) -> str:
    """A digest identifying a request for Idempotency-Key comparison."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass
class Claim:
    """The result of claiming an Idempotency-Key: `claimed`, `replay`, `mismatch`, `in-flight`."""

    state: str
    response: dict[str, Any] | None = None


class Store:
    """Triggers per business and idempotency records, optionally persisted; thread-safe."""

    def __init__(self, data_file: str | os.PathLike[str] | None = None) -> None:
        self.data_file = Path(data_file) if data_file is not None else None
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._triggers: dict[str, list[dict[str, Any]]] = {}
        self._done: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (fingerprint, response)
        self._in_flight: dict[str, str] = {}  # key -> fingerprint
        self._version = 0
        self._written = 0
        if self.data_file is not None and self.data_file.exists():
            self._load(self.data_file)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise SandboxDataError(f"cannot read sandbox data file {path}: {exc}") from exc
        if not (
            isinstance(data, dict)
            and data.get("format") == DATA_FORMAT
            and data.get("version") == DATA_VERSION
            and isinstance(data.get("triggers"), dict)
            and isinstance(data.get("idempotency", {}), dict)
        ):
            raise SandboxDataError(
                f"{path} is not a pfsync sandbox data file (format {DATA_FORMAT!r}, "
                f"version {DATA_VERSION}); move it away or choose another --data file"
            )
        self._triggers = data["triggers"]
        for key, record in data.get("idempotency", {}).items():
            self._done[key] = (record["fingerprint"], record["response"])

    def triggers(self, business: str | None = None) -> list[dict[str, Any]]:
        """Created triggers, oldest first: of one business, or of all businesses."""
        with self._lock:
            if business is not None:
                return copy.deepcopy(self._triggers.get(business, []))
            return [copy.deepcopy(t) for ts in self._triggers.values() for t in ts]

    def businesses(self) -> list[str]:
        """The businesses that have triggers, sorted."""
        with self._lock:
            return sorted(self._triggers)

    def claim(self, key: str, request_fingerprint: str) -> Claim:
        """Claim Idempotency-Key `key` for a request, unless it was used or is in flight."""
        with self._lock:
            if key in self._done:
                done_fingerprint, response = self._done[key]
                if done_fingerprint != request_fingerprint:
                    return Claim("mismatch")
                return Claim("replay", copy.deepcopy(response))
            if key in self._in_flight:
                return Claim("in-flight")
            self._in_flight[key] = request_fingerprint
            return Claim("claimed")

    def in_flight(self) -> list[str]:
        """The Idempotency-Keys whose requests are being processed now."""
        with self._lock:
            return sorted(self._in_flight)

    def release(self, key: str) -> None:
        """Give up a claim whose request stored nothing, so the key may be used again."""
        with self._lock:
            self._in_flight.pop(key, None)

    def add_trigger(
        self,
        business: str,
        trigger: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        """Store `trigger` (and the response a claimed key replays), durably when persisted."""
        with self._lock:
            self._triggers.setdefault(business, []).append(copy.deepcopy(trigger))
            if idempotency_key is not None:
                request_fingerprint = self._in_flight.pop(idempotency_key)
                replayed = trigger if response is None else response
                self._done[idempotency_key] = (request_fingerprint, copy.deepcopy(replayed))
            self._version += 1
            version = self._version
        self._persist_through(version)

    def _persist_through(self, version: int) -> None:
        if self.data_file is None:
            return
        with self._write_lock:
            if self._written >= version:
                return  # another thread's write already included this change
            with self._lock:
                snapshot_version = self._version
                data = {
                    "format": DATA_FORMAT,
                    "version": DATA_VERSION,
                    "triggers": self._triggers,
                    "idempotency": {
                        key: {"fingerprint": fp, "response": response}
                        for key, (fp, response) in sorted(self._done.items())
                    },
                }
                text = json.dumps(data, indent=1, sort_keys=True) + "\n"
            self.data_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.data_file, text)
            self._written = snapshot_version


class RequestLog:
    """Every request received (never its headers beyond the Idempotency-Key); memory only."""

    def __init__(self, limit: int = REQUEST_LOG_LIMIT) -> None:
        self._entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=limit)
        self._seq = 0
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        """Append `entry`, numbering it with `seq` from 1."""
        with self._lock:
            self._seq += 1
            self._entries.append({"seq": self._seq, **entry})

    def entries(self) -> list[dict[str, Any]]:
        """The logged requests, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def clear(self) -> None:
        """Forget the logged requests (numbering continues)."""
        with self._lock:
            self._entries.clear()
