"""The s3 store over a network that fails: a connection reset, closed, frozen, answered 5xx or
slowly, between pfsync and the S3 API (the fault-injecting proxy of `s3_proxy` in front of the
moto server of `s3_helpers`).

A dropped connection has no service answer (botocore's `exc.response` is None): it must read as
an unreachable endpoint, never as a missing object, and never as a traceback. Mid-apply, the
run still prints what it created and could not record, and its summary.

The property test drives S3Store reads and writes, and the apply protocol over it
(`remote_state`), through random faults: only StoreError (or StoreConflict) ever comes out,
every call ends (each is waited on with a deadline, never timed), and no record is lost: the
object holds the old lockfile or the new one, and the new one whenever a write said it landed.
"""

from __future__ import annotations

import functools
import itertools
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from project_helpers import record

from apply_helpers import BUSINESS, plan_of_creates, posts, sandbox_ids, store_lost_err
from conftest import Run, RunPfsync
from fixtures_background import WAIT_SECONDS, MakeGate, Spawn
from fixtures_sandbox import MakeSandbox
from pfsync.config import Config, StateConfig, StoreTimeouts
from pfsync.errors import StoreError
from pfsync.sandbox import Sandbox
from pfsync.state.lockfile import Lockfile, parse_lockfile
from pfsync.state.stores import s3 as s3_store
from pfsync.state.stores.base import Snapshot
from pfsync.state.stores.s3 import ABSENT, S3Store
from pfsync.state.stores.s3_client import make_client
from pfsync.state.stores.session import remote_state
from s3_helpers import REGION, S3Server, make_s3_repo, s3_env, s3_server, without_aws_settings
from s3_proxy import FAULT_KINDS, FaultKind, MakeS3Proxy, S3Proxy, make_s3_proxy

__all__ = ["make_s3_proxy"]  # the fixture

T = TypeVar("T")


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    with without_aws_settings():
        yield s3_server()


# A connection dropped, reset or frozen: a clean error for every command, and apply keeps its
# summary

# state.timeout in front of a frozen endpoint (the default is 15 s). The boto3 client is made
# outside it, so a bound only has to outlast the requests that must succeed before the network
# fails. A closed or reset connection ends its retries at once: those runs keep the default, so
# that a loaded machine never turns "unreachable" into "did not answer".
READING_BOUND = 0.2  # the reading commands: the endpoint fails from their first request on
APPLY_BOUND = 0.5  # mid-apply: the lock and the pending record are written first, each in tens
# of ms (the test passed with 0.1 s on a 2-core machine at load average 5)
DEADLINE = 60.0  # seconds: a command not ended by then never would (old code: 181 s and more)


def lost(fault: FaultKind, seconds: str) -> str:
    """How an endpoint lost to `fault` is named, state.timeout shown as `seconds`."""
    return {
        "close": "is unreachable (the connection was closed)",
        "reset": "is unreachable (the connection was reset)",
        "freeze": f"did not answer within {seconds} s (state.timeout)",
    }[fault]


def frozen(fault: FaultKind, bound: float) -> float | None:
    """state.timeout for a run meeting `fault`: `bound` when it freezes, else the default."""
    return bound if fault == "freeze" else None


def s3_repo(root: Path, count: int, bucket: str, endpoint_url: str, bound: float | None) -> Path:
    """A repository whose lockfile is the object pfsync.lock in `bucket`, with state.timeout
    at `bound` (each request's connect and read bounds at their defaults, longer), or at its
    default when None."""
    make_s3_repo(root, count, bucket=bucket, endpoint_url=endpoint_url)
    if bound is not None:
        config = root / "pfsync.yaml"
        config.write_text(config.read_text().replace("}", f", timeout: {bound:g}}}"))
    return root


