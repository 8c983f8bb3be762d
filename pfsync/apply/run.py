"""One `pfsync apply` run: lock, plan (or a saved plan), confirm, send, record, summarise.

The CLI gives it parsed options and callbacks for output and confirmation; everything a test
would want to call lives here. Exit codes: 1 outranks 3; interrupts are 130/143 (129 for SIGHUP).
"""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pfsync.apply.applier import IN_FLIGHT, INTERRUPT_GRACE_SECONDS, Applier, ApplyItem, ApplyReport
from pfsync.apply.outcome import (
    EXIT_ERROR,
    EXIT_NEEDS_PERSON,
    EXIT_OK,
    describe_carried,
    describe_result,
    exit_code,
    summarise,
    unrecorded_lines,
)
from pfsync.config import Config
from pfsync.errors import ApplyRefused, PfsyncError
from pfsync.models import Declaration, DesiredTrigger
from pfsync.support.signals import handled, stop_signals
from pfsync.support.textsafety import escape

if TYPE_CHECKING:
    from pfsync.apply.applier import CreatesTriggers
    from pfsync.apply.summary import ApplyRecord
    from pfsync.plan.planner import Plan
    from pfsync.state.lockfile import Lockfile
    from pfsync.state.transaction import Transaction

__all__ = ["EXIT_ERROR", "EXIT_NEEDS_PERSON", "EXIT_OK", "ApplyIO", "ApplyOptions", "run_apply"]


@dataclass
class ApplyOptions:
    """What the user asked of this apply."""

    auto_approve: bool = False
    new_lockfile: bool = False
    parallelism: int = 4
    lock_timeout: float = 0.0
    retry_uncertain: bool = False
    targets: Sequence[str] = ()
    replace: Sequence[str] = ()
    plan_file: str | None = None
    after: str | None = None  # `--after PREV`: only creates PREV's record holds
    interrupt_wait: float = INTERRUPT_GRACE_SECONDS  # for the creates in flight after a signal


@dataclass
class ApplyIO:
    """How the run talks to the user."""

    show_plan: Callable[[Plan, str | None], None]  # and a remote store's description
    confirm: Callable[[Sequence[ApplyItem]], bool]  # given the creates about to be sent
    progress: Callable[[str], None]  # one line on stderr
    detail: Callable[[str], None] = lambda line: None  # shown with --verbose
    interactive: bool = False
    received_signal: list[int] = field(default_factory=list)
    record: ApplyRecord | None = None  # filled in for `--summary FILE`


def _items_to_send(plan: Plan, lockfile: Lockfile, retry_uncertain: bool) -> list[ApplyItem]:
    items = [
        ApplyItem(entry.desired)
        for entry in plan.to_apply
        if entry.desired is not None and entry.action != "resend"
    ]
    # A NotCreated: the pending create as it was first sent, with its Idempotency-Key.
    for entry in plan.with_action("resend"):
        resent = lockfile.pending[entry.address]
        items.append(ApplyItem(resent.trigger, resent.idempotency_key))
    if retry_uncertain:
        # The original body and Idempotency-Key: only then can a server that honours the header
        # recognise the first request.
        for entry in plan.with_action("uncertain"):
            pending = lockfile.pending.get(entry.address)
            if pending is None:
                continue
            items.append(ApplyItem(pending.trigger, pending.idempotency_key))
    return sorted(items, key=lambda item: item.address)


def run_apply(
    config: Config,
    manifests: list[DesiredTrigger],
    options: ApplyOptions,
    client_factory: Callable[[], CreatesTriggers],
    io: ApplyIO,
    declarations: Sequence[Declaration] = (),
) -> int:
    """Apply the manifests (or a saved plan) under the state lock; return the exit code.

    The declarations are carried out first, in one write, before anything is sent.
    """
    from pfsync.state.access import open_state
    from pfsync.state.lockfile import Lockfile

    planning = _Planning(config, manifests, options, declarations)
    for warning in planning.after.warnings if planning.after is not None else ():
        io.progress(f"Warning: {warning}")  # PREV's record or manifests, as plan says them
    must_exist = bool(manifests) and not options.new_lockfile
    with open_state(
        config,
        options.lock_timeout,
        operation="apply",
        require_tip=True,
        refuse_missing=planning.refuse_missing if must_exist else None,
        # A remote store is locked (a write, i.e. a commit) only when there is something to send.
        needs_lock=lambda lockfile: bool(planning.planned(lockfile)[1]),
        warn=io.progress,
    ) as transaction:
        lockfile = transaction.lockfile
        if lockfile is None:
            if must_exist:
                raise planning.refuse_missing()
            lockfile = transaction.save(Lockfile.new(config.api_url, config.environment))
        plan, items = planning.planned(lockfile)
        planning.check_saved(plan, transaction.before_lock)
        if io.record is not None:
            io.record.plan = plan  # the plan this run carries out (not a refused saved one)
        code = _carry_out_and_send(planning, transaction, lockfile, plan, items, client_factory, io)
        if io.record is not None and transaction.lockfile is not None:
            io.record.next_plan = planning.planned(transaction.lockfile)[0]
        if transaction.merge_warnings and code == EXIT_OK:
            code = EXIT_NEEDS_PERSON  # a merge kept someone else's record: a person must look
        return code


