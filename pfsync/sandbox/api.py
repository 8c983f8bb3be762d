"""What the sandbox's request handlers share (settings, state, faults), and the create request's
rules: the schema violations of a body and the JSON error document every refusal carries.
"""

from __future__ import annotations

import threading
from typing import Any

from pfsync.sandbox.faults import Faults
from pfsync.sandbox.store import RequestLog, Store
from pfsync.schemas import REQUEST, check, validator
from pfsync.support.diagnostics import json_path


class Api:
    """What the request handlers share: settings, state and faults."""

    def __init__(
        self,
        *,
        username: str,
        password: str,
        idempotency_keys: bool,
        store: Store,
        faults: Faults,
        request_log: RequestLog,
        slow_seconds: float,
    ) -> None:
        # surrogateescape: credentials from the environment may hold bytes that are not UTF-8.
        self.credentials = f"{username}:{password}".encode("utf-8", "surrogateescape")
        self.idempotency_keys = idempotency_keys
        self.store = store
        self.faults = faults
        self.request_log = request_log
        self.slow_seconds = slow_seconds
        self.stopping = threading.Event()  # wakes latency and `slow` waits at shutdown


def error_body(status: int, message: str, violations: list[dict[str, str]] | None = None) -> Any:
    """The JSON error document: `{"error": {"status", "message", "violations"?}}`."""
    error: dict[str, Any] = {"status": status, "message": message}
    if violations is not None:
        error["violations"] = violations
    return {"error": error}


def request_violations(body: Any) -> list[dict[str, str]]:
    """Every schema violation of a create request body, each with its JSON path."""
    if check(REQUEST)(body):
        return []
    found = []
    for error in validator(REQUEST).iter_errors(body):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {})
            found += [
                {"path": json_path([*path, name]), "message": f"unknown field {name!r}"}
                for name in error.instance
                if name not in known
            ]
        elif error.validator == "required" and isinstance(error.instance, dict):
            found += [
                {"path": json_path([*path, name]), "message": f"missing required field {name!r}"}
                for name in error.validator_value
                if name not in error.instance
            ]
        else:
            found.append({"path": json_path(path), "message": error.message})
    # jsonschema reports `required` once per missing field, each with the whole list.
    unique = {(v["path"], v["message"]): v for v in found}
    return [unique[k] for k in sorted(unique)]
