"""A real S3 API server over loopback for the s3 store's tests: moto in server mode, started by
the test suite itself (no manual set-up, no network beyond 127.0.0.1).

    server = s3_server()                   the session's server (started on first use, stopped
                                           when the test process exits): .url, .admin
    server.client(credentials=None)        a boto3 S3 client on it (the admin's by default; kept)
    server.make_bucket(name)               a new bucket, versioning on
    server.user(name, actions, resources)  an IAM user allowed only that: its Credentials
    server.lockfile(bucket, key)           the object parsed as JSON, or None when absent
    s3_env(credentials)                    the AWS variables for a pfsync subprocess
    make_s3_repo(root, count, ...)         a pfsync repository whose state is in the bucket
    runner(repo, where)                    another working directory of the same repository
                                           (a CI runner: nothing shared but the bucket)
    start_runners(spawn, repo, env, root, *args)  `pfsync ARGS` on two runners at once

Holding creates and running pfsync in the background: the fixtures of `fixtures_background`.

The server enforces IAM like S3 does: every request is signed and checked against the caller's
policy (moto's INITIAL_NO_AUTH_ACTION_COUNT: only the requests that make the admin user are
unauthenticated). It handles one request at a time, so moto's check of If-Match / If-None-Match
and its write are one atomic step, as they are in S3 (moto itself checks, then writes, without
a lock between them).

Run as a script it serves: `python tests/s3_helpers.py [--open]` prints one JSON line (url and
the admin's keys) once it is ready, and serves until its standard input closes; `--open` skips
authentication.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apply_helpers import BUSINESS, manifest_text

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

    from fixtures_background import Background, Spawn


REGION = "us-east-1"
BOOTSTRAP_REQUESTS = 3  # create_user, create_access_key, put_user_policy: then IAM is enforced
START_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Credentials:
    """An access key pair of a user on the test server."""

    access_key: str
    secret_key: str


def s3_env(credentials: Credentials | None, endpoint: str | None = None) -> dict[str, str]:
    """What a pfsync subprocess gets: these keys only, no AWS configuration files, no instance
    metadata lookups, no proxy, and the test server as the default endpoint: nothing may leave
    loopback, even a client that was given no endpoint."""
    env = {
        "AWS_ENDPOINT_URL": endpoint
        or (_server.url if _server is not None else "http://127.0.0.1:9"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if credentials is not None:
        env["AWS_ACCESS_KEY_ID"] = credentials.access_key
        env["AWS_SECRET_ACCESS_KEY"] = credentials.secret_key
    return env


class S3Server:
    """A moto server in a child process."""

    def __init__(self, proc: subprocess.Popen[str], url: str, admin: Credentials) -> None:
        self.proc = proc
        self.url = url
        self.admin = admin
        self._buckets = 0
        self._clients: dict[Credentials, S3Client] = {}
        self._clients_lock = threading.Lock()

    def client(self, credentials: Credentials | None = None) -> S3Client:
        """A boto3 S3 client on the server, one per access key: making one takes a tenth of a
        second, and the tests look at the bucket often (boto3's clients are thread-safe)."""
        import boto3

        credentials = credentials or self.admin
        with self._clients_lock:
            if credentials not in self._clients:
                self._clients[credentials] = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.url,
                    region_name=REGION,
                    aws_access_key_id=credentials.access_key,
                    aws_secret_access_key=credentials.secret_key,
                )
            return self._clients[credentials]

    def make_bucket(self, name: str | None = None) -> str:
        """A new bucket with versioning on, as the docs ask; its name."""
        self._buckets += 1
        name = name or f"pfsync-test-{os.getpid()}-{self._buckets}"
        client = self.client()
        client.create_bucket(Bucket=name)
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def user(self, name: str, statements: Iterable[dict[str, Any]]) -> Credentials:
        """An IAM user whose only policy is `statements`; its access key."""
        import boto3

        iam = boto3.session.Session().client(
            "iam",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=self.admin.access_key,
            aws_secret_access_key=self.admin.secret_key,
        )
        iam.create_user(UserName=name)
        policy = {"Version": "2012-10-17", "Statement": list(statements)}
        iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def lockfile(self, bucket: str, key: str = "pfsync.lock") -> dict[str, Any] | None:
        """The lockfile object parsed, or None when there is none."""
        text = self.text(bucket, key)
        if text is None:
            return None
        data: dict[str, Any] = json.loads(text)
        return data

    def text(self, bucket: str, key: str = "pfsync.lock") -> str | None:
        client = self.client()
        try:
            response = client.get_object(Bucket=bucket, Key=key)
        except client.exceptions.NoSuchKey:
            return None
        return response["Body"].read().decode("utf-8")

    def versions(self, bucket: str, key: str = "pfsync.lock") -> list[dict[str, Any]]:
        """Every version of the object, newest first, with its pfsync-operation metadata."""
        client = self.client()
        listed = client.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
        out = []
        for version in (v for v in listed if v["Key"] == key):  # not KEY.cas-probe
            head = client.head_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
            out.append({**version, "Operation": head["Metadata"].get("pfsync-operation")})
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


