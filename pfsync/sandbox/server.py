"""The sandbox's HTTP layer: routes, Basic auth, validation, idempotency, fault delivery.

    POST   /businesses/{id}/triggers   create a trigger, as the API reference describes
    GET    /businesses/{id}/triggers   sandbox only: the triggers created for that business
    GET    /__sandbox/requests         sandbox only: every request received (DELETE clears)
    POST   /__sandbox/faults           sandbox only: script the next create outcomes (a JSON
                                       array of names, see `faults`); GET lists, DELETE clears

Sandbox-only responses carry `"sandbox_only": true` and the header `X-Sandbox-Only: true`; they
need no auth and never see injected faults. Requests to `/__sandbox/` are not logged.
Every response is written in one `write` with TCP_NODELAY: split header and body writes on a
keep-alive connection meet Nagle's algorithm and delayed ACKs, costing ~40 ms per request.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from pfsync import __version__
from pfsync.sandbox.api import error_body, request_violations
from pfsync.sandbox.faults import (
    DROP,
    LOSE_RESPONSE,
    OK,
    OK_NO_ID,
    RETRY_AFTER_503,
    SLOW,
    outcome_status,
)
from pfsync.sandbox.listener import SandboxServer
from pfsync.sandbox.store import fingerprint, new_trigger

MAX_BODY_BYTES = 1024 * 1024
IDLE_TIMEOUT_SECONDS = 300  # a keep-alive connection idle this long is closed
_TRIGGERS_PATH = re.compile(r"/businesses/([^/]+)/triggers")
_SANDBOX_ONLY = (("X-Sandbox-Only", "true"),)
_CHALLENGE = (("WWW-Authenticate", 'Basic realm="pocketflows-sandbox", charset="UTF-8"'),)
Headers = Sequence[tuple[str, str]]


class _BodyError(Exception):
    """The request body cannot be read; the connection is closed after the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class Handler(BaseHTTPRequestHandler):
    """One connection; each request is routed, answered in one write and logged."""

    protocol_version = "HTTP/1.1"
    server_version = f"pfsync-sandbox/{__version__}"
    sys_version = ""
    timeout = IDLE_TIMEOUT_SECONDS
    server: SandboxServer
    _started = 0.0
    _logged = True  # protocol errors answered by send_error() have no route to log
    _delays_replies = False  # only the create endpoint sees the configured latency

    def setup(self) -> None:
        """Disable Nagle and register the connection so a stop can close it."""
        self.connection = cast(socket.socket, self.request)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)
        super().setup()

    def finish(self) -> None:
        """Flush and forget the connection."""
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the request log is the record, and stderr belongs to the CLI."""

    # Every method goes through one router, so wrong methods get a JSON 405, not an HTML 501.
    def do_GET(self) -> None:
        """Route the request."""
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def parse_request(self) -> bool:
        """Parse the request line and headers; any method (TRACE, CONNECT, FOO) is routed.

        BaseHTTPRequestHandler answers 501 for a method without a `do_` handler; the router
        answers 405 with an Allow header naming what the path serves (or 404).
        """
        if not super().parse_request():
            return False
        if not hasattr(self, "do_" + self.command):
            setattr(self, "do_" + self.command, self._dispatch)
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer a protocol error (bad request line, headers too long) with a JSON error."""
        self.close_connection = True
        self._reply(code, error_body(code, message or HTTPStatus(code).phrase))

    # Routing

    def _dispatch(self) -> None:
        self._started = time.monotonic()
        self._arrived = time.time()
        self._delays_replies = False
        self._outcome: str | None = None
        self._trigger_id: str | None = None
        self._business: str | None = None
        self._path = urlsplit(self.path).path
        self._logged = self._path.startswith("/__sandbox/")  # the control plane is not logged
        try:
            self._route(self._path)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            self._reply(500, error_body(500, "sandbox internal error (see its stderr)"))
        self._log(None)

    def _log(self, status: int | None) -> None:
        """Add this request to the log once, before its answer goes out (tests read it next)."""
        if self._logged:
            return
        self._logged = True
        self.server.api.request_log.add(
            {
                "time": self._arrived,
                "method": self.command,
                "path": self._path,
                "business": self._business,
                "status": status,
                "outcome": self._outcome,
                "idempotency_key": self.headers.get("Idempotency-Key"),
                "trigger_id": self._trigger_id,
            }
        )

    def _hang_up(self) -> None:
        """Close the connection without any answer."""
        self._log(None)
        self.close_connection = True

    def _route(self, path: str) -> None:
        match = _TRIGGERS_PATH.fullmatch(path)
        if match:
            self._business = unquote(match.group(1))
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self._reply(exc.status, error_body(exc.status, str(exc)))
            return
        method = self.command
        if match and self._business is not None:
            if method == "POST":
                self._create(self._business, path, body)
            elif method == "GET":
                triggers = self.server.api.store.triggers(self._business)
                self._inspection({"business": self._business, "triggers": triggers})
            else:
                self._method_not_allowed("GET, POST")
        elif path == "/__sandbox/requests":
            self._requests_endpoint(method)
        elif path == "/__sandbox/faults":
            self._faults_endpoint(method, body)
        else:
            self._reply(404, error_body(404, f"no such endpoint: {path}"))

    def _requests_endpoint(self, method: str) -> None:
        log = self.server.api.request_log
        if method == "GET":
            self._inspection({"requests": log.entries()})
        elif method == "DELETE":
            log.clear()
            self._inspection({"requests": []})
        else:
            self._method_not_allowed("GET, DELETE")

    def _faults_endpoint(self, method: str, body: bytes) -> None:
        faults = self.server.api.faults
        if method == "GET":
            self._inspection({"queued": faults.scripted()})
        elif method == "DELETE":
            faults.clear()
            self._inspection({"queued": []})
        elif method == "POST":
            try:
                outcomes = json.loads(body)
                if not (isinstance(outcomes, list) and all(isinstance(o, str) for o in outcomes)):
                    raise ValueError("expected a JSON array of outcome names")
                self._inspection({"queued": faults.script(outcomes)})
            except ValueError as exc:
                self._reply(422, error_body(422, str(exc)), _SANDBOX_ONLY)
        else:
            self._method_not_allowed("GET, POST, DELETE")

    # The create-trigger endpoint

    def _create(self, business: str, path: str, raw: bytes) -> None:
        api = self.server.api
        self._delays_replies = True
        outcome, retry_after = api.faults.next_outcome()
        self._outcome = outcome
        status = outcome_status(outcome)
        if outcome == DROP:
            self._spend_latency()
            self._hang_up()  # nothing stored, nothing answered
            return
        if status is not None:
            self._injected_error(status, outcome, retry_after)
            return
        body = self._checked_body(raw)
        if body is None:
            return
        header_key = self.headers.get("Idempotency-Key", "").strip()
        key = header_key if api.idempotency_keys and header_key else None
        if key is not None:
            claim = api.store.claim(key, fingerprint("POST", path, body))
            if claim.state != "claimed":
                self._answer_claim(claim.state, claim.response, outcome)
                return
        self._spend_latency()  # processing time, with the key held as in flight
        trigger = new_trigger(body)
        response = trigger
        if outcome == OK_NO_ID:
            response = {k: v for k, v in trigger.items() if k != "id"}
        try:
            api.store.add_trigger(business, trigger, idempotency_key=key, response=response)
        except BaseException:
            if key is not None:
                api.store.release(key)
            raise
        self._trigger_id = trigger["id"]
        self._deliver(outcome, response)

    def _checked_body(self, raw: bytes) -> Any:
        """The parsed body, or None after answering 401, 400 or 422."""
        if not self._authorized():
            message = "authentication required: HTTP Basic with a valid username and password"
            self._reply(401, error_body(401, message), _CHALLENGE)
            return None
        content_type = self.headers.get("Content-Type") and self.headers.get_content_type()
        if content_type != "application/json":
            message = f"Content-Type must be application/json, not {content_type or 'missing'}"
            self._reply(400, error_body(400, message))
            return None
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            self._reply(400, error_body(400, f"malformed JSON body: {exc}"))
            return None
        violations = request_violations(body)
        if violations:
            count = f"{len(violations)} violation(s)"
            self._reply(422, error_body(422, f"invalid trigger: {count}", violations))
            return None
        return body

    def _answer_claim(self, state: str, response: Any, outcome: str) -> None:
        if state == "replay":
            self._trigger_id = response.get("id") if isinstance(response, dict) else None
            self._outcome = f"replay ({outcome})" if outcome != OK else "replay"
            self._deliver(outcome, response, [("Idempotent-Replayed", "true")])
        elif state == "mismatch":
            message = "Idempotency-Key was already used with a different request"
            self._reply(422, error_body(422, message))
        else:
            message = "a request with this Idempotency-Key is still being processed; retry later"
            self._reply(409, error_body(409, message))

    def _deliver(self, outcome: str, response: Any, headers: Headers = ()) -> None:
        if outcome == LOSE_RESPONSE:
            self._hang_up()  # stored, but the client never hears of it
            return
        if outcome == SLOW:
            self.server.api.stopping.wait(self.server.api.slow_seconds)
        self._reply(200, response, headers)

    def _injected_error(self, status: int, outcome: str, retry_after: int | None) -> None:
        headers: list[tuple[str, str]] = []
        if status == 429 or outcome == RETRY_AFTER_503:
            headers.append(("Retry-After", str(1 if retry_after is None else retry_after)))
        if status == 401:
            headers.extend(_CHALLENGE)
        violations = [{"path": "$", "message": "injected validation failure"}]
        message = f"{HTTPStatus(status).phrase} (injected by the sandbox)"
        body = error_body(status, message, violations if status == 422 else None)
        self._reply(status, body, headers)

    def _authorized(self) -> bool:
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(decoded, self.server.api.credentials)

    def _spend_latency(self) -> None:
        """Wait until the configured latency has passed since the request arrived."""
        remaining = self.server.api.faults.latency - (time.monotonic() - self._started)
        if remaining > 0:
            self.server.api.stopping.wait(remaining)

    # Bodies and responses

    def _read_body(self) -> bytes:
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise _BodyError(501, f"unsupported Transfer-Encoding: {encoding}")
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        if not length_header.strip().isdigit():
            raise _BodyError(400, "invalid Content-Length")
        length = int(length_header)
        if length > MAX_BODY_BYTES:
            raise _BodyError(413, f"request body over {MAX_BODY_BYTES} bytes")
        body = self.rfile.read(length)
        if len(body) < length:
            raise _BodyError(400, "request body shorter than its Content-Length")
        return body

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _BodyError(400, "malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are ignored
                return bytes(body)
            if len(body) + size > MAX_BODY_BYTES:
                raise _BodyError(413, f"request body over {MAX_BODY_BYTES} bytes")
            body += self.rfile.read(size)
            self.rfile.readline(3)

    def _inspection(self, payload: dict[str, Any]) -> None:
        note = "sandbox inspection endpoint, not part of the Pocketflows API"
        self._reply(200, {"sandbox_only": True, "note": note, **payload}, _SANDBOX_ONLY)

    def _method_not_allowed(self, allowed: str) -> None:
        message = f"method {self.command} not allowed here (allowed: {allowed})"
        self._reply(405, error_body(405, message), [("Allow", allowed)])

    def _reply(self, status: int, payload: Any, headers: Headers = ()) -> None:
        """Send status line, headers and JSON body in one write."""
        if self._delays_replies:
            self._spend_latency()
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        lines = [
            f"{self.protocol_version} {status} {HTTPStatus(status).phrase}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._log(status)
        try:
            self.wfile.write(head if self.command == "HEAD" else head + body)
        except OSError:
            self.close_connection = True  # the client has gone; nothing more to say
