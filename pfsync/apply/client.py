"""The Pocketflows API over httpx: one create-trigger attempt, classed by whether it may have run.

The one question that matters for every attempt is "could the server have processed it?":

    created     a 2xx: the trigger exists (id may be unknown if the body is unusable)
    retryable   surely not processed: no connection, 429, 503 with Retry-After
    uncertain   maybe processed: 409, 500, 502, 503 without Retry-After, 504, other 5xx,
                a read timeout or a connection lost after the request was sent
    failed      any other 4xx: rejected, not processed, with the server's message
    auth        401/403: the whole run stops

The retry loop lives in the applier (a 429 slows every worker); this module never retries.
Credentials go only into the Authorization header, and every message built here (the server's
text, exception descriptions, warnings) is redacted with `Secrets`, in case a server echoes them;
an id is data and is kept exactly. Each request ends within the connect timeout plus the total
cap, however slowly a server trickles (`deadline_transport`). A 2xx whose body broke off, ran
over `MAX_RESPONSE_BYTES` or ran out of time still yields the id when it arrived whole.
"""

from __future__ import annotations

import base64
import email.utils
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pfsync import __version__
from pfsync.support.textsafety import Secrets

if TYPE_CHECKING:
    import httpx

OutcomeKind = Literal["created", "retryable", "uncertain", "failed", "auth"]
KNOWN_STATUSES = ("draft", "active", "inactive")
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_RETRY_AFTER_SECONDS = 10**7  # beyond any retry budget, and a finite float for every clock
USER_AGENT = f"pfsync/{__version__}"


@dataclass(frozen=True)
class Timeouts:
    """Seconds to connect, to wait for each read, and for the whole exchange.

    `total` caps everything from the first byte sent to the last byte read (status line,
    headers and body, however slowly they trickle); a request ends within connect + total.
    """

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


def _same(text: str) -> str:
    return text


def server_message(body: bytes, redact: Callable[[str], str] = _same) -> str:
    """The error message a server put in its body (JSON `error.message`/`message`), or its text.

    `redact` runs on the whole message before it is shortened, so a cut cannot leave part of
    a secret behind, and once more after whitespace is folded.
    """
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return _shorten(redact(text), redact) or "(empty response body)"
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
                return _shorten(redact(candidate), redact)
    return _shorten(redact(text), redact)


def _shorten(text: str, redact: Callable[[str], str] = _same, limit: int = 500) -> str:
    text = redact(" ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "…"


# A complete JSON string token: what `recover_trigger_id` accepts as a key or the id.
_JSON_STRING = re.compile(rb'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')
_JSON_SPACE = b" \t\r\n"


def _skip_space(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos] in _JSON_SPACE:
        pos += 1
    return pos


def _json_string(token: bytes) -> str | None:
    try:
        value = json.loads(token.decode("utf-8"))
    except ValueError:  # not UTF-8 (UnicodeDecodeError is a ValueError), or not a string
        return None
    return value if isinstance(value, str) else None


def recover_trigger_id(prefix: bytes) -> str | None:
    """The top-level `"id"` string of a JSON object of which only `prefix` arrived, or None.

    Conservative: only a string value that arrived whole (closing quote included), decoded as
    JSON, as a key of the outermost object (ids of nested objects are skipped); anything that
    is not JSON up to that point gives None.
    """
    pos = _skip_space(prefix, 0)
    if prefix[pos : pos + 1] != b"{":
        return None
    pos, depth, expect_key = pos + 1, 1, True
    while pos < len(prefix):
        byte = prefix[pos : pos + 1]
        if byte in (b" ", b"\t", b"\r", b"\n"):
            pos += 1
            continue
        if byte == b'"':
            token = _JSON_STRING.match(prefix, pos)
            if token is None:
                return None  # cut inside a string, or not JSON
            pos = token.end()
            if depth == 1 and expect_key:
                expect_key = False
                colon = _skip_space(prefix, pos)
                if prefix[colon : colon + 1] != b":":
                    return None
                if _json_string(token.group()) == "id":
                    value = _JSON_STRING.match(prefix, _skip_space(prefix, colon + 1))
                    trigger_id = _json_string(value.group()) if value else None
                    return trigger_id or None
                pos = colon + 1
            continue
        if byte in (b"{", b"["):
            depth += 1
        elif byte in (b"}", b"]"):
            depth -= 1
            if depth == 0:
                return None  # the object ended without an id
        elif byte == b"," and depth == 1:
            expect_key = True
        pos += 1
    return None


def classify_created(body: bytes, incomplete: str | None = None) -> Attempt:
    """A 2xx: created. The body gives the id, or the id is unknown (never a reason to re-send).

    `incomplete` says why `body` is only the part that arrived ("was cut short", ...): then the
    id is read from what arrived when it can be (`recover_trigger_id`).
    """
    from pfsync.schemas import TRIGGER, check, validator

    attempt = Attempt("created")
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):
        data = _NOT_JSON
    if incomplete is not None:
        trigger_id = data.get("id") if isinstance(data, dict) else recover_trigger_id(body)
        if isinstance(trigger_id, str) and trigger_id:
            attempt.trigger_id = trigger_id
            if isinstance(data, dict):
                attempt.created_at = _text_or_none(data.get("created_at"))
                attempt.status = _text_or_none(data.get("status"))
            attempt.warnings.append(
                f"the response {incomplete}; the trigger id was read from what arrived"
            )
        else:
            attempt.message = (
                f"the response {incomplete}, and no whole trigger id had arrived; "
                "the trigger id is unknown"
            )
        return attempt
    if data is _NOT_JSON:
        attempt.message = "the response body is not JSON; the trigger id is unknown"
        return attempt
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        attempt.message = "the response carries no trigger id; the trigger id is unknown"
        return attempt
    attempt.trigger_id = data["id"]
    attempt.created_at = _text_or_none(data.get("created_at"))
    attempt.status = _text_or_none(data.get("status"))
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