class _Planning:
    """How this run plans: the saved plan or the options, and `--after`'s filter."""

    def __init__(
        self,
        config: Config,
        manifests: list[DesiredTrigger],
        options: ApplyOptions,
        declarations: Sequence[Declaration],
    ) -> None:
        from pfsync.plan.after import previous_record
        from pfsync.plan.saved import check_saved_after, check_saved_environment, load_saved_plan

        self.config, self.manifests, self.options = config, manifests, options
        self.declarations = declarations
        self.saved = (
            load_saved_plan(options.plan_file, config.invocation)
            if options.plan_file is not None
            else None
        )
        if self.saved is not None:
            # before a lockfile is made for it
            check_saved_environment(self.saved, config.environment, config.invocation)
            check_saved_after(self.saved, options.after)
        # PREV's record is read once, before the lock: read-only, it holds nothing of ours.
        self.after = (
            previous_record(config, options.after) if self.saved is None and options.after else None
        )

    def refuse_missing(self) -> ApplyRefused:
        """The refusal to apply without the lockfile (it would create every trigger again)."""
        from pfsync.state.stores import lost_lockfile

        where, restore = lost_lockfile(self.config)
        return ApplyRefused(
            f"there is no lockfile at {where}: it is the only record of which triggers exist, "
            "and applying without it would create every trigger again. "
            f"If it was lost, {restore}. "
            "If this is the first apply of this repository, run again with --new-lockfile"
        )

    def planned(self, lockfile: Lockfile | None) -> tuple[Plan, list[ApplyItem]]:
        """The plan against `lockfile` (held back as --after says) and the creates it sends."""
        from pfsync.plan.after import hold_back, hold_back_saved
        from pfsync.plan.planner import create_plan
        from pfsync.state.lockfile import Lockfile

        config, saved = self.config, self.saved
        plan = create_plan(
            self.manifests,
            lockfile,
            config.api_url,
            saved.targets if saved is not None else self.options.targets,
            saved.replace if saved is not None else self.options.replace,
            self.declarations,
            config.business,
            config.environment,
            config.invocation,
        )
        if saved is not None and saved.after is not None:
            plan = hold_back_saved(plan, saved.after, saved.held_back, saved.not_declared)
        elif self.after is not None:
            plan = hold_back(plan, self.after)
        recorded = lockfile or Lockfile.new(config.api_url, config.environment)
        return plan, _items_to_send(plan, recorded, self.options.retry_uncertain)

    def check_saved(self, plan: Plan, before_lock: Lockfile | None) -> None:
        """A saved plan must still say what apply would do (PlanError naming the next step)."""
        from pfsync.plan.saved import check_saved_plan

        if self.saved is not None:
            # Against the state the plan was made from: taking a remote store's lock is a
            # write of its own, which must not make every saved plan stale.
            config = self.config
            check_saved_plan(self.saved, plan, before_lock, config.environment, config.invocation)


def _carry_out_and_send(
    planning: _Planning,
    transaction: Transaction,
    lockfile: Lockfile,
    plan: Plan,
    items: list[ApplyItem],
    client_factory: Callable[[], CreatesTriggers],
    io: ApplyIO,
) -> int:
    """Show the plan, confirm, carry out the declarations (one write), send the creates."""
    from pfsync.plan.planner import resending_uncertain
    from pfsync.state.declared import carry_out
    from pfsync.state.lockfile import utc_now

    options, environment = planning.options, planning.config.environment
    io.show_plan(resending_uncertain(plan) if options.retry_uncertain else plan, transaction.where)
    if not items and not plan.carried:
        io.progress(summarise(ApplyReport([]), plan, environment))
        return exit_code(ApplyReport([]), plan, io.received_signal)
    if options.plan_file is None and not options.auto_approve and not io.confirm(items):
        io.progress("Apply cancelled; nothing was sent.")
        return EXIT_ERROR
    if plan.carried:
        # One write, before any create: a create planned against the record as it will be
        # must never be sent while the record still says otherwise.
        declared = {manifest.address: manifest for manifest in planning.manifests}
        carried = carry_out(lockfile, plan.carried, utc_now(), declared).lockfile
        assert carried is not None  # carried out on a lockfile
        transaction.save(carried)
        for line in describe_carried(plan):
            io.progress(line)
    if not items:
        io.progress(summarise(ApplyReport([]), plan, environment))
        return exit_code(ApplyReport([]), plan, io.received_signal)
    return _send(planning, transaction, plan, items, client_factory(), io)


