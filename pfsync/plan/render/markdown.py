"""The plan as a pull-request comment (`plan --format markdown`).

The summary comes first and is always complete; details are folded in `<details>` blocks, the
changes a person must handle first. GitHub refuses comments over 65,536 characters, so details
are cut (with a note saying how many entries are not shown) to keep the whole under that limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pfsync.plan.diff import ABSENT
from pfsync.plan.entries import HeldBack
from pfsync.plan.planner import (
    CREATE,
    DELETE,
    FORGET,
    IMPORT,
    MOVED,
    NEEDS_PERSON,
    NOOP,
    REPLACE,
    RESEND,
    UNCERTAIN,
    UPDATE,
    PlanEntry,
    summary_line,
)
from pfsync.plan.render.json_document import PlanReport
from pfsync.plan.render.planned_from import (
    PlannedFrom,
    commit_words,
    draft_words,
    stale_words,
    version_words,
)
from pfsync.support.textsafety import escape, json_text

MAX_CHARS = 65_536
_MAX_LISTED_BUSINESSES = 10
_GROUPS = (
    (UPDATE, "~", "to update by hand"),
    (DELETE, "-", "to delete by hand"),
    (UNCERTAIN, "?", "uncertain"),
    (REPLACE, "-/+", "to replace"),
    (RESEND, "++", "to send once more (checked not in Pocketflows)"),
    (MOVED, "→", "to move in the record (nothing sent)"),
    (IMPORT, "<=", "to import into the record (nothing sent)"),
    (FORGET, "x", "to forget in the record (nothing sent)"),
    (CREATE, "+", "to create"),
    (NOOP, "·", "declared, nothing to do"),
)
_OMITTED_RESERVE = 300  # room kept for the closing tags and the "not shown" note


def code(text: str) -> str:
    """`text` as inline code, safe whatever backticks, pipes or control characters it holds."""
    text = escape(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{fence}{padded}{fence}".replace("|", "\\|")


def _fenced_json(value: Any) -> str:
    return fenced(json_text(value, indent=2), "json")


def fenced(text: str, language: str) -> str:
    """`text` as a fenced code block in `language`, its fence longer than any backtick run."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}\n"


def _value(value: Any) -> str:
    return "*(absent)*" if value is ABSENT else code(json_text(value))


def _entry_block(entry: PlanEntry, symbol: str) -> str:
    facts = [f"source {code(entry.source)}"]
    if entry.old_id is not None:
        facts.append(f"trigger {code(entry.old_id)}")
    elif entry.recorded:
        facts.append("trigger id unknown")
    if entry.reason and entry.action in (REPLACE, MOVED):
        facts.append(escape(entry.reason))
    parts = [f"#### {symbol} {code(entry.address)} {entry.action}\n\n{' · '.join(facts)}\n"]
    if entry.action == UPDATE:
        rows = "".join(
            f"| {code(c.path)} | {_value(c.before)} | {_value(c.after)} |\n" for c in entry.diff
        )
        parts.append("| field | before | after |\n|---|---|---|\n" + rows)
    elif entry.action in (CREATE, REPLACE, RESEND) and entry.desired is not None:
        parts.append(_fenced_json(entry.desired.body))
    if entry.remedy:
        label = "Remedy" if entry.action in NEEDS_PERSON else "Note"
        parts.append(f"> **{label}:** {escape(entry.remedy)}\n")
    if entry.paste:
        pasted = "\n".join(escape(line) for line in entry.paste.splitlines())
        parts.append(fenced(pasted, "yaml"))
    return "\n".join(parts) + "\n"


def _planned_from_lines(source: PlannedFrom, report: PlanReport) -> list[str]:
    """What the plan was made from: the commit, the state read (or that it may be stale), how
    new triggers start."""
    lockfile = report.plan.lockfile
    if lockfile is None:
        state = f"{code(source.where)} (no lockfile yet)"
    else:
        read = [f"serial {lockfile.serial}", version_words(source, code)]
        read.append(f"lineage {code(lockfile.lineage)}")
        state = f"{code(source.where)} ({', '.join(word for word in read if word)})"
    lines = [f"**Planned from** {commit_words(source, code)} · state {state}", ""]
    if source.stale:
        lines += ["> [!CAUTION]", f"> {stale_words(source, code)}.", ""]
    return [*lines, escape(draft_words(source)), ""]


