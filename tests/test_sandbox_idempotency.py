"""Idempotency-Key handling (only with idempotency_keys) and persistence across restarts."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures_sandbox import MakeSandbox, sandbox_client, trigger_body
from pfsync.sandbox import Sandbox, SandboxDataError

TRIGGERS = "/businesses/biz_1/triggers"


def post(client: httpx.Client, key: str, **fields: Any) -> httpx.Response:
    """Create a trigger with Idempotency-Key `key`."""
    return client.post(TRIGGERS, json=trigger_body(**fields), headers={"Idempotency-Key": key})


def test_keys_are_ignored_by_default(sandbox: Sandbox, sandbox_client: httpx.Client) -> None:
    first = post(sandbox_client, "k")
    second = post(sandbox_client, "k")
    assert first.json()["id"] != second.json()["id"]
    assert len(sandbox.triggers()) == 2
    assert [r["idempotency_key"] for r in sandbox.requests()] == ["k", "k"]


def test_same_key_same_body_replays_the_first_response(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(idempotency_keys=True)
    with sandbox_client(sandbox) as client:
        first = post(client, "k")
        again = post(client, "k")
        other_key = post(client, "other")
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert other_key.json()["id"] != first.json()["id"]
    assert [t["id"] for t in sandbox.triggers()] == [first.json()["id"], other_key.json()["id"]]
    assert [r["outcome"] for r in sandbox.requests()] == ["ok", "replay", "ok"]
    assert sandbox.requests()[1]["trigger_id"] == first.json()["id"]


def test_same_key_other_body_or_business_is_422(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(idempotency_keys=True)
    with sandbox_client(sandbox) as client:
        assert post(client, "k").status_code == 200
        changed = post(client, "k", name="changed")
        elsewhere = client.post(
            "/businesses/biz_2/triggers", json=trigger_body(), headers={"Idempotency-Key": "k"}
        )
    for response in (changed, elsewhere):
        assert response.status_code == 422
        assert "different request" in response.json()["error"]["message"]
    assert len(sandbox.triggers()) == 1


def test_a_key_whose_request_failed_before_storing_can_be_reused(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(idempotency_keys=True)
    sandbox.script("500")
    with sandbox_client(sandbox) as client:
        assert post(client, "k").status_code == 500
        assert post(client, "k", name="").status_code == 200
    assert len(sandbox.triggers()) == 1


def test_retry_after_a_lost_response_replays_without_a_second_create(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(idempotency_keys=True)
    sandbox.script("lose-response")
    with sandbox_client(sandbox) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            post(client, "k")
        retry = post(client, "k")
    [stored] = sandbox.triggers()
    assert retry.status_code == 200
    assert retry.json() == stored


def test_a_key_in_flight_gets_409(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(idempotency_keys=True, latency_ms=600)
    results: list[httpx.Response] = []

    def first_request() -> None:
        with sandbox_client(sandbox) as client:
            results.append(post(client, "k"))

    thread = threading.Thread(target=first_request)
    thread.start()
    deadline = time.monotonic() + 10
    while "k" not in sandbox.store.in_flight():
        assert time.monotonic() < deadline, "the first request never claimed its key"
        time.sleep(0.005)
    with sandbox_client(sandbox) as client:
        second = post(client, "k")
    thread.join()
    assert second.status_code == 409
    assert second.json()["error"]["status"] == 409
    assert results[0].status_code == 200
    assert len(sandbox.triggers()) == 1


def test_many_threads_one_key_create_exactly_once(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(idempotency_keys=True, latency_ms=50)
    threads_count = 16
    barrier = threading.Barrier(threads_count)
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def worker() -> None:
        with sandbox_client(sandbox) as client:
            barrier.wait()
            for _ in range(3):
                response = post(client, "shared")
                with lock:
                    responses.append(response)

    workers = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    [stored] = sandbox.triggers()
    statuses = {r.status_code for r in responses}
    assert statuses <= {200, 409}
    created = [r.json() for r in responses if r.status_code == 200]
    assert created
    assert all(body == stored for body in created)


def test_triggers_and_keys_persist_across_a_restart(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    data = tmp_path / "state" / "sandbox.json"
    first = make_sandbox(data_file=data, idempotency_keys=True)
    with sandbox_client(first) as client:
        created = post(client, "k").json()
        client.post("/businesses/biz_2/triggers", json=trigger_body("other"))
    before = first.triggers()
    first.stop()
    assert json.loads(data.read_text())["format"] == "pfsync-sandbox-data"
    assert [p.name for p in data.parent.iterdir()] == ["sandbox.json"]  # no temp files left

    second = make_sandbox(data_file=data, idempotency_keys=True)
    assert second.triggers() == before
    with sandbox_client(second) as client:
        assert post(client, "k").json() == created  # the key is remembered too
        post(client, "k2")
    assert len(second.triggers()) == 3


def test_without_a_data_file_nothing_persists(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox()
    with sandbox_client(sandbox) as client:
        client.post(TRIGGERS, json=trigger_body())
    assert make_sandbox().triggers() == []


@pytest.mark.parametrize("content", ["{", "[]", '{"format": "other", "version": 1}'])
def test_an_unreadable_data_file_is_an_error_and_left_alone(tmp_path: Path, content: str) -> None:
    data = tmp_path / "sandbox.json"
    data.write_text(content)
    with pytest.raises(SandboxDataError, match=str(data)):
        Sandbox(data_file=data)
    assert data.read_text() == content
