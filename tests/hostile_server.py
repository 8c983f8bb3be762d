"""A hostile HTTP server for tests: scripted, misbehaving answers over raw sockets on 127.0.0.1.

pfsync's client must survive servers that are slow, broken or malicious. This server reads each
request properly (request line, headers, a Content-Length or chunked body), logs it, and then
answers exactly as a test scripts it, byte by byte if need be: echo the credentials it was sent,
trickle the status line, lie about Content-Length, cut a body short, send 2 MiB, hang up.

    from hostile_server import HostileServer, created, echo_credentials, respond

    with HostileServer([echo_credentials(500), created("trg_\\x1b]0;title\\x07")]) as server:
        env = {"PFSYNC_API_URL": server.url, "PFSYNC_USERNAME": "u", "PFSYNC_PASSWORD": "pw"}
        ...                                     # run pfsync, or PocketflowsClient(server.url, ...)
        [first, second] = server.requests       # RecordedRequest, in order of arrival

HostileServer(script=(), *, then=None, time_limit=120.0)
    .url ("http://127.0.0.1:PORT"), .port, .requests; a context manager, or start()/stop().

Script
    The n-th request to arrive (counted from 0, over all connections) gets `script[n]`; every
    request after the script gets `then` (default: the script's last behaviour again, so a
    one-behaviour script answers every request alike). An empty script with no `then` answers
    every request with `created()`. Each connection carries one request: every answer says
    `Connection: close` and the connection is closed after it.

Bounded in time
    The server stops itself `time_limit` seconds (default 120) after it started: every wait and
    trickle ends, every connection is closed. Leaving the `with` block stops it at once.

RecordedRequest (`server.requests` is a copy of the log, in order of arrival)
    method, target (path and query as sent), headers (name/value pairs as sent), body (bytes),
    number (its place in the script); header(name) -> str | None (case-insensitive);
    json() -> Any; credentials -> (username, password) | None decoded from HTTP Basic
    (surrogateescape for bytes that are not UTF-8); basic_token -> the Base64 text or None.

Behaviours (each returns a `Behaviour`, a callable `(Exchange) -> None`)
    respond(status=200, body=b"", *, reason=None, headers=(), length="exact", cut_after=None,
            trickle=0.0, trickle_parts=("status", "headers", "body"), wait_before=0.0)
        the general answer. `body`: bytes as they are, str as UTF-8, anything else as JSON
        (`json.dumps`, ASCII-only: control characters, bidi overrides and lone surrogates go
        out as JSON escapes, e.g. the Python str "trg_\\ud800" as the JSON text "trg_\\ud800").
        `length`: "exact" (the true Content-Length), "omit" (no Content-Length: the body ends
        when the connection closes), or an int to announce (a lie when larger or smaller).
        `cut_after`: send only the first N bytes of the body, then close. `trickle`: seconds
        between single bytes of the `trickle_parts` ("status" line, "headers", "body");
        other parts go out at once. `wait_before`: silence before answering.
    created(trigger_id="trg_hostile", **fields)
        200 with a complete Trigger object for the request (its name, event and steps), the
        "id" first; `fields` replace or add fields. Any str id works: "trg_\\n",
        "trg_\\x1b]0;t\\x07", "trg_\\ud800", "\\u202e" (sent as JSON escapes).
    error(status, message, *, headers=(), **respond_options)
        {"error": {"status": status, "message": message}}.
    echo_credentials(status=401, template=ECHO_TEMPLATE, **respond_options)
        an error whose message echoes what the client sent: `template` is formatted with
        {username}, {password}, {pair} (username:password) and {token} (the Base64 text).
    cut_short(body, *, after, status=200)
        announces the whole body, sends up to and including the bytes `after` (or its first
        `after` bytes when an int), then closes.
    lying_length(body, *, extra=1000, status=200)
        sends the whole body announcing `extra` bytes more, then closes.
    oversized(trigger_id="trg_big", size=2 MiB, *, length="exact")
        a 200 JSON body of about `size` bytes: the id first, then padding.
    trickled(delay, parts=("status",), *, status=200, body=None)
        respond(status, body, trickle=delay, trickle_parts=parts); body None: a Trigger with
        the id "trg_trickled".
    hang_up()
        close the connection without a word.
    silence(seconds)
        say nothing for `seconds` (or until the server stops), then close.

Writing your own
    A behaviour gets an `Exchange`: .request (the RecordedRequest), .send(data, delay=0.0)
    (everything at once, or one byte per `delay` seconds), .wait(seconds) -> bool (False once
    the server is stopping). The connection is closed when the behaviour returns. OSError
    (the client went away) is expected and ignored; any other exception is printed to stderr.
    A request that cannot be read (not HTTP, cut short) is dropped unlogged.

Another server on the same footing (`s3_proxy` is one)
    LoopbackServer: the listener on 127.0.0.1, a thread per connection, start()/stop() and the
    context manager; a subclass writes `_serve(connection)`. read_head(connection, stopping) ->
    RequestHead (method, target, version, headers, rest: the bytes read after the head) | None.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from typing_extensions import Self

MiB = 1024 * 1024
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * MiB
ECHO_TEMPLATE = "invalid credentials {pair} (Authorization: Basic {token})"
Part = Literal["status", "headers", "body"]
Length = Literal["exact", "omit"] | int
ALL_PARTS: tuple[Part, ...] = ("status", "headers", "body")
STATUS_LINE: tuple[Part, ...] = ("status",)
_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _Stopped(Exception):
    """The server is stopping: end the exchange."""


def first_header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    """The first value of header `name` (case-insensitive) among `headers`, or None."""
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server read it."""

    number: int
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        return first_header(self.headers, name)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def basic_token(self) -> str | None:
        """The Base64 text of an `Authorization: Basic ...` header, or None."""
        scheme, _, token = (self.header("Authorization") or "").partition(" ")
        return token.strip() if scheme.lower() == "basic" else None

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(username, password) from HTTP Basic, or None."""
        token = self.basic_token
        if token is None:
            return None
        try:
            pair = base64.b64decode(token, validate=True).decode("utf-8", "surrogateescape")
        except (binascii.Error, ValueError):
            return None
        username, _, password = pair.partition(":")
        return username, password


class Exchange:
    """One request and the connection to answer it on."""

    def __init__(
        self, request: RecordedRequest, connection: socket.socket, stopping: threading.Event
    ) -> None:
        self.request = request
        self._connection = connection
        self._stopping = stopping

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds`; False (at once) when the server is stopping."""
        return not self._stopping.wait(seconds) if seconds > 0 else not self._stopping.is_set()

    def send(self, data: bytes, delay: float = 0.0) -> None:
        """Send `data` at once, or one byte every `delay` seconds."""
        if delay <= 0:
            self._connection.sendall(data)
            return
        for index in range(len(data)):
            if index and not self.wait(delay):
                raise _Stopped
            self._connection.sendall(data[index : index + 1])


