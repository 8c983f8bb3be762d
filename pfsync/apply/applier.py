"""Plan, client and journal → results: parallel creates that never create a trigger twice.

For each address: a `pending` record (with a fresh Idempotency-Key) is durable in the journal
before its POST, and the outcome is appended after. Killed at any instant, the next run therefore
knows each address as created, not created (no pending record), or uncertain (pending without an
outcome), and never re-sends an uncertain one by itself.

Only outcomes that were surely not processed (no connection, 429, 503 with Retry-After) are
retried, with the same Idempotency-Key, exponential backoff with jitter, bounded attempts and
total time. A 429 holds back every worker (`SharedBackoff`). 401/403 stops the run; so does a
journal that cannot be written (no POST without a durable pending record).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pfsync.apply.client import Attempt
from pfsync.errors import JournalWriteError
from pfsync.models import DesiredTrigger
from pfsync.state.journal_records import Created, Failed, Pending, Record, Uncertain

ResultKind = Literal["created", "failed", "uncertain", "not-sent"]
StopReason = Literal["auth", "disk", "interrupt"]
INTERRUPT_GRACE_SECONDS = 5.0
IN_FLIGHT = "still in flight when the run stopped waiting"


class CreatesTriggers(Protocol):
    """What the applier needs from the API client."""

    def create_trigger(
        self, business: str, body: dict[str, Any], idempotency_key: str
    ) -> Attempt: ...


class AppendsRecords(Protocol):
    """What the applier needs from the journal: the run's creates announced, durable appends."""

    def announce(self, pendings: Sequence[Pending]) -> None: ...

    def append(self, record: Record) -> None: ...


@dataclass(frozen=True)
class ApplyItem:
    """One create to send: a new trigger, a replacement, or a re-sent uncertain create."""

    trigger: DesiredTrigger  # `trigger.replaces`: the id a replacement retires
    idempotency_key: str | None = None  # set only to re-send an uncertain create

    @property
    def address(self) -> str:
        """The address to create."""
        return self.trigger.address


@dataclass
class ItemResult:
    """What happened to one address."""

    address: str
    kind: ResultKind
    message: str = ""
    trigger_id: str | None = None
    http_status: int | None = None
    replaces: str | None = None
    warnings: list[str] = field(default_factory=list)
    unrecorded: bool = False  # created, but the outcome could not be written (disk trouble)


@dataclass
class ApplyReport:
    """Every result, and why the run stopped early, if it did."""

    results: list[ItemResult]
    stop_reason: StopReason | None = None
    stop_message: str = ""

    def of_kind(self, kind: ResultKind) -> list[ItemResult]:
        """The results of one kind, in address order."""
        return sorted((r for r in self.results if r.kind == kind), key=lambda r: r.address)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for automatic retries of requests that surely were not processed."""

    max_attempts: int = 6
    max_total_seconds: float = 120.0
    base_seconds: float = 0.5
    cap_seconds: float = 30.0

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before retry number `retry` (1-based): the server's word, else full jitter."""
        if retry_after is not None:
            return retry_after + rng.uniform(0, self.base_seconds)
        return rng.uniform(0, min(self.cap_seconds, self.base_seconds * 2**retry))


