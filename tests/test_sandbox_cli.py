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
from typing import IO, NamedTuple

import httpx
import pytest

from conftest import Run, RunPfsync, clean_env, pfsync_executable
from fixtures_sandbox import http_client, trigger_body

TRIGGERS = "/businesses/biz_1/triggers"
FLAG = "from --password"
NOTE = (
    "Note: --password is visible to other users of this machine (ps); set PFSYNC_PASSWORD "
    "instead.\n"
)


def banner(user: str = "'sandbox' by default", password: str = "by default") -> str:
    """What `pfsync sandbox` says on stderr when it is ready, serving at <URL>."""
    return (
        f"Sandbox Pocketflows API at <URL> (user {user}, password {password}); SIGINT or "
        "SIGTERM stops it.\n"
    )


def first_line(stream: IO[str] | None, timeout: float = 10.0) -> str:
    """The first line of `stream`, failing the test if it does not come in time."""
    assert stream is not None
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        assert selector.select(timeout), "pfsync sandbox printed nothing"
    return stream.readline()


class Served(NamedTuple):
    """A running `pfsync sandbox`: the process, its URL and what it said on stderr."""

    proc: subprocess.Popen[str]
    url: str
    banner: str  # all it writes to stderr before it waits: read, so that no stop cuts it short


