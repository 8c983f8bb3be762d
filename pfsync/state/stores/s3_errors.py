"""The wording of the s3 store's failures: what went wrong, in words a person can act on.

Apart from the store (`pfsync.state.stores.s3`) because botocore's exceptions and the service's
error codes change for other reasons than what the store reads and writes. Messages name the
bucket, key, endpoint and the service's error code, with the service's own text escaped, cut
short and any credential value in it redacted; every failure of the connection (reset, closed,
timed out, a host name that does not resolve, TLS) is worded as the endpoint being unreachable.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import RemoteDisconnected
from typing import Any

from pfsync.errors import StoreError
from pfsync.state.stores.s3_client import redact
from pfsync.support.textsafety import escape

MAX_SERVICE_TEXT = 200
CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
}
UNREACHABLE = {  # botocore's exceptions for a connection that failed, by name
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


def object_url(bucket: str, key: str) -> str:
    """`s3://BUCKET/KEY`, as the object is named to a person."""
    return f"s3://{bucket}/{escape(key)}"


@dataclass(frozen=True)
class FailureWording:
    """How the failures of one store are worded: its object, its endpoint, the secrets its
    client signs with (never shown) and the probe object beside the lockfile."""

    bucket: str
    key: str
    endpoint: str
    secrets: tuple[str, ...]
    probe_key: str

    def failure(self, action: str, exc: Exception, key: str | None = None) -> StoreError:
        """A StoreError that says what went wrong in words a person can act on (with the
        object `key`, the lockfile's by default)."""
        where = f"cannot {action} {object_url(self.bucket, key or self.key)}"
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return StoreError(f"{where}: {self.service_problem(action, response)}")
        name = type(exc).__name__
        if name == "NoCredentialsError" or name == "PartialCredentialsError":
            return StoreError(
                f"{where}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run with an instance or container role"
            )
        unreachable = UNREACHABLE.get(name)
        if unreachable is not None or isinstance(exc, OSError):
            unreachable = _cause(exc) or unreachable or "the connection failed"
        if unreachable is not None:
            return StoreError(
                f"{where}: the S3 endpoint {self.endpoint} is unreachable ({unreachable})"
            )
        return StoreError(f"{where}: {name}: {self.shown(str(exc))}")

    def service_problem(self, action: str, response: dict[str, Any]) -> str:
        """What the service's error `response` to `action` means, and what to do about it."""
        error = response.get("Error", {})
        code = str(error.get("Code", "")) or "no error code"
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        said = self.shown(str(error.get("Message", "")))
        answer = f"{status} {self.shown(code)}" + (f": {said}" if said else "")
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
                else f"s3:PutObject on {self.shown(self.key)} and on "
                f"{self.shown(self.probe_key)} beside it"
            )
            return f"access denied ({answer}); the credentials need {need}"
        return f"the S3 endpoint answered {answer}"

    def shown(self, text: str) -> str:
        """Outside text as it may be shown: secrets redacted, escaped, cut short."""
        text = escape(redact(text, self.secrets))
        return text if len(text) <= MAX_SERVICE_TEXT else text[:MAX_SERVICE_TEXT] + "…"


def code_and_status(exc: Exception) -> tuple[object, object]:
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


def is_missing(exc: Exception) -> bool:
    """A 404 for the object (not for the bucket: NoSuchBucket is an error)."""
    code, status = code_and_status(exc)
    return code == "NoSuchKey" or (status == 404 and code in ("NotFound", "404"))


def is_conflict(exc: Exception) -> bool:
    """412 (not that version), 409 (a concurrent conditional write), 404 (deleted meanwhile)."""
    code, status = code_and_status(exc)
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
