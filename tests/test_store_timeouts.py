"""A remote store that stops answering ends every command within its configured bound.

`state.timeout` bounds one read or write of the git or s3 store (every request, retry and git
command of it that talks to the remote); `state.connect_timeout` and `state.read_timeout` bound
each s3 request. Here the git remote is a server on 127.0.0.1 (http://) that accepts a
connection, reads the request and never answers: every command ends with a clean error, no
`git-remote-http` is left behind, and an apply keeps its summary and names what it could not
record (a remote that drops the connection is a clean error too). The keys' bad values are
refused where they are written. The s3 store's frozen endpoint is tested with the
fault-injecting proxy in `test_s3_store_faults.py`.

No test asserts how long anything took: a command that did not end within the bound would hit
the subprocess's own deadline (`run_pfsync(timeout=...)`, `WAIT_SECONDS`) and fail the test.
The runs against a remote that never answers are child processes: in this process, the stuck
connection pfsync gives up on would outlive the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from apply_helpers import BUSINESS, plan_of_creates, posts, sandbox_ids, store_lost_err
from conftest import Run, RunPfsync
from fixtures_background import MakeGate, Spawn
from fixtures_sandbox import MakeSandbox
from git_helpers import clone, git, make_remote, planned_from, remote_lockfile, stale_warning
from hostile_server import HostileServer, hang_up, silence

# seconds: state.timeout in these tests (the default is 15). It also bounds each local git
# command, and mid-apply the pushes made before the remote freezes: each takes milliseconds, and
# six such applies at once on a loaded 2-core machine all fit. Where the remote never answers
# from the start, the bound only has to be reached.
BOUND = 0.5
SAID_BOUND = "<SECONDS> s"  # the bound as `Run.normalised` writes a fractional duration
DEADLINE = 60.0  # seconds: a command that has not ended by then never would (old code: 120 s+)
BOUNDED_PROCESS = {"timeout": DEADLINE, "subprocess": True}  # a child process, given up at DEADLINE
GIT_STATE = f"{{store: git, timeout: {BOUND}}}"
NO_PROXY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


@pytest.fixture
def hanging() -> Iterator[HostileServer]:
    """A server on 127.0.0.1 that reads each request and never answers."""
    with HostileServer([silence(600)], time_limit=600) as server:
        yield server


def hang_remote(runner: Path, server: HostileServer) -> str:
    """Point the runner's origin at the hanging server (an http:// git remote); its URL."""
    url = f"{server.url}/remote.git"
    git(runner, "remote", "set-url", "origin", url)
    return url


# The git store


def test_a_git_remote_that_never_answers_ends_plan_state_and_apply_within_the_bound(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, hanging: HostileServer, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 2, state=GIT_STATE)
    runner = clone(remote, tmp_path / "runner")
    hang_remote(runner, hanging)
    env = {**sandbox.environment(), **NO_PROXY}
    fetch_failed = (
        f"cannot fetch origin/main: `git fetch` did not finish within {BOUND} s (state.timeout)"
    )

    plan = run_pfsync("plan", cwd=runner, env=env, **BOUNDED_PROCESS)
    # The plan is compared normalised; the other runs as they are, with the bound itself.
    in_plan = fetch_failed.replace(f"{BOUND} s", SAID_BOUND)
    assert plan.normalised(URL=sandbox.url) == (
        0,
        plan_of_creates(
            ["t000", "t001"],
            "pfsync.lock on origin/main does not exist yet: every declared trigger is a create.",
            planned_from=planned_from(runner)
            + stale_warning(
                f"{in_plan}; using the lockfile of the last fetched origin/main, which may "
                "be out of date"
            ),
        ),
        f"Warning: {in_plan}; using the lockfile of the last fetched origin/main, which may "
        "be out of date\n",
    )
    listing = run_pfsync("state", "list", cwd=runner, env=env, **BOUNDED_PROCESS)
    assert listing == Run(
        0,
        "",
        f"Warning: {fetch_failed}; using the lockfile of the last fetched origin/main, which may "
        "be out of date\nNo lockfile at pfsync.lock on origin/main yet: nothing is recorded.\n",
    )
    remove = run_pfsync("state", "rm", f"{BUSINESS}/t000", cwd=runner, env=env, **BOUNDED_PROCESS)
    assert remove == Run(1, "", f"Error: {fetch_failed}\n")
    apply = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=runner, env=env, **BOUNDED_PROCESS
    )
    assert apply == Run(1, "", f"Error: {fetch_failed}\n")
    assert posts(sandbox) == []
    assert remote_lockfile(remote) is None
    assert len(hanging.requests) == 4  # each command asked once, and was given up on
    assert not lingering_git(hanging.url)


def test_a_git_remote_that_drops_the_connection_is_a_clean_error(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 1, state=GIT_STATE)
    runner = clone(remote, tmp_path / "runner")
    env = {**sandbox.environment(), **NO_PROXY}
    with HostileServer([hang_up()]) as server:
        url = hang_remote(runner, server)
        apply = run_pfsync(
            "apply", "--auto-approve", "--new-lockfile", cwd=runner, env=env, timeout=DEADLINE
        )
    assert apply.normalised(REMOTE=url) == (
        1,
        "",
        "Error: cannot fetch origin/main: fatal: unable to access '<REMOTE>/': Empty reply from "
        "server\n",
    )
    assert posts(sandbox) == []


