"""Fuzzing the API client: every response, however malformed, is an apply outcome, not a traceback.

Responses come from `httpx.MockTransport` (status, headers and body drawn by hypothesis) and
from a raw socket server on 127.0.0.1 for what a mock cannot do: a body that trickles in, a
connection closed mid-body, a status line that is not HTTP.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfsync.apply.client import (
    MAX_RESPONSE_BYTES,
    MAX_RETRY_AFTER_SECONDS,
    Attempt,
    PocketflowsClient,
    Timeouts,
    classify_response,
    parse_retry_after,
)

PASSWORD = "fuzz-pw-Sentinel-31337"
BODY = {"name": "n", "project_defined_event": "p", "steps": [{"type": "email"}]}
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = {"created", "retryable", "uncertain", "failed", "auth"}

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["id", "status", "created_at", "error", "message", "detail", "path"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=10,
)
BODIES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.sampled_from(
        [
            b"<!DOCTYPE html><html><body>Maintenance</body></html>",
            b"[" * 400_000 + b"]" * 400_000,  # deep JSON: was a RecursionError
            b'{"error": {"message": "x", "violations": [1, {"path": 2}, null]}}',
            b'{"id": 5}',
            b'{"id": ""}',
            b'{"id": ["trg_1"]}',
            b'{"id": "trg_1", "status": ["draft"], "created_at": 7}',
            b'{"id": "trg_1"',
            b"\xff\xfe\x00",
            b"",
        ]
    ),
)
HEADER_VALUES = st.sampled_from(
    ["1", "0", "\u00b2", "\u0661", "9" * 400, "-1", "1.5", " 5 ", "", "garbage",
     "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT", "text/html"]
)  # fmt: skip
HEADERS = st.dictionaries(st.sampled_from(["retry-after", "content-type"]), HEADER_VALUES)


def expected_kind(status: int, retry_after: float | None) -> str:
    """Apply's failure classes."""
    if 200 <= status < 300:
        return "created"
    if status == 429 or (status == 503 and retry_after is not None):
        return "retryable"
    if status in (401, 403):
        return "auth"
    if 400 <= status < 500 and status != 409:
        return "failed"
    return "uncertain"


def post_once(handler: Callable[[httpx.Request], httpx.Response]) -> Attempt:
    with PocketflowsClient(
        "https://api.example.test",
        "user",
        PASSWORD,
        transport=httpx.MockTransport(handler),
        timeouts=Timeouts(1, 1, 2),
    ) as client:
        return client.create_trigger("biz_1", BODY, "key-1")


def assert_clean(attempt: Attempt) -> None:
    assert attempt.kind in KINDS
    assert attempt.retry_after is None or math.isfinite(attempt.retry_after)
    assert PASSWORD not in attempt.message
    if attempt.kind == "created":
        assert attempt.trigger_id is None or (
            isinstance(attempt.trigger_id, str) and attempt.trigger_id
        )
        assert attempt.trigger_id is not None or "trigger id is unknown" in attempt.message


@FUZZ
@given(st.integers(100, 599), BODIES, HEADERS)
def test_any_response_is_classified(status: int, body: bytes, headers: dict[str, str]) -> None:
    raw_headers = [(name.encode(), value.encode("utf-8")) for name, value in headers.items()]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=raw_headers)

    attempt = post_once(handler)
    assert_clean(attempt)
    if status >= 200:  # httpx hands 1xx to us as final responses too: uncertain
        retry_after = parse_retry_after(headers.get("retry-after"))
        assert attempt.kind == expected_kind(status, retry_after)
        assert attempt.http_status == status


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json at all", "the response body is not JSON; the trigger id is unknown"),
        (b"<html><body>OK</body></html>", "the response body is not JSON"),
        (b'{"name": "n"}', "the response carries no trigger id"),
        (b'{"id": 42}', "the response carries no trigger id"),
        (b'{"id": null}', "the response carries no trigger id"),
        (b"[1, 2]", "the response carries no trigger id"),
        (b"[" * 100_000 + b"]" * 100_000, "the response body is not JSON"),  # regression
    ],
)
def test_a_2xx_without_a_usable_id_is_created_with_id_unknown(body: bytes, message: str) -> None:
    attempt = post_once(lambda request: httpx.Response(200, content=body))
    assert (attempt.kind, attempt.trigger_id) == ("created", None)
    assert message in attempt.message


