"""A fault-injecting HTTP/1.1 proxy on 127.0.0.1 to put in front of the moto S3 server of
`s3_helpers`: an S3-compatible service that ignores conditional writes, a network that resets,
drops, freezes, holds, fails or slows requests, a far-away endpoint. Switched at run time.

    from s3_proxy import S3Proxy, open_s3_server

    server = open_s3_server()                    # moto without authentication (see "Signatures")
    with S3Proxy(server.url) as proxy:           # or the fixture make_s3_proxy(url)
        env = s3_env(server.admin, proxy.url)    # pfsync (or boto3) talks to the proxy
        proxy.strip_conditions = True            # drop If-Match / If-None-Match from requests
        proxy.latency = 0.05                     # seconds added before each request is forwarded
        proxy.fail_next(2, "reset", method="PUT")          # the next 2 PUTs: connection reset
        proxy.fail_next(1, "status", status=503)           # the next request: a 503 from the proxy
        proxy.fail_next(1, "slow", delay=1.0, trickle=0.01)
        proxy.fail_next(1, "close", forward=True, path=f"/{bucket}/pfsync.lock")
        proxy.fail_next(9, "hold", method="PUT")           # until clear_faults(): a race's start
        proxy.clear_faults()                     # forget queued faults, end frozen/held requests
        proxy.count("PUT"), proxy.count(path=f"/{bucket}/pfsync.lock"), proxy.counts
        proxy.requests                           # SeenRequest(method, path, query, stripped, fault)

S3Proxy(upstream_url)
    A context manager (or start()/stop()); .url ("http://127.0.0.1:PORT"), .port. The fixture
    `make_s3_proxy` (import it into the test module) makes started ones and stops them after
    the test. Each client connection carries one request: the proxy reads it whole (answering
    `Expect: 100-continue` itself), forwards it on a new connection with `Connection: close`,
    and relays the answer with `Connection: close`. The Host header is forwarded unchanged.
    Stopping ends every wait (latency, delay, trickle, freeze, hold) at once and closes every
    connection: a test's teardown never hangs on the proxy.

Switches (plain attributes, read afresh by every request; safe to set from the test's thread)
    strip_conditions: bool   drop the If-Match and If-None-Match request headers (every method):
                             a service that silently ignores conditional writes.
    stripped_headers         which headers strip_conditions drops (lower case; default both):
                             {"if-match"} plays a service that honours only If-None-Match.
    latency: float           seconds to wait before forwarding each request (a distant region).

Faults: fail_next(count, kind, *, method=None, path=None, status=503, delay=0.0, trickle=0.0,
forward=False)
    The next `count` requests that match (`method` such as "PUT", and `path` such as
    "/bucket/key", the path without the query; None matches anything) meet fault `kind`.
    Rules are kept in the order they were queued; a request takes the first rule it matches.
    kind "reset"   read the request, then close with a TCP RST (SO_LINGER 0).
         "close"   read the request, then close without a word.
         "freeze"  read the request and never answer, until clear_faults() or stop(): then close.
         "hold"    read the request and wait until clear_faults(), then forward it as usual (or
                   close at stop()): line up several clients at the same point of a race.
         "status"  answer `status` (500, 503, ...) with an S3 XML error body.
         "slow"    forward, then wait `delay` seconds and send the answer one byte every
                   `trickle` seconds (0: all at once).
    forward=True   for reset / close / freeze / status: the request reaches the server first
                   (a write that happened, whose answer was lost); default False: it never does.
    pending_faults() -> int: how many faulted requests are still queued.

Counts
    requests: list[SeenRequest], in order of arrival (method, path, query, stripped: whether a
    conditional header was dropped, fault: the kind met or None); counts: Counter of
    (method, path); count(method=None, path=None) -> int.

Signatures
    boto signs If-Match and If-None-Match (SigV4 signs every header it sends), so a request
    stripped of them fails the authenticating server's signature check (403
    SignatureDoesNotMatch). Strip only in front of `open_s3_server()`: moto with authentication
    off (`s3_helpers.start_server(open_access=True)`), which still enforces conditional writes
    itself. Every other switch forwards the request byte for byte and works in front of the
    authenticating `s3_server()` too.
"""

from __future__ import annotations

import atexit
import contextlib
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import pytest

from hostile_server import LoopbackServer, RequestHead, read_head
from s3_helpers import S3Server, start_server

FaultKind = Literal["reset", "close", "freeze", "hold", "status", "slow"]
FAULT_KINDS: tuple[FaultKind, ...] = ("reset", "close", "freeze", "hold", "status", "slow")
CONDITIONAL_HEADERS = frozenset({"if-match", "if-none-match"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "expect"})
UPSTREAM_TIMEOUT = 120.0  # seconds: a loaded 2-core machine
_ERROR_CODES = {500: "InternalError", 501: "NotImplemented", 503: "SlowDown"}


