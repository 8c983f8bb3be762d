"""The `s3` store: the lockfile as one object in an S3-compatible bucket, written conditionally.

    state: {store: s3, bucket: acme-pfsync, key: production/pfsync.lock}

The version of a snapshot is the object's ETag (`absent` while there is no object). Every write
is one conditional PutObject: `If-None-Match: *` to create the object, `If-Match: ETAG` to replace
the version that was read. The service answers 412 when the object is no longer that version (or
409 while another conditional write of it is in progress), and the write fails with
StoreConflict. Nothing else is ever sent: no delete, no listing, no multipart upload; the lockfile
goes up in one request, so a write is all or nothing.

Before its first write to an endpoint and bucket, a process proves that the service honours
those conditions (many S3-compatible services ignore them, and then two runs would both take
the lock): a probe object beside the lockfile, KEY.cas-probe, is written with `If-None-Match: *`
twice and with an `If-Match` no object has. A service that accepts either conditional write is
refused with a StoreError before the lockfile is written or anything is sent. The probe never
touches the lockfile object, and its key is fixed: it is created once, and a service that
honours the conditions refuses every later probe write, so it adds no versions.

A write whose response was lost is retried by the client, and the retry then meets its own
success as a 412: the object is read back, and when it holds exactly what was written, the write
stands.

Every read and write ends within `state.timeout` (all its requests and retries included):
botocore's own timeouts bound each connect and each wait for bytes, not a whole request, so the
operation runs in a worker thread that is given up at the deadline (its request, if it is still
in flight, may land later: the write is conditional, so a late write is met as a conflict, and
its own content is recognised). Every failure of the connection (reset, closed, timed out, a
host name that does not resolve, TLS) is a StoreError naming the endpoint.

The client is boto3, from the optional extra `pfsync[s3]`, imported only when this store is used
(`pfsync --help`, `validate` and the other stores never load it). Credentials come from the AWS
credential chain as the AWS CLI finds them (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN, AWS_PROFILE, a web identity token, the container or instance role), never from
pfsync.yaml, and are never printed: messages name the bucket, key, endpoint and the service's
error code, with the service's own text escaped and any credential value in it redacted.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from http.client import RemoteDisconnected
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pfsync.config import StoreTimeouts
from pfsync.errors import LockfileError, PfsyncError, StoreConflict, StoreError
from pfsync.state.lockfile import Lockfile, parse_lockfile
from pfsync.state.stores.base import Snapshot
from pfsync.support.textsafety import Secrets, escape

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

    from pfsync.config import Config

ABSENT = "absent"
# The README's install with the extra: pfsync is not on PyPI (that `pfsync` is another project).
EXTRA = "pip install 'pfsync[s3] @ git+https://github.com/pocketflows-tools/pfsync@v0.2.0'"
ATTEMPTS = 3  # per request, the first included; all of them within state.timeout
MAX_LOCKFILE_BYTES = 256 * 2**20  # a wrong key pointing at a huge object is not read into memory
MAX_SERVICE_TEXT = 200
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
}
_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_UNREACHABLE = {  # botocore's exceptions for a connection that failed, by name
    "EndpointConnectionError": "could not connect",
    "ConnectTimeoutError": "the connection timed out",
    "ReadTimeoutError": "no answer in time",
    "ConnectionClosedError": "the connection was closed",
    "ResponseStreamingError": "the connection was closed during the answer",
    "IncompleteReadError": "the answer was cut short",
    "ProxyConnectionError": "could not connect through the proxy",
    "SSLError": "the TLS handshake failed",
    "HTTPClientError": "the connection failed",
}
T = TypeVar("T")
PROBE_SUFFIX = ".cas-probe"
PROBE_BODY = (
    b"pfsync writes this object conditionally to check that the service honours conditional "
    b"writes (If-None-Match and If-Match on PutObject). It may be deleted.\n"
)
MAX_KEY_BYTES = 1024
_honouring: set[tuple[str, str]] = set()  # (endpoint, bucket) proven in this process
_honouring_lock = threading.Lock()


def valid_location(bucket: str, key: str) -> bool:
    """Whether `bucket` is an S3 bucket name and `key` a usable object key (no control chars)."""
    return bool(BUCKET_NAME.fullmatch(bucket)) and 0 < len(key) <= 1024 and key.isprintable()


def _client(
    bucket: str, endpoint_url: str | None, region: str | None, timeouts: StoreTimeouts
) -> tuple[S3Client, tuple[str, ...]]:
    """A boto3 S3 client and the secrets it signs with (to keep them out of messages).

    StoreError naming the extra when boto3 is not installed.
    """
    try:
        import boto3
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
        session = boto3.session.Session(region_name=region)
        client = session.client("s3", endpoint_url=endpoint_url, config=ClientConfig(**options))
        credentials = session.get_credentials()  # resolved already, for the client
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except Exception as exc:  # a malformed AWS config file, a role that cannot be assumed
        raise StoreError(
            f"cannot set up the S3 client for bucket {bucket}: {type(exc).__name__}: "
            f"{escape(redact(str(exc)))}"
        ) from None
    secrets = (frozen.secret_key, frozen.token) if frozen is not None else ()
    return client, tuple(value for value in secrets if value)


class _GivenUp(Exception):
    """An operation did not end within its bound."""


def _within(seconds: float, operation: Callable[[], T]) -> T:
    """`operation()`'s value or exception, or _GivenUp once `seconds` have passed.

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
        raise _GivenUp
    if failure:
        raise failure[0]
    return outcome[0]


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` without the AWS secret key or session token of this process's environment."""
    values = [os.environ.get(name) or "" for name in _SECRET_VARIABLES]
    return Secrets([*values, *secrets]).redact(text)


def probe_key(key: str) -> str:
    """The key of the probe object of the lockfile `key` (never `key` itself)."""
    return key + PROBE_SUFFIX


def object_url(bucket: str, key: str) -> str:
    """`s3://BUCKET/KEY`, as the object is named to a person."""
    return f"s3://{bucket}/{escape(key)}"