def proxied_repo(
    make_sandbox: MakeSandbox,
    make_s3_proxy: MakeS3Proxy,
    server: S3Server,
    tmp_path: Path,
    count: int,
    bound: float | None,
) -> tuple[Sandbox, S3Proxy, str, Path, dict[str, str]]:
    """A sandbox, a proxy in front of the server, a new bucket, a repository of `count`
    manifests whose store is that bucket through the proxy (state.timeout `bound`), and the
    environment for pfsync."""
    sandbox = make_sandbox()
    proxy = make_s3_proxy(server.url)
    bucket = server.make_bucket()
    repo = s3_repo(tmp_path / "repo", count, bucket, proxy.url, bound)
    return (
        sandbox,
        proxy,
        bucket,
        repo,
        {**sandbox.environment(), **s3_env(server.admin, proxy.url)},
    )


@pytest.mark.parametrize("fault", ["close", "reset", "freeze"])
def test_a_lost_connection_is_a_clean_error_for_every_reading_command(
    run_pfsync: RunPfsync,
    make_sandbox: MakeSandbox,
    make_s3_proxy: MakeS3Proxy,
    server: S3Server,
    tmp_path: Path,
    fault: FaultKind,
) -> None:
    sandbox, proxy, bucket, repo, env = proxied_repo(
        make_sandbox, make_s3_proxy, server, tmp_path, 2, frozen(fault, READING_BOUND)
    )
    proxy.fail_next(1000, fault)
    error = (
        f"Error: cannot read s3://{bucket}/pfsync.lock: the S3 endpoint {proxy.url} "
        f"{lost(fault, f'{READING_BOUND:g}')}\n"
    )
    for command in (
        ("plan",),
        ("state", "list"),
        ("state", "pull"),
        ("apply", "--auto-approve", "--new-lockfile"),
    ):
        # A frozen connection is a child process's: in this one, the request pfsync gives up on
        # would outlive the run.
        run = run_pfsync(
            *command, cwd=repo, env=env, timeout=DEADLINE, subprocess=fault == "freeze"
        )
        assert run == Run(1, "", error), command
    assert posts(sandbox) == []
    assert not (repo / "pfsync.lock").exists()


@pytest.mark.parametrize("fault", ["close", "freeze"])
def test_a_connection_lost_mid_apply_keeps_the_summary_and_names_what_is_not_recorded(
    make_sandbox: MakeSandbox,
    make_gate: MakeGate,
    make_s3_proxy: MakeS3Proxy,
    spawn: Spawn,
    server: S3Server,
    tmp_path: Path,
    fault: FaultKind,
) -> None:
    # The lock and the pending record are written; the create is held; then every connection
    # to the endpoint is dropped (or frozen). The final write fails, and so does the read that
    # would merge its outcome, and the release: the trigger created is printed NOT RECORDED
    # with its id, then the summary, then the lock left for `state unlock`.
    sandbox, proxy, bucket, repo, env = proxied_repo(
        make_sandbox, make_s3_proxy, server, tmp_path, 1, frozen(fault, APPLY_BOUND)
    )
    gate = make_gate(sandbox, 0)
    apply = spawn(
        repo,
        env,
        "apply",
        "--auto-approve",
        "--new-lockfile",
    )
    gate.wait_for(0)
    locked = server.lockfile(bucket)
    assert locked is not None and list(locked["pending"]) == [f"{BUSINESS}/t000"]
    proxy.fail_next(1000, fault)
    gate.release(0)
    run = apply.finish()
    proxy.clear_faults()

    [(where, id_)] = sandbox_ids(sandbox).items()
    lock_id = locked["lock"]["id"]
    gone = f"the S3 endpoint <PROXY> {lost(fault, '<SECONDS>')}"  # normalised: a fraction
    assert run.normalised(URL=sandbox.url, ID=id_, LOCK=lock_id, PROXY=proxy.url) == (
        1,
        plan_of_creates(["t000"], f"s3://{bucket}/pfsync.lock (serial 1)"),
        store_lost_err(
            where,
            f"cannot read s3://{bucket}/pfsync.lock: {gone}",
            f"cannot write s3://{bucket}/pfsync.lock: {gone}",
        ),
    )
    assert server.lockfile(bucket) == locked  # the lost requests never reached the server