@dataclass(frozen=True)
class SeenRequest:
    """One request as the proxy read it."""

    method: str
    path: str
    query: str
    stripped: bool
    fault: FaultKind | None


@dataclass
class _Rule:
    kind: FaultKind
    remaining: int
    method: str | None
    path: str | None
    status: int
    delay: float
    trickle: float
    forward: bool

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or self.path == path
        )


class _Stopped(Exception):
    """The proxy is stopping: end the exchange."""


@dataclass(frozen=True)
class _Request:
    head: RequestHead
    body: bytes

    @property
    def path(self) -> str:
        return self.head.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.head.target.partition("?")[2]


class S3Proxy(LoopbackServer):
    """A fault-injecting proxy on 127.0.0.1 (a context manager); see the module docstring."""

    thread_name = "s3-proxy"

    def __init__(self, upstream_url: str) -> None:
        super().__init__()
        upstream = urlsplit(upstream_url)
        assert upstream.scheme == "http" and upstream.hostname in ("127.0.0.1", "localhost")
        self._upstream = (upstream.hostname, upstream.port or 80)
        self.strip_conditions = False
        self.stripped_headers: frozenset[str] = CONDITIONAL_HEADERS
        self.latency = 0.0
        self._thaw = threading.Event()
        self._rules: list[_Rule] = []
        self._requests: list[SeenRequest] = []

    def stop(self) -> None:
        """End every wait, close every connection, join the threads."""
        self._thaw.set()
        super().stop()

    # What a test switches and reads

    def fail_next(
        self,
        count: int,
        kind: FaultKind,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int = 503,
        delay: float = 0.0,
        trickle: float = 0.0,
        forward: bool = False,
    ) -> None:
        """The next `count` matching requests meet fault `kind` (see the module docstring)."""
        assert kind in FAULT_KINDS, f"a fault is one of {FAULT_KINDS}, not {kind!r}"
        assert count > 0
        rule = _Rule(kind, count, method, path, status, delay, trickle, forward)
        with self._lock:
            self._rules.append(rule)

    def clear_faults(self) -> None:
        """Forget every queued fault; frozen requests end (closed), held ones are forwarded."""
        with self._lock:
            self._rules.clear()
            thaw, self._thaw = self._thaw, threading.Event()
        thaw.set()

    def pending_faults(self) -> int:
        """How many faulted requests are still queued."""
        with self._lock:
            return sum(rule.remaining for rule in self._rules)

    @property
    def requests(self) -> list[SeenRequest]:
        """Every request read so far, in order of arrival."""
        with self._lock:
            return list(self._requests)

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        """How many requests were read, by (method, path)."""
        return Counter((seen.method, seen.path) for seen in self.requests)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests were read with this method and path (None: any)."""
        return sum(
            1
            for seen in self.requests
            if (method is None or seen.method == method) and (path is None or seen.path == path)
        )

    # Serving

    def _wait(self, seconds: float) -> None:
        if seconds > 0 and self._stopping.wait(seconds):
            raise _Stopped

    def _serve(self, connection: socket.socket) -> None:
        linger = False
        try:
            connection.settimeout(UPSTREAM_TIMEOUT)
            request = self._read_request(connection)
            if request is None:
                return
            headers = [(n, v) for n, v in request.head.headers if n.lower() not in HOP_BY_HOP]
            dropped = self.stripped_headers if self.strip_conditions else frozenset()
            stripped = any(name.lower() in dropped for name, _ in headers)
            headers = [(n, v) for n, v in headers if n.lower() not in dropped]
            rule, thaw = self._take_rule(request, stripped)
            self._wait(self.latency)
            if rule is not None and rule.kind == "hold":
                self._wait_for(thaw)
            answer = None
            if rule is None or rule.forward or rule.kind in ("slow", "hold"):
                answer = self._forward(request, headers)
            if rule is None or rule.kind == "hold":
                connection.sendall(answer or b"")
            elif rule.kind == "freeze":
                self._wait_for(thaw)
            elif rule.kind == "reset":
                linger = True
            elif rule.kind == "status":
                connection.sendall(_error_answer(rule.status))
            elif rule.kind == "slow":
                self._wait(rule.delay)
                self._send(connection, answer or b"", rule.trickle)
        except (OSError, _Stopped, ValueError):
            pass  # the client went away, the proxy is stopping, or it was not HTTP
        finally:
            if linger:
                with contextlib.suppress(OSError):
                    connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
            else:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            connection.close()
            self._forget(connection)

    def _wait_for(self, thaw: threading.Event) -> None:
        """Until clear_faults() sets `thaw`; _Stopped when the proxy stops first."""
        while not thaw.wait(0.05):
            if self._stopping.is_set():
                raise _Stopped
        if self._stopping.is_set():
            raise _Stopped

    def _take_rule(self, request: _Request, stripped: bool) -> tuple[_Rule | None, threading.Event]:
        """The fault this request meets (logged with it), and the clear_faults() event it waits
        for: taken together, so a clear_faults() right after the request is logged releases it."""
        with self._lock:
            rule = next(
                (r for r in self._rules if r.matches(request.head.method, request.path)), None
            )
            if rule is not None:
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
            kind = rule.kind if rule is not None else None
            seen = SeenRequest(request.head.method, request.path, request.query, stripped, kind)
            self._requests.append(seen)
            return rule, self._thaw

    def _send(self, connection: socket.socket, data: bytes, trickle: float) -> None:
        if trickle <= 0:
            connection.sendall(data)
            return
        for index in range(len(data)):
            if index:
                self._wait(trickle)
            connection.sendall(data[index : index + 1])

    def _read_request(self, connection: socket.socket) -> _Request | None:
        head = read_head(connection, self._stopping)
        if head is None:
            return None
        if head.header("expect").lower() == "100-continue":
            connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if head.header("transfer-encoding").lower() == "chunked":
            body = _read_chunked(connection, head.rest)
        else:
            body = _read_exactly(connection, head.rest, int(head.header("content-length") or "0"))
        return _Request(head, body)

    def _forward(self, request: _Request, headers: list[tuple[str, str]]) -> bytes:
        """The server's whole answer to `request`, its Connection header made `close`."""
        upstream = socket.create_connection(self._upstream, timeout=UPSTREAM_TIMEOUT)
        self._track(upstream)
        try:
            sent = request.head
            lines = [f"{sent.method} {sent.target} {sent.version}"]
            lines += [f"{name}: {value}" for name, value in headers]
            lines.append("Connection: close")
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body)
            received = bytearray()
            while chunk := upstream.recv(65536):
                received += chunk
                if self._stopping.is_set():
                    raise _Stopped
            if self._stopping.is_set():
                raise _Stopped
        finally:
            self._forget(upstream)
            upstream.close()
        head, separator, body = bytes(received).partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("the server's answer was cut short")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        kept = [line for line in lines if line.partition(":")[0].strip().lower() != "connection"]
        head = "\r\n".join([status_line, *kept, "Connection: close"]).encode("latin-1")
        return head + b"\r\n\r\n" + body