@contextmanager
def sandbox_process(*args: str) -> Iterator[Served]:
    """Run `pfsync sandbox --port 0 ARGS...` until it waits for requests; kills leftovers."""
    with subprocess.Popen(
        [pfsync_executable(), "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    ) as proc:
        try:
            url = first_line(proc.stdout).rstrip("\n")
            said = first_line(proc.stderr)
            if f"password {FLAG}" in said and proc.stderr:
                said += proc.stderr.readline()  # the note that a flag shows in `ps`
            yield Served(proc, url, said)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)


def stop(served: Served, signum: int = signal.SIGTERM) -> Run:
    """Send `signum`, wait: exit code, the rest of stdout, and all of stderr."""
    served.proc.send_signal(signum)
    out, err = served.proc.communicate(timeout=10)
    return Run(served.proc.returncode, out, served.banner + err)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_on_a_free_port_and_stops_cleanly(signum: int) -> None:
    with sandbox_process("--password", "s3cret-pw") as served:
        assert served.url.startswith("http://127.0.0.1:")
        assert int(served.url.rsplit(":", 1)[1]) > 0
        with http_client() as client:
            auth = ("sandbox", "s3cret-pw")
            created = client.post(served.url + TRIGGERS, json=trigger_body(), auth=auth)
            assert created.status_code == 200
            listed = client.get(served.url + TRIGGERS).json()["triggers"]
        assert listed == [created.json()]
        stopped = stop(served, signum)
    assert stopped.normalised(URL=served.url) == (0, "", banner(password=FLAG) + NOTE)


def test_starts_fast() -> None:
    started = time.monotonic()
    with sandbox_process() as served:
        elapsed = time.monotonic() - started
        assert served.url.startswith("http://")
        stopped = stop(served)
    assert stopped.normalised(URL=served.url) == (0, "", banner())
    assert elapsed < 5  # generous for loaded CI; typically ~0.2 s


def test_options_reach_the_server(tmp_path: Path) -> None:
    data = tmp_path / "sandbox.json"
    options = ["--data", str(data), "--idempotency-keys", "--username", "ops", "--seed", "1"]
    with sandbox_process(*options) as served, http_client(auth=("ops", "sandbox")) as client:
        headers = {"Idempotency-Key": "k"}
        first = client.post(served.url + TRIGGERS, json=trigger_body(), headers=headers)
        again = client.post(served.url + TRIGGERS, json=trigger_body(), headers=headers)
        assert first.status_code == 200
        assert again.json() == first.json()
        stopped = stop(served)
    assert stopped.normalised(URL=served.url) == (0, "", banner(user="'ops' from --username"))
    assert len(json.loads(data.read_text())["triggers"]["biz_1"]) == 1

    with sandbox_process("--data", str(data)) as served, http_client() as client:
        assert client.get(served.url + TRIGGERS).json()["triggers"] == [first.json()]
        assert stop(served).normalised(URL=served.url) == (0, "", banner())


def test_fault_options() -> None:
    options = ["--fail-rate", "1", "--latency-ms", "100", "--rate-limit", "0.5"]
    with (
        sandbox_process(*options) as served,
        http_client(auth=("sandbox", "sandbox")) as client,
    ):
        started = time.monotonic()
        assert client.post(served.url + TRIGGERS, json=trigger_body()).status_code == 500
        assert time.monotonic() - started >= 0.09
        limited = client.post(served.url + TRIGGERS, json=trigger_body())
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "2"
        assert stop(served).normalised(URL=served.url) == (0, "", banner())
    with sandbox_process("--lose-response-rate", "1") as served, http_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(served.url + TRIGGERS, json=trigger_body(), auth=("sandbox", "sandbox"))
        assert len(client.get(served.url + TRIGGERS).json()["triggers"]) == 1
        assert stop(served).normalised(URL=served.url) == (0, "", banner())


def test_a_taken_port_is_a_clear_error(run_pfsync: RunPfsync) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_pfsync("sandbox", "--port", port, timeout=20)
    assert result.normalised(PORT=port) == (
        1,
        "",
        "Error: cannot listen on 127.0.0.1:<PORT>: Address already in use\n",
    )


def test_a_corrupt_data_file_is_a_clear_error(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    data = tmp_path / "sandbox.json"
    data.write_text("{")
    result = run_pfsync("sandbox", "--port", "0", "--data", str(data), timeout=20)
    assert result.normalised(DATA=data) == (
        1,
        "",
        "Error: cannot read sandbox data file <DATA>: Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1)\n",
    )
    assert data.read_text() == "{"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--fail-rate", "2"], "'--fail-rate': 2.0 is not in the range 0<=x<=1."),
        (["--rate-limit", "0"], "'--rate-limit': 0.0 is not in the range x>0."),
        (["--port", "-1"], "'--port': -1 is not in the range 0<=x<=65535."),
        (["--latency-ms", "x"], "'--latency-ms': 'x' is not a valid float range."),
    ],
)
def test_bad_options_are_usage_errors(run_pfsync: RunPfsync, args: list[str], error: str) -> None:
    result = run_pfsync("sandbox", *args, timeout=20)
    assert (result.code, result.out, result.err) == (
        1,
        "",
        "Usage: pfsync sandbox [OPTIONS] [COMMAND [ARGS]...]\n"
        "Try 'pfsync sandbox --help' for help.\n"
        "\n"
        f"Error: Invalid value for {error}\n",
    )