def restore_advice(where: str) -> str:
    """How a person gets back the lockfile object `where` (lost, damaged or replaced)."""
    return f"restore an earlier version of {where} (a bucket with versioning on keeps them)"


class S3Store:
    """The lockfile as the object `key` in `bucket`."""

    def __init__(
        self,
        bucket: str,
        key: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        timeouts: StoreTimeouts | None = None,
    ) -> None:
        self.bucket = bucket
        self.key = key
        self.timeouts = timeouts = timeouts or StoreTimeouts()
        try:  # the credentials may be fetched (a role assumed with a web identity): bounded too
            self.client, self._secrets = _within(
                timeouts.total, lambda: _client(bucket, endpoint_url, region, timeouts)
            )
        except _GivenUp:
            raise StoreError(
                f"cannot set up the S3 client for bucket {bucket}: the AWS credentials were not "
                f"resolved within {timeouts.total:g} s (state.timeout)"
            ) from None
        self.endpoint = self.client.meta.endpoint_url
        if endpoint_url is None:
            _refuse_plain_http(self.endpoint)  # one set outside pfsync.yaml (AWS_ENDPOINT_URL)

    @classmethod
    def for_config(cls, config: Config) -> S3Store:
        """The store `state:` configures (bucket, key, endpoint_url, region)."""
        state = config.state
        if not state.bucket or not state.key:
            raise StoreError("state.store is s3: set state.bucket and state.key in pfsync.yaml")
        return cls(state.bucket, state.key, state.endpoint_url, state.region, state.timeouts)

    @classmethod
    def at(cls, config: Config, bucket: str, key: str) -> S3Store:
        """Another object: with the configured endpoint and region when the store is s3."""
        state = config.state
        if state.store == "s3":
            return cls(bucket, key, state.endpoint_url, state.region, state.timeouts)
        return cls(bucket, key, timeouts=state.timeouts)

    @property
    def description(self) -> str:
        """`s3://bucket/key`."""
        return object_url(self.bucket, self.key)

    @property
    def restore_advice(self) -> str:
        """How a person gets back this lockfile object: an earlier version of it."""
        return restore_advice(self.description)

    @property
    def probe_key(self) -> str:
        """The key of the object that proves conditional writes: beside the lockfile's."""
        return probe_key(self.key)

    def read(self, *, strict: bool = True) -> Snapshot:
        """The lockfile the object holds, and its ETag (ABSENT when there is no object).

        There is no cached copy to fall back on: `plan` needs read access to the bucket.
        """
        found = self._bounded("read", lambda: self._get("read"))
        location = {"bucket": self.bucket, "key": self.key}
        if found is None:
            return Snapshot(None, ABSENT, location=location)
        data, etag, version_id = found
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LockfileError(
                f"the lockfile {self.description} is not UTF-8 (byte {exc.start}). pfsync never "
                f"overwrites a lockfile it cannot trust: {restore_advice(self.description)} or "
                "repair it, then run again"
            ) from None
        lockfile = parse_lockfile(text, self.description, self.restore_advice)
        return Snapshot(lockfile, etag, location=location, shown_version=version_id or etag)

    def write(self, lockfile: Lockfile, expected: Snapshot, message: str) -> Snapshot:
        """Put `lockfile` if the object is still the version `expected` (or still absent)."""
        body = lockfile.dumps().encode("utf-8")
        request: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "Body": body,
            "ContentType": "application/json",
            "Metadata": {"pfsync-operation": _metadata_text(message)},
        }
        if expected.version == ABSENT:
            request["IfNoneMatch"] = "*"
        else:
            request["IfMatch"] = expected.version
        self.prove_conditional_writes()
        etag = self._bounded("write", lambda: self._put(request))
        return Snapshot(lockfile, etag)

    def require_tip_checkout(self, snapshot: Snapshot) -> None:
        """Nothing to check: a bucket holds no checkout."""

    def prove_conditional_writes(self) -> None:
        """StoreError unless the service refuses conditional writes that must fail; once per
        process per endpoint and bucket. Only the probe object is written."""
        proven = (self.endpoint, self.bucket)
        with _honouring_lock:
            if proven in _honouring:
                return
        self._bounded("write", self._probe)
        with _honouring_lock:
            _honouring.add(proven)

    def _probe(self) -> None:
        if len(self.probe_key.encode("utf-8")) > MAX_KEY_BYTES:
            raise StoreError(
                f"state.key is too long for the s3 store: the object {self.probe_key} beside "
                f"it, which checks conditional writes, must fit S3's {MAX_KEY_BYTES} bytes"
            )
        self._probe_put(IfNoneMatch="*")  # creates the probe once; refused ever after
        if self._probe_put(IfNoneMatch="*"):
            raise self._no_conditional_writes(
                "it accepted a PutObject with If-None-Match: * over an existing object"
            )
        if self._probe_put(IfMatch=f'"{uuid.uuid4().hex}"'):
            raise self._no_conditional_writes(
                "it accepted a PutObject with If-Match and an ETag the object does not have"
            )

    def _probe_put(self, **condition: str) -> bool:
        """Whether the service accepted this conditional write of the probe object."""
        request: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.probe_key,
            "Body": PROBE_BODY,
            "ContentType": "text/plain",
            "Metadata": {"pfsync-operation": "check conditional writes"},
            **condition,
        }
        try:
            self.client.put_object(**request)
        except Exception as exc:
            code, status = _answer(exc)
            if _is_conflict(exc):
                return False
            if code == "NotImplemented" or status == 501:
                header = "If-None-Match" if "IfNoneMatch" in condition else "If-Match"
                raise self._no_conditional_writes(
                    f"it answered {status} {self._shown(str(code))} to a PutObject with {header}"
                ) from None
            raise self._failure("write", exc, self.probe_key) from None
        return True

    def _no_conditional_writes(self, what: str) -> StoreError:
        return StoreError(
            f"the S3 endpoint {self.endpoint} does not honour conditional writes: {what} (the "
            f"probe object {object_url(self.bucket, self.probe_key)}). The state lock and every "
            "lockfile write rely on If-None-Match and If-Match on PutObject: on this service two "
            "runs would both take the lock, so pfsync wrote nothing to the lockfile and sent "
            "nothing. Use a service that honours conditional writes (such as AWS S3), or the git "
            "or file store (state.store in pfsync.yaml)"
        )

    def _put(self, request: dict[str, Any]) -> str:
        """The conditional PutObject `request`: the new ETag; StoreConflict when the object is
        no longer the version it names (unless it holds exactly what was sent)."""
        try:
            response = self.client.put_object(**request)
        except Exception as exc:
            if not _is_conflict(exc):
                raise self._failure("write", exc) from None
            landed = self._get("write")
            if landed is not None and landed[0] == request["Body"]:
                return landed[1]  # our own write, whose response was lost
            now = "was deleted" if landed is None else "changed"
            raise StoreConflict(
                f"the lockfile {self.description} {now} underneath since it was read"
            ) from None
        return str(response["ETag"])

    def _bounded(self, action: str, operation: Callable[[], T]) -> T:
        """`operation()` within state.timeout, or StoreError; never a traceback."""
        try:
            return _within(self.timeouts.total, operation)
        except _GivenUp:
            raise StoreError(
                f"cannot {action} {self.description}: the S3 endpoint {self.endpoint} did not "
                f"answer within {self.timeouts.total:g} s (state.timeout)"
            ) from None
        except PfsyncError:
            raise
        except Exception as exc:
            raise self._failure(action, exc) from None

    def _get(self, action: str) -> tuple[bytes, str, str | None] | None:
        """The object's bytes, ETag and VersionId (None without versioning), or None when
        there is no object."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise self._failure(action, exc) from None
        body = response["Body"]
        try:
            if response.get("ContentLength", 0) > MAX_LOCKFILE_BYTES:
                raise StoreError(
                    f"the object {self.description} is over {MAX_LOCKFILE_BYTES // 2**20} MiB: "
                    "it is not a lockfile (check state.key)"
                )
            data = body.read()
        except StoreError:
            raise
        except Exception as exc:
            raise self._failure(action, exc) from None
        finally:
            body.close()
        return data, response["ETag"], response.get("VersionId")

    def _failure(self, action: str, exc: Exception, key: str | None = None) -> StoreError:
        """A StoreError that says what went wrong in words a person can act on (with the
        object `key`, the lockfile's by default)."""
        where = f"cannot {action} {object_url(self.bucket, key or self.key)}"
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return StoreError(f"{where}: {self._service_problem(action, response)}")
        name = type(exc).__name__
        if name == "NoCredentialsError" or name == "PartialCredentialsError":
            return StoreError(
                f"{where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run with an instance or container role"
            )
        unreachable = _UNREACHABLE.get(name)
        if unreachable is not None or isinstance(exc, OSError):
            unreachable = _cause(exc) or unreachable or "the connection failed"
        if unreachable is not None:
            return StoreError(
                f"{where}: the S3 endpoint {self.endpoint} is unreachable ({unreachable})"
            )
        return StoreError(f"{where}: {name}: {self._shown(str(exc))}")

    def _service_problem(self, action: str, response: dict[str, Any]) -> str:
        error = response.get("Error", {})
        code = str(error.get("Code", "")) or "no error code"
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        said = self._shown(str(error.get("Message", "")))
        answer = f"{status} {self._shown(code)}" + (f": {said}" if said else "")
        if code == "NoSuchBucket":
            return (
                f"the bucket {self.bucket} does not exist at {self.endpoint} (create it, with "
                "versioning on, before the first write)"
            )
        if code in CREDENTIAL_CODES:
            return (
                f"the S3 endpoint {self.endpoint} refused the credentials ({answer}); check "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the role) for this endpoint"
            )
        if status == 403 or code == "AccessDenied":
            need = (
                "s3:GetObject on the key, and s3:ListBucket on the bucket (without it, a "
                "lockfile that does not exist yet reads as access denied)"
                if action == "read"
                else f"s3:PutObject on {self._shown(self.key)} and on "
                f"{self._shown(self.probe_key)} beside it"
            )
            return f"access denied ({answer}); the credentials need {need}"
        return f"the S3 endpoint answered {answer}"

    def _shown(self, text: str) -> str:
        text = escape(redact(text, self._secrets))
        return text if len(text) <= MAX_SERVICE_TEXT else text[:MAX_SERVICE_TEXT] + "…"


