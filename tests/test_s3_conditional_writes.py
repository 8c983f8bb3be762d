"""The s3 store proves that the service honours conditional writes before it trusts them.

pfsync's state lock and every lockfile write are conditional PutObjects (If-None-Match: * to
create, If-Match: ETAG to replace). A service that ignores those headers accepts every write, so
two runs would both take "the" lock and both create every trigger. Before its first write to an
endpoint and bucket, the store writes a probe object beside the lockfile (KEY.cas-probe) with
If-None-Match: * twice and with a wrong If-Match; a service that accepts either is refused before
anything is written to the lockfile or sent to Pocketflows.

A service that ignores conditional writes is played by `s3_proxy.S3Proxy` stripping the two
headers in front of moto (run without authentication: the headers are signed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from apply_helpers import posts
from conftest import Run, RunPfsync
from fixtures_background import Spawn, spawn, wait_until
from fixtures_sandbox import MakeSandbox
from pfsync.errors import StoreError
from pfsync.state.lockfile import Lockfile
from pfsync.state.stores import s3_probe
from pfsync.state.stores.s3 import S3Store
from s3_helpers import (
    REGION,
    S3Server,
    make_s3_repo,
    s3_env,
    start_runners,
    without_aws_settings,
)
from s3_proxy import MakeS3Proxy, S3Proxy, make_s3_proxy, open_s3_server

__all__ = ["make_s3_proxy", "spawn"]  # fixtures, imported for pytest

ACCEPTED_IF_NONE_MATCH = "it accepted a PutObject with If-None-Match: * over an existing object"
ACCEPTED_IF_MATCH = "it accepted a PutObject with If-Match and an ETag the object does not have"


def refusal(endpoint: str, bucket: str, what: str) -> str:
    """The message of a store refused for conditional writes it does not honour."""
    return (
        f"the S3 endpoint {endpoint} does not honour conditional writes: {what} (the probe "
        f"object s3://{bucket}/pfsync.lock.cas-probe). The state lock and every lockfile write "
        "rely on If-None-Match and If-Match on PutObject: on this service two runs would both "
        "take the lock, so pfsync wrote nothing to the lockfile and sent nothing. Use a service "
        "that honours conditional writes (such as AWS S3), or the git or file store (state.store "
        "in pfsync.yaml)"
    )


@pytest.fixture(scope="module")
def open_server() -> Iterator[S3Server]:
    with without_aws_settings():
        yield open_s3_server()


def test_two_runners_on_a_service_that_ignores_conditional_writes_send_nothing(
    make_sandbox: MakeSandbox,
    make_s3_proxy: MakeS3Proxy,
    open_server: S3Server,
    tmp_path: Path,
    spawn: Spawn,
) -> None:
    bucket = open_server.make_bucket()
    proxy = make_s3_proxy(open_server.url)
    proxy.strip_conditions = True
    proxy.fail_next(2, "hold", method="PUT")  # each runner's first write waits for the other
    sandbox = make_sandbox(latency_ms=20)
    repo = make_s3_repo(tmp_path / "repo", 20, bucket=bucket, endpoint_url=proxy.url)
    env = {**sandbox.environment(), **s3_env(open_server.admin, proxy.url)}
    apply = ("apply", "--auto-approve", "--new-lockfile", "--lock-timeout", "60")
    runs = start_runners(spawn, repo, env, tmp_path, *apply)
    # Both have read the store (no lockfile: no lock held) and wait at their first write.
    wait_until(lambda: proxy.pending_faults() == 0, "both runners' first write")
    proxy.clear_faults()
    finished = [run.finish() for run in runs]
    refused = Run(1, "", f"Error: {refusal(proxy.url, bucket, ACCEPTED_IF_NONE_MATCH)}\n")
    assert finished == [refused, refused]
    assert posts(sandbox) == []
    assert open_server.text(bucket) is None  # the lockfile object was never written
    assert proxy.count("PUT", f"/{bucket}/pfsync.lock") == 0


@pytest.fixture(autouse=True)
def nothing_proven(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process does: no endpoint proven yet."""
    monkeypatch.setattr(s3_probe, "_honouring", set())


