"""What an apply run says about its outcome: one progress line per address, the closing line,
the exit code. Pure: every command a line names is built by the run's `Invocation` (its -C,
--config, -e and --sandbox), so it works as pasted.

Exit codes: 1 outranks 3; interrupts are 130/143 (129 for SIGHUP).
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pfsync.apply.applier import ApplyReport, ItemResult
from pfsync.support.invocation import BARE, Invocation
from pfsync.support.textsafety import escape, shown_id

if TYPE_CHECKING:
    from pfsync.plan.planner import Plan

EXIT_OK, EXIT_ERROR, EXIT_NEEDS_PERSON = 0, 1, 3
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
if hasattr(signal, "SIGHUP"):  # not on Windows
    EXIT_SIGNAL[signal.SIGHUP] = 129


def describe_result(result: ItemResult, resent: bool = False, invocation: Invocation = BARE) -> str:
    """The progress line for one address (`resent`: sent once more for a NotCreated)."""
    address = result.address
    if result.kind == "created":
        line = f"{address}: created " + shown_id(result.trigger_id, "(id unknown)")
        if result.trigger_id is None:
            command = invocation.command("state import", address, "ID", options=["--force"])
            line += (
                f" — {escape(result.message)}; find it {invocation.where_to_look}, then run "
                f"`{command}`"
            )
        if result.replaces:
            line += (
                f" (replaces {shown_id(result.replaces)}, which stays active in Pocketflows "
                "until a person deactivates it)"
            )
        for warning in result.warnings:
            line += f"; warning: {escape(warning)}"
        return line
    if result.kind == "failed":
        return f"{address}: failed: {escape(result.message)}"
    if result.kind == "uncertain":
        imported = invocation.command("state import", address, "ID")
        forget = invocation.command("state rm", address)
        plan = invocation.command("plan")
        look = f"look for it {invocation.where_to_look}"
        if resent:
            return (
                f"{address}: uncertain: {escape(result.message)} — it was sent once more for "
                f"a NotCreated, so another NotCreated does nothing: {look}, then declare an "
                f"Import (found) as `{plan}` prints it, or run `{imported}`, or `{forget}` "
                "(not found)"
            )
        return (
            f"{address}: uncertain: {escape(result.message)} — {look}, then declare an Import "
            f"(found) or a NotCreated (not found), as `{plan}` prints them, or run "
            f"`{imported}` or `{forget}`"
        )
    return f"{address}: not sent"


def unrecorded_lines(report: ApplyReport, invocation: Invocation = BARE) -> list[str]:
    """A line for each create that succeeded but could not be recorded, with its import."""
    lines = []
    for result in report.results:
        if result.kind != "created" or not result.unrecorded:
            continue
        shown = shown_id(result.trigger_id, "(id unknown)")
        command = invocation.command("state import", result.address, shown_id(result.trigger_id))
        lines.append(
            f"NOT RECORDED: {result.address} was created as {shown}; once the disk or state "
            f"store is fixed run `{command}`"
        )
    return lines


def summarise(report: ApplyReport, plan: Plan, environment: str | None = None) -> str:
    """The closing line: what was done and what needs a person (in which environment)."""
    created = len(report.of_kind("created"))
    failed = len(report.of_kind("failed"))
    uncertain_now = len(report.of_kind("uncertain"))
    not_sent = len(report.of_kind("not-sent"))
    counts = plan.counts
    retried = {r.address for r in report.results}
    uncertain = uncertain_now + len(
        [e for e in plan.with_action("uncertain") if e.address not in retried]
    )
    label = f"Apply ({environment})" if environment else "Apply"
    line = f"{label}: {created} created, {failed} failed, {uncertain_now} uncertain"
    if counts.get("moved"):
        line += f", {counts['moved']} moved"
    if counts.get("import"):
        line += f", {counts['import']} imported"
    if counts.get("forget"):
        line += f", {counts['forget']} forgotten"
    if not_sent:
        line += f", {not_sent} not sent"
    line += (
        f". Needs a person: {counts['update']} update, {counts['delete']} delete, "
        f"{uncertain} uncertain."
    )
    if plan.held_back:
        line += f" Held back by --after {plan.after}: {len(plan.held_back)} (not sent)."
    if plan.not_declared:
        line += f" Not declared for {plan.after}: {len(plan.not_declared)} (created directly)."
    return line


def exit_code(report: ApplyReport, plan: Plan, received_signal: Sequence[int]) -> int:
    """Apply's exit code: a signal's, else 1 for any failure, else 3 if a person is needed."""
    if received_signal:
        return EXIT_SIGNAL.get(signal.Signals(received_signal[0]), 130)
    if report.stop_reason in ("auth", "disk") or report.of_kind("failed"):
        return EXIT_ERROR
    if report.of_kind("not-sent"):
        return EXIT_ERROR
    retried = {r.address for r in report.results}
    still_uncertain = [e for e in plan.with_action("uncertain") if e.address not in retried]
    if (
        report.of_kind("uncertain")
        or still_uncertain
        or plan.with_action("update")
        or plan.with_action("delete")
    ):
        return EXIT_NEEDS_PERSON
    return EXIT_OK


def describe_carried(plan: Plan) -> list[str]:
    """One progress line per declaration carried out."""
    lines = []
    for entry in plan.entries:
        declaration = entry.declaration
        if entry.action not in ("moved", "forget", "import") or declaration is None:
            continue
        if entry.action == "moved":
            what = shown_id(entry.old_id, "id unknown") if entry.recorded else "an uncertain create"
            lines.append(
                f"{entry.address}: moved from {declaration.address} ({what}, "
                f"{escape(entry.source)}); nothing was sent"
            )
        elif entry.action == "import":
            lines.append(
                f"{entry.address}: imported trigger {shown_id(declaration.trigger_id)} "
                f"({escape(entry.source)}); nothing was sent"
            )
        else:
            lines.append(
                f"{entry.address}: forgot trigger {shown_id(entry.old_id)} (kept in its history, "
                f"{escape(entry.source)}); nothing was sent"
            )
    return lines
