"""Plan → text for a terminal; the name → renderer table that feeds `plan --format` (pure).

    RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}

Each renderer takes a PlanReport and returns the whole output as a string.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

import click

from pfsync.plan.diff import ABSENT
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
    Plan,
    PlanEntry,
    summary_line,
)
from pfsync.plan.render.json_document import PlanReport, render_json
from pfsync.plan.render.markdown import render_markdown
from pfsync.plan.render.planned_from import commit_words, draft_words, stale_words, version_words
from pfsync.support.diagnostics import json_path, json_path_step
from pfsync.support.textsafety import escape, json_safe, json_text, json_text_unchecked, shown_id

SYMBOLS = {
    CREATE: "+",
    UPDATE: "~",
    REPLACE: "-/+",
    RESEND: "++",
    MOVED: ">",
    FORGET: "x",
    IMPORT: "<=",
    DELETE: "-",
    UNCERTAIN: "?",
    NOOP: " ",
}
_COLOURS = {
    CREATE: "green",
    UPDATE: "yellow",
    REPLACE: "magenta",
    RESEND: "green",
    MOVED: "cyan",
    FORGET: "cyan",
    IMPORT: "cyan",
    DELETE: "red",
    UNCERTAIN: "red",
}
_INDENT = "      "


def value_text(value: Any) -> str:
    """A field value as JSON on one line; `(absent)` for a field that is not there."""
    if value is ABSENT:
        return "(absent)"
    return json_text(value)


def leaf_lines(value: Any, path: tuple[str | int, ...], indent: str = _INDENT) -> str:
    """`PATH: VALUE` for every scalar (and empty container) in `value`, VALUE as JSON; one line
    each, joined."""
    shown = indent + json_path(path)
    lines: list[str] = []
    if isinstance(value, (dict, list)) and value:
        _add_leaf_lines(value, shown, lines)
    else:
        lines.append(f"{shown}: {json_text_unchecked(value)}")
    # Made safe once for the whole: paths need no escape (odd keys are shown by repr).
    return json_safe("\n".join(lines))


def _add_leaf_lines(container: dict[str, Any] | list[Any], shown: str, lines: list[str]) -> None:
    # A plan of 10,000 creates has a quarter of a million leaves: appending (not yielding),
    # handling a container's leaves in its own loop and encoding strings there (not a call
    # each) make this half of what it was. A path is built once per container.
    is_dict = isinstance(container, dict)
    for key, item in container.items() if is_dict else enumerate(container):  # type: ignore[union-attr]
        path = shown + json_path_step(key) if is_dict else f"{shown}[{key}]"
        if type(item) is str:
            lines.append(f"{path}: {encode_basestring(item)}")
        elif isinstance(item, (dict, list)) and item:
            _add_leaf_lines(item, path, lines)
        else:  # (a body holds no ABSENT)
            lines.append(f"{path}: {json_text_unchecked(item)}")


def header_lines(report: PlanReport) -> list[str]:
    """Environment, business(es), API URL, lockfile (or its absence) and the version read, the
    commit planned, a stale lockfile's warning, journal, targets."""
    plan = report.plan
    source = report.planned_from
    businesses = plan.businesses
    label = "Businesses" if len(businesses) > 1 else "Business"
    lines = [
        f"{label}: {', '.join(businesses) if businesses else '(none declared or recorded)'}",
        f"API: {escape(plan.api_url)}",
    ]
    if report.environment is not None:
        lines.insert(0, f"Environment: {report.environment}")
    if plan.lockfile is None:
        lines.append(
            f"Lockfile: {escape(report.lockfile_name)} does not exist yet: every declared "
            "trigger is a create."
        )
    else:
        version = version_words(source, escape) if source is not None else ""
        read = f"serial {plan.lockfile.serial}" + (f", {version}" if version else "")
        lines.append(f"Lockfile: {escape(report.lockfile_name)} ({read})")
    if source is not None:
        lines.append(f"Planned from: {commit_words(source, escape)}. {draft_words(source)}")
        if source.stale:
            lines.append(f"Warning: {stale_words(source, escape)}.")
    if report.journal_unfolded:
        lines.append(
            "Journal: an interrupted apply left a journal; its records are included here and the "
            "next state-changing command folds it into the lockfile."
        )
    if plan.targets:
        lines.append(f"Targets: {', '.join(plan.targets)}")
    return lines


def _entry_lines(entry: PlanEntry, color: bool) -> list[str]:
    def style(text: str, **kwargs: Any) -> str:
        return click.style(text, **kwargs) if color else text

    colour = _COLOURS.get(entry.action)
    title = f"{SYMBOLS[entry.action]} {entry.address}  {entry.action}  {escape(entry.source)}"
    details = []
    if entry.old_id is not None:
        details.append(f"trigger {shown_id(entry.old_id)}")
    elif entry.recorded:
        details.append("trigger id unknown")
    if entry.reason and entry.action in (REPLACE, MOVED):
        details.append(escape(entry.reason))
    if details:
        title += f"  ({'; '.join(details)})"
    lines = [style(title, fg=colour, bold=True)]
    if entry.action == UPDATE:
        lines += [
            f"{_INDENT}{c.path}: {value_text(c.before)} → {value_text(c.after)}" for c in entry.diff
        ]
    elif entry.action in (CREATE, REPLACE, RESEND) and entry.desired is not None:
        lines.append(leaf_lines(entry.desired.body, ("spec",)))
    if entry.remedy:
        label = "remedy" if entry.action in NEEDS_PERSON else "note"
        lines.append(style(f"    {label}: {escape(entry.remedy)}", fg="yellow" if colour else None))
    if entry.paste:
        # Flush left, as it goes into a manifest file: an indented `---` is no document start,
        # so the lines copied as the terminal shows them must need no editing.
        lines.append("    paste:")
        lines += [escape(line) for line in entry.paste.splitlines()]
    return lines


def held_back_lines(plan: Plan) -> list[str]:
    """What `--after PREV` keeps back, and what it sends because PREV does not declare it: one
    line each, each part closed by a blank line (none without --after)."""
    parts = (
        (plan.held_back, f"Held back by --after {plan.after} (not sent; not counted as changes):"),
        (
            plan.not_declared,
            f"Not held back by --after {plan.after} ({plan.after}'s manifests do not declare "
            f"{'it' if len(plan.not_declared) == 1 else 'them'}):",
        ),
    )
    lines: list[str] = []
    for listed, title in parts:
        if listed:
            lines.append(title)
            lines += [
                f"  {held.entry.address}  {held.entry.action}  {escape(held.entry.source)}: "
                f"{held.why}"
                for held in listed
            ]
            lines.append("")
    return lines


def render_text(report: PlanReport) -> str:
    """The plan for a terminal: header, one entry per change, the summary line."""
    lines = header_lines(report)
    lines.append("")
    for entry in report.plan.entries:
        if entry.action == NOOP and entry.declaration is None:
            continue
        lines += _entry_lines(entry, report.color)
        lines.append("")
    lines += held_back_lines(report.plan)
    summary = summary_line(report.plan.counts)
    lines.append(click.style(summary, bold=True) if report.color else summary)
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[PlanReport], str]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}