_NOT_JSON = object()


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def classify_response(
    status: int,
    headers: Any,
    body: bytes,
    *,
    incomplete: str | None = None,
    redact: Callable[[str], str] = _same,
) -> Attempt:
    """The failure class of an HTTP response (`incomplete`: why `body` is only a part)."""
    if 200 <= status < 300:
        created = classify_created(body, incomplete)
        created.http_status = status
        return created
    message = server_message(body, redact)
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

        from pfsync.errors import ConfigError

        try:
            httpx.URL(base_url)
        except httpx.InvalidURL:  # config.check_api_url refuses these first; never echo a URL
            raise ConfigError("the API URL is not a URL pfsync can send requests to") from None
        self.base_url = base_url
        self.timeouts = timeouts or Timeouts()
        self._redact = Secrets.of_login(username, password).redact if password else _same
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        if transport is None:
            from pfsync.apply.deadline_transport import DeadlineTransport

            transport = DeadlineTransport(limits, tls=httpx.URL(base_url).scheme == "https")
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
            limits=limits,
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
        attempt = self._post(business, body, idempotency_key)
        # Messages are redacted (a server may echo the credentials); the id is data, kept exact.
        attempt.message = self._redact(attempt.message)
        attempt.warnings = [self._redact(warning) for warning in attempt.warnings]
        if attempt.status is not None:
            attempt.status = self._redact(attempt.status)
        if attempt.created_at is not None:
            attempt.created_at = self._redact(attempt.created_at)
        return attempt

    def _post(self, business: str, body: dict[str, Any], idempotency_key: str) -> Attempt:
        import httpx

        from pfsync.apply.deadline_transport import request_deadline

        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        url = trigger_url(self.base_url, business)
        with request_deadline(self.timeouts.connect, self.timeouts.total) as trace:
            try:
                with self._http.stream(
                    "POST", url, content=content, headers=headers, extensions={"trace": trace}
                ) as response:
                    received, incomplete = _read_body(response)
                    return classify_response(
                        response.status_code,
                        response.headers,
                        received,
                        incomplete=incomplete,
                        redact=self._redact,
                    )
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                # Refused before anything was sent (config.check_api_url should have caught it).
                return Attempt(
                    "failed", None, f"not sent: the URL cannot be used: {_describe(exc)}"
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # The request never left: safe to send again.
                return Attempt("retryable", None, f"could not connect: {_describe(exc)}")
            except httpx.TimeoutException as exc:
                return Attempt("uncertain", None, f"no response in time: {_describe(exc)}")
            except httpx.TransportError as exc:
                return Attempt(
                    "uncertain", None, f"connection lost after sending: {_describe(exc)}"
                )


def _read_body(response: httpx.Response) -> tuple[bytes, str | None]:
    """The body (at most MAX_RESPONSE_BYTES of it), and why it is incomplete (None: whole).

    A 2xx is created whatever happens to its body; any other status is judged by its status
    line when the time cap ends the body, but a connection lost mid-body stays an error
    (uncertain), as before.
    """
    import httpx

    from pfsync.apply.deadline_transport import deadline_passed

    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            if size + len(chunk) > MAX_RESPONSE_BYTES:
                chunks.append(chunk[: MAX_RESPONSE_BYTES - size])
                limit = f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MiB"
                return b"".join(chunks), f"is longer than the {limit} limit"
            size += len(chunk)
            chunks.append(chunk)
    except httpx.TransportError as exc:
        timed_out = deadline_passed(exc)
        if not (200 <= response.status_code < 300 or timed_out):
            raise
        reason = "was still arriving when the time cap passed" if timed_out else "was cut short"
        return b"".join(chunks), reason
    return b"".join(chunks), None


def _describe(exc: Exception) -> str:
    # httpx messages name the failing operation but never the Authorization header; the
    # client redacts every message anyway, in case a server's words are in them.
    return type(exc).__name__ + (f" ({exc})" if str(exc) else "")
