"""The `s3` store: the lockfile as one object in an S3-compatible bucket, written conditionally.

    state: {store: s3, bucket: acme-pfsync, key: production/pfsync.lock}

The version of a snapshot is the object's ETag (`absent` while there is no object). Every write
is one conditional PutObject: `If-None-Match: *` to create the object, `If-Match: ETAG` to replace
the version that was read. The service answers 412 when the object is no longer that version (or
409 while another conditional write of it is in progress), and the write fails with
StoreConflict. Nothing else is ever sent: no delete, no listing, no multipart upload; the lockfile
goes up in one request, so a write is all or nothing.

A write whose response was lost is retried by the client, and the retry then meets its own
success as a 412: the object is read back, and when it holds exactly what was written, the write
stands.

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
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pfsync.errors import LockfileError, StoreConflict, StoreError
from pfsync.state.lockfile import Lockfile, parse_lockfile
from pfsync.state.stores.base import Snapshot
from pfsync.support.textsafety import escape

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

    from pfsync.config import Config

ABSENT = "absent"
EXTRA = "pip install 'pfsync[s3]'"
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 60
ATTEMPTS = 3  # per request, the first included; each within the timeouts above
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


def valid_location(bucket: str, key: str) -> bool:
    """Whether `bucket` is an S3 bucket name and `key` a usable object key (no control chars)."""
    return bool(BUCKET_NAME.fullmatch(bucket)) and 0 < len(key) <= 1024 and key.isprintable()


def _client(
    bucket: str, endpoint_url: str | None, region: str | None
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
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
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


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` without the AWS secret key or session token of this process's environment."""
    values = [os.environ.get(name) for name in _SECRET_VARIABLES]
    for value in sorted({v for v in (*values, *secrets) if v and len(v) >= 4}, key=len)[::-1]:
        text = text.replace(value, "***")
    return text


def object_url(bucket: str, key: str) -> str:
    """`s3://BUCKET/KEY`, as the object is named to a person."""
    return f"s3://{bucket}/{escape(key)}"


class S3Store:
    """The lockfile as the object `key` in `bucket`."""

    def __init__(
        self, bucket: str, key: str, endpoint_url: str | None = None, region: str | None = None
    ) -> None:
        self.bucket = bucket
        self.key = key
        self.client, self._secrets = _client(bucket, endpoint_url, region)
        self.endpoint = self.client.meta.endpoint_url
        if endpoint_url is None:
            _refuse_plain_http(self.endpoint)  # one set outside pfsync.yaml (AWS_ENDPOINT_URL)

    @classmethod
    def for_config(cls, config: Config) -> S3Store:
        """The store `state:` configures (bucket, key, endpoint_url, region)."""
        state = config.state
        if not state.bucket or not state.key:
            raise StoreError("state.store is s3: set state.bucket and state.key in pfsync.yaml")
        return cls(state.bucket, state.key, state.endpoint_url, state.region)

    @classmethod
    def at(cls, config: Config, bucket: str, key: str) -> S3Store:
        """Another object: with the configured endpoint and region when the store is s3."""
        state = config.state
        if state.store == "s3":
            return cls(bucket, key, state.endpoint_url, state.region)
        return cls(bucket, key)

    @property
    def description(self) -> str:
        """`s3://bucket/key`."""
        return object_url(self.bucket, self.key)

    def read(self, *, strict: bool = True) -> Snapshot:
        """The lockfile the object holds, and its ETag (ABSENT when there is no object).

        There is no cached copy to fall back on: `plan` needs read access to the bucket.
        """
        found = self._get("read")
        if found is None:
            return Snapshot(None, ABSENT)
        data, etag = found
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LockfileError(
                f"the lockfile {self.description} is not UTF-8 (byte {exc.start}). pfsync never "
                "overwrites a lockfile it cannot trust: restore an earlier version of the object "
                "(bucket versioning) or repair it, then run again"
            ) from None
        return Snapshot(parse_lockfile(text, self.description), etag)

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
        try:
            response = self.client.put_object(**request)
        except self.client.exceptions.ClientError as exc:
            if not _is_conflict(exc):
                raise self._failure("write", exc) from None
            landed = self._get("write")
            if landed is not None and landed[0] == body:
                return Snapshot(lockfile, landed[1])  # our own write, whose response was lost
            now = "was deleted" if landed is None else "changed"
            raise StoreConflict(
                f"the lockfile {self.description} {now} underneath since it was read"
            ) from None
        except Exception as exc:
            raise self._failure("write", exc) from None
        return Snapshot(lockfile, response["ETag"])

    def _get(self, action: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None when there is no object."""
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
        return data, response["ETag"]

    def _failure(self, action: str, exc: Exception) -> StoreError:
        """A StoreError that says what went wrong in words a person can act on."""
        where = f"cannot {action} {self.description}"
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return StoreError(f"{where}: {self._service_problem(action, response)}")
        name = type(exc).__name__
        if name == "NoCredentialsError" or name == "PartialCredentialsError":
            return StoreError(
                f"{where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run with an instance or container role"
            )
        unreachable = {
            "EndpointConnectionError": "could not connect",
            "ConnectTimeoutError": "the connection timed out",
            "ReadTimeoutError": "no answer in time",
            "ConnectionClosedError": "the connection was closed",
            "ProxyConnectionError": "could not connect through the proxy",
            "SSLError": "the TLS handshake failed",
        }.get(name)
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
                else "s3:PutObject on the key"
            )
            return f"access denied ({answer}); the credentials need {need}"
        return f"the S3 endpoint answered {answer}"

    def _shown(self, text: str) -> str:
        text = escape(redact(text, self._secrets))
        return text if len(text) <= MAX_SERVICE_TEXT else text[:MAX_SERVICE_TEXT] + "…"


def _is_missing(exc: Exception) -> bool:
    """A 404 for the object (not for the bucket: NoSuchBucket is an error)."""
    response: dict[str, Any] = getattr(exc, "response", {})
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code == "NoSuchKey" or (status == 404 and code in ("NotFound", "404"))


def _is_conflict(exc: Exception) -> bool:
    """412 (not that version), 409 (a concurrent conditional write), 404 (deleted meanwhile)."""
    response: dict[str, Any] = getattr(exc, "response", {})
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in CONFLICT_CODES or status == 412 or code == "NoSuchKey"


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