@pytest.fixture
def not_tls() -> Iterator[int]:
    """A port on 127.0.0.1 that answers every connection in plain HTTP at once, then closes:
    a TLS client's handshake fails there."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # closing it would not wake a thread blocked in accept
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                connection.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stopping.set()
        thread.join(WAIT_SECONDS)
        listener.close()


def test_a_failed_tls_handshake_is_a_clean_error(
    run_pfsync: RunPfsync, server: S3Server, not_tls: int, tmp_path: Path
) -> None:
    endpoint = f"https://127.0.0.1:{not_tls}"
    repo = make_s3_repo(tmp_path / "repo", 1, bucket="pfsync-state", endpoint_url=endpoint)
    plan = run_pfsync(
        "plan", cwd=repo, env={"PFSYNC_API_URL": "https://api.example.test", **s3_env(server.admin)}
    )
    assert plan == Run(
        1,
        "",
        "Error: cannot read s3://pfsync-state/pfsync.lock: the S3 endpoint "
        f"{endpoint} is unreachable (the TLS handshake failed)\n",
    )


# The property: random faults, only StoreError, every call ends, no record lost

# Tight: a fault only has to reach them (a healthy call given up is a StoreError too, and loses
# nothing), and every fault that holds a request costs the whole total. A healthy call takes
# tens of milliseconds. The seed write and the settling read after a write run without the
# tight total (each request keeps the client's connect and read bounds, with botocore's retries).
TIMEOUTS = StoreTimeouts(total=0.25, connect=0.2, read=0.2)
RELAXED = replace(TIMEOUTS, total=WAIT_SECONDS / 2)
GUARD_SECONDS = WAIT_SECONDS  # a call not ended by then never would: the bound did not hold
_keys = itertools.count()


def ended(call: Callable[[], T]) -> tuple[T | None, BaseException | None]:
    """`call()`'s value or exception, in a thread waited on with a deadline (never timed)."""
    value: list[T] = []
    raised: list[BaseException] = []

    def work() -> None:
        try:
            value.append(call())
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(GUARD_SECONDS)
    assert not thread.is_alive(), "a store call did not end: its time bound did not hold"
    return (value[0] if value else None), (raised[0] if raised else None)


def only_store_errors(what: str, raised: BaseException | None) -> None:
    """Nothing, or a StoreError (StoreConflict included): never anything unclassified."""
    event(f"{what}: {type(raised).__name__ if raised else 'done'}")
    assert raised is None or isinstance(raised, StoreError), repr(raised)


faults = st.lists(
    st.tuples(
        st.sampled_from(FAULT_KINDS),
        st.integers(min_value=1, max_value=3),  # how many requests meet it
        st.sampled_from([None, "GET", "PUT"]),
        st.booleans(),  # forward: the request reaches the server first (its answer is lost)
        st.sampled_from([500, 503]),
        st.sampled_from([0.0, 0.05, 0.5]),  # slow: a delay before the answer (under, over)
    ),
    max_size=3,
)


def inject(
    proxy: S3Proxy, chosen: list[tuple[FaultKind, int, str | None, bool, int, float]]
) -> None:
    for kind, count, method, forward, status, delay in chosen:
        proxy.fail_next(
            count,
            kind,
            method=method,
            forward=forward,
            status=status,
            delay=delay,
            trickle=0.01 if kind == "slow" and delay == 0 else 0.0,
        )


def lockfile_with(lockfile: Lockfile, *names: str) -> Lockfile:
    """`lockfile` recording a trigger for each of `names`."""
    records = {f"{BUSINESS}/{name}": record(f"trg_{name}", name, key=name) for name in names}
    return replace(lockfile, triggers={**lockfile.triggers, **records})


@pytest.fixture(scope="module")
def through_proxy(server: S3Server) -> Iterator[tuple[S3Proxy, str]]:
    """A proxy in front of the server and a bucket, the admin's keys in this process. The
    examples' stores share one boto3 client (each store is on its own key): making a client
    takes a tenth of a second or more, and it is not what the properties are about."""
    bucket = server.make_bucket()
    with pytest.MonkeyPatch.context() as patch, S3Proxy(server.url) as proxy:
        for name, value in s3_env(server.admin, proxy.url).items():
            patch.setenv(name, value)
        patch.setattr(s3_store, "make_client", functools.cache(make_client))
        yield proxy, bucket


