"""The s3 store's proof that a service honours conditional writes, before its first write.

Many S3-compatible services ignore `If-None-Match` and `If-Match` on PutObject, and then two
runs would both take the lock. So before its first write to an endpoint and bucket, a process
writes a probe object beside the lockfile, KEY.cas-probe, with `If-None-Match: *` twice and with
an `If-Match` no object has. A service that accepts either conditional write is refused with a
StoreError before the lockfile is written or anything is sent. The probe never touches the
lockfile object, and its key is fixed: it is created once, and a service that honours the
conditions refuses every later probe write, so it adds no versions.

Apart from the store (`pfsync.state.stores.s3`): it is a check of the service, made once per
process, not part of reading or writing the lockfile.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

from pfsync.errors import StoreError
from pfsync.state.stores.s3_errors import (
    FailureWording,
    code_and_status,
    is_conflict,
    object_url,
)

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

PROBE_SUFFIX = ".cas-probe"
PROBE_BODY = (
    b"pfsync writes this object conditionally to check that the service honours conditional "
    b"writes (If-None-Match and If-Match on PutObject). It may be deleted.\n"
)
MAX_KEY_BYTES = 1024
_honouring: set[tuple[str, str]] = set()  # (endpoint, bucket) proven in this process
_honouring_lock = threading.Lock()


def probe_key(key: str) -> str:
    """The key of the probe object of the lockfile `key` (never `key` itself)."""
    return key + PROBE_SUFFIX


def is_proven(endpoint: str, bucket: str) -> bool:
    """Whether this process has proven conditional writes at `endpoint` for `bucket`."""
    with _honouring_lock:
        return (endpoint, bucket) in _honouring


def remember_proven(endpoint: str, bucket: str) -> None:
    """Record that `endpoint` honours conditional writes for `bucket` (for this process)."""
    with _honouring_lock:
        _honouring.add((endpoint, bucket))


def probe(client: S3Client, wording: FailureWording) -> None:
    """StoreError unless the service refuses the conditional writes of the probe object
    `wording.probe_key` that must fail."""
    if len(wording.probe_key.encode("utf-8")) > MAX_KEY_BYTES:
        raise StoreError(
            f"state.key is too long for the s3 store: the object {wording.probe_key} beside "
            f"it, which checks conditional writes, must fit S3's {MAX_KEY_BYTES} bytes"
        )
    _probe_put(client, wording, IfNoneMatch="*")  # creates the probe once; refused ever after
    if _probe_put(client, wording, IfNoneMatch="*"):
        raise _no_conditional_writes(
            wording, "it accepted a PutObject with If-None-Match: * over an existing object"
        )
    if _probe_put(client, wording, IfMatch=f'"{uuid.uuid4().hex}"'):
        raise _no_conditional_writes(
            wording, "it accepted a PutObject with If-Match and an ETag the object does not have"
        )


def _probe_put(client: S3Client, wording: FailureWording, **condition: str) -> bool:
    """Whether the service accepted this conditional write of the probe object."""
    request: dict[str, Any] = {
        "Bucket": wording.bucket,
        "Key": wording.probe_key,
        "Body": PROBE_BODY,
        "ContentType": "text/plain",
        "Metadata": {"pfsync-operation": "check conditional writes"},
        **condition,
    }
    try:
        client.put_object(**request)
    except Exception as exc:
        code, status = code_and_status(exc)
        if is_conflict(exc):
            return False
        if code == "NotImplemented" or status == 501:
            header = "If-None-Match" if "IfNoneMatch" in condition else "If-Match"
            raise _no_conditional_writes(
                wording,
                f"it answered {status} {wording.shown(str(code))} to a PutObject with {header}",
            ) from None
        raise wording.failure("write", exc, wording.probe_key) from None
    return True


def _no_conditional_writes(wording: FailureWording, what: str) -> StoreError:
    return StoreError(
        f"the S3 endpoint {wording.endpoint} does not honour conditional writes: {what} (the "
        f"probe object {object_url(wording.bucket, wording.probe_key)}). The state lock and every "
        "lockfile write rely on If-None-Match and If-Match on PutObject: on this service two "
        "runs would both take the lock, so pfsync wrote nothing to the lockfile and sent "
        "nothing. Use a service that honours conditional writes (such as AWS S3), or the git "
        "or file store (state.store in pfsync.yaml)"
    )
