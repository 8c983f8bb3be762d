"""`pfsync sandbox` as a process: first line is the URL, signals stop it cleanly."""

from __future__ import annotations

import json
import selectors
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import RunPfsync, clean_env, pfsync_executable
from fixtures_sandbox import http_client, trigger_body

TRIGGERS = "/businesses/biz_1/triggers"


def first_line(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """The first stdout line of `proc`, failing the test if it does not come in time."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(timeout), "pfsync sandbox printed nothing"
    return proc.stdout.readline()


@contextmanager
def sandbox_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run `pfsync sandbox --port 0 ARGS...`; yields the process and its URL; kills leftovers."""
    with subprocess.Popen(
        [pfsync_executable(), "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    ) as proc:
        try:
            yield proc, first_line(proc).rstrip("\n")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)


def stop(proc: subprocess.Popen[str], signum: int) -> tuple[int, str, str]:
    """Send `signum`, wait, and return exit code, rest of stdout, stderr."""
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_on_a_free_port_and_stops_cleanly(signum: int) -> None:
    with sandbox_process("--password", "s3cret-pw") as (proc, url):
        assert url.startswith("http://127.0.0.1:")
        assert int(url.rsplit(":", 1)[1]) > 0
        with http_client() as client:
            auth = ("sandbox", "s3cret-pw")
            created = client.post(url + TRIGGERS, json=trigger_body(), auth=auth)
            assert created.status_code == 200
            listed = client.get(url + TRIGGERS).json()["triggers"]
        assert listed == [created.json()]
        code, out, err = stop(proc, signum)
    assert code == 0, err
    assert out == ""
    assert "s3cret-pw" not in err
    assert "Traceback" not in err


def test_starts_fast() -> None:
    started = time.monotonic()
    with sandbox_process() as (proc, url):
        elapsed = time.monotonic() - started
        assert url.startswith("http://")
        assert stop(proc, signal.SIGTERM)[0] == 0
    assert elapsed < 5  # generous for loaded CI; typically ~0.2 s


def test_options_reach_the_server(tmp_path: Path) -> None:
    data = tmp_path / "sandbox.json"
    options = ["--data", str(data), "--idempotency-keys", "--username", "ops", "--seed", "1"]
    with sandbox_process(*options) as (proc, url), http_client(auth=("ops", "sandbox")) as client:
        headers = {"Idempotency-Key": "k"}
        first = client.post(url + TRIGGERS, json=trigger_body(), headers=headers)
        again = client.post(url + TRIGGERS, json=trigger_body(), headers=headers)
        assert first.status_code == 200
        assert again.json() == first.json()
        assert stop(proc, signal.SIGTERM)[0] == 0
    assert len(json.loads(data.read_text())["triggers"]["biz_1"]) == 1

    with sandbox_process("--data", str(data)) as (proc, url), http_client() as client:
        assert client.get(url + TRIGGERS).json()["triggers"] == [first.json()]
        assert stop(proc, signal.SIGTERM)[0] == 0


def test_fault_options() -> None:
    options = ["--fail-rate", "1", "--latency-ms", "100", "--rate-limit", "0.5"]
    with (
        sandbox_process(*options) as (proc, url),
        http_client(auth=("sandbox", "sandbox")) as client,
    ):
        started = time.monotonic()
        assert client.post(url + TRIGGERS, json=trigger_body()).status_code == 500
        assert time.monotonic() - started >= 0.09
        limited = client.post(url + TRIGGERS, json=trigger_body())
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "2"
        assert stop(proc, signal.SIGTERM)[0] == 0
    with sandbox_process("--lose-response-rate", "1") as (proc, url), http_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(url + TRIGGERS, json=trigger_body(), auth=("sandbox", "sandbox"))
        assert len(client.get(url + TRIGGERS).json()["triggers"]) == 1
        assert stop(proc, signal.SIGTERM)[0] == 0


def test_a_taken_port_is_a_clear_error(run_pfsync: RunPfsync) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_pfsync("sandbox", "--port", port, timeout=20)
    assert result.code == 1, result
    assert result.out == ""
    assert f"cannot listen on 127.0.0.1:{port}" in result.err


def test_a_corrupt_data_file_is_a_clear_error(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    data = tmp_path / "sandbox.json"
    data.write_text("{")
    result = run_pfsync("sandbox", "--port", "0", "--data", str(data), timeout=20)
    assert result.code == 1, result
    assert result.out == ""
    assert "cannot read sandbox data file" in result.err
    assert "Traceback" not in result.err
    assert data.read_text() == "{"


@pytest.mark.parametrize(
    "args", [["--fail-rate", "2"], ["--rate-limit", "0"], ["--port", "-1"], ["--latency-ms", "x"]]
)
def test_bad_options_are_usage_errors(run_pfsync: RunPfsync, args: list[str]) -> None:
    result = run_pfsync("sandbox", *args, timeout=20)
    assert result.code == 1, result
    assert result.out == ""


def test_help_documents_defaults_and_endpoints(run_pfsync: RunPfsync) -> None:
    result = run_pfsync("sandbox", "--help")
    assert result.code == 0, result
    for text in ["--port", "8787", "--username", "--password", "sandbox", "/__sandbox/faults"]:
        assert text in result.out