Behaviour = Callable[[Exchange], None]


def _encode(body: object) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("ascii")


def respond(
    status: int = 200,
    body: object = b"",
    *,
    reason: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    length: Length = "exact",
    cut_after: int | None = None,
    trickle: float = 0.0,
    trickle_parts: Collection[str] = ALL_PARTS,
    wait_before: float = 0.0,
) -> Behaviour:
    """An answer; see the module docstring for every option."""
    payload = _encode(body)
    return _responder(
        status,
        lambda request: payload,
        reason=reason,
        headers=headers,
        length=length,
        cut_after=cut_after,
        trickle=trickle,
        trickle_parts=trickle_parts,
        wait_before=wait_before,
    )


def _responder(
    status: int,
    make_body: Callable[[RecordedRequest], bytes],
    *,
    reason: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    length: Length = "exact",
    cut_after: int | None = None,
    trickle: float = 0.0,
    trickle_parts: Collection[str] = ALL_PARTS,
    wait_before: float = 0.0,
) -> Behaviour:
    unknown = set(trickle_parts) - set(ALL_PARTS)
    assert not unknown, f"trickle_parts are {ALL_PARTS}, not {sorted(unknown)}"

    def behave(exchange: Exchange) -> None:
        body = make_body(exchange.request)
        if wait_before and not exchange.wait(wait_before):
            return
        phrase = _REASONS.get(status, "Whatever") if reason is None else reason
        lines = ["Content-Type: application/json", "Connection: close"]
        if length == "exact":
            lines.append(f"Content-Length: {len(body)}")
        elif length != "omit":
            lines.append(f"Content-Length: {length}")
        lines += [f"{name}: {value}" for name, value in headers]
        status_line = f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")
        head = ("".join(line + "\r\n" for line in lines) + "\r\n").encode("latin-1")
        sent = body if cut_after is None else body[:cut_after]
        for part, data in (("status", status_line), ("headers", head), ("body", sent)):
            exchange.send(data, trickle if part in trickle_parts else 0.0)

    return behave