def _head(report: PlanReport) -> str:
    plan = report.plan
    businesses = plan.businesses
    shown = ", ".join(code(b) for b in businesses[:_MAX_LISTED_BUSINESSES])
    if len(businesses) > _MAX_LISTED_BUSINESSES:
        shown += f" and {len(businesses) - _MAX_LISTED_BUSINESSES} more"
    label = "Businesses" if len(businesses) > 1 else "Business"
    if plan.lockfile is None:
        lockfile = f"lockfile {code(report.lockfile_name)} does not exist yet"
    else:
        lockfile = f"lockfile {code(report.lockfile_name)} serial {plan.lockfile.serial}"
    environment = f"Environment {code(report.environment)} · " if report.environment else ""
    lines = [
        *(_planned_from_lines(report.planned_from, report) if report.planned_from else ()),
        f"**{summary_line(plan.counts)}**",
        "",
        environment + f"{label} {shown or '(none)'} · API {code(plan.api_url)} · {lockfile}",
        "",
    ]
    if plan.held_back:
        count = len(plan.held_back)
        lines += [
            f"{count} {'create is' if count == 1 else 'creates are'} held back by --after "
            f"{code(plan.after or '')}: not sent, and not counted above (listed below).",
            "",
        ]
    if plan.not_declared:
        count = len(plan.not_declared)
        lines += [
            f"{count} {'create is' if count == 1 else 'creates are'} not declared for "
            f"{code(plan.after or '')} at all: not held back by --after, created directly "
            "(listed below).",
            "",
        ]
    if plan.needs_person:
        lines += [
            "> [!WARNING]",
            "> Some changes need a person: pfsync can only create triggers. "
            "Each one below says what to do.",
            "",
        ]
    return "\n".join(lines) + "\n"


def _held_back(report: PlanReport) -> str:
    """The creates `--after PREV` keeps back, and those it sends as not declared for PREV,
    folded ("" without any)."""
    plan = report.plan
    after = code(plan.after or "")
    parts = (
        (plan.held_back, f"= {len(plan.held_back)} held back by --after {after} (not sent)"),
        (plan.not_declared, f"+ {len(plan.not_declared)} not declared for {after} (sent)"),
    )
    return "".join(
        f"<details><summary>{title}</summary>\n\n{''.join(after_rows(listed))}\n</details>\n\n"
        for listed, title in parts
        if listed
    )


def after_rows(listed: Sequence[HeldBack]) -> list[str]:
    """One Markdown list item per create `--after` held back or sent as not declared."""
    return [
        f"- {code(held.entry.address)} {held.entry.action} · source {code(held.entry.source)}: "
        f"{escape(held.why)}\n"
        for held in listed
    ]


def render_markdown(report: PlanReport) -> str:
    """The plan as a pull-request comment of at most 65,536 characters, summary first."""
    out = [_head(report)]
    size = len(out[0])
    omitted = 0
    # The command that shows the whole plan, as this run was invoked (-C, --config, -e, …).
    after = ("--after", report.plan.after) if report.plan.after else ()
    whole = code(report.invocation.command("plan", options=after))
    reserve = _OMITTED_RESERVE + len(whole)  # room for the closing tags and the note
    for action, symbol, title in _GROUPS:
        entries = report.plan.with_action(action)
        if action == NOOP:
            entries = [entry for entry in entries if entry.declaration is not None]
        if not entries:
            continue
        opening = f"<details><summary>{symbol} {len(entries)} {title}</summary>\n\n"
        closing = "</details>\n\n"
        if omitted or size + len(opening) + len(closing) + reserve > MAX_CHARS:
            omitted += len(entries)
            continue
        out.append(opening)
        size += len(opening) + len(closing)
        for index, entry in enumerate(entries):
            block = _entry_block(entry, symbol)
            if size + len(block) + reserve > MAX_CHARS:
                omitted += len(entries) - index
                break
            out.append(block)
            size += len(block)
        out.append(closing)
    held = _held_back(report)
    if held and not omitted and size + len(held) + reserve <= MAX_CHARS:
        out.append(held)
    elif held:
        omitted += len(report.plan.held_back)  # the creates not declared are listed above
    if omitted:
        out.append(
            f"*{omitted} more {'entry is' if omitted == 1 else 'entries are'} not shown: a "
            f"pull-request comment holds at most 65,536 characters. Run {whole} for the whole "
            "plan.*\n"
        )
    return "".join(out)
