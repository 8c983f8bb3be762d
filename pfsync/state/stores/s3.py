"""The `s3` store: the lockfile as one object in an S3-compatible bucket, written conditionally.

    state: {store: s3, bucket: acme-pfsync, key: production/pfsync.lock}

The version of a snapshot is the object's ETag (`absent` while there is no object). Every write
is one conditional PutObject: `If-None-Match: *` to create the object, `If-Match: ETAG` to replace
the version that was read. The service answers 412 when the object is no longer that version (or
409 while another conditional write of it is in progress), and the write fails with
StoreConflict. Nothing else is ever sent: no delete, no listing, no multipart upload; the lockfile
goes up in one request, so a write is all or nothing.

Before its first write to an endpoint and bucket, a process proves that the service honours
those conditions, with a probe object beside the lockfile (`s3_probe`): many S3-compatible
services ignore them, and then two runs would both take the lock.

A write whose response was lost is retried by the client, and the retry then meets its own
success as a 412: the object is read back, and when it holds exactly what was written, the write
stands.

Every read and write ends within `state.timeout` (all its requests and retries included): the
operation runs in a worker thread that is given up at the deadline (its request, if it is still
in flight, may land later: the write is conditional, so a late write is met as a conflict, and
its own content is recognised).

Beside this module: the boto3 client, its credentials and the bound on each operation
(`s3_client`), the wording of failures (`s3_errors`), the check of conditional writes
(`s3_probe`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pfsync.config import StoreTimeouts
from pfsync.errors import LockfileError, PfsyncError, StoreConflict, StoreError
from pfsync.state.lockfile import Lockfile, parse_lockfile
from pfsync.state.stores.base import Snapshot
from pfsync.state.stores.s3_client import GivenUp, make_client, refuse_plain_http, within
from pfsync.state.stores.s3_errors import FailureWording, is_conflict, is_missing, object_url
from pfsync.state.stores.s3_probe import is_proven, probe, probe_key, remember_proven

if TYPE_CHECKING:
    from pfsync.config import Config

ABSENT = "absent"
MAX_LOCKFILE_BYTES = 256 * 2**20  # a wrong key pointing at a huge object is not read into memory
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
T = TypeVar("T")


def valid_location(bucket: str, key: str) -> bool:
    """Whether `bucket` is an S3 bucket name and `key` a usable object key (no control chars)."""
    return bool(BUCKET_NAME.fullmatch(bucket)) and 0 < len(key) <= 1024 and key.isprintable()


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
        self.client, secrets = make_client(bucket, endpoint_url, region, timeouts)
        self.endpoint = self.client.meta.endpoint_url
        if endpoint_url is None:
            refuse_plain_http(self.endpoint)  # one set outside pfsync.yaml (AWS_ENDPOINT_URL)
        self.wording = FailureWording(bucket, key, self.endpoint, secrets, probe_key(key))

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
        if is_proven(self.endpoint, self.bucket):
            return
        self._bounded("write", lambda: probe(self.client, self.wording))
        remember_proven(self.endpoint, self.bucket)

    def _put(self, request: dict[str, Any]) -> str:
        """The conditional PutObject `request`: the new ETag; StoreConflict when the object is
        no longer the version it names (unless it holds exactly what was sent)."""
        try:
            response = self.client.put_object(**request)
        except Exception as exc:
            if not is_conflict(exc):
                raise self.wording.failure("write", exc) from None
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
            return within(self.timeouts.total, operation)
        except GivenUp:
            raise StoreError(
                f"cannot {action} {self.description}: the S3 endpoint {self.endpoint} did not "
                f"answer within {self.timeouts.total:g} s (state.timeout)"
            ) from None
        except PfsyncError:
            raise
        except Exception as exc:
            raise self.wording.failure(action, exc) from None

    def _get(self, action: str) -> tuple[bytes, str, str | None] | None:
        """The object's bytes, ETag and VersionId (None without versioning), or None when
        there is no object."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if is_missing(exc):
                return None
            raise self.wording.failure(action, exc) from None
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
            raise self.wording.failure(action, exc) from None
        finally:
            body.close()
        return data, response["ETag"], response.get("VersionId")


def _metadata_text(message: str) -> str:
    """The operation, for the object's metadata (seen in a versioned bucket's history)."""
    text = message.replace(" [skip ci]", "")
    return "".join(c for c in text if " " <= c <= "~")[:200]