def _trigger(trigger_id: str, fields: dict[str, Any], request: Any = None) -> dict[str, Any]:
    """A complete Trigger object (the id first) for a create request body `request`."""
    sent = request if isinstance(request, dict) else {}
    statistics = {
        "total_customers_enrolled": 0,
        "total_customers_started": 0,
        "total_customers_finished": 0,
        "emails": dict.fromkeys(
            ("sent", "delivered", "opened", "soft_bounced", "hard_bounced", "clicked"), 0
        ),
        "custom_steps": [],
    }
    trigger = {
        "id": trigger_id,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "name": sent.get("name", "hostile"),
        "project_defined_event": sent.get("project_defined_event", "pde_hostile"),
        "internal_event_definition": {"type": "project_defined_event", "segment": None},
        "trigger": None,
        "steps": sent.get("steps", [{"type": "email"}]),
        "status": "draft",
        "filter": sent.get("filter"),
        "email_address": sent.get("email_address"),
        "phone_number": sent.get("phone_number"),
        "attributed_revenue": sent.get("attributed_revenue"),
        "excluded_customers": sent.get("excluded_customers", []),
        "statistics": statistics,
    }
    trigger.update(fields)
    return trigger


def _request_json(request: RecordedRequest) -> Any:
    try:
        return request.json()
    except ValueError:
        return None


def created(trigger_id: str = "trg_hostile", **fields: Any) -> Behaviour:
    """200 with a complete Trigger for the request: "id" first, then the documented fields."""
    return _responder(
        200, lambda request: _encode(_trigger(trigger_id, fields, _request_json(request)))
    )


def error(
    status: int, message: str, *, headers: Sequence[tuple[str, str]] = (), **options: Any
) -> Behaviour:
    """An error answer: {"error": {"status": status, "message": message}}."""
    body = {"error": {"status": status, "message": message}}
    return respond(status, body, headers=headers, **options)


def echo_credentials(status: int = 401, template: str = ECHO_TEMPLATE, **options: Any) -> Behaviour:
    """An error whose message echoes the request's credentials (see the module docstring)."""

    def message_of(request: RecordedRequest) -> bytes:
        username, password = request.credentials or ("", "")
        text = template.format(
            username=username,
            password=password,
            pair=f"{username}:{password}",
            token=request.basic_token or "",
        )
        return _encode({"error": {"status": status, "message": text}})

    return _responder(status, message_of, **options)


def cut_short(body: object, *, after: bytes | int, status: int = 200) -> Behaviour:
    """Announce the whole body, send it up to and including `after`, then close."""
    payload = _encode(body)
    if isinstance(after, bytes):
        index = payload.find(after)
        assert index >= 0, f"{after!r} is not in the body"
        after = index + len(after)
    return respond(status, payload, cut_after=after)


def lying_length(body: object, *, extra: int = 1000, status: int = 200) -> Behaviour:
    """Send the whole body, announcing `extra` bytes more than it has, then close."""
    payload = _encode(body)
    return respond(status, payload, length=len(payload) + extra)


def oversized(
    trigger_id: str = "trg_big", size: int = 2 * MiB, *, length: Length = "exact"
) -> Behaviour:
    """A 200 JSON body of about `size` bytes, its id first, then padding."""
    head = json.dumps(_trigger(trigger_id, {})).encode("ascii")[:-1]
    padding = max(0, size - len(head) - 16)
    body = head + b', "padding": "' + b"x" * padding + b'"}'
    return respond(200, body, length=length)


def trickled(
    delay: float,
    parts: Collection[str] = STATUS_LINE,
    *,
    status: int = 200,
    body: object = None,
) -> Behaviour:
    """An answer whose `parts` go out one byte every `delay` seconds."""
    payload = _trigger("trg_trickled", {}) if body is None else body
    return respond(status, payload, trickle=delay, trickle_parts=parts)


def hang_up() -> Behaviour:
    """Close the connection without an answer."""
    return lambda exchange: None


def silence(seconds: float) -> Behaviour:
    """Say nothing for `seconds` (or until the server stops), then close."""

    def behave(exchange: Exchange) -> None:
        exchange.wait(seconds)

    return behave


@dataclass(frozen=True)
class RequestHead:
    """A request's line and headers, and the bytes read after them (the body's first)."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    rest: bytes

    def header(self, name: str) -> str:
        """The first value of header `name` (case-insensitive), or ""."""
        return first_header(self.headers, name) or ""


def read_head(connection: socket.socket, stopping: threading.Event) -> RequestHead | None:
    """Read a request's head; None when the client closes first, it is too long, or
    `stopping` is set. ValueError when the request line is not HTTP."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD_BYTES or stopping.is_set():
            return None
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, version = request_line.split(" ", 2)
    headers = tuple(
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in header_lines)
    )
    return RequestHead(method, target, version, headers, rest)


