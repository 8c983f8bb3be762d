"""The client against a hostile server (issue #12): secrets, slow answers, bad URLs, lost ids.

Each group has unit tests of `PocketflowsClient` against `hostile_server.HostileServer`, and
end-to-end tests that run the installed `pfsync apply` against it and check the exit code,
the relevant stderr lines, and that no form of the password is anywhere afterwards.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from apply_helpers import BUSINESS, lock_ids, lock_pending, make_repo
from conftest import Run, RunPfsync, clean_env, pfsync_executable
from hostile_server import (
    ALL_PARTS,
    Exchange,
    HostileServer,
    MiB,
    Part,
    created,
    cut_short,
    echo_credentials,
    error,
    hang_up,
    lying_length,
    oversized,
    respond,
    silence,
    trickled,
)
from pfsync.apply.client import MAX_RESPONSE_BYTES, Attempt, PocketflowsClient, Timeouts
from pfsync.apply.credentials import credentials_from_environment
from pfsync.errors import ConfigError
from pfsync.support.textsafety import escape, is_safe, shown_id

USERNAME = "hostile-user"
PASSWORD = "Hostile-Pw-73915"
PAIR = f"{USERNAME}:{PASSWORD}"
TOKEN = base64.b64encode(PAIR.encode()).decode()
SECRET_FORMS = (PASSWORD, PAIR, TOKEN)
BODY = {"name": "n", "project_defined_event": "p", "steps": [{"type": "email"}]}
ADDRESS = f"{BUSINESS}/t000"
# A wait that has to run out (a silence's read timeout, a cap nothing arrives within, a TLS
# handshake that never completes): nothing must happen within it, so it can be short.
SHORT_WAIT = 0.1


def post(server: HostileServer, timeouts: Timeouts | None = None, name: str = "n") -> Attempt:
    """One create through a fresh client."""
    timeouts = timeouts or Timeouts(connect=2, read=2, total=5)
    with PocketflowsClient(server.url, USERNAME, PASSWORD, timeouts=timeouts) as client:
        return client.create_trigger("biz_1", {**BODY, "name": name}, "key-1")


def assert_secret_free(*texts: str) -> None:
    for text in texts:
        for form in SECRET_FORMS:
            assert form not in text, f"{form!r} leaked"


def assert_repo_secret_free(repo: Path) -> None:
    """No file in the repository (lockfile, journal, anything) holds a form of the password."""
    for path in repo.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for form in SECRET_FORMS:
                assert form.encode() not in data, f"{form!r} leaked into {path}"


def apply(
    run_pfsync: RunPfsync, repo: Path, url: str, *args: str, **env: str
) -> Run:  # one create at a time, so the script's order is the manifests' order
    environment = {
        "PFSYNC_API_URL": url,
        "PFSYNC_USERNAME": USERNAME,
        "PFSYNC_PASSWORD": PASSWORD,
        **env,
    }
    return run_pfsync(
        "apply",
        "--auto-approve",
        "--new-lockfile",
        "--parallelism",
        "1",
        *args,
        cwd=repo,
        env=environment,
    )


def lockfile(repo: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((repo / "pfsync.lock").read_text(encoding="utf-8"))
    return data


# --- The hostile server itself ------------------------------------------------------------------


def test_the_server_logs_requests_and_follows_its_script() -> None:
    script = [hang_up(), silence(10), error(503, "later", headers=[("Retry-After", "7")])]
    # Only the silent answer has to run out its read timeout; the others answer at once.
    read_timeouts = [2, SHORT_WAIT, 2, 2]
    with HostileServer(script, then=created("trg_after")) as server:
        attempts = [
            post(server, Timeouts(1, read, 5), name=f"n{n}") for n, read in enumerate(read_timeouts)
        ]
        requests = server.requests
    assert [(a.kind, a.message.split(":")[0]) for a in attempts[:2]] == [
        ("uncertain", "connection lost after sending"),
        ("uncertain", "no response in time"),
    ]
    assert (attempts[2].kind, attempts[2].retry_after, attempts[2].message) == (
        "retryable",
        7.0,
        "later",
    )
    assert (attempts[3].kind, attempts[3].trigger_id, attempts[3].warnings) == (
        "created",
        "trg_after",
        [],
    )
    assert [(r.number, r.method, r.target, r.json()["name"]) for r in requests] == [
        (n, "POST", "/businesses/biz_1/triggers", f"n{n}") for n in range(4)
    ]
    assert requests[0].header("idempotency-key") == "key-1"
    assert requests[0].credentials == (USERNAME, PASSWORD)
    assert requests[0].basic_token == TOKEN


# --- 1. A server that echoes the credentials -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, "auth"), (403, "auth"), (422, "failed"), (429, "retryable"), (500, "uncertain")],
)
def test_echoed_credentials_are_redacted_from_the_message(status: int, kind: str) -> None:
    with HostileServer([echo_credentials(status)]) as server:
        attempt = post(server)
        [request] = server.requests
    assert request.credentials == (USERNAME, PASSWORD)  # the server did see them
    assert (attempt.kind, attempt.http_status) == (kind, status)
    assert attempt.message == "invalid credentials *** (Authorization: Basic ***)"


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "bad", "violations": [{"path": "$.name", "message": PASSWORD}]}},
        {"detail": f"password {PASSWORD} rejected"},
        {"message": f"{USERNAME}:{PASSWORD}"},
        f"<html>{TOKEN}</html>",
        {"error": {"message": "x" * 495 + PASSWORD}},  # the 500-character cut fell in the password
        {"error": {"message": f"pw:\n{PASSWORD}\n"}},  # whitespace around it is folded
    ],
    ids=["violation", "detail", "message-pair", "html-token", "cut-at-500", "whitespace"],
)
def test_every_form_of_server_message_is_redacted(body: object) -> None:
    with HostileServer([respond(422, body)]) as server:
        attempt = post(server)
    assert attempt.kind == "failed"
    assert "***" in attempt.message
    assert_secret_free(attempt.message)
    assert PASSWORD[:6] not in attempt.message


def test_a_created_triggers_id_is_data_but_warnings_and_status_are_redacted() -> None:
    trigger_id = f"trg_{PASSWORD}"
    with HostileServer([created(trigger_id, status=PASSWORD)]) as server:
        attempt = post(server)
    assert (attempt.kind, attempt.trigger_id) == ("created", trigger_id)
    assert attempt.status == "***"
    assert attempt.warnings == ["unexpected trigger status '***' recorded as is"]
    assert_secret_free(attempt.message, *attempt.warnings)


def test_exception_descriptions_are_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError(f"peer said {PASSWORD} and {TOKEN}")

    with PocketflowsClient(
        "https://api.example.test",
        USERNAME,
        PASSWORD,
        transport=httpx.MockTransport(handler),
    ) as client:
        attempt = client.create_trigger("biz_1", BODY, "key-1")
    assert attempt.kind == "uncertain"
    assert attempt.message == "connection lost after sending: ReadError (peer said *** and ***)"


@pytest.mark.parametrize(
    ("status", "code", "line"),
    [
        (401, 1, "Error: the API refused the credentials (invalid credentials ***"),
        (
            422,
            1,
            f"{ADDRESS}: failed: HTTP 422: invalid credentials *** (Authorization: Basic ***)",
        ),
        (
            500,
            3,
            f"{ADDRESS}: uncertain: HTTP 500: invalid credentials *** (Authorization: Basic ***)",
        ),
    ],
    ids=["401", "422", "500"],
)
def test_apply_never_prints_or_writes_echoed_credentials(
    run_pfsync: RunPfsync, tmp_path: Path, status: int, code: int, line: str
) -> None:
    repo = make_repo(tmp_path, 1)
    with HostileServer([echo_credentials(status)]) as server:
        run = apply(run_pfsync, repo, server.url)
        assert len(server.requests) == 1
    assert run.code == code, run
    assert line in run.err
    assert_secret_free(run.out, run.err)
    assert_repo_secret_free(repo)
    if status == 500:
        assert lock_pending(repo)[ADDRESS]["reason"] == (
            "HTTP 500: invalid credentials *** (Authorization: Basic ***)"
        )


# --- 2. A server that trickles its answer --------------------------------------------------------

# A trickling server sends one byte every TRICKLE seconds, well within each 1 s read timeout:
# only the cap on the whole exchange ends the request.
TRICKLE = 0.05
# Where the status line and headers must arrive in time (they are not trickled), a cap with
# room for a loaded machine; where nothing of the answer must arrive, the cap only has to be
# reached.
TIGHT = Timeouts(connect=1, read=1, total=0.5)
CAPPED = Timeouts(connect=1, read=1, total=SHORT_WAIT)


@pytest.mark.parametrize(
    "parts", [("status",), ("headers",), ALL_PARTS], ids=["status-line", "headers", "everything"]
)
def test_a_trickled_answer_ends_at_the_time_cap_as_uncertain(parts: tuple[Part, ...]) -> None:
    # Each byte comes well within the read timeout: only a cap on the whole exchange ends it.
    with HostileServer([trickled(TRICKLE, parts)], time_limit=30) as server:
        attempt = post(server, CAPPED)
        assert len(server.requests) == 1
    assert (attempt.kind, attempt.http_status) == ("uncertain", None)
    assert attempt.message.startswith("no response in time: ReadTimeout"), attempt


def test_a_long_status_line_trickled_does_not_hang() -> None:
    # One reason phrase of 1,000 bytes at 0.05 s each would take 50 s; the server gives up at 20.
    behaviour = respond(200, b"{}", reason="O" * 1000, trickle=TRICKLE, trickle_parts=("status",))
    with HostileServer([behaviour], time_limit=20) as server:
        attempt = post(server, CAPPED)
    assert attempt.kind == "uncertain"
    assert attempt.message.startswith("no response in time"), attempt


def test_a_trickled_2xx_body_is_created_and_judged_by_what_arrived() -> None:
    with HostileServer([trickled(TRICKLE, ("body",))], time_limit=30) as server:
        attempt = post(server, TIGHT)
    assert (attempt.kind, attempt.http_status, attempt.trigger_id) == ("created", 200, None)
    assert "the trigger id is unknown" in attempt.message


def test_a_trickled_4xx_body_is_judged_by_its_status_line() -> None:
    behaviour = error(422, "a long explanation " * 20, trickle=TRICKLE, trickle_parts=("body",))
    with HostileServer([behaviour], time_limit=30) as server:
        attempt = post(server, TIGHT)
    assert (attempt.kind, attempt.http_status) == ("failed", 422)


def test_parallel_workers_each_keep_their_own_deadline() -> None:
    slow = trickled(TRICKLE, ALL_PARTS)

    def by_name(exchange: Exchange) -> None:
        name = exchange.request.json()["name"]
        (slow if name.startswith("slow") else created(f"trg_{name}"))(exchange)

    results: dict[str, Attempt] = {}
    with (
        HostileServer([by_name], time_limit=30) as server,
        PocketflowsClient(server.url, USERNAME, PASSWORD, timeouts=TIGHT) as client,
    ):

        def worker(name: str) -> None:
            results[name] = client.create_trigger("biz_1", {**BODY, "name": name}, name)

        names = ["slow-1", "fast-1", "slow-2", "fast-2", "fast-3", "fast-4"]
        threads = [threading.Thread(target=worker, args=(name,)) for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert {name: a.kind for name, a in results.items()} == {
        name: "uncertain" if name.startswith("slow") else "created" for name in names
    }
    assert {results[n].trigger_id for n in names if n.startswith("fast")} == {
        f"trg_fast-{n}" for n in range(1, 5)
    }


def test_a_tls_handshake_that_never_completes_is_retryable() -> None:
    # The server reads the ClientHello as the start of a request and never answers: the
    # connection was never established, so nothing was sent.
    with HostileServer([silence(10)], time_limit=20) as server:
        url = server.url.replace("http://", "https://")
        timeouts = Timeouts(SHORT_WAIT, 5, 5)
        with PocketflowsClient(url, USERNAME, PASSWORD, timeouts=timeouts) as client:
            attempt = client.create_trigger("biz_1", BODY, "key-1")
        assert server.requests == []
    assert attempt.kind == "retryable"
    assert attempt.message.startswith("could not connect: ConnectTimeout"), attempt


def test_apply_ends_when_the_server_trickles(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    # Before: the status line and headers took ~25 s, then the body trickled until the server
    # gave up, and the create was recorded as created with id unknown.
    # Each byte comes within the 0.3 s read timeout; the cap (twice that) ends the request.
    repo = make_repo(tmp_path, 1)
    with HostileServer([trickled(0.1, ALL_PARTS)], time_limit=55) as server:
        run = apply(run_pfsync, repo, server.url, "--connect-timeout", "1", "--read-timeout", "0.3")
    assert run.code == 3, run
    assert f"{ADDRESS}: uncertain: no response in time: ReadTimeout" in run.err
    assert "Apply: 0 created, 0 failed, 1 uncertain." in run.err
    assert list(lock_pending(repo)) == [ADDRESS]
    assert_secret_free(run.out, run.err)
    assert_repo_secret_free(repo)


# --- 3. An API URL that httpx cannot send to ----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://localhost:80a", "invalid port"),
        ("http://127.0.0.1:99999", "invalid port"),
        ("http://localhost:0", "invalid port"),
        ("http://local host:8080", "space or control character"),
        ("https://exa_mple..com", "invalid host"),
    ],
)
def test_apply_refuses_an_unusable_api_url_before_anything(
    run_pfsync: RunPfsync, tmp_path: Path, url: str, reason: str
) -> None:
    repo = make_repo(tmp_path, 1)
    run = apply(run_pfsync, repo, url)
    assert (run.code, run.out) == (1, ""), run
    assert run.err.startswith("Error: the API URL ") and reason in run.err, run
    assert "Traceback" not in run.err
    assert not (repo / "pfsync.lock").exists()
    assert_secret_free(run.err)


# --- 4. Credentials that HTTP Basic cannot carry -------------------------------------------------


@pytest.mark.parametrize("variable", ["PFSYNC_USERNAME", "PFSYNC_PASSWORD"])
def test_credentials_that_are_not_utf8_are_refused_by_name(variable: str) -> None:
    environ = {"PFSYNC_USERNAME": USERNAME, "PFSYNC_PASSWORD": PASSWORD}
    environ[variable] = "Secret-\udcff-value"  # how os.environ holds the byte 0xff
    with pytest.raises(ConfigError) as info:
        credentials_from_environment(environ)
    assert str(info.value).startswith(f"{variable} is not valid UTF-8")
    assert "Secret" not in str(info.value)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PFSYNC_USERNAME": "team:ops", "PFSYNC_PASSWORD": PASSWORD}, "contains ':'"),
        ({"PFSYNC_USERNAME": USERNAME, "PFSYNC_PASSWORD": PASSWORD + "\n"}, "control character"),
        ({"PFSYNC_USERNAME": "us\x1ber", "PFSYNC_PASSWORD": PASSWORD}, "control character"),
    ],
)
def test_credentials_http_basic_cannot_carry_are_refused(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        credentials_from_environment(environ)
    assert PASSWORD not in str(info.value) and "team" not in str(info.value)


def test_a_colon_in_the_password_is_fine() -> None:
    environ = {"PFSYNC_USERNAME": USERNAME, "PFSYNC_PASSWORD": "a:b:c"}
    assert credentials_from_environment(environ) == (USERNAME, "a:b:c")


@pytest.mark.parametrize("variable", ["PFSYNC_USERNAME", "PFSYNC_PASSWORD"])
def test_apply_refuses_a_non_utf8_credential_by_name(
    run_pfsync: RunPfsync, tmp_path: Path, variable: str
) -> None:
    repo = make_repo(tmp_path, 1)
    with HostileServer([echo_credentials(500)]) as server:
        run = apply(run_pfsync, repo, server.url, **{variable: "Secret-\udcff-value"})
        assert server.requests == []
    assert (run.code, run.out) == (1, ""), run
    assert run.err.startswith(f"Error: {variable} is not valid UTF-8"), run
    assert "Traceback" not in run.err and "Secret" not in run.err
    assert not (repo / "pfsync.lock").exists()


# --- 5. An id that arrived in a broken answer ----------------------------------------------------

FULL = json.dumps({"id": "trg_lie", "status": "draft", "created_at": "2026-01-01T00:00:00Z"})
NESTED = b'{"steps": [{"id": "nested", "x": {"id": "deeper"}}], "id": "trg_top", "name": "n"}'


@pytest.mark.parametrize(
    ("behaviour", "trigger_id"),
    [
        (lying_length(FULL), "trg_lie"),  # complete JSON, Content-Length too large, closed
        (oversized("trg_big"), "trg_big"),  # over the 1 MiB limit, the id first
        (oversized("trg_big", length="omit"), "trg_big"),  # the same, ended by closing
        (cut_short(FULL, after=b'"trg_lie",'), "trg_lie"),
        (cut_short(FULL, after=b'"trg_lie"'), "trg_lie"),
        (cut_short(b'{"id": "trg_\\u00e9\\n\\"q\\"", "n": 1}', after=b'\\"",'), 'trg_é\n"q"'),
        (cut_short(b'{\n  "name" : "a,\\"id\\": \\"no\\"",\n  "id" :"trg_ok" , "z": 1}',
                   after=b'"z'), "trg_ok"),
        (cut_short(NESTED, after=b'"trg_top"'), "trg_top"),
    ],
    ids=["wrong-length", "oversized", "oversized-no-length", "cut-after-comma", "cut-after-id",
         "escapes", "spaces-and-decoy", "nested-first"],
)  # fmt: skip
def test_the_id_is_recovered_from_a_broken_2xx(behaviour: Any, trigger_id: str) -> None:
    with HostileServer([behaviour]) as server:
        attempt = post(server)
    assert (attempt.kind, attempt.http_status, attempt.trigger_id) == ("created", 200, trigger_id)
    assert attempt.message == ""
    assert len(attempt.warnings) == 1
    assert "the trigger id was read from what arrived" in attempt.warnings[0]


@pytest.mark.parametrize(
    "behaviour",
    [
        cut_short(FULL, after=b'"trg_li'),  # the id itself is cut
        cut_short(FULL, after=b'"id": '),
        cut_short(b'{"id": 42, "name": "x"}', after=b"42,"),  # not a string
        cut_short(b'{"id": "", "name": "x"}', after=b'"",'),  # empty
        cut_short(NESTED, after=b'"deeper"}}],'),  # only nested ids arrived
        cut_short(b'["trg_1", {"id": "trg_2"}, 3]', after=b'"trg_2"}'),  # not an object
        cut_short(b'{"id": "trg_\xff\xfe", "n": 1}', after=b'",'),  # not UTF-8
        cut_short(b'{"id": "trg_\\ud8", "n": 1}', after=b'",'),  # a broken escape
        oversized("", length="omit"),
    ],
    ids=[
        "id-cut",
        "value-missing",
        "number",
        "empty",
        "nested-only",
        "array",
        "not-utf8",
        "broken-escape",
        "oversized-empty-id",
    ],
)
def test_an_id_that_did_not_arrive_whole_stays_unknown(behaviour: Any) -> None:
    with HostileServer([behaviour]) as server:
        attempt = post(server)
    assert (attempt.kind, attempt.trigger_id) == ("created", None)
    assert "the trigger id is unknown" in attempt.message


def test_the_response_limit_is_what_the_client_keeps() -> None:
    assert MiB == MAX_RESPONSE_BYTES  # oversized() defaults to twice this


@pytest.mark.parametrize(
    ("behaviour", "trigger_id"),
    [
        (lying_length(FULL), "trg_lie"),
        (oversized("trg_big"), "trg_big"),
        (cut_short(FULL, after=b'"trg_lie",'), "trg_lie"),
    ],
    ids=["wrong-length", "oversized", "cut-short"],
)
def test_apply_records_an_id_recovered_from_a_broken_answer(
    run_pfsync: RunPfsync, tmp_path: Path, behaviour: Any, trigger_id: str
) -> None:
    repo = make_repo(tmp_path, 1)
    with HostileServer([behaviour]) as server:
        run = apply(run_pfsync, repo, server.url)
        assert len(server.requests) == 1
    assert run.code == 0, run
    assert f"{ADDRESS}: created {trigger_id}" in run.err
    assert "the trigger id was read from what arrived" in run.err
    assert "Apply: 1 created, 0 failed, 0 uncertain." in run.err
    assert lock_ids(repo) == {ADDRESS: trigger_id}
    assert lock_pending(repo) == {}


# --- Strange ids and messages: kept exactly by the client, shown escaped -------------------------

STRANGE_IDS = [
    "trg_\n\x1b]0;title\x07\r",
    "trg_\ud800",
    "trg_\u202eevil",
]


@pytest.mark.parametrize("trigger_id", STRANGE_IDS)
def test_a_strange_id_is_kept_exactly(trigger_id: str) -> None:
    with HostileServer([created(trigger_id)]) as server:
        attempt = post(server)
    assert (attempt.kind, attempt.trigger_id, attempt.warnings) == ("created", trigger_id, [])


def test_a_strange_error_message_is_kept_for_the_renderers() -> None:
    with HostileServer([error(422, "bad \x1b[31mred\x1b[0m \ud800 \u202e")]) as server:
        attempt = post(server)
    assert (attempt.kind, attempt.message) == ("failed", "bad \x1b[31mred\x1b[0m \ud800 \u202e")


@pytest.mark.parametrize("trigger_id", STRANGE_IDS)
def test_apply_shows_a_strange_id_escaped_and_records_it_exactly(
    run_pfsync: RunPfsync, tmp_path: Path, trigger_id: str
) -> None:
    repo = make_repo(tmp_path, 1)
    with HostileServer([created(trigger_id)]) as server:
        run = apply(run_pfsync, repo, server.url)
    assert run.code == 0, run
    assert lock_ids(repo) == {ADDRESS: trigger_id}
    text = (repo / "pfsync.lock").read_bytes().decode("utf-8")  # always valid UTF-8
    assert escape(text) == text.replace("\n", "\\n")  # no raw control characters but newlines
    assert is_safe(run.out.replace("\n", "")) and is_safe(run.err.replace("\n", ""))
    # Quoted with every unusual character escaped ('trg_\x0a\x1b\x5d0...'), fit for a command line.
    assert f"{ADDRESS}: created {shown_id(trigger_id)}\n" in run.err
    assert shown_id(trigger_id).startswith("'trg_\\")


def test_apply_shows_a_strange_error_message_escaped(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, 1)
    message = "bad \x1b[31mred\x1b[0m \ud800 \u202e"
    with HostileServer([error(422, message)]) as server:
        run = apply(run_pfsync, repo, server.url)
    assert run.code == 1, run
    assert f"{ADDRESS}: failed: HTTP 422: {escape(message)}\n" in run.err
    assert "\x1b" not in run.err and "\u202e" not in run.err


# --- 6. A big manifest value, and 7. the sandbox's 405 -------------------------------------------


def test_apply_names_a_huge_value_without_blaming_aliases(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, 1)
    manifest = repo / "triggers" / "t000.yaml"
    huge = "x" * (9 * MiB + 900 * 1024)
    manifest.write_text(manifest.read_text() + f"  filter: {huge}\n")
    with HostileServer([created()]) as server:
        run = apply(run_pfsync, repo, server.url)
        assert server.requests == []
    assert run.code == 1, run
    assert (
        "triggers/t000.yaml:11:11: a value of 9.9 MiB exceeds the 1 MiB limit for a document "
        "[$.spec.filter]"
    ) in run.out + run.err
    assert "aliases" not in run.out + run.err


def test_the_sandbox_process_answers_unsupported_methods_with_405(tmp_path: Path) -> None:
    with subprocess.Popen(
        [pfsync_executable(), "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            host, port = url.removeprefix("http://").rsplit(":", 1)
            answers = []
            for method, path in (("TRACE", "/businesses/b/triggers"), ("FOO", "/__sandbox/faults")):
                with socket.create_connection((host, int(port)), timeout=10) as sock:
                    request = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    sock.sendall(request.encode())
                    data = b""
                    while chunk := sock.recv(65536):
                        data += chunk
                answers.append(data.decode())
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
    assert answers[0].startswith("HTTP/1.1 405 Method Not Allowed\r\n")
    assert "\r\nAllow: GET, POST\r\n" in answers[0]
    assert answers[1].startswith("HTTP/1.1 405 Method Not Allowed\r\n")
    assert "\r\nAllow: GET, POST, DELETE\r\n" in answers[1]
