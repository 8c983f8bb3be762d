"""An httpx transport whose requests end by a deadline, however slowly a server trickles.

httpx's timeouts are per operation: a read timeout of 30 s is met by a server that sends one
byte of its status line, headers or body every 5 s, for ever (encode/httpx#1450). Its sync
client has no total timeout, and a watchdog thread that closes the socket races with the read
it should end (closing a socket does not wake a thread blocked in recv on Linux).

So the deadline is enforced where the waiting happens: httpcore, under httpx, takes a network
backend, and this one's streams clip the timeout of every connect, TLS handshake, read and write
to the time left before the calling thread's deadline, and raise httpcore's matching timeout
once it has passed (connect: ConnectTimeout, so "never connected" stays distinguishable from
"sent, then no answer"). No thread is started; the deadline is thread-local, so the worker
threads sharing one client each keep their own.

    transport = DeadlineTransport(limits, tls=True)   # for httpx.Client(transport=...)
    with request_deadline(connect=10, total=60) as trace:
        client.stream(..., extensions={"trace": trace})
            # connecting (TCP and TLS) within `connect`, then everything from the first byte
            # sent to the last byte read within `total`; the whole request within both
    deadline_passed(exc) -> bool              # whether an httpx timeout was this deadline's

The transport is httpx's HTTPTransport without proxies or HTTP/2 (pfsync uses neither):
httpx requests in, httpcore's pool, httpx responses and exceptions out.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import httpcore
import httpx

MESSAGE = "the time cap for the whole request passed"
_SEND_STARTED = "http11.send_request_headers.started"


class _Deadline(threading.local):
    at: float | None = None  # time.monotonic() by which this thread's request must end


_DEADLINE = _Deadline()


class DeadlinePassed(Exception):
    """Mixed into the httpcore timeout raised when the deadline, not one operation, ran out."""


class _ConnectDeadline(httpcore.ConnectTimeout, DeadlinePassed):
    pass


class _ReadDeadline(httpcore.ReadTimeout, DeadlinePassed):
    pass


class _WriteDeadline(httpcore.WriteTimeout, DeadlinePassed):
    pass


@contextlib.contextmanager
def request_deadline(connect: float, total: float) -> Iterator[Callable[[str, Any], None]]:
    """Bound this thread's request; yields the `trace` extension that starts `total` on send."""
    started = time.monotonic()
    _DEADLINE.at = started + connect + total

    def trace(event: str, info: Any) -> None:
        if event == _SEND_STARTED and _DEADLINE.at is not None:
            # Connected (or reused a connection): `total` from here, never past the first cap.
            _DEADLINE.at = min(_DEADLINE.at, time.monotonic() + total)

    try:
        yield trace
    finally:
        _DEADLINE.at = None


def deadline_passed(exc: BaseException) -> bool:
    """Whether `exc` (an httpx exception) was raised because the request's deadline passed."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DeadlinePassed):
            return True
        seen = seen.__cause__
    return False


def _clip(timeout: float | None, expired: type[Exception]) -> float | None:
    """`timeout`, shortened to the time left before this thread's deadline."""
    at = _DEADLINE.at
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise expired(MESSAGE)
    return left if timeout is None else min(timeout, left)


_T = TypeVar("_T")


def _bounded(
    operation: Callable[[float | None], _T], timeout: float | None, expired: type[Exception]
) -> _T:
    """`operation(timeout)` with the timeout clipped; a clipped timeout that fires is `expired`."""
    clipped = _clip(timeout, expired)
    try:
        return operation(clipped)
    except httpcore.TimeoutException as exc:
        if clipped is not None and (timeout is None or clipped < timeout):
            raise expired(MESSAGE) from exc
        raise


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _bounded(lambda t: self._inner.read(max_bytes, t), timeout, _ReadDeadline)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _bounded(lambda t: self._inner.write(buffer, t), timeout, _WriteDeadline)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = _bounded(
            lambda t: self._inner.start_tls(ssl_context, server_hostname, t),
            timeout,
            _ConnectDeadline,
        )
        return _Stream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _clip(timeout, _ConnectDeadline)
        return _Stream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        inner = _bounded(
            lambda t: self._inner.connect_unix_socket(path, t, socket_options),
            timeout,
            _ConnectDeadline,
        )
        return _Stream(inner)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# httpcore's exceptions → httpx's, most specific first (as httpx's own transport maps them).
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProxyError, httpx.ProxyError),
)


@contextlib.contextmanager
def _httpx_exceptions() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for raised, mapped in _EXCEPTIONS:
            if isinstance(exc, raised):
                raise mapped(str(exc)) from exc
        raise


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_exceptions():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The verifying TLS context of every client in this process (the CA bundle loaded once)."""
    return httpx.create_ssl_context(trust_env=False)


class DeadlineTransport(httpx.BaseTransport):
    """HTTP/1.1 over httpcore's connection pool, every wait bounded by `request_deadline`."""

    def __init__(self, limits: httpx.Limits, *, tls: bool = True) -> None:
        self._pool = httpcore.ConnectionPool(
            # `tls`: whether the API is https. An http one (a sandbox) never needs the context,
            # and loading its CA bundle is most of what building a client costs.
            ssl_context=tls_context() if tls else None,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_Backend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the pool; the body streams as the caller reads it."""
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_exceptions():
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()