def _send(
    planning: _Planning,
    transaction: Transaction,
    plan: Plan,
    items: list[ApplyItem],
    client: CreatesTriggers,
    io: ApplyIO,
) -> int:
    """Send the creates, record every outcome, fold the journal; the exit code."""
    config, options = planning.config, planning.options
    resent = {entry.address for entry in plan.with_action("resend")}
    journal = transaction.start_journal()
    applier = Applier(
        client,
        journal,
        parallelism=options.parallelism,
        on_result=lambda result: io.progress(
            describe_result(result, result.address in resent, config.invocation)
        ),
        on_retry=io.detail,
    )
    grace = options.interrupt_wait
    with _signals_stop(applier, io.received_signal, io.progress, grace) as notices:
        applier.run(items, grace=grace)
        notices.settle()  # what a signal said comes before the outcomes it waited for
        report = applier.report(items)
        if io.record is not None:
            io.record.report = report
        try:
            transaction.finish_journal()
        except Exception as exc:
            for result in report.results:
                if result.kind == "created" and result.address in journal.unwritten_created():
                    result.unrecorded = True
            expected = isinstance(exc, PfsyncError)
            if expected:
                io.progress(f"Error: {escape(str(exc))}")
            for line in unrecorded_lines(report, config.invocation):
                io.progress(line)
            io.progress(summarise(report, plan, config.environment))
            if not expected:
                raise  # a bug: its traceback, once what the run created is in the log
            return EXIT_ERROR
    stop_lines = _stop_lines(report, applier, config)
    for line in stop_lines:
        io.progress(line)
    if io.record is not None and stop_lines:
        io.record.stopped = "\n".join(stop_lines)
    io.progress(summarise(report, plan, config.environment))
    return exit_code(report, plan, io.received_signal)


def _stop_lines(report: ApplyReport, applier: Applier, config: Config) -> list[str]:
    """What is said when the run stopped early: credentials refused, disk, an interrupt."""
    if report.stop_reason == "auth":
        return [
            f"Error: the API refused the credentials ({escape(report.stop_message)}); check "
            "PFSYNC_USERNAME and PFSYNC_PASSWORD. The run stopped; nothing more was sent."
        ]
    if report.stop_reason == "disk":
        return [
            f"Error: {escape(report.stop_message)}",
            *unrecorded_lines(report, config.invocation),
        ]
    if report.stop_reason != "interrupt":
        return []
    lines = []
    if applier.abandoned:
        lines.append("Second interrupt: stopped waiting for the requests in flight.")
    in_flight = [r for r in report.of_kind("uncertain") if r.message == IN_FLIGHT]
    lines.append(
        f"Interrupted: nothing new was started; {len(in_flight)} create(s) still in "
        "flight are uncertain."
        if in_flight
        else "Interrupted: nothing new was started; every outcome is recorded."
    )
    return lines


def interrupt_notice(
    signum: int, in_flight: int, waiting: bool, grace: float = INTERRUPT_GRACE_SECONDS
) -> str:
    """What a first stop signal does, said at once (before any wait of at most `grace` s)."""
    if not (waiting and in_flight):
        return "Interrupted: sending no new creates; recording the outcomes."
    outcomes = "its outcome" if in_flight == 1 else "their outcomes"
    line = (
        f"Interrupted: sending no new creates; waiting up to {grace:g} s for "
        f"the {in_flight} in flight, to record {outcomes}."
    )
    if signum == signal.SIGINT:
        line += (
            " Ctrl-C again stops waiting: those still in flight then stay uncertain, to be "
            "settled by hand."
        )
    return line


class _Notices:
    """Prints what a first stop signal does, from a thread of its own.

    A signal handler must not write: it runs between two steps of the main thread, which may be
    in the middle of writing to the same stream. `SimpleQueue.put` is safe there.
    """

    def __init__(self, applier: Applier, say: Callable[[str], None], grace: float) -> None:
        self._applier = applier
        self._say = say
        self._grace = grace
        self._queue: queue.SimpleQueue[int | threading.Event | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pfsync-interrupt", daemon=True)
        self._thread.start()

    def signalled(self, signum: int) -> None:
        """Have the notice for `signum` printed (callable from a signal handler)."""
        self._queue.put(signum)

    def settle(self) -> None:
        """Return once every notice asked for so far is printed."""
        printed = threading.Event()
        self._queue.put(printed)
        printed.wait()

    def close(self) -> None:
        """Print what is asked for, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
                continue
            applier = self._applier
            # A notice that cannot be written (stderr closed) must not end this thread: `settle`
            # would wait for it forever, and the outcomes would go unrecorded.
            with contextlib.suppress(Exception):
                notice = interrupt_notice(item, applier.in_flight, applier.waiting, self._grace)
                self._say(notice)


@contextlib.contextmanager
def _signals_stop(
    applier: Applier,
    received: list[int],
    say: Callable[[str], None],
    grace: float = INTERRUPT_GRACE_SECONDS,
) -> Iterator[_Notices]:
    """SIGINT/SIGTERM: say at once what happens, start nothing new, let in-flight requests
    finish, record everything.

    The handlers stay until the journal is folded, so a second Ctrl-C cannot cut the fold short.
    """
    notices = _Notices(applier, say, grace)

    def handler(signum: int) -> None:
        if signum == signal.SIGINT and signal.SIGINT in received:
            applier.abandon_in_flight()  # a second Ctrl-C: the in-flight ones stay uncertain
        if not received:
            notices.signalled(signum)
        received.append(signum)
        applier.request_stop("interrupt")

    try:
        with handled(stop_signals(), handler):
            yield notices
    finally:
        notices.close()