def test_help_documents_defaults_and_endpoints(run_pfsync: RunPfsync) -> None:
    result = run_pfsync("sandbox", "--help", env={"COLUMNS": "80"})
    assert (result.code, result.out, result.err) == (
        0,
        "Usage: pfsync sandbox [OPTIONS] [COMMAND [ARGS]...]\n"
        "\n"
        "  Serve a local Pocketflows create-trigger API, for trying pfsync and for\n"
        "  tests.\n"
        "\n"
        "  The first line printed is the base URL; SIGINT or SIGTERM stops it (exit 0).\n"
        "  Authenticate with HTTP Basic: --username/--password, else\n"
        "  PFSYNC_USERNAME/PFSYNC_PASSWORD (not visible in `ps`), else username\n"
        "  `sandbox` and password `sandbox`. `pfsync sandbox list` shows what sandbox\n"
        "  mode's in-process sandbox holds.\n"
        "\n"
        "  Sandbox-only endpoints (not part of Pocketflows; no auth, no faults):\n"
        "    GET  /businesses/ID/triggers   the triggers created for business ID\n"
        "    GET  /__sandbox/requests       every request received (never its credentials)\n"
        "    POST /__sandbox/faults         script the next create outcomes, e.g.\n"
        '                                   ["lose-response", "500", "429", "ok"]\n'
        "  Outcomes: ok, ok-no-id, lose-response, slow, drop, 503-retry-after, and any 4xx/5xx\n"
        "  status such as 500, 502, 503, 504, 409, 401, 403, 422, 429.\n"
        "\n"
        "  Examples:\n"
        "    pfsync sandbox --port 0\n"
        "    PFSYNC_USERNAME=ops PFSYNC_PASSWORD=... pfsync sandbox --port 8787\n"
        "    pfsync sandbox --latency-ms 50 --rate-limit 100 --seed 1 --data sandbox.json\n"
        "    pfsync sandbox list\n"
        "\n"
        "  Apply to it from a new repository (a lockfile records one API: not your real one's):\n"
        "    pfsync sandbox --port 8787 &\n"
        "    pfsync init try --business biz_try --api-url http://127.0.0.1:8787\n"
        "    PFSYNC_USERNAME=sandbox PFSYNC_PASSWORD=sandbox pfsync -C try apply --auto-approve\n"
        "\n"
        "Options:\n"
        "  --host TEXT                     Address to listen on.  [default: 127.0.0.1]\n"
        "  --port INTEGER RANGE            Port to listen on; 0 picks a free one.\n"
        "                                  [default: 8787; 0<=x<=65535]\n"
        "  --username TEXT                 Basic auth username [default:\n"
        "                                  $PFSYNC_USERNAME, else sandbox]\n"
        "  --password TEXT                 Basic auth password, never printed [default:\n"
        "                                  $PFSYNC_PASSWORD, else sandbox]. A flag is\n"
        "                                  visible in `ps`: prefer PFSYNC_PASSWORD.\n"
        "  --data FILE                     Keep created triggers in this JSON file\n"
        "                                  across restarts (default: memory only).\n"
        "  --idempotency-keys              Honour the Idempotency-Key header (the\n"
        "                                  documented API does not; ignored by\n"
        "                                  default).\n"
        "  --latency-ms FLOAT RANGE        Answer each create request no sooner than\n"
        "                                  this.  [x>=0]\n"
        "  --rate-limit FLOAT RANGE        Requests per second (token bucket); beyond\n"
        "                                  it, 429 with Retry-After.  [x>0]\n"
        "  --fail-rate FLOAT RANGE         Fraction of creates answered 500 before\n"
        "                                  storing anything.  [0<=x<=1]\n"
        "  --lose-response-rate FLOAT RANGE\n"
        "                                  Fraction of creates stored, then the\n"
        "                                  connection closed without a response.\n"
        "                                  [0<=x<=1]\n"
        "  --seed INTEGER                  Seed the random faults for a reproducible\n"
        "                                  run.\n"
        # The global options, which every command accepts.
        "  -v, --verbose                   Say more (repeatable).\n"
        "  -q, --quiet                     Print only errors and requested output.\n"
        "  --no-color                      Never colour the output (as NO_COLOR=1).\n"
        "  -C DIR                          Run as if started in DIR (its pfsync.yaml is\n"
        "                                  used).\n"
        "  --config FILE                   Use this pfsync.yaml instead of searching\n"
        "                                  for one.\n"
        "  -e, --env NAME                  The environment of pfsync.yaml to work on\n"
        "                                  (required when it defines environments).\n"
        "  --no-cache                      Read every manifest again instead of reusing\n"
        "                                  .pfsync/cache/ (as PFSYNC_NO_CACHE=1).\n"
        "  -h, --help                      Show this message and exit.\n"
        "\n"
        "Commands:\n"
        "  list  List the triggers the sandbox holds.\n",
        "",
    )
