"""Injected faults: latency, a token-bucket rate limit, random failures and scripted outcomes.

Each create-trigger request draws one *outcome* name. A scripted outcome (queued through
`POST /__sandbox/faults`) wins; otherwise the rate limiter, `fail_rate` and `lose_response_rate`
decide, from a random generator seeded with `seed` so sequential runs repeat exactly.

    ok                 process normally: 200 with the created Trigger
    ok-no-id           store, then 200 with a Trigger lacking `id`
    lose-response      store, then close the connection without any response
    slow               store, then wait `slow_seconds` (or until shutdown) before answering
    drop               close the connection without storing or answering
    503-retry-after    503 with `Retry-After: N`, N being `retry_after_seconds` (default 1)
    NNN                any 4xx/5xx status without storing, e.g. 500, 502, 503 (no Retry-After),
                       504, 409, 401 (with WWW-Authenticate), 403, 422, 429 (Retry-After: N)

Error outcomes and `drop` answer before auth and validation. The storing outcomes apply to a
request that passes them; one that fails gets its usual 401/400/422 and uses up the outcome.
"""

from __future__ import annotations

import collections
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable

OK = "ok"
OK_NO_ID = "ok-no-id"
LOSE_RESPONSE = "lose-response"
SLOW = "slow"
DROP = "drop"
RETRY_AFTER_503 = "503-retry-after"

# Outcomes that store the trigger (after auth and validation pass); the rest answer without it.
STORING = frozenset({OK, OK_NO_ID, LOSE_RESPONSE, SLOW})
NAMED = frozenset({*STORING, DROP, RETRY_AFTER_503})
_STATUS_RE = re.compile(r"[45][0-9][0-9]")


def is_outcome(name: object) -> bool:
    """Whether `name` is an outcome the sandbox can script."""
    return isinstance(name, str) and (name in NAMED or _STATUS_RE.fullmatch(name) is not None)


def outcome_status(name: str) -> int | None:
    """The HTTP status an error outcome answers with, or None for the named outcomes."""
    if name == RETRY_AFTER_503:
        return 503
    return int(name) if _STATUS_RE.fullmatch(name) else None


class TokenBucket:
    """Allow `rate` requests per second on average, in bursts of up to max(1, rate)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> int | None:
        """Take a token: None when allowed, else the whole seconds to wait (for Retry-After)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return max(1, math.ceil((1.0 - self._tokens) / self._rate))


class Faults:
    """Decides each create request's outcome; thread-safe."""

    def __init__(
        self,
        *,
        latency_ms: float = 0,
        rate_limit: float | None = None,
        fail_rate: float = 0.0,
        lose_response_rate: float = 0.0,
        seed: int | None = None,
        retry_after_seconds: int = 1,
    ) -> None:
        self.latency = latency_ms / 1000.0
        # What a scripted 429 or 503-retry-after names: 0 lets a test's client retry at once.
        self.retry_after_seconds = retry_after_seconds
        self._bucket = TokenBucket(rate_limit) if rate_limit else None
        self._fail_rate = fail_rate
        self._lose_response_rate = lose_response_rate
        self._random = random.Random(seed)
        self._script: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()

    def script(self, outcomes: Iterable[str]) -> list[str]:
        """Queue `outcomes` for the next create requests; returns the whole queue."""
        outcomes = list(outcomes)
        unknown = [name for name in outcomes if not is_outcome(name)]
        if unknown:
            raise ValueError(f"unknown outcome(s): {', '.join(map(repr, unknown))}")
        with self._lock:
            self._script.extend(outcomes)
            return list(self._script)

    def scripted(self) -> list[str]:
        """The outcomes still queued, next first."""
        with self._lock:
            return list(self._script)

    def clear(self) -> None:
        """Forget every queued outcome."""
        with self._lock:
            self._script.clear()

    def next_outcome(self) -> tuple[str, int | None]:
        """The next request's outcome, and the Retry-After seconds a 429 or 503-retry-after
        names."""
        with self._lock:
            if self._script:
                return self._script.popleft(), self.retry_after_seconds
            # Both numbers are always drawn so a seed gives the same sequence whatever the rates.
            fail_draw, lose_draw = self._random.random(), self._random.random()
        if self._bucket is not None:
            wait = self._bucket.take()
            if wait is not None:
                return "429", wait
        if fail_draw < self._fail_rate:
            return "500", None
        if lose_draw < self._lose_response_rate:
            return LOSE_RESPONSE, None
        return OK, None