_server: S3Server | None = None
_server_lock = threading.Lock()


def s3_server() -> S3Server:
    """The test session's server, started on first use; stopped when this process exits."""
    global _server
    with _server_lock:
        if _server is None or _server.proc.poll() is not None:
            _server = start_server()
            atexit.register(_server.stop)
        return _server


def start_server(open_access: bool = False) -> S3Server:
    """Start `python tests/s3_helpers.py` and wait for its first line."""
    args = [sys.executable, str(Path(__file__).resolve())]
    if open_access:
        args.append("--open")
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE,  # the server exits when this closes: never outlives the tests
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**_without_aws(os.environ), **s3_env(None)},
    )
    stdout = proc.stdout
    assert stdout is not None
    ready: list[str] = []
    reader = threading.Thread(target=lambda: ready.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_SECONDS)
    if not ready or not ready[0].strip():
        proc.kill()
        raise AssertionError("the S3 test server (moto) did not start")
    started = json.loads(ready[0])
    return S3Server(proc, started["url"], Credentials(started["access_key"], started["secret_key"]))


def _without_aws(environ: Any) -> dict[str, str]:
    return {k: v for k, v in environ.items() if not k.startswith("AWS_")}


@contextlib.contextmanager
def without_aws_settings() -> Iterator[None]:
    """No AWS_* variable of this process leaks into a test (restored afterwards)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    for name in saved:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(saved)


def make_s3_repo(
    root: Path,
    count: int,
    *,
    bucket: str,
    endpoint_url: str,
    key: str = "pfsync.lock",
    intent_batch: int | None = None,
    business: str = BUSINESS,
) -> Path:
    """A pfsync repository at `root` with `count` manifests and its state in the bucket."""
    (root / "triggers").mkdir(parents=True, exist_ok=True)
    batch = f", intent_batch: {intent_batch}" if intent_batch else ""
    (root / "pfsync.yaml").write_text(
        f"business: {business}\n"
        f"state: {{store: s3, bucket: {bucket}, key: {key}, endpoint_url: '{endpoint_url}', "
        f"region: {REGION}{batch}}}\n"
    )
    for n in range(count):
        (root / "triggers" / f"t{n:03d}.yaml").write_text(manifest_text(f"t{n:03d}"))
    return root


def runner(repo: Path, where: Path) -> Path:
    """A fresh copy of the repository's files (manifests, pfsync.yaml): another CI runner."""
    shutil.copytree(repo, where, ignore=shutil.ignore_patterns("pfsync.lock*", ".pfsync"))
    return where


def start_runners(
    spawn: Spawn, repo: Path, env: Mapping[str, str], root: Path, *args: str
) -> list[Background]:
    """`pfsync ARGS` started at once on two runners of the repository (root/runner1, runner2)."""
    return [spawn(runner(repo, root / f"runner{n}"), env, *args) for n in (1, 2)]


# The server itself (run as a script).


def serve(open_access: bool) -> None:
    """Serve moto on 127.0.0.1 (a free port), one request at a time; print url and keys."""
    if not open_access:
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(BOOTSTRAP_REQUESTS)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        with one_at_a_time:
            return iter(list(app(environ, start_response)))

    server = make_server(
        "127.0.0.1", 0, serialised, threaded=True, request_handler=MotoRequestHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    admin = Credentials("open", "open") if open_access else _bootstrap_admin(url)
    print(
        json.dumps({"url": url, "access_key": admin.access_key, "secret_key": admin.secret_key}),
        flush=True,
    )
    sys.stdin.read()  # until the parent closes it, or dies
    os._exit(0)


def _bootstrap_admin(url: str) -> Credentials:
    import boto3

    iam = boto3.session.Session().client(
        "iam",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName="admin")
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    everything = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    iam.put_user_policy(
        UserName="admin",
        PolicyName="all",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [everything]}),
    )
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A moto S3 server on 127.0.0.1 for tests.")
    parser.add_argument("--open", action="store_true", help="no authentication")
    serve(parser.parse_args().open)
