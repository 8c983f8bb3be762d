"""The sandbox's endpoints and status codes, over real HTTP on loopback."""

from __future__ import annotations

import base64
import json
import re
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fixtures_sandbox import trigger_body
from pfsync.sandbox import Sandbox
from pfsync.schemas import TRIGGER, validator

TRIGGERS = "/businesses/biz_1/triggers"


def raw_exchange(sandbox: Sandbox, data: bytes) -> bytes:
    """Send raw bytes on one connection and read until the server closes it."""
    with socket.create_connection((sandbox.host, sandbox.port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_create_returns_a_complete_trigger(sandbox_client: httpx.Client) -> None:
    body = trigger_body(
        filter="plan = 'pro'",
        metadata={"team": "growth"},
        attributed_revenue=12.5,
        email_address="ea_1",
        phone_number=None,
        excluded_customers=["cus_1"],
    )
    response = sandbox_client.post(TRIGGERS, json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    trigger = response.json()
    assert list(validator(TRIGGER).iter_errors(trigger)) == []
    assert trigger["id"].startswith("trg_")
    assert trigger["created_at"] == trigger["updated_at"]
    assert trigger["created_at"].endswith("Z") and "T" in trigger["created_at"]
    assert trigger["status"] == "draft"
    assert trigger["trigger"] is None
    for field in body:
        assert trigger[field] == body[field]
    assert trigger["internal_event_definition"]["type"] == "project_defined_event"
    assert trigger["statistics"]["total_customers_enrolled"] == 0
    assert set(trigger["statistics"]["emails"].values()) == {0}
    assert trigger["statistics"]["custom_steps"] == []


def test_created_triggers_are_listed_per_business(
    sandbox: Sandbox, sandbox_client: httpx.Client, http_client: httpx.Client
) -> None:
    first = sandbox_client.post(TRIGGERS, json=trigger_body("one")).json()
    second = sandbox_client.post(TRIGGERS, json=trigger_body("two")).json()
    other = sandbox_client.post("/businesses/biz_2/triggers", json=trigger_body("three")).json()
    assert first["id"] != second["id"]

    listing = http_client.get(sandbox.url + TRIGGERS)  # no auth needed for inspection
    assert listing.status_code == 200
    assert listing.headers["x-sandbox-only"] == "true"
    document = listing.json()
    assert document["sandbox_only"] is True
    assert document["business"] == "biz_1"
    assert document["triggers"] == [first, second]
    assert sandbox.triggers("biz_1") == [first, second]
    assert sandbox.triggers() == [first, second, other]
    assert http_client.get(sandbox.url + "/businesses/nobody/triggers").json()["triggers"] == []


@pytest.mark.parametrize(
    "auth",
    [
        None,
        ("sandbox", "wrong"),
        ("someone", "sandbox"),
    ],
)
def test_missing_or_wrong_credentials_get_401(
    sandbox: Sandbox, http_client: httpx.Client, auth: tuple[str, str] | None
) -> None:
    url = sandbox.url + TRIGGERS
    response = (
        http_client.post(url, json=trigger_body())
        if auth is None
        else http_client.post(url, json=trigger_body(), auth=auth)
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert response.json()["error"]["status"] == 401
    assert sandbox.triggers() == []


@pytest.mark.parametrize(
    "authorization",
    ["Bearer token", "Basic !!notbase64", "Basic " + base64.b64encode(b"x").decode()],
)
def test_malformed_authorization_gets_401(
    sandbox: Sandbox, http_client: httpx.Client, authorization: str
) -> None:
    response = http_client.post(
        sandbox.url + TRIGGERS, json=trigger_body(), headers={"Authorization": authorization}
    )
    assert response.status_code == 401


def test_custom_credentials(make_sandbox: Any, http_client: httpx.Client) -> None:
    sandbox = make_sandbox(username="ops", password="pa:ss wörd")
    url = sandbox.url + TRIGGERS
    for auth, status in [(("ops", "pa:ss wörd"), 200), (("sandbox", "sandbox"), 401)]:
        assert http_client.post(url, json=trigger_body(), auth=auth).status_code == status


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        (b"{", "application/json", "malformed JSON"),
        (b"\xff\xfe", "application/json", "malformed JSON"),
        (b'{"name": NaN}', "application/json", "malformed JSON"),
        (b"", "application/json", "malformed JSON"),
        (
            json.dumps(trigger_body()).encode(),
            "text/plain",
            "Content-Type must be application/json",
        ),
        (json.dumps(trigger_body()).encode(), None, "not missing"),
    ],
)
def test_bad_bodies_get_400(
    sandbox: Sandbox,
    sandbox_client: httpx.Client,
    content: bytes,
    content_type: str | None,
    message: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = sandbox_client.post(TRIGGERS, content=content, headers=headers)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert sandbox.triggers() == []


def test_json_content_type_with_charset_is_accepted(sandbox_client: httpx.Client) -> None:
    response = sandbox_client.post(
        TRIGGERS,
        content=json.dumps(trigger_body()).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


def test_schema_violations_get_422_with_every_path(
    sandbox: Sandbox, sandbox_client: httpx.Client
) -> None:
    body = {"nmae": "typo", "steps": [{"type": 1, "emial": "x"}], "excluded_customers": [3]}
    response = sandbox_client.post(TRIGGERS, json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["status"] == 422
    assert [(v["path"], v["message"]) for v in error["violations"]] == [
        ("$.excluded_customers[0]", "3 is not of type 'string'"),
        ("$.name", "missing required field 'name'"),
        ("$.nmae", "unknown field 'nmae'"),
        ("$.project_defined_event", "missing required field 'project_defined_event'"),
        ("$.steps[0].emial", "unknown field 'emial'"),
        ("$.steps[0].type", "1 is not of type 'string'"),
    ]
    assert sandbox.triggers() == []


def test_a_body_that_is_not_an_object_gets_422(sandbox_client: httpx.Client) -> None:
    response = sandbox_client.post(TRIGGERS, json=[1])
    assert response.status_code == 422
    assert response.json()["error"]["violations"] == [
        {"path": "$", "message": "[1] is not of type 'object'"}
    ]


@pytest.mark.parametrize(
    "path",
    ["/", "/businesses", "/businesses/biz_1", "/businesses/biz_1/triggers/", "/x/y/triggers"],
)
def test_unknown_paths_get_404(sandbox_client: httpx.Client, path: str) -> None:
    response = sandbox_client.post(path, json=trigger_body())
    assert response.status_code == 404
    assert response.json()["error"]["status"] == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", TRIGGERS, "GET, POST"),
        ("DELETE", TRIGGERS, "GET, POST"),
        ("PATCH", TRIGGERS, "GET, POST"),
        ("POST", "/__sandbox/requests", "GET, DELETE"),
        ("PUT", "/__sandbox/faults", "GET, POST, DELETE"),
    ],
)
def test_wrong_methods_get_405(
    sandbox_client: httpx.Client, method: str, path: str, allowed: str
) -> None:
    response = sandbox_client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["error"]["status"] == 405


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", TRIGGERS, "GET, POST"),
        ("CONNECT", TRIGGERS, "GET, POST"),
        ("PROPFIND", TRIGGERS, "GET, POST"),
        ("TRACE", "/__sandbox/requests", "GET, DELETE"),
        ("FOO", "/__sandbox/faults", "GET, POST, DELETE"),
        ("OPTIONS", "/__sandbox/faults", "GET, POST, DELETE"),
    ],
)
def test_methods_without_a_handler_get_405_not_501(
    sandbox: Sandbox, method: str, path: str, allowed: str
) -> None:
    # Issue #12: TRACE and other methods the handler had no do_ method for got an HTML 501.
    answer = raw_exchange(
        sandbox, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 405 Method Not Allowed"
    assert f"Allow: {allowed}" in lines
    assert json.loads(body)["error"] == {
        "status": 405,
        "message": f"method {method} not allowed here (allowed: {allowed})",
    }


def test_any_method_on_an_unknown_path_is_404(sandbox: Sandbox) -> None:
    answer = raw_exchange(
        sandbox, b"TRACE /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 404 Not Found\r\n")


def test_head_gets_405_without_a_body(sandbox_client: httpx.Client) -> None:
    response = sandbox_client.head(TRIGGERS)
    assert response.status_code == 405
    assert response.content == b""


def test_bodies_over_one_mebibyte_get_413(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    padding = "x" * (1024 * 1024)
    response = sandbox_client.post(TRIGGERS, json=trigger_body(filter=padding))
    assert response.status_code == 413
    assert response.json()["error"]["status"] == 413
    assert sandbox.triggers() == []
    # The connection was closed; the client opens a new one and carries on.
    assert sandbox_client.post(TRIGGERS, json=trigger_body()).status_code == 200


def test_chunked_bodies_are_read(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    body = trigger_body("Grüße to new sign-ups", filter="plan = 'pro'")
    data = json.dumps(body, ensure_ascii=False).encode()
    # A chunk ends after every space, and one boundary falls inside the two bytes of "ü".
    cut = data.index("ü".encode()) + 1
    chunks = [c for part in (data[:cut], data[cut:]) for c in re.findall(rb"[^ ]* ?", part) if c]
    assert b"".join(chunks) == data and len(chunks) > 10
    response = sandbox_client.post(
        TRIGGERS, content=iter(chunks), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.request.headers["transfer-encoding"] == "chunked"
    [stored] = sandbox.triggers("biz_1")
    assert stored == response.json()
    assert {field: stored[field] for field in body} == body


def test_malformed_request_line_gets_a_json_400(sandbox: Sandbox) -> None:
    reply = raw_exchange(sandbox, b"NONSENSE\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["error"]["status"] == 400


def test_keep_alive_and_one_write_per_response(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[bytes] = []
    original = socketserver._SocketWriter.write  # type: ignore[attr-defined]

    def recording_write(self: Any, data: bytes) -> int:
        writes.append(bytes(data))
        return original(self, data)  # type: ignore[no-any-return]

    monkeypatch.setattr(socketserver._SocketWriter, "write", recording_write)  # type: ignore[attr-defined]
    body = json.dumps(trigger_body()).encode()
    credentials = base64.b64encode(b"sandbox:sandbox").decode()
    request = (
        f"POST {TRIGGERS} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {credentials}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    closing = f"GET {TRIGGERS} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    reply = raw_exchange(sandbox, request + request + closing)

    assert reply.count(b"HTTP/1.1 200 OK\r\n") == 3  # three answers on one connection
    assert len(writes) == 3
    assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") and w.endswith(b"}") for w in writes)
    assert b"Connection: close" in writes[2] and b"Connection: close" not in writes[0]
    assert len(sandbox.triggers()) == 2


def test_request_log_records_every_request_without_credentials(
    sandbox: Sandbox, sandbox_client: httpx.Client, http_client: httpx.Client
) -> None:
    sandbox_client.post(TRIGGERS, json=trigger_body(), headers={"Idempotency-Key": "k-1"})
    sandbox_client.post(TRIGGERS, json={})
    sandbox_client.get("/nowhere")
    response = http_client.get(sandbox.url + "/__sandbox/requests")
    assert response.status_code == 200
    assert response.headers["x-sandbox-only"] == "true"
    document = response.json()
    assert document["sandbox_only"] is True
    entries = document["requests"]
    assert [(e["method"], e["path"], e["status"], e["idempotency_key"]) for e in entries] == [
        ("POST", TRIGGERS, 200, "k-1"),
        ("POST", TRIGGERS, 422, None),
        ("GET", "/nowhere", 404, None),
    ]
    assert entries[0]["trigger_id"] == sandbox.triggers()[0]["id"]
    assert entries[0]["business"] == "biz_1"
    assert [e["seq"] for e in entries] == [1, 2, 3]
    text = response.text + json.dumps(sandbox.requests())
    assert "authorization" not in text.lower()
    assert base64.b64encode(b"sandbox:sandbox").decode() not in text

    assert http_client.delete(sandbox.url + "/__sandbox/requests").status_code == 200
    assert sandbox.requests() == []


def test_a_stop_closes_idle_keep_alive_connections(sandbox: Sandbox) -> None:
    with socket.create_connection((sandbox.host, sandbox.port), timeout=5) as sock:
        sock.sendall(f"GET {TRIGGERS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        stopper = threading.Thread(target=sandbox.stop)
        stopper.start()
        stopper.join(timeout=10)
        assert not stopper.is_alive()
        assert sock.recv(65536) == b""  # closed by the server


@pytest.fixture
def ipv6_sandbox() -> Iterator[Sandbox]:
    """A sandbox on ::1, skipped where IPv6 loopback is unavailable."""
    try:
        sandbox = Sandbox("::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback")
    yield sandbox
    sandbox.stop()


def test_ipv6_loopback(ipv6_sandbox: Sandbox, http_client: httpx.Client) -> None:
    assert ipv6_sandbox.url.startswith("http://[::1]:")
    url = ipv6_sandbox.url + TRIGGERS
    response = http_client.post(url, json=trigger_body(), auth=("sandbox", "sandbox"))
    assert response.status_code == 200


def test_environment_and_repr_do_not_leak_beyond_the_given_password(make_sandbox: Any) -> None:
    sandbox = make_sandbox(password="hunter2")
    assert sandbox.environment() == {
        "PFSYNC_API_URL": sandbox.url,
        "PFSYNC_USERNAME": "sandbox",
        "PFSYNC_PASSWORD": "hunter2",
    }
    assert "hunter2" not in repr(sandbox)
