"""The fault-injecting proxy of `s3_proxy` does what the tests built on it rely on: it forwards
signed requests untouched, strips conditional headers when told, and meets each scripted fault
exactly as many times as it was asked, then forwards again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from fixtures_background import wait_until
from s3_helpers import REGION, S3Server, s3_server, without_aws_settings
from s3_proxy import MakeS3Proxy, S3Proxy, SeenRequest, make_s3_proxy, open_s3_server

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

__all__ = ["make_s3_proxy"]  # the fixture, imported for pytest


@pytest.fixture(scope="module")
def open_server() -> Iterator[S3Server]:
    with without_aws_settings():
        yield open_s3_server()


@pytest.fixture
def proxied(open_server: S3Server, make_s3_proxy: MakeS3Proxy) -> tuple[str, S3Proxy, S3Client]:
    """A new bucket on the open server, a proxy in front of it, a client through the proxy."""
    proxy = make_s3_proxy(open_server.url)
    return open_server.make_bucket(), proxy, client_via(open_server, proxy)


def client_via(server: S3Server, proxy: S3Proxy, read_timeout: float = 60.0) -> S3Client:
    """A boto3 client of the server's admin, through the proxy, that never retries."""
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=proxy.url,
        region_name=REGION,
        aws_access_key_id=server.admin.access_key,
        aws_secret_access_key=server.admin.secret_key,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout),
    )


def status_of(error: pytest.ExceptionInfo[ClientError]) -> int:
    return int(error.value.response["ResponseMetadata"]["HTTPStatusCode"])


def frozen_get(client: S3Client, bucket: str) -> tuple[threading.Thread, list[Exception]]:
    """GET the object "k" in a thread that records the transport error it ends with."""
    errors: list[Exception] = []

    def get() -> None:
        try:
            client.get_object(Bucket=bucket, Key="k")
        except (ConnectionClosedError, ReadTimeoutError) as error:
            errors.append(error)

    thread = threading.Thread(target=get)
    thread.start()
    return thread, errors


def test_signed_requests_pass_through_unchanged(make_s3_proxy: MakeS3Proxy) -> None:
    with without_aws_settings():
        server = s3_server()  # the authenticating one: a changed request would fail its check
        bucket = server.make_bucket()
    proxy = make_s3_proxy(server.url)
    client = client_via(server, proxy)
    client.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    assert status_of(refused) == 412
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"1"
    assert proxy.counts[("PUT", f"/{bucket}/k")] == 2
    assert proxy.requests[0] == SeenRequest("PUT", f"/{bucket}/k", "", False, None)


def test_stripping_makes_conditional_writes_unconditional(
    proxied: tuple[str, S3Proxy, S3Client],
) -> None:
    bucket, proxy, client = proxied
    proxy.strip_conditions = True
    proxy.latency = 0.01  # every switch at once: a far-away service that ignores conditions
    client.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")
    client.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    client.put_object(Bucket=bucket, Key="k", Body=b"3", IfMatch='"0123456789abcdef"')
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"3"
    assert [seen.stripped for seen in proxy.requests] == [True, True, True, False]
    proxy.strip_conditions = False
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=bucket, Key="k", Body=b"4", IfNoneMatch="*")
    assert status_of(refused) == 412


def test_faults_meet_only_the_matching_requests_then_stop(
    proxied: tuple[str, S3Proxy, S3Client],
) -> None:
    bucket, proxy, client = proxied
    client.put_object(Bucket=bucket, Key="k", Body=b"1")
    proxy.fail_next(1, "reset", method="PUT")
    proxy.fail_next(1, "status", status=503, method="GET")
    proxy.fail_next(1, "close", method="PUT", forward=True)
    with pytest.raises(ClientError) as unavailable:
        client.get_object(Bucket=bucket, Key="k")
    assert status_of(unavailable) == 503
    with pytest.raises(ConnectionClosedError):  # RST: not sent to the server
        client.put_object(Bucket=bucket, Key="k", Body=b"2")
    with pytest.raises(ConnectionClosedError):  # sent, its answer lost
        client.put_object(Bucket=bucket, Key="k", Body=b"3")
    assert proxy.pending_faults() == 0
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"3"
    assert [seen.fault for seen in proxy.requests] == [None, "status", "reset", "close", None]


def test_a_frozen_request_ends_when_cleared_and_slow_answers_arrive(
    proxied: tuple[str, S3Proxy, S3Client],
) -> None:
    bucket, proxy, client = proxied
    client.put_object(Bucket=bucket, Key="k", Body=b"1")
    proxy.fail_next(1, "freeze")
    thread, errors = frozen_get(client, bucket)
    wait_until(lambda: len(proxy.requests) == 2, "the frozen request to arrive")
    proxy.clear_faults()
    thread.join(60)
    assert not thread.is_alive() and len(errors) == 1
    proxy.fail_next(1, "slow", delay=0.05, trickle=0.001)
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"1"


def test_stopping_ends_a_frozen_request(open_server: S3Server) -> None:
    bucket = open_server.make_bucket()
    with S3Proxy(open_server.url) as proxy:
        client = client_via(open_server, proxy)
        client.put_object(Bucket=bucket, Key="k", Body=b"1")
        proxy.fail_next(1, "freeze")
        thread, errors = frozen_get(client, bucket)
        wait_until(lambda: len(proxy.requests) == 2, "the frozen request to arrive")
    thread.join(60)
    assert not thread.is_alive() and len(errors) == 1
