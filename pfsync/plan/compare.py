"""Compare a plan with the plan of the base branch: what needs a person *because of this change*.

CI on a pull request should fail only when the pull request itself introduces an update, delete
or uncertain address; one already on the base branch would otherwise block every unrelated pull
request until someone resolves it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pfsync.errors import PlanError
from pfsync.plan.planner import (
    EXIT_CHANGES,
    EXIT_NEEDS_PERSON,
    EXIT_NOTHING_TO_DO,
    NEEDS_PERSON,
    Plan,
    PlanEntry,
)
from pfsync.plan.render.json_document import change_document
from pfsync.support.invocation import BARE, Invocation


def _signature(address: str, action: str, trigger_id: Any, diff: Any) -> str:
    return json.dumps([address, action, trigger_id, diff], sort_keys=True)


def load_base_signatures(path: str, invocation: Invocation = BARE) -> set[str]:
    """The needs-a-person entries of a `plan --format json` document of the base branch."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = document["entries"]
        return {
            _signature(e["address"], e["action"], e.get("trigger_id"), e.get("diff", []))
            for e in entries
            if e["action"] in NEEDS_PERSON
        }
    except FileNotFoundError:
        return set()  # the base branch had no pfsync repository (or its plan failed)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        make = invocation.command("plan", options=("--format", "json"))
        raise PlanError(f"cannot read the base plan {path}: {exc}; make it with `{make}`") from None


def base_plan_commit(path: str) -> str | None:
    """The commit a base plan says it was planned from; None when it names none (made before
    plans said so, outside a git repository) or cannot be read (the exit code's check says
    why, with --detailed-exitcode)."""
    try:
        commit = json.loads(Path(path).read_text(encoding="utf-8"))["planned_from"]["commit"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return commit if isinstance(commit, str) else None


def introduced_needs_person(plan: Plan, base: set[str]) -> list[PlanEntry]:
    """The entries needing a person that the base plan did not already have."""
    return [
        entry
        for entry in plan.entries
        if entry.action in NEEDS_PERSON
        and _signature(
            entry.address, entry.action, entry.old_id, [change_document(c) for c in entry.diff]
        )
        not in base
    ]


def exit_code_against_base(
    plan: Plan, base_plan_path: str, invocation: Invocation = BARE
) -> tuple[int, bool]:
    """`plan --detailed-exitcode --base-plan FILE`: the exit code, and whether what needs a
    person was all on the base branch already (then it is not counted against this change).
    `invocation` makes the command an unreadable base plan's error names.
    """
    if introduced_needs_person(plan, load_base_signatures(base_plan_path, invocation)):
        return EXIT_NEEDS_PERSON, False
    code = EXIT_CHANGES if plan.has_changes else EXIT_NOTHING_TO_DO
    return code, plan.needs_person
