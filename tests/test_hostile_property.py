"""A property: whatever string a server answers with, no command prints a raw control character
or the password, nothing raises, and the lockfile keeps the exact id.

The server (a tiny one in this process, over loopback) answers the first create with 200 and
`{"id": VALUE}`, the second with 500 and a message holding VALUE and the credentials it was sent,
the third with 422 likewise. Then plan, state list and state show read what was recorded. The
commands run in this process (hundreds of examples); the end-to-end tests against the installed
pfsync are in test_hostile_client.py and test_hostile_state.py.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apply_helpers import BUSINESS, make_repo, reading_commands
from conftest import UNSAFE_OUTPUT, run_in_process
from pfsync.support.textsafety import is_safe

PASSWORD = "pw-S3ntinel-7781"
USERNAME = "robot"


class EchoingServer(ThreadingHTTPServer):
    """Answers creates in turn: 200 with the value as id, 500 and 422 echoing it and the
    Authorization it got."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.value = ""
        self.count = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer_with(self, value: str) -> None:
        """Start over: the next create is the first, and every answer holds `value`."""
        with self.lock:
            self.value, self.count = value, 0


class _Handler(BaseHTTPRequestHandler):
    server: EchoingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.count += 1
            turn, value = self.server.count, self.server.value
        authorization = self.headers.get("Authorization", "")
        decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
        echo = f"{value} invalid credentials {decoded} ({authorization})"
        document: dict[str, Any]
        if turn == 1:
            status, document = 200, {"id": value, "status": value, "created_at": value}
        elif turn == 2:
            status, document = 500, {"error": {"message": echo}}
        else:
            status, document = 422, {"message": echo}
        body = json.dumps(document).encode("ascii")  # \\u escapes: lone surrogates too
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def echoing_server() -> Iterator[EchoingServer]:
    """One server for every example (each starts it over with `answer_with`)."""
    server = EchoingServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


SECRET_FORMS = (
    PASSWORD,
    f"{USERNAME}:{PASSWORD}",
    base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode(),
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(alphabet=st.characters(codec=None, categories=None), max_size=20))
def test_any_server_string_is_shown_safely_and_the_password_nowhere(
    text: str, tmp_path_factory: Any, echoing_server: EchoingServer
) -> None:
    value = f"Q7{text}Z9"  # markers: the raw value anywhere in the output would be found
    repo = make_repo(tmp_path_factory.mktemp("repo"), 3)
    echoing_server.answer_with(value)
    env = {
        "PFSYNC_API_URL": echoing_server.url,
        "PFSYNC_USERNAME": USERNAME,
        "PFSYNC_PASSWORD": PASSWORD,
    }
    outputs = []
    argv = ["-v", "apply", "--auto-approve", "--new-lockfile", "--parallelism", "1"]
    code, output = run_in_process(argv, repo, env)
    assert code == 1, output  # the 422 is a failed create
    outputs.append(output)
    for argv in reading_commands("t000", "t001"):
        code, output = run_in_process(argv, repo, env)
        assert code == 0, (argv, output)
        outputs.append(output)
    lockfile_text = (repo / "pfsync.lock").read_text(encoding="utf-8")
    for text_out in [*outputs, lockfile_text]:
        assert UNSAFE_OUTPUT.search(text_out) is None, repr(text_out)
        assert is_safe(value) or value not in text_out
        for secret in SECRET_FORMS:
            assert secret not in text_out
    recorded = json.loads(lockfile_text)
    assert recorded["triggers"][f"{BUSINESS}/t000"]["id"] == value
    assert set(recorded["pending"]) == {f"{BUSINESS}/t001"}  # the 500: uncertain