def test_regression_deep_json_error_body_is_the_server_message() -> None:
    # Was: RecursionError from json.loads in server_message, killing the worker thread.
    deep = b"[" * 100_000 + b"]" * 100_000
    attempt = classify_response(500, {}, deep)
    assert attempt.kind == "uncertain"
    assert attempt.message.startswith("[[[[") and attempt.message.endswith("…")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("\u00b2", None),  # was ValueError: '²'.isdigit() is True, float('²') fails
        ("\u0661", None),  # Arabic-Indic one: not the delta-seconds of RFC 9110
        ("9" * 400, float(MAX_RETRY_AFTER_SECONDS)),  # was inf, then OverflowError in a wait
        ("Fri, 31 Dec 9999 23:59:59 GMT", float(MAX_RETRY_AFTER_SECONDS)),
        ("120", 120.0),
    ],
)
def test_regression_retry_after_is_ascii_and_finite(value: str, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


# --- a raw socket server -------------------------------------------------------------------------

Behaviour = Callable[[socket.socket], None]


class RawServer:
    """Accepts connections on 127.0.0.1, reads one request, then runs `behaviour` on the socket."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.behaviour: Behaviour = lambda conn: None
        self.requests = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                if self.stopping.is_set():
                    return
                self._read_request(conn)
                self.requests += 1
                with contextlib.suppress(OSError):  # the client may give up first
                    self.behaviour(conn)

    @staticmethod
    def _read_request(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            rest += conn.recv(65536)

    def stop(self) -> None:
        self.stopping.set()
        # close() does not wake a thread blocked in accept(): a last connection does.
        with contextlib.suppress(OSError):
            socket.create_connection(self.listener.getsockname(), timeout=1).close()
        self.thread.join(5)
        self.listener.close()


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.stop()


def post_raw(server: RawServer, timeouts: Timeouts) -> Attempt:
    with PocketflowsClient(server.url, "user", PASSWORD, timeouts=timeouts) as client:
        return client.create_trigger("biz_1", BODY, "key-1")


def trickle(status: str, pause: float, stop: threading.Event) -> Behaviour:
    def behave(conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 100000\r\n\r\n".encode())
        conn.sendall(b'{"id": "trg_slow", "name": "')
        while not stop.wait(pause):
            conn.sendall(b"x")

    return behave


@pytest.mark.parametrize(
    ("status", "kind", "trigger_id"),
    [("200 OK", "created", "trg_slow"), ("500 Oops", "uncertain", None)],
)
def test_a_trickling_body_is_judged_by_its_status_line(
    raw_server: RawServer, status: str, kind: str, trigger_id: str | None
) -> None:
    # Each byte arrives well within the read timeout; the total deadline ends the wait.
    done = threading.Event()
    raw_server.behaviour = trickle(status, 0.02, done)
    try:
        attempt = post_raw(raw_server, Timeouts(connect=2, read=2, total=0.3))
    finally:
        done.set()
    assert attempt.kind == kind
    assert attempt.trigger_id == trigger_id  # the id is read from what arrived
    assert raw_server.requests == 1


def respond_then(head: bytes, body: bytes, then_close: bool = True) -> Behaviour:
    def behave(conn: socket.socket) -> None:
        conn.sendall(head + body)
        if then_close:
            conn.shutdown(socket.SHUT_RDWR)

    return behave


@pytest.mark.parametrize(
    ("behaviour", "kind", "message"),
    [
        # A 2xx whose body breaks off: created, id unknown (never a reason to send again).
        (
            respond_then(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", b'{"id": "trg_'),
            "created",
            "the trigger id is unknown",
        ),
        # A 502 whose body breaks off: the request was sent, so uncertain.
        (
            respond_then(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 500\r\n\r\n", b"<ht"),
            "uncertain",
            "connection lost after sending",
        ),
        (respond_then(b"HELLO WORLD\r\n\r\n", b""), "uncertain", "connection lost after sending"),
        (respond_then(b"", b""), "uncertain", "connection lost after sending"),
        (
            respond_then(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 25\r\n\r\n",
                b"<html>Welcome back</html>",
            ),
            "created",
            "the response body is not JSON",
        ),
        (
            respond_then(
                b"HTTP/1.1 200 OK\r\nContent-Length: " + str(MAX_RESPONSE_BYTES + 10).encode()
                + b"\r\n\r\n",
                b'{"pad": "' + b"x" * MAX_RESPONSE_BYTES + b'", "id": "trg_big"}',
            ),  # the id comes after the 1 MiB limit (ids before it: test_hostile_client.py)
            "created",
            "the response is longer than the 1 MiB limit, and no whole trigger id had arrived",
        ),
    ],
)  # fmt: skip
def test_malformed_responses_over_a_socket(
    raw_server: RawServer, behaviour: Behaviour, kind: str, message: str
) -> None:
    raw_server.behaviour = behaviour
    attempt = post_raw(raw_server, Timeouts(connect=2, read=2, total=5))
    assert attempt.kind == kind, attempt
    assert message in attempt.message
    assert raw_server.requests == 1


def test_no_answer_at_all_is_uncertain_after_the_read_timeout(raw_server: RawServer) -> None:
    done = threading.Event()

    def wait_in_silence(conn: socket.socket) -> None:
        done.wait(5)

    raw_server.behaviour = wait_in_silence
    try:
        attempt = post_raw(raw_server, Timeouts(connect=2, read=0.2, total=5))
    finally:
        done.set()
    assert attempt.kind == "uncertain"
    assert attempt.message.startswith("no response in time")


def test_nothing_listening_is_retryable() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with PocketflowsClient(f"http://127.0.0.1:{port}", "u", PASSWORD) as client:
        attempt = client.create_trigger("biz_1", BODY, "k")
    assert attempt.kind == "retryable" and attempt.message.startswith("could not connect")
