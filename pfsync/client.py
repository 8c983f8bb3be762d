"""The Pocketflows API over httpx: one create-trigger attempt, classified per §8.

The one question that matters for every attempt is "could the server have processed it?":

    created     a 2xx: the trigger exists (id may be unknown if the body is unusable)
    retryable   surely not processed: no connection, 429, 503 with Retry-After
    uncertain   maybe processed: 409, 500, 502, 503 without Retry-After, 504, other 5xx,
                a read timeout or a connection lost after the request was sent
    failed      any other 4xx: rejected, not processed, with the server's message
    auth        401/403: the whole run stops

The retry loop lives in the applier (a 429 slows every worker); this module never retries.
Credentials go only into the Authorization header: no message built here contains them.
"""

from __future__ import annotations

import base64
import email.utils
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pfsync import __version__

if TYPE_CHECKING:
    import httpx

OutcomeKind = Literal["created", "retryable", "uncertain", "failed", "auth"]
KNOWN_STATUSES = ("draft", "active", "inactive")
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_RETRY_AFTER_SECONDS = 10**7  # beyond any retry budget, and a finite float for every clock
USER_AGENT = f"pfsync/{__version__}"


@dataclass(frozen=True)
class Timeouts:
    """Seconds to connect, to wait for each read, and for one whole response."""

    connect: float = 10.0
    read: float = 30.0
    total: float = 60.0


@dataclass
class Attempt:
    """The classified outcome of one POST."""

    kind: OutcomeKind
    http_status: int | None = None
    message: str = ""
    trigger_id: str | None = None
    created_at: str | None = None
    status: str | None = None
    retry_after: float | None = None  # seconds, for retryable outcomes that named one
    warnings: list[str] = field(default_factory=list)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit() alone accepts non-ASCII digits, e.g. '²'
        return float(min(int(value), MAX_RETRY_AFTER_SECONDS))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - now), float(MAX_RETRY_AFTER_SECONDS))


def server_message(body: bytes) -> str:
    """The error message a server put in its body (JSON `error.message`/`message`), or its text."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return _shorten(text) or "(empty response body)"
    if isinstance(data, dict):
        error = data.get("error")
        for candidate in (
            error.get("message") if isinstance(error, dict) else error,
            data.get("message"),
            data.get("detail"),
        ):
            if isinstance(candidate, str) and candidate:
                violations = error.get("violations") if isinstance(error, dict) else None
                if isinstance(violations, list) and violations:
                    details = "; ".join(
                        f"{v.get('path', '$')}: {v.get('message', '')}"
                        for v in violations
                        if isinstance(v, dict)
                    )
                    candidate = f"{candidate}: {details}"
                return _shorten(candidate)
    return _shorten(text)


def _shorten(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def classify_created(body: bytes) -> Attempt:
    """A 2xx: created. The body gives the id, or the id is unknown (never a reason to re-send)."""
    from pfsync.schemas import TRIGGER, check, validator

    attempt = Attempt("created")
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):
        attempt.message = "the response body is not JSON; the trigger id is unknown"
        return attempt
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        attempt.message = "the response carries no trigger id; the trigger id is unknown"
        return attempt
    attempt.trigger_id = data["id"]
    created_at, status = data.get("created_at"), data.get("status")
    attempt.created_at = created_at if isinstance(created_at, str) else None
    attempt.status = status if isinstance(status, str) else None
    problems = (
        []
        if check(TRIGGER)(data)
        else sorted(e.message for e in validator(TRIGGER).iter_errors(data))
    )
    if problems:
        attempt.warnings.append("the response does not match the Trigger schema: " + problems[0])
    if attempt.status is not None and attempt.status not in KNOWN_STATUSES:
        attempt.warnings.append(f"unexpected trigger status {attempt.status!r} recorded as is")
    return attempt


def classify_response(status: int, headers: Any, body: bytes) -> Attempt:
    """The §8 failure class of a complete HTTP response."""
    if 200 <= status < 300:
        created = classify_created(body)
        created.http_status = status
        return created
    message = server_message(body)
    retry_after = parse_retry_after(headers.get("retry-after"))
    if status == 429:
        return Attempt("retryable", status, message, retry_after=retry_after)
    if status == 503 and retry_after is not None:
        return Attempt("retryable", status, message, retry_after=retry_after)
    if status in (401, 403):
        return Attempt("auth", status, message)
    if 400 <= status < 500 and status != 409:
        return Attempt("failed", status, message)
    # 409, 5xx, and anything unexpected (1xx/3xx): the server may have stored the trigger.
    return Attempt("uncertain", status, message)


def trigger_url(base_url: str, business: str) -> str:
    """`{base}/businesses/{business}/triggers`, the business id as one escaped path segment."""
    segment = quote(business, safe="")
    if segment in (".", ".."):  # a dot segment would be resolved away: /businesses/../triggers
        segment = segment.replace(".", "%2E")
    return f"{base_url.rstrip('/')}/businesses/{segment}/triggers"


class PocketflowsClient:
    """Creates triggers. Share one instance between worker threads (httpx.Client is thread-safe)."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeouts: Timeouts | None = None,
        max_connections: int = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        self.base_url = base_url
        self.timeouts = timeouts or Timeouts()
        # HTTP Basic as a default header: the bytes httpx.BasicAuth would send, without running
        # its auth flow for every request (a sixth of the client's CPU per create).
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._http = httpx.Client(
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Authorization": f"Basic {token}",
            },
            timeout=httpx.Timeout(
                connect=self.timeouts.connect,
                read=self.timeouts.read,
                write=self.timeouts.read,
                pool=None,
            ),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    def __enter__(self) -> PocketflowsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_trigger(self, business: str, body: dict[str, Any], idempotency_key: str) -> Attempt:
        """POST one trigger once and classify what happened. Never raises for network trouble."""
        import httpx

        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        url = trigger_url(self.base_url, business)
        deadline = time.monotonic() + self.timeouts.total
        try:
            with self._http.stream("POST", url, content=content, headers=headers) as response:
                chunks: list[bytes] = []
                size = 0
                try:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                            break  # a huge or trickling body: judge by the status line alone
                        chunks.append(chunk)
                except httpx.TransportError:
                    if not 200 <= response.status_code < 300:
                        raise
                    chunks = []  # 2xx already seen: created, even if the body broke off
                return classify_response(response.status_code, response.headers, b"".join(chunks))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never left: safe to send again.
            return Attempt("retryable", None, f"could not connect: {_describe(exc)}")
        except httpx.TimeoutException as exc:
            return Attempt("uncertain", None, f"no response in time: {_describe(exc)}")
        except httpx.TransportError as exc:
            return Attempt("uncertain", None, f"connection lost after sending: {_describe(exc)}")


def _describe(exc: Exception) -> str:
    # httpx messages name the failing operation but never the Authorization header.
    return type(exc).__name__ + (f" ({exc})" if str(exc) else "")