def _answer(exc: Exception) -> tuple[object, object]:
    """The service's error code and HTTP status, or (None, None) when no answer came.

    Only a ClientError carries the service's answer; a connection that failed may carry a
    `response` attribute too, which is None.
    """
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None, None
    error, metadata = response.get("Error"), response.get("ResponseMetadata")
    code = error.get("Code") if isinstance(error, dict) else None
    status = metadata.get("HTTPStatusCode") if isinstance(metadata, dict) else None
    return code, status


def _is_missing(exc: Exception) -> bool:
    """A 404 for the object (not for the bucket: NoSuchBucket is an error)."""
    code, status = _answer(exc)
    return code == "NoSuchKey" or (status == 404 and code in ("NotFound", "404"))


def _is_conflict(exc: Exception) -> bool:
    """412 (not that version), 409 (a concurrent conditional write), 404 (deleted meanwhile)."""
    code, status = _answer(exc)
    return code in CONFLICT_CODES or status == 412 or code == "NoSuchKey"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: botocore's `error`, urllib3's reason, the exception chain."""
    seen: set[int] = set()
    queue = [exc]
    while queue and len(seen) < 20:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        kwargs = getattr(current, "kwargs", None)
        wrapped = [kwargs.get("error")] if isinstance(kwargs, dict) else []
        wrapped += [*current.args, current.__cause__, current.__context__]
        queue += [e for e in wrapped if isinstance(e, BaseException)]


def _cause(exc: BaseException) -> str | None:
    """What failed underneath, when it says more than botocore's exception's name."""
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror) or type(cause).__name__ == "NameResolutionError":
            return "its host name could not be resolved"
        if isinstance(cause, RemoteDisconnected):  # a ConnectionResetError, but a plain close
            return "the connection was closed"
        if isinstance(cause, ConnectionResetError):
            return "the connection was reset"
        if isinstance(cause, ssl.SSLError):
            return "the TLS handshake failed"
    return None


def _metadata_text(message: str) -> str:
    """The operation, for the object's metadata (seen in a versioned bucket's history)."""
    text = message.replace(" [skip ci]", "")
    return "".join(c for c in text if " " <= c <= "~")[:200]


def _refuse_plain_http(endpoint: str) -> None:
    """StoreError for an http:// endpoint that is not loopback (set in the AWS configuration)."""
    from pfsync.config import is_loopback_host

    parts = urlsplit(endpoint)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
        raise StoreError(
            f"refusing the plain http:// S3 endpoint {escape(parts.hostname or '')} (set by "
            "AWS_ENDPOINT_URL or the AWS configuration): use https:// (http:// is allowed only "
            "for loopback hosts)"
        )