class LoopbackServer:
    """A TCP server on 127.0.0.1 that serves each connection in a thread of its own: a context
    manager, or start()/stop(). A subclass writes `_serve(connection)` (closing it and calling
    `_forget(connection)` when done) and may bound the accepting with `_accepting()`."""

    thread_name = "loopback"

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._acceptor = threading.Thread(
            target=self._accept, name=f"{self.thread_name}-accept", daemon=True
        )

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start accepting connections."""
        self._acceptor.start()

    def stop(self) -> None:
        """Stop: end every wait, close every connection, join the threads."""
        self._stopping.set()
        self._close_all()
        if self._acceptor.is_alive():
            self._wake_acceptor()
            self._acceptor.join(5)
        for thread in list(self._threads):
            thread.join(5)
        self._listener.close()

    def _wake_acceptor(self) -> None:
        """Connect once, so that the acceptor sees the stop now rather than at its next poll."""
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()

    def _accepting(self) -> bool:
        """Whether to go on accepting (False: stop by itself)."""
        return True

    def _serve(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def _track(self, connection: socket.socket) -> None:
        """Close `connection` too when the server stops (an upstream one, say)."""
        with self._lock:
            self._connections.add(connection)

    def _forget(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _close_all(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            if not self._accepting():
                self._stopping.set()
                break
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            if self._stopping.is_set():  # the stop's own wake-up call, or one racing with it
                connection.close()
                break
            thread = threading.Thread(
                target=self._serve,
                args=(connection,),
                name=f"{self.thread_name}-conn",
                daemon=True,
            )
            with self._lock:
                self._connections.add(connection)
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()
        self._close_all()


class HostileServer(LoopbackServer):
    """A scripted HTTP server on 127.0.0.1 (a context manager); see the module docstring."""

    thread_name = "hostile"

    def __init__(
        self,
        script: Sequence[Behaviour] = (),
        *,
        then: Behaviour | None = None,
        time_limit: float = 120.0,
    ) -> None:
        super().__init__()
        self._script = list(script)
        self._then = then or (self._script[-1] if self._script else created())
        self._time_limit = time_limit
        self._requests: list[RecordedRequest] = []
        self._started = 0.0

    def start(self) -> None:
        """Start accepting connections."""
        self._started = time.monotonic()
        super().start()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order of arrival."""
        with self._lock:
            return list(self._requests)

    # Serving

    def _remaining(self) -> float:
        return self._started + self._time_limit - time.monotonic()

    def _accepting(self) -> bool:
        return self._remaining() > 0  # out of time: stop by itself, closing everything

    def _serve(self, connection: socket.socket) -> None:
        try:
            connection.settimeout(max(0.1, min(30.0, self._remaining())))
            request = self._read_request(connection)
            if request is None:
                return
            behaviour = (
                self._script[request.number] if request.number < len(self._script) else self._then
            )
            with contextlib.suppress(_Stopped, OSError):
                behaviour(Exchange(request, connection, self._stopping))
        except (OSError, _Stopped, ValueError):
            pass  # the client went away, or sent something that is not HTTP
        except Exception:
            traceback.print_exc(file=sys.stderr)
        finally:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
            self._forget(connection)

    def _read_request(self, connection: socket.socket) -> RecordedRequest | None:
        head = read_head(connection, self._stopping)
        if head is None:
            return None
        method, target, headers, rest = head.method, head.target, head.headers, head.rest
        if head.header("transfer-encoding").lower() == "chunked":
            body = self._read_chunked(connection, rest)
        else:
            length = int(head.header("content-length") or "0")
            if length > MAX_BODY_BYTES:
                return None
            while len(rest) < length:
                chunk = connection.recv(65536)
                if not chunk:
                    return None
                rest += chunk
            body = rest[:length]
        with self._lock:
            request = RecordedRequest(len(self._requests), method, target, headers, body)
            self._requests.append(request)
        return request

    @staticmethod
    def _read_chunked(connection: socket.socket, data: bytes) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in data:
                chunk = connection.recv(65536)
                if not chunk:
                    raise ValueError("chunked body cut short")
                data += chunk
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(data) < size + 2:
                chunk = connection.recv(65536)
                if not chunk:
                    raise ValueError("chunked body cut short")
                data += chunk
            if size == 0:
                return body  # trailers are not supported (httpx sends none)
            body += data[:size]
            data = data[size + 2 :]
            if len(body) > MAX_BODY_BYTES:
                raise ValueError("chunked body too large")
