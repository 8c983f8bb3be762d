"""The s3 store's small parts: its configuration, its error messages (escaped, credentials never
shown), the optional extra, start-up cost, and the CI recipe and IAM policy the docs give.

Nothing here talks to a server: the clients made here are never used for a request.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
    SSLError,
)

from conftest import REPO, RunPfsync
from pfsync.config import StoreTimeouts, check_endpoint_url, load_config
from pfsync.errors import ConfigError, LockfileError, StateChangeError, StoreError
from pfsync.state.lockfile import Lockfile
from pfsync.state.stores import s3_probe
from pfsync.state.stores.base import Snapshot
from pfsync.state.stores.s3 import S3Store, valid_location
from pfsync.state.stores.s3_client import redact
from pfsync.state.stores.transfer import store_named
from s3_helpers import Credentials, make_s3_repo, s3_env

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WHERE = "s3://pfsync-state/pfsync.lock"
ENDPOINT = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def no_aws_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS variable of this machine (a profile, keys, an endpoint) reaches these tests."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> S3Store:
    """A store whose client has keys and a loopback endpoint (it never sends anything here),
    its check of conditional writes taken as passed (tests/test_s3_conditional_writes.py)."""
    for name, value in s3_env(Credentials("AKIAEXAMPLEEXAMPLE00", SECRET), ENDPOINT).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(s3_probe, "_honouring", {(ENDPOINT, "pfsync-state")})
    return S3Store("pfsync-state", "pfsync.lock", ENDPOINT, "us-east-1")


# Configuration


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "http://minio.internal:9000",
            "state.endpoint_url: refusing plain http:// for 'minio.internal': credentials would "
            "cross the network unencrypted; use https:// (http:// is allowed only for loopback "
            "hosts)",
        ),
        (
            "https://AKIA:secret@s3.example.test",
            "state.endpoint_url contains a user name or password; remove them from the URL: the "
            "s3 store takes its credentials from the AWS environment variables or the instance "
            "role",
        ),
        (
            "http://127.0.0.1:99999",
            "state.endpoint_url 'http://127.0.0.1:99999' has an invalid port '99999': a port is "
            "a number from 1 to 65535",
        ),
        (
            "ftp://s3.example.test",
            "state.endpoint_url 'ftp://s3.example.test' must start with https:// and name a host",
        ),
        (
            "https://s3.example.test/\x1b[2J",
            "state.endpoint_url contains a space or control character",
        ),
    ],
)
def test_endpoint_url_follows_the_api_url_policy(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_endpoint_url(url)
    assert str(refused.value) == problem
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize(
    "url", ["https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:9000", "http://localhost:9000/"]
)
def test_endpoint_urls_that_are_allowed(url: str) -> None:
    assert check_endpoint_url(url) == url.rstrip("/")


def write_config(tmp_path: Path, state: str) -> Path:
    (tmp_path / "pfsync.yaml").write_text(f"business: biz_1\nstate: {state}\n")
    return tmp_path


def test_the_s3_settings_reach_the_config(tmp_path: Path) -> None:
    root = write_config(
        tmp_path,
        "{store: s3, bucket: acme-pfsync-state, key: prod/pfsync.lock, "
        "endpoint_url: 'http://127.0.0.1:9000/', region: eu-west-1, intent_batch: 16}",
    )
    state = load_config(cwd=root).state
    assert (state.store, state.bucket, state.key, state.endpoint_url, state.region) == (
        "s3",
        "acme-pfsync-state",
        "prod/pfsync.lock",
        "http://127.0.0.1:9000",
        "eu-west-1",
    )
    assert state.is_remote and state.intent_batch == 16


@pytest.mark.parametrize(
    ("state", "diagnostics"),
    [
        (
            "{store: s3}",
            [
                'pfsync.yaml:2:1: missing required field "bucket" [$.state]',
                'pfsync.yaml:2:1: missing required field "key" [$.state]',
            ],
        ),
        (
            "{store: s3, bucket: Acme_State, key: k}",
            [
                'pfsync.yaml:2:28: "Acme_State" does not match '
                "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ [$.state.bucket]"
            ],
        ),
        (
            "{store: s3, bucket: acme-state, key: ''}",
            ['pfsync.yaml:2:45: "" must not be empty [$.state.key]'],
        ),
    ],
)
def test_the_schema_checks_the_s3_settings(
    run_pfsync: RunPfsync, tmp_path: Path, state: str, diagnostics: list[str]
) -> None:
    root = write_config(tmp_path, state)
    run = run_pfsync("plan", cwd=root)
    assert run.code == 1, run
    assert run.out.splitlines() == diagnostics, run


def test_store_names_on_the_command_line(tmp_path: Path, store: S3Store) -> None:
    config = load_config(cwd=write_config(tmp_path, "{store: file}"))
    named = store_named("s3://pfsync-state/team/prod.lock", config)
    assert isinstance(named, S3Store) and named.description == "s3://pfsync-state/team/prod.lock"
    for spec in ("s3://Bad_Bucket/x", "s3://pfsync-state/", "s3:pfsync-state:x", "s3://ab/x"):
        with pytest.raises(StateChangeError, match="names no state store"):
            store_named(spec, config)
    assert valid_location("pfsync-state", "a/b.lock")
    assert not valid_location("pfsync-state", "a\nb")


# Messages: what went wrong, in words a person can act on; nothing raw, nothing secret


def client_error(status: int, code: str, message: str = "") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutObject")


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (
            "read",
            client_error(404, "NoSuchBucket", "The specified bucket does not exist"),
            f"cannot read {WHERE}: the bucket pfsync-state does not exist at {ENDPOINT} (create "
            "it, with versioning on, before the first write)",
        ),
        (
            "read",
            client_error(403, "AccessDenied", "Access Denied"),
            f"cannot read {WHERE}: access denied (403 AccessDenied: Access Denied); the "
            "credentials need s3:GetObject on the key, and s3:ListBucket on the bucket (without "
            "it, a lockfile that does not exist yet reads as access denied)",
        ),
        (
            "write",
            client_error(403, "AccessDenied", "Access Denied"),
            f"cannot write {WHERE}: access denied (403 AccessDenied: Access Denied); the "
            "credentials need s3:PutObject on pfsync.lock and on pfsync.lock.cas-probe beside it",
        ),
        (
            "write",
            client_error(403, "ExpiredToken", "The provided token has expired."),
            f"cannot write {WHERE}: the S3 endpoint {ENDPOINT} refused the credentials (403 "
            "ExpiredToken: The provided token has expired.); check AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or the role) for this endpoint",
        ),
        (
            "write",
            # A hostile or broken server: terminal sequences, a forged line, our secret echoed.
            client_error(500, "Internal\x1b[31mError", f"boom\n\x1b]0;owned\x07 key={SECRET}"),
            f"cannot write {WHERE}: the S3 endpoint answered 500 Internal\\x1b[31mError: "
            "boom\\n\\x1b]0;owned\\x07 key=***",
        ),
        (
            "write",
            client_error(503, "SlowDown", "x" * 500),
            f"cannot write {WHERE}: the S3 endpoint answered 503 SlowDown: " + "x" * 200 + "…",
        ),
        (
            "read",
            EndpointConnectionError(endpoint_url=f"{ENDPOINT}/pfsync-state/pfsync.lock"),
            f"cannot read {WHERE}: the S3 endpoint {ENDPOINT} is unreachable (could not connect)",
        ),
        (
            "write",
            ReadTimeoutError(endpoint_url=f"{ENDPOINT}/pfsync-state/pfsync.lock"),
            f"cannot write {WHERE}: the S3 endpoint {ENDPOINT} is unreachable (no answer in time)",
        ),
        (
            "read",
            NoCredentialsError(),
            f"cannot read {WHERE}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run with an instance or container role",
        ),
        (
            "write",
            ValueError(f"unexpected \x07 with {SECRET}"),
            f"cannot write {WHERE}: ValueError: unexpected \\x07 with ***",
        ),
    ],
)
def test_failures_are_explained_escaped_and_without_credentials(
    store: S3Store, action: str, error: Exception, message: str
) -> None:
    failure = store.wording.failure(action, error)
    assert type(failure) is StoreError
    assert str(failure) == message
    assert SECRET not in str(failure)


def test_redact_removes_the_secret_and_the_session_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2VjEXAMPLETOKEN")
    text = f"a {SECRET} b IQoJb3JpZ2luX2VjEXAMPLETOKEN c"
    assert redact(text) == "a *** b *** c"
    assert redact("nothing", ("x",)) == "nothing"  # short: hidden only where it stands alone
    assert redact("a x b", ("x",)) == "a *** b"


def test_a_plain_http_endpoint_from_the_aws_configuration_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in s3_env(Credentials("AKIAEXAMPLEEXAMPLE00", SECRET)).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://s3.example.test")
    with pytest.raises(StoreError) as refused:
        S3Store("pfsync-state", "pfsync.lock")
    assert str(refused.value) == (
        "refusing the plain http:// S3 endpoint s3.example.test (set by AWS_ENDPOINT_URL or the "
        "AWS configuration): use https:// (http:// is allowed only for loopback hosts)"
    )


# The optional extra, and what it costs the commands that do not use it


def test_without_boto3_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` raises ImportError
    with pytest.raises(StoreError) as missing:
        S3Store("pfsync-state", "pfsync.lock", ENDPOINT)
    assert str(missing.value) == (
        "the s3 state store needs boto3, which is not installed: pip install "
        "'pfsync[s3] @ git+https://github.com/pocketflows-tools/pfsync@v0.2.0'"
    )


def test_help_and_validate_do_not_import_boto3(tmp_path: Path) -> None:
    repo = make_s3_repo(tmp_path / "repo", 2, bucket="pfsync-state", endpoint_url=ENDPOINT)
    code = (
        "import sys; from pfsync.cli import main; rc = main(sys.argv[1:]); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')), "
        "file=sys.stderr); sys.exit(rc)"
    )
    for args, said in ((["--help"], "Usage: pfsync"), (["validate"], "2 trigger(s) valid.")):
        proc = subprocess.run(
            [sys.executable, "-c", code, *args], cwd=repo, capture_output=True, text=True
        )
        assert (proc.returncode, proc.stderr.splitlines()[-1]) == (0, "[]"), proc.stderr
        assert said in proc.stdout + proc.stderr


# What the docs give users to copy: it must work as written


def docs(name: str) -> str:
    return (REPO / "docs" / name).read_text()


def test_the_documented_github_recipe_passes_actionlint_and_zizmor(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", docs("ci.md"), re.S)
    [apply] = [b for b in blocks if "lockfile in an S3 bucket" in b.split("\n", 1)[0]]
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    path = workflows / "pfsync-apply.yml"
    path.write_text(apply)
    document = yaml.safe_load(apply)
    job = document["jobs"]["apply"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert document["permissions"] == {}
    bin_dir = Path(sys.executable).parent
    lint = subprocess.run(
        [str(bin_dir / "actionlint"), "-no-color", str(path)], capture_output=True, text=True
    )
    assert (lint.returncode, lint.stdout, lint.stderr) == (0, "", "")
    audit = subprocess.run(
        [
            str(bin_dir / "zizmor"),
            *("--offline", "--no-config", "--no-progress", "--format", "json", str(path)),
        ],
        capture_output=True,
        text=True,
    )
    assert (audit.returncode, audit.stdout.strip()) == (0, "[]"), audit.stdout + audit.stderr
    [gitlab] = [b for b in blocks if b.startswith("pfsync-apply:\n  id_tokens:")]
    assert yaml.safe_load(gitlab)["pfsync-apply"]["script"][-1] == "pfsync apply --auto-approve"


def test_the_documented_policy_grants_only_the_lockfile_and_its_probe() -> None:
    [block] = re.findall(r"```json\n( *\{\n *\"Version\".*?)\n *```", docs("state-stores.md"), re.S)
    policy = json.loads(block)
    granted = {
        (action, statement["Resource"])
        for statement in policy["Statement"]
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }
    assert granted == {
        ("s3:GetObject", "arn:aws:s3:::acme-pfsync-state/production/pfsync.lock"),
        ("s3:PutObject", "arn:aws:s3:::acme-pfsync-state/production/pfsync.lock"),
        ("s3:PutObject", "arn:aws:s3:::acme-pfsync-state/production/pfsync.lock.cas-probe"),
        ("s3:ListBucket", "arn:aws:s3:::acme-pfsync-state"),
    }
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])


# Transport failures: a dropped, reset, timed-out or refused connection is a StoreError


def transport_failures() -> list[tuple[Exception, str]]:
    """What botocore raises when the network fails, and how the store names each."""
    from urllib3.exceptions import NameResolutionError, ProtocolError

    url = f"{ENDPOINT}/pfsync-state/pfsync.lock"
    reset = ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
    unresolved = NameResolutionError("s3.example.test", None, socket.gaierror(-2, "unknown"))  # type: ignore[arg-type]
    return [
        (ConnectionClosedError(endpoint_url=url), "the connection was closed"),
        (ConnectionClosedError(endpoint_url=url, error=reset), "the connection was reset"),
        (ReadTimeoutError(endpoint_url=url), "no answer in time"),
        (ConnectTimeoutError(endpoint_url=url), "the connection timed out"),
        (EndpointConnectionError(endpoint_url=url), "could not connect"),
        (
            EndpointConnectionError(endpoint_url=url, error=unresolved),
            "its host name could not be resolved",
        ),
        (
            SSLError(endpoint_url=url, error=ssl.SSLError(1, "bad record")),
            "the TLS handshake failed",
        ),
        (ResponseStreamingError(error=reset), "the connection was reset"),
        (IncompleteReadError(actual_bytes=10, expected_bytes=20), "the answer was cut short"),
        (HTTPClientError(error=OSError("no buffer space")), "the connection failed"),
    ]


@pytest.mark.parametrize(("error", "said"), transport_failures())
def test_a_transport_failure_is_a_store_error_for_reads_and_writes(
    store: S3Store, monkeypatch: pytest.MonkeyPatch, error: Exception, said: str
) -> None:
    # A dropped connection has no service response (`exc.response` is None): reading must not
    # take it for a missing object, nor crash on it; a write's conflict read-back neither.
    def fail(**request: Any) -> Any:
        raise error

    monkeypatch.setattr(store.client, "get_object", fail)
    lockfile = Lockfile.new("https://api.example.test", None)
    for action in ("read", "write"):
        with pytest.raises(StoreError) as failed:
            if action == "read":
                store.read()
            else:
                monkeypatch.setattr(store.client, "put_object", fail)
                store.write(lockfile, Snapshot(None, "absent"), "pfsync: test")
        assert type(failed.value) is StoreError
        assert str(failed.value) == (
            f"cannot {action} {WHERE}: the S3 endpoint {ENDPOINT} is unreachable ({said})"
        )

    def conflict(**request: Any) -> Any:
        raise client_error(412, "PreconditionFailed")

    monkeypatch.setattr(store.client, "put_object", conflict)
    with pytest.raises(StoreError) as failed:
        store.write(lockfile, Snapshot(None, "absent"), "pfsync: test")
    assert str(failed.value) == (
        f"cannot write {WHERE}: the S3 endpoint {ENDPOINT} is unreachable ({said})"
    )


def test_credentials_that_never_resolve_end_within_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A role assumed with a web identity is fetched from STS when the client is made: a frozen
    # STS must not hold pfsync past state.timeout either.
    from pfsync.state.stores import s3_client

    answered = threading.Event()

    def never_resolves(*args: Any) -> Any:
        answered.wait(60)  # released at the end of the test
        raise RuntimeError("released")

    monkeypatch.setattr(s3_client, "resolve_credentials", never_resolves)
    try:
        with pytest.raises(StoreError) as failed:
            S3Store("pfsync-state", "pfsync.lock", ENDPOINT, timeouts=StoreTimeouts(total=0.2))
    finally:
        answered.set()
    assert str(failed.value) == (
        "cannot set up the S3 client for bucket pfsync-state: the AWS credentials were not "
        "resolved within 0.2 s (state.timeout)"
    )


def test_an_object_that_is_no_lockfile_is_restored_from_an_earlier_version(
    store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The advice names the store in use: an object has earlier versions, not a git checkout.
    class Body:
        def read(self) -> bytes:
            return b'{"version": 1}\n'

        def close(self) -> None:
            pass

    def get_object(**request: Any) -> Any:
        return {"Body": Body(), "ETag": '"e1"', "ContentLength": 15}

    monkeypatch.setattr(store.client, "get_object", get_object)
    with pytest.raises(LockfileError) as failed:
        store.read()
    said = str(failed.value)
    assert said.startswith(f"the lockfile {WHERE} ")
    assert said.endswith(
        ". pfsync never overwrites a lockfile it cannot trust: restore an earlier version of "
        f"{WHERE} (a bucket with versioning on keeps them) or repair it, then run again"
    )


def test_clients_of_one_process_share_the_parsed_models_of_one_data_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A second store's client (state push between stores, --after ENV) does not parse S3's
    # model again; a different AWS_DATA_PATH (models of the user's own) gets a loader of its own.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)

    def loader() -> object:
        store = S3Store("pfsync-state", "pfsync.lock", ENDPOINT, "us-east-1")
        return store.client._loader  # type: ignore[attr-defined]

    first = loader()
    assert loader() is first
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    own = loader()
    assert own is not first
    assert loader() is own
