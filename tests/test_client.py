"""The API client's classification of every outcome, with httpx.MockTransport."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pfsync.apply.client import (
    Attempt,
    PocketflowsClient,
    Timeouts,
    parse_retry_after,
    server_message,
    trigger_url,
)

BODY = {"name": "n", "project_defined_event": "p", "steps": [{"type": "email"}]}
TRIGGER = {
    "id": "trg_1",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "name": "n",
    "project_defined_event": "p",
    "internal_event_definition": {"type": "customer_created", "segment": None},
    "trigger": None,
    "steps": [{"type": "email"}],
    "status": "draft",
    "filter": None,
    "email_address": None,
    "phone_number": None,
    "attributed_revenue": None,
    "statistics": {},
}
PASSWORD = "pw-sentinel-0123"


def attempt_with(handler: Callable[[httpx.Request], httpx.Response]) -> Attempt:
    with PocketflowsClient(
        "https://api.example.test",
        "user",
        PASSWORD,
        transport=httpx.MockTransport(handler),
        timeouts=Timeouts(1, 1, 2),
    ) as client:
        return client.create_trigger("biz 1/x", BODY, "key-1")


def respond(status: int, body: Any = None, **headers: str) -> Callable[..., httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, (bytes, str)):
            return httpx.Response(status, content=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


def test_request_shape() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=TRIGGER)

    attempt = attempt_with(handler)
    assert (attempt.kind, attempt.trigger_id, attempt.status) == ("created", "trg_1", "draft")
    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == "https://api.example.test/businesses/biz%201%2Fx/triggers"
    assert request.headers["Idempotency-Key"] == "key-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("pfsync/")
    expected = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert json.loads(request.content) == BODY


def test_trigger_url_escapes_one_segment() -> None:
    assert trigger_url("http://h/", "../x?#") == "http://h/businesses/..%2Fx%3F%23/triggers"


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (429, {"Retry-After": "3"}, "retryable", 3.0),
        (429, {}, "retryable", None),
        (503, {"Retry-After": "2"}, "retryable", 2.0),
        (503, {}, "uncertain", None),
        (500, {}, "uncertain", None),
        (502, {}, "uncertain", None),
        (504, {}, "uncertain", None),
        (409, {}, "uncertain", None),
        (302, {"Location": "/x"}, "uncertain", None),
        (401, {}, "auth", None),
        (403, {}, "auth", None),
        (400, {}, "failed", None),
        (404, {}, "failed", None),
        (422, {}, "failed", None),
    ],
)
def test_status_classes(status: int, headers: dict[str, str], kind: str, retry_after: Any) -> None:
    attempt = attempt_with(respond(status, {"error": {"message": "boom"}}, **headers))
    assert (attempt.kind, attempt.http_status, attempt.retry_after) == (kind, status, retry_after)
    assert attempt.message == "boom"


def test_server_message_keeps_violations() -> None:
    body = {"error": {"message": "invalid", "violations": [{"path": "$.name", "message": "x"}]}}
    assert server_message(json.dumps(body).encode()) == "invalid: $.name: x"
    assert server_message(b"<html>oops</html>") == "<html>oops</html>"
    assert server_message(b"") == "(empty response body)"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"<html>ok</html>", json.dumps({"name": "x"}), json.dumps({"id": 5}), b"[]"],
)
def test_2xx_without_usable_id_is_created_with_id_unknown(body: Any) -> None:
    attempt = attempt_with(respond(200, body))
    assert (attempt.kind, attempt.trigger_id) == ("created", None)
    assert "trigger id is unknown" in attempt.message


def test_2xx_with_odd_fields_warns_but_records() -> None:
    attempt = attempt_with(respond(201, {**TRIGGER, "status": "archived", "extra": 1}))
    assert (attempt.kind, attempt.trigger_id, attempt.status) == ("created", "trg_1", "archived")
    assert attempt.warnings == ["unexpected trigger status 'archived' recorded as is"]
    attempt = attempt_with(respond(200, {**TRIGGER, "steps": "x"}))
    assert attempt.kind == "created"
    assert attempt.warnings == [
        "the response does not match the Trigger schema: 'x' is not of type 'array'"
    ]


def test_huge_2xx_body_is_created_with_id_unknown() -> None:
    attempt = attempt_with(respond(200, b"{" + b" " * (2 * 1024 * 1024) + b"}"))
    assert (attempt.kind, attempt.trigger_id) == ("created", None)


def _raiser(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectError("refused"), "retryable"),
        (httpx.ConnectTimeout("slow"), "retryable"),
        (httpx.ReadTimeout("slow"), "uncertain"),
        (httpx.RemoteProtocolError("Server disconnected"), "uncertain"),
        (httpx.ReadError("reset"), "uncertain"),
        (httpx.WriteError("broken pipe"), "uncertain"),
    ],
)
def test_transport_errors(exc: Exception, kind: str) -> None:
    attempt = attempt_with(_raiser(exc))
    assert (attempt.kind, attempt.http_status) == (kind, None)
    assert PASSWORD not in attempt.message


def test_retry_after_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