def first_lockfile() -> Lockfile:
    """A new lockfile as its first write stores it (serial 1)."""
    return replace(Lockfile.new("https://api.example.test", None), serial=1)


def fresh_store(proxy: S3Proxy, bucket: str) -> S3Store:
    """A store on a new key whose client is made, and seed written, without the tight total
    (a loaded machine may take a second to make a boto3 client); `bounded` puts it on."""
    return S3Store(bucket, f"prop/{next(_keys)}.lock", proxy.url, REGION, RELAXED)


def bounded(store: S3Store) -> S3Store:
    """`store` with its operations bounded by TIMEOUTS from now on (faults come next)."""
    store.timeouts = TIMEOUTS
    return store


def stored(server: S3Server, store: S3Store) -> Lockfile | None:
    text = server.text(store.bucket, store.key)
    return None if text is None else parse_lockfile(text, store.description)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(chosen=faults, existing=st.booleans())
def test_reads_and_writes_through_faults_raise_only_store_errors_and_lose_nothing(
    server: S3Server, through_proxy: tuple[S3Proxy, str], chosen: Any, existing: bool
) -> None:
    proxy, bucket = through_proxy
    store = fresh_store(proxy, bucket)
    old = lockfile_with(first_lockfile(), "t000")
    expected = Snapshot(None, ABSENT)
    if existing:
        expected = store.write(old, expected, "pfsync: seed")
    new = lockfile_with(replace(old, serial=old.serial + 1), "t001")
    bounded(store)
    inject(proxy, chosen)
    try:
        read, read_failed = ended(lambda: store.read())
        only_store_errors("read", read_failed)
        if read is not None:
            assert read.lockfile == (old if existing else None)
        written, write_failed = ended(lambda: store.write(new, expected, "pfsync: test"))
        only_store_errors("write", write_failed)
    finally:
        proxy.clear_faults()
    now = stored(server, store)
    assert now in ((old if existing else None), new), "the object holds neither lockfile"
    if written is not None:
        assert now == new, "a write that said it landed is not in the store"
        store.timeouts = RELAXED  # the network is healthy again: this read must not be given up
        settled, _ = ended(lambda: store.read())
        assert (
            settled is not None and settled.lockfile == new and settled.version == (written.version)
        )


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(chosen=faults)
def test_the_apply_protocol_through_faults_raises_only_store_errors_and_loses_nothing(
    server: S3Server, through_proxy: tuple[S3Proxy, str], tmp_path: Path, chosen: Any
) -> None:
    # Lock, one save, release (a state command's life) while the network fails.
    proxy, bucket = through_proxy
    store = fresh_store(proxy, bucket)
    old = lockfile_with(first_lockfile(), "t000")
    store.write(old, Snapshot(None, ABSENT), "pfsync: seed")
    bounded(store)
    config = Config(
        path=None,
        root=tmp_path,
        business=BUSINESS,
        api_url="https://api.example.test",
        manifests=(),
        lockfile=tmp_path / "pfsync.lock",
        state=StateConfig(store="s3", bucket=bucket, key=store.key, timeout=TIMEOUTS.total),
    )
    warnings: list[str] = []
    saved: list[Lockfile] = []

    def change() -> None:
        with remote_state(config, store, operation="state import", warn=warnings.append) as state:
            current = state.lockfile
            assert current is not None
            saved.append(state.save(lockfile_with(current, "t001")))

    inject(proxy, chosen)
    try:
        _, raised = ended(change)
    finally:
        proxy.clear_faults()
    only_store_errors("lock, save, release", raised)
    now = stored(server, store)
    assert now is not None, "the lockfile was lost"
    assert set(now.triggers) in ({f"{BUSINESS}/t000"}, {f"{BUSINESS}/t000", f"{BUSINESS}/t001"})
    if saved:
        assert set(now.triggers) == {f"{BUSINESS}/t000", f"{BUSINESS}/t001"}
    if raised is None and not warnings:
        assert now.lock is None, "the run ended cleanly but left its lock"