def lingering_git(url: str) -> list[str]:
    """Command lines of processes still talking to `url` (a git-remote-http left behind)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if url in text and "git" in text:
            found.append(text)
    return found


def test_a_git_remote_that_stops_answering_mid_apply_keeps_the_summary(
    make_sandbox: MakeSandbox,
    make_gate: MakeGate,
    spawn: Spawn,
    hanging: HostileServer,
    tmp_path: Path,
) -> None:
    # The lock and the pending record are pushed; the create is held; then the remote stops
    # answering. The final write, the read to merge, and the release each end at the bound:
    # the created trigger is named NOT RECORDED with its id, and the summary is printed.
    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 1, state=GIT_STATE)
    runner = clone(remote, tmp_path / "runner")
    gate = make_gate(sandbox, 0)
    apply = spawn(
        runner,
        {**sandbox.environment(), **NO_PROXY},
        "apply",
        "--auto-approve",
        "--new-lockfile",
    )
    gate.wait_for(0)
    locked = remote_lockfile(remote)
    assert locked is not None and list(locked["pending"]) == [f"{BUSINESS}/t000"]
    hang_remote(runner, hanging)
    gate.release(0)
    run = apply.finish()

    [(where, id_)] = sandbox_ids(sandbox).items()
    lock_id = locked["lock"]["id"]
    assert run.normalised(URL=sandbox.url, ID=id_, LOCK=lock_id) == (
        1,
        plan_of_creates(["t000"], "pfsync.lock on origin/main (serial 1)"),
        store_lost_err(
            where,
            f"cannot fetch origin/main: `git fetch` did not finish within {SAID_BOUND} "
            "(state.timeout)",
            "cannot push the lockfile to origin/main: `git push` did not finish within "
            f"{SAID_BOUND} (state.timeout)",
        ),
    )
    assert remote_lockfile(remote) == locked  # nothing written after the remote froze
    assert not lingering_git(hanging.url)


# The keys themselves


@pytest.mark.parametrize(
    ("state", "problem"),
    [
        (
            "{store: git, timeout: 0}",
            "pfsync.yaml:2:30: 0 is less than or equal to the minimum of 0 [$.state.timeout]",
        ),
        (
            "{store: s3, bucket: acme-state, key: k, read_timeout: -1}",
            "pfsync.yaml:2:62: -1 is less than or equal to the minimum of 0 [$.state.read_timeout]",
        ),
        (
            "{store: s3, bucket: acme-state, key: k, connect_timeout: 7200}",
            "pfsync.yaml:2:65: 7200 is more than the maximum of 3600 [$.state.connect_timeout]",
        ),
        (
            "{store: git, timeout: ten}",
            'pfsync.yaml:2:30: "ten" is not a number [$.state.timeout]',
        ),
        (
            "{store: git, timeout: true}",
            "pfsync.yaml:2:30: true is not a number [$.state.timeout]",
        ),
    ],
)
def test_bad_time_bounds_are_refused_where_they_are_written(
    run_pfsync: RunPfsync, tmp_path: Path, state: str, problem: str
) -> None:
    (tmp_path / "pfsync.yaml").write_text(f"business: biz_1\nstate: {state}\n")
    run = run_pfsync("plan", cwd=tmp_path)
    assert (run.code, run.out.splitlines()) == (1, [problem]), run


def test_a_time_bound_that_is_not_a_number_of_seconds_is_refused(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    (tmp_path / "pfsync.yaml").write_text("business: biz_1\nstate: {store: git, timeout: .nan}\n")
    run = run_pfsync("plan", cwd=tmp_path)
    assert run == Run(
        1,
        'pfsync.yaml:2:30: ".nan" is not a number JSON can carry (NaN and infinity are not '
        "allowed) [$.state.timeout]\n",
        "The configuration file is invalid; fix it and run again.\n",
    )
    # What the schema cannot see (a StateConfig made in code) is refused all the same.
    from pfsync.config import StateConfig
    from pfsync.errors import ConfigError

    for value in (float("nan"), float("inf"), 0, -1, True, "5"):
        with pytest.raises(ConfigError) as refused:
            StateConfig(store="git", read_timeout=value)  # type: ignore[arg-type]
        assert str(refused.value) == (
            "state.read_timeout must be a number of seconds above 0 and at most 3600, not "
            f"{value!r}"
        )


def test_the_time_bounds_reach_the_stores(tmp_path: Path) -> None:
    from pfsync.config import StoreTimeouts, load_config

    (tmp_path / "pfsync.yaml").write_text(
        "business: biz_1\nstate: {store: s3, bucket: acme-state, key: k, timeout: 30, "
        "connect_timeout: 2.5, read_timeout: 20}\n"
    )
    assert load_config(cwd=tmp_path).state.timeouts == StoreTimeouts(30, 2.5, 20)
    (tmp_path / "pfsync.yaml").write_text("business: biz_1\nstate: {store: git}\n")
    assert load_config(cwd=tmp_path).state.timeouts == StoreTimeouts(15, 5, 10)


def test_the_schema_documents_the_defaults() -> None:
    from pfsync.config import StoreTimeouts
    from pfsync.schemas import CONFIG, load_schema

    keys = load_schema(CONFIG)["properties"]["state"]["properties"]
    defaults = StoreTimeouts()
    for key, value in (
        ("timeout", defaults.total),
        ("connect_timeout", defaults.connect),
        ("read_timeout", defaults.read),
    ):
        assert re.search(rf"\(default {value:g}\)$", keys[key]["description"]), key
    assert json.dumps(keys["timeout"]).count("3600") == 1