def _read_exactly(connection: socket.socket, data: bytes, length: int) -> bytes:
    buffer = bytearray(data)
    while len(buffer) < length:
        chunk = connection.recv(65536)
        if not chunk:
            raise ValueError("the request's body was cut short")
        buffer += chunk
    return bytes(buffer[:length])


def _read_chunked(connection: socket.socket, data: bytes) -> bytes:
    """A chunked body as it was sent (forwarded raw, with its Transfer-Encoding header)."""
    buffer = bytearray(data)
    position = 0

    def need(end: int) -> None:
        while len(buffer) < end:
            chunk = connection.recv(65536)
            if not chunk:
                raise ValueError("the request's body was cut short")
            buffer.extend(chunk)

    while True:
        while b"\r\n" not in buffer[position:]:
            need(len(buffer) + 1)
        line_end = buffer.index(b"\r\n", position)
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        position = line_end + 2
        if size == 0:  # trailers, then an empty line
            while b"\r\n\r\n" not in buffer[position - 2 :]:
                need(len(buffer) + 1)
            end = buffer.index(b"\r\n\r\n", position - 2) + 4
            return bytes(buffer[:end])
        need(position + size + 2)
        position += size + 2


def _error_answer(status: int) -> bytes:
    code = _ERROR_CODES.get(status, "InternalError")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


# The open server and the fixture


_open_server: S3Server | None = None
_open_lock = threading.Lock()


def open_s3_server() -> S3Server:
    """The session's moto server without authentication (started on first use; stopped when
    this process exits): the one to strip conditional headers in front of."""
    global _open_server
    with _open_lock:
        if _open_server is None or _open_server.proc.poll() is not None:
            _open_server = start_server(open_access=True)
            atexit.register(_open_server.stop)
        return _open_server


MakeS3Proxy = Callable[[str], S3Proxy]


@pytest.fixture
def make_s3_proxy() -> Iterator[MakeS3Proxy]:
    """make_s3_proxy(upstream_url) -> a started S3Proxy; every one is stopped after the test."""
    proxies: list[S3Proxy] = []

    def make(upstream_url: str) -> S3Proxy:
        proxy = S3Proxy(upstream_url)
        proxy.start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()
