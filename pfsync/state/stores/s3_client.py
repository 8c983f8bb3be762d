"""The s3 store's boto3 client: its setup, the bound on each operation, secrets kept out.

Apart from the store (`pfsync.state.stores.s3`) because these change with boto3 and botocore,
not with what the store reads and writes.

The client is boto3, from the optional extra `pfsync[s3]`, imported only when this store is used
(`pfsync --help`, `validate` and the other stores never load it). Credentials come from the AWS
credential chain as the AWS CLI finds them (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN, AWS_PROFILE, a web identity token, the container or instance role), never from
pfsync.yaml, and are never printed.

botocore's own timeouts bound each connect and each wait for bytes, not a whole request, so each
operation runs in a worker thread that is given up at the deadline (`within`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pfsync.config import StoreTimeouts
from pfsync.errors import StoreError
from pfsync.support.textsafety import Secrets, escape

if TYPE_CHECKING:
    from botocore.session import Session as BotocoreSession
    from types_boto3_s3.client import S3Client

# The README's install with the extra: pfsync is not on PyPI (that `pfsync` is another project).
EXTRA = "pip install 'pfsync[s3] @ git+https://github.com/pocketflows-tools/pfsync@v0.2.0'"
ATTEMPTS = 3  # per request, the first included; all of them within state.timeout
_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
T = TypeVar("T")
_loaders: dict[str | None, Any] = {}  # botocore's Loader by AWS_DATA_PATH, shared by sessions
_loaders_lock = threading.Lock()


def make_client(
    bucket: str, endpoint_url: str | None, region: str | None, timeouts: StoreTimeouts
) -> tuple[S3Client, tuple[str, ...]]:
    """A boto3 S3 client and the secrets it signs with (to keep them out of messages).

    Only the AWS credentials are resolved within state.timeout: they may be fetched over the
    network (a role assumed with a web identity, a container's or instance's role). Importing
    boto3 and loading the S3 model is local work, left outside it, so that state.timeout is
    the network's time and a short one is not spent on a loaded machine's start-up.
    StoreError naming the extra when boto3 is not installed.
    """
    try:
        import boto3
        import botocore.session
        from botocore.config import Config as ClientConfig
    except ImportError:
        raise StoreError(
            f"the s3 state store needs boto3, which is not installed: {EXTRA}"
        ) from None
    options: dict[str, Any] = {
        "connect_timeout": timeouts.connect,
        "read_timeout": timeouts.read,
        "retries": {"mode": "standard", "total_max_attempts": ATTEMPTS},
        "user_agent_appid": "pfsync",
    }
    if endpoint_url is not None:
        # S3-compatible stores: path-style addressing needs no wildcard DNS for the bucket, and
        # checksums only where the API requires them (many such stores reject the newer ones).
        options["s3"] = {"addressing_style": "path"}
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    try:
        core = botocore.session.get_session()
        share_models(core)
        session = boto3.session.Session(botocore_session=core, region_name=region)
        try:
            secrets = within(timeouts.total, lambda: resolve_credentials(core))
        except GivenUp:
            raise StoreError(
                f"cannot set up the S3 client for bucket {bucket}: the AWS credentials were not "
                f"resolved within {timeouts.total:g} s (state.timeout)"
            ) from None
        client = session.client("s3", endpoint_url=endpoint_url, config=ClientConfig(**options))
    except StoreError:
        raise
    except Exception as exc:  # a malformed AWS config file, a role that cannot be assumed
        raise StoreError(
            f"cannot set up the S3 client for bucket {bucket}: {type(exc).__name__}: "
            f"{escape(redact(str(exc)))}"
        ) from None
    return client, secrets


def share_models(core: BotocoreSession) -> None:
    """Give `core` this process's loader of botocore's JSON models (one per AWS_DATA_PATH).

    A loader keeps what it has parsed: a second client in the same process (`state push`
    between stores, `--after ENV` reading another environment's record) then starts in a
    fiftieth of a second instead of a tenth or more.
    """
    data_path = core.get_config_variable("data_path")
    with _loaders_lock:
        loader = _loaders.get(data_path)
        if loader is None:
            loader = _loaders[data_path] = core.get_component("data_loader")
    core.register_component("data_loader", loader)


def resolve_credentials(core: BotocoreSession) -> tuple[str, ...]:
    """Resolve the session's AWS credentials (kept in it for its clients); their secrets.

    When the chain finds none, the session is given an empty chain: making the client then
    does not search (perhaps over the network) again, outside the bound, and each request
    still fails with NoCredentialsError before anything is sent.
    """
    from botocore.credentials import CredentialResolver

    credentials = core.get_credentials()
    if credentials is None:
        core.register_component("credential_provider", CredentialResolver(providers=[]))
        return ()
    frozen = credentials.get_frozen_credentials()  # a deferred role is fetched here
    return tuple(value for value in (frozen.secret_key, frozen.token) if value)


class GivenUp(Exception):
    """An operation did not end within its bound."""


def within(seconds: float, operation: Callable[[], T]) -> T:
    """`operation()`'s value or exception, or GivenUp once `seconds` have passed.

    It runs in a daemon thread, given up at the deadline: botocore's timeouts bound each connect
    and each wait for bytes, and its retries multiply them, but nothing bounds a request whose
    answer trickles in. A request given up may still land later (a write is conditional: the
    next write meets it as a conflict, and recognises its own content).
    """
    done = threading.Event()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(operation())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=work, name="pfsync-s3", daemon=True).start()
    if not done.wait(seconds):
        raise GivenUp
    if failure:
        raise failure[0]
    return outcome[0]


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` without the AWS secret key or session token of this process's environment."""
    values = [os.environ.get(name) or "" for name in _SECRET_VARIABLES]
    return Secrets([*values, *secrets]).redact(text)


def refuse_plain_http(endpoint: str) -> None:
    """StoreError for an http:// endpoint that is not loopback (set in the AWS configuration)."""
    from pfsync.config import is_loopback_host

    parts = urlsplit(endpoint)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
        raise StoreError(
            f"refusing the plain http:// S3 endpoint {escape(parts.hostname or '')} (set by "
            "AWS_ENDPOINT_URL or the AWS configuration): use https:// (http:// is allowed only "
            "for loopback hosts)"
        )