# `apply --sandbox --sandbox-faults SPEC`: the server's fault options as `name=value` pairs.
FAULT_SPEC_HELP = (
    "lose-response=FRACTION, fail=FRACTION, latency-ms=MS, rate-limit=PER_SECOND, "
    "seed=INTEGER, idempotency-keys=on|off (comma-separated, e.g. lose-response=0.3,seed=1)"
)
_SWITCH = {"on": True, "true": True, "yes": True, "1": True}
_SWITCH.update({"off": False, "false": False, "no": False, "0": False})


class FaultSpecError(ValueError):
    """A `--sandbox-faults` value that is not a list of known faults with valid values."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}; valid: {FAULT_SPEC_HELP}")


def _number(name: str, text: str, what: str, valid: Callable[[float], bool]) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and valid(value)):
        raise FaultSpecError(f"{name} must be {what}, not {text!r}")
    return value


def _integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FaultSpecError(f"{name} must be an integer, not {text!r}") from None


def _switch(name: str, text: str) -> bool:
    if text.lower() not in _SWITCH:
        raise FaultSpecError(f"{name} must be on or off, not {text!r}")
    return _SWITCH[text.lower()]


_FRACTION = "a fraction from 0 to 1"
# name → (Sandbox keyword, parser of the value text, an example value)
_FAULT_OPTIONS: dict[str, tuple[str, Callable[[str, str], float | int | bool], str]] = {
    "lose-response": (
        "lose_response_rate",
        lambda n, t: _number(n, t, _FRACTION, lambda v: 0 <= v <= 1),
        "0.3",
    ),
    "fail": ("fail_rate", lambda n, t: _number(n, t, _FRACTION, lambda v: 0 <= v <= 1), "0.1"),
    "latency-ms": (
        "latency_ms",
        lambda n, t: _number(n, t, "a number of milliseconds >= 0", lambda v: v >= 0),
        "50",
    ),
    "rate-limit": (
        "rate_limit",
        lambda n, t: _number(n, t, "a number of requests per second > 0", lambda v: v > 0),
        "5",
    ),
    "seed": ("seed", _integer, "1"),
    "idempotency-keys": ("idempotency_keys", _switch, "on"),
}


def parse_fault_spec(spec: str) -> dict[str, float | int | bool]:
    """The Sandbox keyword arguments of `spec`, e.g. `lose-response=0.3,seed=1`.

    Names mirror `pfsync sandbox`'s options: lose-response (--lose-response-rate), fail
    (--fail-rate), latency-ms, rate-limit, seed, idempotency-keys (a bare name means on).
    FaultSpecError names the problem and lists the valid names.
    """
    keywords: dict[str, float | int | bool] = {}
    seen: set[str] = set()
    for item in spec.split(","):
        name, equals, text = (part.strip() for part in item.partition("="))
        if not name and not equals:
            continue  # an empty item: `a=1,` or `a=1,,b=2`
        if name not in _FAULT_OPTIONS:
            raise FaultSpecError(f"unknown fault {name!r}")
        if name in seen:
            raise FaultSpecError(f"{name} is given twice")
        seen.add(name)
        keyword, parse, example = _FAULT_OPTIONS[name]
        if not equals:
            if keyword != "idempotency_keys":
                raise FaultSpecError(f"{name} needs a value, e.g. {name}={example}")
            text = "on"
        keywords[keyword] = parse(name, text)
    if not seen:
        raise FaultSpecError("no faults given")
    return keywords