class SharedBackoff:
    """A 429 slows every worker: nobody sends before the latest `hold` expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0

    def hold(self, seconds: float) -> None:
        """Keep every worker from sending for `seconds`."""
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def wait(self, stop: threading.Event) -> None:
        """Sleep until sending is allowed again (or until `stop` is set)."""
        while not stop.is_set():
            with self._lock:
                remaining = self._not_before - time.monotonic()
            if remaining <= 0:
                return
            stop.wait(remaining)


class Applier:
    """Runs the creates of one apply on `parallelism` worker threads."""

    def __init__(
        self,
        client: CreatesTriggers,
        journal: AppendsRecords,
        *,
        parallelism: int = 4,
        policy: RetryPolicy | None = None,
        on_result: Callable[[ItemResult], None] | None = None,
        on_retry: Callable[[str], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.parallelism = max(1, parallelism)
        self.policy = policy or RetryPolicy()
        self.on_result = on_result or (lambda result: None)
        self.on_retry = on_retry or (lambda line: None)
        self.rng = rng or random.Random()
        self.stop = threading.Event()  # set: start nothing new (interrupt, auth, disk)
        self.backoff = SharedBackoff()
        # Reentrant: a stop signal's handler runs on the main thread between two of its steps,
        # and calls `request_stop` even while that thread holds this lock (in `report`).
        self._lock = threading.RLock()
        self._results: dict[str, ItemResult] = {}
        self._pendings: dict[str, Pending] = {}
        self._in_flight: set[str] = set()  # pending record durable, outcome not yet known
        self._reported = False  # results arriving after the report are not shown
        self._abandon = threading.Event()  # set: stop waiting for in-flight requests at once
        self._waiting = False  # in `run`: a stop waits for the requests in flight
        self._stop_reason: StopReason | None = None
        self._stop_message = ""

    def request_stop(self, reason: StopReason, message: str = "") -> None:
        """Start nothing new; the first reason given is the one reported."""
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason, self._stop_message = reason, message
        self.stop.set()

    def abandon_in_flight(self) -> None:
        """Stop waiting for in-flight requests now (a second Ctrl-C); they stay uncertain."""
        self.request_stop("interrupt")
        self._abandon.set()

    @property
    def in_flight(self) -> int:
        """How many requests may have left whose outcome is not known yet."""
        with self._lock:
            return len(self._in_flight)

    @property
    def waiting(self) -> bool:
        """Whether `run` has not returned yet: a stop still waits for the requests in flight."""
        return self._waiting

    @property
    def abandoned(self) -> bool:
        """Whether the wait for in-flight requests was cut short by `abandon_in_flight`."""
        return self._abandon.is_set()

    def run(self, items: Sequence[ItemResult | ApplyItem], *, grace: float | None = None) -> None:
        """Send every item (blocking); see `report()`. `grace` bounds the wait after a stop."""
        self._waiting = True
        try:
            self._run(items, grace)
        finally:
            self._waiting = False

    def _run(self, items: Sequence[ItemResult | ApplyItem], grace: float | None) -> None:
        queue = [item for item in items if isinstance(item, ApplyItem)]
        self._pendings = {item.address: self._pending_for(item) for item in queue}
        # A remote store writes pending records ahead of the workers, batch by batch, so it
        # needs them all, in sending order, before the first POST (the file journal does not).
        self.journal.announce(list(self._pendings.values()))
        queue.reverse()  # pop() from the end keeps the plan's order
        queue_lock = threading.Lock()

        def worker() -> None:
            while not self.stop.is_set():
                with queue_lock:
                    if not queue:
                        return
                    item = queue.pop()
                try:
                    self._settle(item)
                except Exception as exc:  # a bug must not kill a worker and hide the outcome
                    self._unexpected(item, exc)

        threads = [
            threading.Thread(target=worker, name=f"pfsync-apply-{n}", daemon=True)
            for n in range(min(self.parallelism, len(queue)))
        ]
        for thread in threads:
            thread.start()
        self.wait(threads, grace)

    def wait(self, threads: Sequence[threading.Thread], grace: float | None) -> None:
        """Join the workers; once stopped, give in-flight requests at most `grace` seconds."""
        deadline: float | None = None
        for thread in threads:
            while thread.is_alive():
                if self._abandon.is_set():
                    return  # their addresses stay pending, i.e. uncertain
                if self.stop.is_set() and grace is not None:
                    deadline = deadline or time.monotonic() + grace
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return  # abandoned: their addresses stay pending, i.e. uncertain
                    thread.join(min(remaining, 0.1))
                else:
                    thread.join(0.1)

    def report(self, items: Sequence[ApplyItem]) -> ApplyReport:
        """Results for every item, as the next plan will see them.

        A request still in flight when the wait ended is uncertain (its pending record stands),
        and so is a re-send of an uncertain create that never went out. Results that arrive
        after the report are neither shown nor counted: the journal is closed by then.
        """
        with self._lock:
            first_report, self._reported = not self._reported, True
            results = [self._results.get(i.address) or self._unsettled(i) for i in items]
            report = ApplyReport(results, self._stop_reason, self._stop_message)
        if first_report:
            for result in results:
                if result.address not in self._results and result.kind == "uncertain":
                    self.on_result(result)  # its progress line, as for any other outcome
        return report

    def _unsettled(self, item: ApplyItem) -> ItemResult:
        if item.address in self._in_flight:
            return ItemResult(item.address, "uncertain", IN_FLIGHT, replaces=item.trigger.replaces)
        if item.idempotency_key is not None:
            message = "not re-sent: the run stopped; the first attempt's outcome is still unknown"
            return ItemResult(item.address, "uncertain", message, replaces=item.trigger.replaces)
        return ItemResult(item.address, "not-sent", replaces=item.trigger.replaces)

    def _unexpected(self, item: ApplyItem, exc: Exception) -> None:
        """Stop the run; an address whose request may have left stays uncertain."""
        problem = f"internal error while recording {item.address}: {type(exc).__name__}: {exc}"
        self.request_stop("disk", problem)
        with self._lock:
            sent = item.address in self._in_flight
        if sent:
            self._record(
                ItemResult(item.address, "uncertain", problem, replaces=item.trigger.replaces)
            )

    def _record(self, result: ItemResult) -> None:
        with self._lock:
            if self._reported:
                return
            self._results[result.address] = result
            self._in_flight.discard(result.address)
        self.on_result(result)

    @staticmethod
    def _pending_for(item: ApplyItem) -> Pending:
        """The pending record of `item`: a fresh Idempotency-Key unless it is a re-send."""
        return Pending(item.trigger, item.idempotency_key or str(uuid.uuid4()))

    def _settle(self, item: ApplyItem) -> None:
        pending = self._pendings[item.address]
        key = pending.idempotency_key
        try:
            self.journal.append(pending)
        except JournalWriteError as exc:
            self.request_stop("disk", str(exc))
            return  # nothing sent: the address is not pending (a re-send's still is)
        with self._lock:
            self._in_flight.add(item.address)
        attempt = self._send(item, key)
        result = self._result_of(item, attempt)
        if attempt.kind == "auth":
            self.request_stop("auth", attempt.message)
        if result.kind == "failed" and item.idempotency_key is not None:
            # A re-send that did not end in a 2xx says nothing about the first attempt, which
            # may have created the trigger: the address stays uncertain until a person settles
            # it with `state import` or `state rm`.
            result = ItemResult(
                item.address,
                "uncertain",
                f"the re-send failed ({result.message}); the first attempt's outcome is still "
                "unknown",
                http_status=result.http_status,
                replaces=item.trigger.replaces,
            )
        outcome: Record
        if result.kind == "created":
            outcome = Created(
                item.address, key, attempt.trigger_id, attempt.created_at, attempt.status
            )
        elif result.kind == "failed":
            outcome = Failed(item.address, key, result.message, result.http_status)
        else:
            outcome = Uncertain(item.address, key, result.message)
        try:
            self.journal.append(outcome)
        except JournalWriteError as exc:
            self.request_stop("disk", str(exc))
            if result.kind == "created":
                result.unrecorded = True
            elif result.kind == "failed":
                # Not recorded as failed: the pending record stands, so it is uncertain.
                result = ItemResult(
                    item.address,
                    "uncertain",
                    f"{result.message} (the outcome could not be recorded)",
                    http_status=result.http_status,
                    replaces=item.trigger.replaces,
                )
        self._record(result)

    def _send(self, item: ApplyItem, key: str) -> Attempt:
        started = time.monotonic()
        retry = 0
        while True:
            self.backoff.wait(self.stop)
            if self.stop.is_set():
                # Stopped before this request left: it was surely not processed.
                return Attempt("failed", None, "not sent: the run was stopped")
            try:
                attempt = self.client.create_trigger(item.trigger.business, item.trigger.body, key)
            except Exception as exc:  # a bug, not the network: the request may have left
                return Attempt("uncertain", None, f"unexpected error: {type(exc).__name__}: {exc}")
            if attempt.kind != "retryable":
                return attempt
            retry += 1
            delay = self.policy.delay(retry, attempt.retry_after, self.rng)
            spent = time.monotonic() - started
            if retry >= self.policy.max_attempts or spent + delay > self.policy.max_total_seconds:
                # Giving up holds nobody back: a Retry-After beyond the budget must not stall
                # every other worker for that long.
                attempt.kind = "failed"
                attempt.message = f"gave up after {retry} attempts ({attempt.message})"
                return attempt
            self.on_retry(
                f"{item.address}: {_describe(attempt)}; retrying in {delay:.1f} s "
                f"(attempt {retry + 1} of {self.policy.max_attempts}, same Idempotency-Key)"
            )
            if attempt.http_status == 429:
                self.backoff.hold(delay)
            else:
                self.stop.wait(delay)

    @staticmethod
    def _result_of(item: ApplyItem, attempt: Attempt) -> ItemResult:
        if attempt.kind == "created":
            return ItemResult(
                item.address,
                "created",
                attempt.message,
                attempt.trigger_id,
                attempt.http_status,
                item.trigger.replaces,
                list(attempt.warnings),
            )
        # 401/403 rejected this request: it was not processed, like any other 4xx.
        kind: ResultKind = "failed" if attempt.kind in ("failed", "auth") else "uncertain"
        return ItemResult(
            item.address,
            kind,
            _describe(attempt),
            http_status=attempt.http_status,
            replaces=item.trigger.replaces,
        )


def _describe(attempt: Attempt) -> str:
    if attempt.http_status is None:
        return attempt.message
    return (
        f"HTTP {attempt.http_status}: {attempt.message}"
        if attempt.message
        else (f"HTTP {attempt.http_status}")
    )
