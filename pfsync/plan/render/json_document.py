"""The plan as a stable, versioned JSON document (`plan --format json`, and saved plans).

Field by field in docs/plan-and-apply.md ("--format json"). A saved plan (`--out`) is the
same document with `saved_plan: true` and each entry's `digest` and `recorded_digest`, which
apply checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pfsync.models import Declaration
from pfsync.plan.diff import ABSENT, FieldChange
from pfsync.plan.entries import HeldBack
from pfsync.plan.planner import ACTIONS, APPLIED, Plan, PlanEntry, summary_line
from pfsync.plan.render.planned_from import PlannedFrom, planned_from_document
from pfsync.support.invocation import Invocation
from pfsync.support.textsafety import json_text

FORMAT_VERSION = 2


@dataclass(frozen=True)
class PlanReport:
    """A plan and what the renderers say about where it came from."""

    plan: Plan
    lockfile_name: str  # the lockfile path as shown to the user
    journal_unfolded: bool = False  # an interrupted apply's journal was folded in memory
    color: bool = False  # ANSI colour (text only)
    warnings: tuple[str, ...] = ()  # for stderr, e.g. a remote store read from a stale copy
    environment: str | None = None  # the pfsync.yaml environment planned (-e NAME)
    planned_from: PlannedFrom | None = None  # the commit and state planned (plan, not apply)
    # How the run was pointed at its configuration: what a command the output names repeats.
    invocation: Invocation = field(default_factory=Invocation)


def change_document(change: FieldChange) -> dict[str, Any]:
    """One field change as JSON: path, added/removed/changed, before, after."""
    if change.before is ABSENT:
        kind, before, after = "added", None, change.after
    elif change.after is ABSENT:
        kind, before, after = "removed", change.before, None
    else:
        kind, before, after = "changed", change.before, change.after
    return {"path": change.path, "change": kind, "before": before, "after": after}


def _entry(entry: PlanEntry, include_digests: bool) -> dict[str, Any]:
    desired = entry.desired
    shows_body = desired is not None and (entry.action in APPLIED or entry.action == "uncertain")
    document: dict[str, Any] = {
        "address": entry.address,
        "business": entry.business,
        "key": entry.key,
        "action": entry.action,
        "source": entry.source,
        "file": desired.file if desired else None,
        "revision": desired.revision if desired else None,
        "trigger_id": entry.old_id,
        "reason": entry.reason,
        "body": desired.body if desired and shows_body else None,
        "diff": [change_document(change) for change in entry.diff],
        "remedy": entry.remedy,
        "paste": entry.paste,
        "declaration": declaration_document(entry.declaration),
    }
    if include_digests:
        document["digest"] = desired.digest if desired else None
        document["document_digest"] = desired.document_digest if desired else None
        document["recorded_digest"] = entry.recorded_digest
    return document


def declaration_document(declaration: Declaration | None) -> dict[str, Any] | None:
    """Everything a declaration names (what a saved plan binds its approval to)."""
    if declaration is None:
        return None
    return {
        "kind": declaration.kind,
        "address": declaration.address,
        "to": declaration.to and declaration.target,
        "id": declaration.trigger_id,
        "intent": declaration.intent,
        "acknowledges": declaration.acknowledges,
        "environment": declaration.environment,
        "source": declaration.source,
    }


def plan_document(report: PlanReport, include_digests: bool = False) -> dict[str, Any]:
    """The plan as a JSON-ready dict (format_version 2)."""
    plan = report.plan
    lockfile = plan.lockfile
    counts = plan.counts
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "environment": report.environment,
        "api_url": plan.api_url,
        "businesses": plan.businesses,
        "lockfile": {
            "path": report.lockfile_name,
            "exists": lockfile is not None,
            "lineage": lockfile.lineage if lockfile else None,
            "serial": lockfile.serial if lockfile else None,
            "api_url": lockfile.api_url if lockfile else None,
            "journal_unfolded": report.journal_unfolded,
        },
        "planned_from": planned_from_document(report.planned_from, lockfile),
        "targets": list(plan.targets),
        "replace": list(plan.replace),
        "summary": {
            **{action: counts[action] for action in ACTIONS},
            "changes": plan.has_changes,
            "needs_person": plan.needs_person,
            "text": summary_line(counts),
        },
        "entries": [_entry(entry, include_digests) for entry in plan.entries],
    }
    if plan.after is not None:
        document["after"] = {
            "environment": plan.after,
            "held_back": [_listed(held) for held in plan.held_back],
            "not_declared": [_listed(passed) for passed in plan.not_declared],
        }
    if include_digests:
        document["saved_plan"] = True
    return document


def _listed(held: HeldBack) -> dict[str, str]:
    """One create `--after` held back or sent as not declared: address, action, source, reason."""
    entry = held.entry
    return {
        "address": entry.address,
        "action": entry.action,
        "source": entry.source,
        "reason": held.why,
    }


def render_json(report: PlanReport) -> str:
    """`plan --format json`: 2-space indented, keys in a fixed order, trailing newline."""
    return json_text(plan_document(report), indent=2) + "\n"
