"""Injected faults: scripted outcomes, random faults with a seed, rate limit, latency."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from fixtures_sandbox import MakeSandbox, sandbox_client, trigger_body
from pfsync.sandbox import Sandbox
from pfsync.sandbox.faults import Faults, TokenBucket, is_outcome

TRIGGERS = "/businesses/biz_1/triggers"
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("outcome", "status", "headers"),
    [
        ("500", 500, {}),
        ("502", 502, {}),
        ("503", 503, {}),
        ("503-retry-after", 503, {"retry-after": "1"}),
        ("429", 429, {"retry-after": "1"}),
        ("409", 409, {}),
        ("504", 504, {}),
        ("401", 401, {"www-authenticate": 'Basic realm="pocketflows-sandbox", charset="UTF-8"'}),
        ("403", 403, {}),
        ("422", 422, {}),
        ("400", 400, {}),
    ],
)
def test_scripted_errors_store_nothing(
    sandbox: Sandbox,
    sandbox_client: httpx.Client,
    outcome: str,
    status: int,
    headers: dict[str, str],
) -> None:
    sandbox.script(outcome)
    response = sandbox_client.post(TRIGGERS, json=trigger_body())
    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status
    assert "injected" in error["message"]
    if status == 422:
        assert error["violations"] == [{"path": "$", "message": "injected validation failure"}]
    for name, value in headers.items():
        assert response.headers[name] == value
    if outcome == "503":
        assert "retry-after" not in response.headers
    assert sandbox.triggers() == []
    # The script is used up: the next request is processed normally.
    assert sandbox_client.post(TRIGGERS, json=trigger_body()).status_code == 200


@pytest.mark.parametrize("outcome", ["429", "503-retry-after"])
def test_a_scripted_retry_after_names_the_sandboxs_retry_after_seconds(
    make_sandbox: MakeSandbox, outcome: str
) -> None:
    sandbox = make_sandbox(retry_after_seconds=0)
    sandbox.script(outcome)
    with sandbox_client(sandbox) as client:
        response = client.post(TRIGGERS, json=trigger_body())
    assert (response.status_code, response.headers["retry-after"]) == (int(outcome[:3]), "0")


def test_lose_response_stores_then_closes(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    sandbox.script("lose-response")
    with pytest.raises(httpx.RemoteProtocolError):
        sandbox_client.post(TRIGGERS, json=trigger_body())
    [stored] = sandbox.triggers("biz_1")
    [logged] = sandbox.requests()
    assert logged["status"] is None
    assert logged["outcome"] == "lose-response"
    assert logged["trigger_id"] == stored["id"]


def test_drop_closes_without_storing(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    sandbox.script("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        sandbox_client.post(TRIGGERS, json=trigger_body())
    assert sandbox.triggers() == []
    assert sandbox.requests()[0]["outcome"] == "drop"


def test_ok_no_id_stores_and_answers_without_id(
    sandbox: Sandbox, sandbox_client: httpx.Client
) -> None:
    sandbox.script("ok-no-id")
    response = sandbox_client.post(TRIGGERS, json=trigger_body())
    assert response.status_code == 200
    assert "id" not in response.json()
    assert response.json()["status"] == "draft"
    [stored] = sandbox.triggers()
    assert stored == {"id": stored["id"], **response.json()}


def test_slow_stores_then_outlasts_a_read_timeout(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(slow_seconds=60)
    sandbox.script("slow")
    started = time.monotonic()
    timeout = httpx.Timeout(5.0, read=0.3)
    with sandbox_client(sandbox, timeout=timeout) as client, pytest.raises(httpx.ReadTimeout):
        client.post(TRIGGERS, json=trigger_body())
    assert len(sandbox.triggers()) == 1
    sandbox.stop()  # wakes the waiting handler instead of keeping it for a minute
    assert time.monotonic() - started < 30


def test_slow_answers_after_its_wait(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(slow_seconds=0.2)
    sandbox.script("slow")
    started = time.monotonic()
    with sandbox_client(sandbox) as client:
        response = client.post(TRIGGERS, json=trigger_body())
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.19
    assert sandbox.triggers()[0]["id"] == response.json()["id"]


def test_scripted_outcomes_run_in_order(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    sandbox.script("lose-response", "500", "429", "ok")
    with pytest.raises(httpx.RemoteProtocolError):
        sandbox_client.post(TRIGGERS, json=trigger_body())
    statuses = [sandbox_client.post(TRIGGERS, json=trigger_body()).status_code for _ in range(4)]
    assert statuses == [500, 429, 200, 200]
    assert [r["outcome"] for r in sandbox.requests()] == [
        "lose-response",
        "500",
        "429",
        "ok",
        "ok",
    ]
    assert len(sandbox.triggers()) == 3


def test_a_storing_outcome_still_requires_auth_and_a_valid_body(
    sandbox: Sandbox, sandbox_client: httpx.Client
) -> None:
    sandbox.script("ok-no-id", "lose-response", "slow")
    assert sandbox_client.post(TRIGGERS, json=trigger_body(), auth=("x", "y")).status_code == 401
    assert sandbox_client.post(TRIGGERS, json={}).status_code == 422
    assert sandbox_client.post(TRIGGERS, content=b"{", headers=JSON).status_code == 400
    assert sandbox.triggers() == []
    assert sandbox.faults.scripted() == []


def test_faults_endpoint_scripts_lists_and_clears(
    sandbox: Sandbox, sandbox_client: httpx.Client, http_client: httpx.Client
) -> None:
    url = sandbox.url + "/__sandbox/faults"
    response = http_client.post(url, json=["500", "ok"])
    assert response.status_code == 200
    assert response.headers["x-sandbox-only"] == "true"
    assert response.json()["sandbox_only"] is True
    assert response.json()["queued"] == ["500", "ok"]
    assert http_client.post(url, json=["drop"]).json()["queued"] == ["500", "ok", "drop"]
    assert sandbox_client.post(TRIGGERS, json=trigger_body()).status_code == 500
    assert http_client.get(url).json()["queued"] == ["ok", "drop"]
    assert http_client.delete(url).json()["queued"] == []
    assert sandbox_client.post(TRIGGERS, json=trigger_body()).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [["explode"], "500", [500], {"outcomes": ["500"]}, None],
)
def test_faults_endpoint_rejects_unknown_outcomes(
    sandbox: Sandbox, http_client: httpx.Client, payload: Any
) -> None:
    response = http_client.post(sandbox.url + "/__sandbox/faults", json=payload)
    assert response.status_code == 422
    assert response.json()["error"]["status"] == 422
    assert sandbox.faults.scripted() == []


def test_faults_endpoint_rejects_malformed_json(
    sandbox: Sandbox, http_client: httpx.Client
) -> None:
    response = http_client.post(sandbox.url + "/__sandbox/faults", content=b"[")
    assert response.status_code == 422


def test_inspection_never_consumes_or_sees_faults(
    make_sandbox: MakeSandbox, http_client: httpx.Client
) -> None:
    sandbox = make_sandbox(fail_rate=1.0, rate_limit=0.001, latency_ms=5000)
    sandbox.script("500")
    started = time.monotonic()
    for _ in range(3):
        assert http_client.get(sandbox.url + TRIGGERS).status_code == 200
        assert http_client.get(sandbox.url + "/__sandbox/requests").status_code == 200
    assert time.monotonic() - started < 4  # far below the 5 s latency
    assert sandbox.faults.scripted() == ["500"]


def statuses_for(sandbox: Sandbox, count: int) -> list[int | str]:
    """Statuses of `count` sequential creates; `lost` for a connection closed unanswered."""
    out: list[int | str] = []
    with sandbox_client(sandbox) as client:
        for _ in range(count):
            try:
                out.append(client.post(TRIGGERS, json=trigger_body()).status_code)
            except httpx.RemoteProtocolError:
                out.append("lost")
    return out


def test_random_faults_repeat_with_the_same_seed(make_sandbox: MakeSandbox) -> None:
    options = {"fail_rate": 0.3, "lose_response_rate": 0.3, "seed": 42}
    first = make_sandbox(**options)
    second = make_sandbox(**options)
    sequence = statuses_for(first, 30)
    assert statuses_for(second, 30) == sequence
    assert {200, 500, "lost"} <= set(sequence)
    # Lost responses were stored; 500s were not.
    assert len(first.triggers()) == sequence.count(200) + sequence.count("lost")


def test_fail_rate_one_fails_everything_before_storing(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(fail_rate=1.0)
    assert statuses_for(sandbox, 3) == [500, 500, 500]
    assert sandbox.triggers() == []


def test_lose_response_rate_one_stores_everything_unanswered(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(lose_response_rate=1.0)
    assert statuses_for(sandbox, 3) == ["lost", "lost", "lost"]
    assert len(sandbox.triggers()) == 3


def test_rate_limit_answers_429_with_retry_after(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(rate_limit=0.5)  # one token, refilled every two seconds
    with sandbox_client(sandbox) as client:
        assert client.post(TRIGGERS, json=trigger_body()).status_code == 200
        limited = client.post(TRIGGERS, json=trigger_body())
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json()["error"]["status"] == 429
    assert len(sandbox.triggers()) == 1


def test_latency_delays_create_answers(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(latency_ms=150)
    with sandbox_client(sandbox) as client:
        for body in (trigger_body(), {}):  # a success and a rejection are both delayed
            started = time.monotonic()
            client.post(TRIGGERS, json=body)
            assert time.monotonic() - started >= 0.14


def test_token_bucket_refills_at_its_rate() -> None:
    now = [100.0]
    bucket = TokenBucket(2.0, clock=lambda: now[0])
    assert [bucket.take(), bucket.take()] == [None, None]  # a burst of two
    assert bucket.take() == 1
    now[0] += 0.5
    assert bucket.take() is None
    assert bucket.take() == 1
    slow = TokenBucket(0.25, clock=lambda: now[0])
    assert slow.take() is None
    assert slow.take() == 4


def test_outcome_names() -> None:
    for name in ["ok", "ok-no-id", "lose-response", "slow", "drop", "503-retry-after", "418"]:
        assert is_outcome(name)
    not_outcomes: list[object] = ["200", "302", "600", "OK", "", 500, None]
    for other in not_outcomes:
        assert not is_outcome(other)
    with pytest.raises(ValueError, match="'nope'"):
        Faults().script(["ok", "nope"])
