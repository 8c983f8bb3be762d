"""`apply --summary FILE`: the outcome of a run as Markdown, appended to FILE (in GitHub Actions,
"$GITHUB_STEP_SUMMARY": the run's page, where the change was reviewed).

    ApplyRecord            what the run did, gathered as it goes (the plan, the report, the plan
                           of the record as the run left it, what stopped it)
    render_summary(...)    the Markdown: environment and API, created (address → id), failed,
                           what needs a person with the declaration to paste and the remedy
                           (the plan's own), held back by --after, what stopped the run
    append_summary(path, text)

Text from outside (server messages, ids, addresses, paths) is escaped as the plan's Markdown
escapes it: control characters shown, inline code fenced so it cannot close early.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pfsync.apply.outcome import describe_carried, describe_result, summarise
from pfsync.errors import PfsyncError, SignalStop
from pfsync.plan.planner import NEEDS_PERSON
from pfsync.plan.render.markdown import after_rows, code, fenced
from pfsync.support.textsafety import escape

if TYPE_CHECKING:
    from pfsync.apply.applier import ApplyReport
    from pfsync.config import Config
    from pfsync.plan.planner import Plan, PlanEntry

_SYMBOLS = {"update": "~", "delete": "-", "uncertain": "?"}


@dataclass
class ApplyRecord:
    """What one apply run did, filled in as it goes; `render_summary` tells it."""

    plan: Plan | None = None  # what it planned (with --after: what it held back)
    report: ApplyReport | None = None  # what was sent and how each create ended
    next_plan: Plan | None = None  # the plan of the record as the run left it
    stopped: str | None = None  # the error or signal that stopped the run

    @property
    def has_news(self) -> bool:
        """Whether there is anything to say (a plan made, or the reason it was not)."""
        return self.plan is not None or self.stopped is not None


def stopped_by(exc: BaseException) -> str:
    """How the summary names what stopped a run (an error's own words; never a traceback)."""
    if isinstance(exc, PfsyncError):
        return f"Error: {escape(str(exc))}"
    if isinstance(exc, (KeyboardInterrupt, SignalStop)):
        return "Interrupted by a signal before anything more was sent."
    return f"Stopped by an unexpected error ({type(exc).__name__}); see the log."


def render_summary(config: Config, record: ApplyRecord) -> str:
    """The Markdown report of one run (ends with a blank line, so reports can follow)."""
    title = f"Apply to environment {code(config.environment)}" if config.environment else "Apply"
    lines = [f"### {title}", "", f"API {code(config.api_url)}", ""]
    plan, report = record.plan, record.report
    if plan is not None:
        closing = summarise(report or _nothing_sent(), plan, config.environment)
        lines += [f"**{escape(closing)}**", ""]
        carried = describe_carried(plan)
        if carried:
            lines += ["#### Record changes (nothing sent)", ""]
            lines += [f"- {escape(line)}" for line in carried] + [""]
    if report is not None:
        lines += _created(report) + _failed(report)
    lines += _needs_person(record, config)
    if plan is not None and plan.held_back:
        lines += [f"#### Held back by --after {code(plan.after or '')} (not sent)", ""]
        lines += [row.rstrip("\n") for row in after_rows(plan.held_back)] + [""]
    if plan is not None and plan.not_declared:
        lines += [f"#### Not declared for {code(plan.after or '')} (sent directly)", ""]
        lines += [row.rstrip("\n") for row in after_rows(plan.not_declared)] + [""]
    if record.stopped is not None:
        lines += ["#### Stopped", ""]
        for line in record.stopped.splitlines():
            lines += [line, ""]
    return "\n".join(lines) + "\n"


def append_summary(path: str, text: str) -> None:
    """Append `text` to the file at `path` (created if missing); PfsyncError if it cannot be."""
    try:
        with Path(path).open("a", encoding="utf-8") as summary:
            summary.write(text)
    except OSError as exc:
        raise PfsyncError(f"cannot write the summary to {escape(path)}: {exc.strerror}") from None


def _nothing_sent() -> ApplyReport:
    from pfsync.apply.applier import ApplyReport

    return ApplyReport([])


def _created(report: ApplyReport) -> list[str]:
    created = report.of_kind("created")
    if not created:
        return []
    rows = [
        f"| {code(r.address)} | {code(r.trigger_id) if r.trigger_id else '*id unknown*'} |"
        for r in created
    ]
    return ["#### Created", "", "| address | trigger id |", "|---|---|", *rows, ""]


def _failed(report: ApplyReport) -> list[str]:
    failed = report.of_kind("failed")
    if not failed:
        return []
    return ["#### Failed", "", *(f"- {code(r.address)}: {code(r.message)}" for r in failed), ""]


def _needs_person(record: ApplyRecord, config: Config) -> list[str]:
    """What a person must settle: the next plan's entries, each with its declaration to paste
    and its remedy (the state command second); without one, the run's uncertain lines."""
    if record.next_plan is not None:
        entries = [e for e in record.next_plan.entries if e.action in NEEDS_PERSON]
        if not entries:
            return []
        lines = ["#### Needs a person", ""]
        for entry in entries:
            lines += _person_entry(entry)
        return lines
    uncertain = record.report.of_kind("uncertain") if record.report is not None else []
    if not uncertain:
        return []
    return [
        "#### Needs a person",
        "",
        *(f"- {escape(describe_result(r, invocation=config.invocation))}" for r in uncertain),
        "",
    ]


def _person_entry(entry: PlanEntry) -> list[str]:
    symbol = _SYMBOLS.get(entry.action, "")
    lines = [f"##### {symbol} {code(entry.address)} {entry.action}", ""]
    facts = [f"source {code(entry.source)}"]
    if entry.old_id is not None:
        facts.append(f"trigger {code(entry.old_id)}")
    lines += [" · ".join(facts), ""]
    if entry.remedy:
        lines += [f"> {escape(entry.remedy)}", ""]
    if entry.paste:
        pasted = "\n".join(escape(line) for line in entry.paste.splitlines())
        lines += [fenced(pasted, "yaml")]
    return lines