@pytest.fixture
def proxied(
    open_server: S3Server, make_s3_proxy: MakeS3Proxy, monkeypatch: pytest.MonkeyPatch
) -> tuple[S3Proxy, S3Store]:
    """A proxy in front of the open server, and a store on a new bucket through it."""
    proxy = make_s3_proxy(open_server.url)
    for name, value in s3_env(open_server.admin, proxy.url).items():
        monkeypatch.setenv(name, value)
    return proxy, S3Store(open_server.make_bucket(), "pfsync.lock", proxy.url, REGION)


def new_lockfile() -> Lockfile:
    return Lockfile.new("https://api.example.com", None)


def test_an_honouring_service_is_probed_once_beside_the_lockfile(
    open_server: S3Server, proxied: tuple[S3Proxy, S3Store]
) -> None:
    proxy, store = proxied
    probe, lock = f"/{store.bucket}/pfsync.lock.cas-probe", f"/{store.bucket}/pfsync.lock"
    first = store.write(new_lockfile(), store.read(), "pfsync: lock for apply")
    store.write(replace(new_lockfile(), serial=2), first, "pfsync: unlock")
    assert [(seen.method, seen.path) for seen in proxy.requests] == [
        ("GET", lock),
        ("PUT", probe),  # If-None-Match: * creates it
        ("PUT", probe),  # If-None-Match: * again: refused
        ("PUT", probe),  # a wrong If-Match: refused
        ("PUT", lock),
        ("PUT", lock),  # proven for this endpoint and bucket: no probe again
    ]
    store.prove_conditional_writes()  # proven: nothing sent
    assert len(proxy.requests) == 6

    # A new process probes again: the probe object exists, every probe write is refused.
    s3_probe._honouring.clear()
    store.prove_conditional_writes()
    assert open_server.text(store.bucket, "pfsync.lock.cas-probe") == s3_probe.PROBE_BODY.decode()
    versions = open_server.client().list_object_versions(Bucket=store.bucket)["Versions"]
    assert sorted(v["Key"] for v in versions) == [
        "pfsync.lock",
        "pfsync.lock",
        "pfsync.lock.cas-probe",
    ]


@pytest.mark.parametrize(
    ("stripped", "what"),
    [
        (frozenset({"if-none-match", "if-match"}), ACCEPTED_IF_NONE_MATCH),
        (frozenset({"if-match"}), ACCEPTED_IF_MATCH),
    ],
)
def test_a_service_that_ignores_a_condition_is_refused_before_the_lockfile_is_written(
    open_server: S3Server, proxied: tuple[S3Proxy, S3Store], stripped: frozenset[str], what: str
) -> None:
    proxy, store = proxied
    proxy.strip_conditions, proxy.stripped_headers = True, stripped
    with pytest.raises(StoreError) as refused:
        store.write(new_lockfile(), store.read(), "pfsync: lock for apply")
    assert str(refused.value) == refusal(proxy.url, store.bucket, what)
    assert open_server.text(store.bucket) is None
    assert proxy.count("PUT", f"/{store.bucket}/pfsync.lock") == 0
    with pytest.raises(StoreError):  # not proven: checked again, refused again
        store.write(new_lockfile(), store.read(), "pfsync: lock for apply")


def test_a_service_that_does_not_implement_conditions_is_refused(
    open_server: S3Server, proxied: tuple[S3Proxy, S3Store]
) -> None:
    proxy, store = proxied
    proxy.fail_next(1, "status", status=501, method="PUT")
    with pytest.raises(StoreError) as refused:
        store.write(new_lockfile(), store.read(), "pfsync: lock for apply")
    what = "it answered 501 NotImplemented to a PutObject with If-None-Match"
    assert str(refused.value) == refusal(proxy.url, store.bucket, what)
    assert open_server.text(store.bucket) is None


def test_read_only_commands_send_no_probe(
    run_pfsync: RunPfsync,
    make_sandbox: MakeSandbox,
    open_server: S3Server,
    proxied: tuple[S3Proxy, S3Store],
    tmp_path: Path,
) -> None:
    proxy, store = proxied
    proxy.strip_conditions = True  # a probe would be refused
    repo = make_s3_repo(tmp_path / "repo", 2, bucket=store.bucket, endpoint_url=proxy.url)
    env = {"PFSYNC_API_URL": make_sandbox().url, **s3_env(open_server.admin, proxy.url)}
    for command in (["plan"], ["state", "list"]):
        run = run_pfsync(*command, cwd=repo, env=env)
        assert run.code == 0, run
    assert proxy.count("PUT") == 0
