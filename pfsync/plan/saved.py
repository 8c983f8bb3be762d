"""Saved plans (`pfsync plan --out FILE`, `pfsync apply FILE`).

save_plan(path, report)                 the JSON plan document plus digests, written atomically
load_saved_plan(path) -> SavedPlan      PlanError when unreadable, malformed or tampered with
check_saved_plan(saved, lockfile, manifests, api_url)
                                        PlanError when stale: another API, the lockfile's
                                        lineage or serial changed, or a planned body or
                                        revision no longer matches its manifest
SavedPlan.to_apply                      SavedEntry values: the action (create | replace) and
                                        the DesiredTrigger it sends
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pfsync.errors import PlanError
from pfsync.models import DesiredTrigger
from pfsync.plan.planner import APPLIED, RECORDED, Plan
from pfsync.plan.render.json_document import (
    FORMAT_VERSION,
    PlanReport,
    declaration_document,
    plan_document,
)
from pfsync.state.lockfile import Lockfile
from pfsync.support.atomic import atomic_write_text
from pfsync.support.canonical import body_digest
from pfsync.support.invocation import Invocation
from pfsync.support.paths import shown_path
from pfsync.support.textsafety import escape, json_text


@dataclass(frozen=True)
class SavedEntry:
    """A create or replace in a saved plan: everything apply needs to send it."""

    action: str  # create | replace
    desired: DesiredTrigger  # a replace's `desired.replaces` is the id it retires

    @property
    def address(self) -> str:
        """The address it creates."""
        return self.desired.address


@dataclass(frozen=True)
class SavedPlan:
    """A plan read back from disk."""

    path: str
    api_url: str
    environment: str | None  # the environment it was planned for (None: none)
    lineage: str | None  # None: planned before the lockfile existed
    serial: int | None
    targets: tuple[str, ...]
    replace: tuple[str, ...]
    to_apply: tuple[SavedEntry, ...]
    # the declarations it carries out: (action, address, source, all they name), in order
    carried: tuple[tuple[str, str, str, str], ...]
    needs_person: bool
    document: dict[str, Any]
    # made with `--after PREV`: PREV, and each held-back address with why (what it showed)
    after: str | None = None
    held_back: dict[str, str] = field(default_factory=dict)
    not_declared: dict[str, str] = field(default_factory=dict)  # sent: PREV does not declare it


def save_plan(path: Path, report: PlanReport) -> None:
    """Write the plan with its digests atomically (PlanError if the file cannot be written)."""
    text = json_text(plan_document(report, include_digests=True), indent=2)
    try:
        atomic_write_text(path, text + "\n")
    except OSError as exc:
        raise PlanError(f"cannot write the plan to {shown_path(path)}: {exc.strerror}") from None


class _Unusable(PlanError):
    """A saved plan that cannot be read back (`load_saved_plan` adds what to do)."""


def _malformed(shown: str, problem: str) -> _Unusable:
    return _Unusable(f"{shown} is not a usable saved plan: {problem}")


def _entry(raw: Any, shown: str) -> SavedEntry:
    try:
        address, action, body, revision = (
            raw["address"],
            raw["action"],
            raw["body"],
            raw["revision"],
        )
        replaces = raw["trigger_id"] if action == "replace" else None
        desired = DesiredTrigger.at_address(
            address,
            body,
            raw["digest"],
            revision,
            raw["file"],
            replaces,
            raw.get("document_digest"),
        )
    except (KeyError, TypeError) as exc:
        raise _malformed(shown, f"an entry lacks {exc}") from None
    if not isinstance(body, dict) or not isinstance(revision, int):
        raise _malformed(shown, f"the entry for {address} has no body or revision")
    if body_digest(body) != desired.digest:
        raise _malformed(shown, f"the body of {address} does not match its digest")
    return SavedEntry(action, desired)


def _named(declaration: Any) -> str:
    """What a declaration names (its ids and keys too, not only where it is), comparable."""
    return json.dumps(declaration, sort_keys=True)


def load_saved_plan(path: Path | str, invocation: Invocation | None = None) -> SavedPlan:
    """Read and check a saved plan's structure (not yet its staleness); PlanError saying how to
    save a new one (the command built from `invocation`) when it cannot be used."""
    try:
        return _load_saved_plan(path)
    except _Unusable as exc:
        command = (invocation or Invocation()).command("plan", options=["--out", "FILE"])
        raise PlanError(f"{exc}. Save a new one with `{command}`") from None


def _load_saved_plan(path: Path | str) -> SavedPlan:
    path = Path(path)
    shown = shown_path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"cannot read the saved plan {shown}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _malformed(shown, f"not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("saved_plan") is not True:
        raise _malformed(shown, "it is not a plan saved by plan --out")
    if document.get("format_version") != FORMAT_VERSION:
        raise _malformed(
            shown,
            f"format version {document.get('format_version')!r}; this pfsync reads "
            f"{FORMAT_VERSION}",
        )
    try:
        lockfile = document["lockfile"]
        entries = [_entry(raw, shown) for raw in document["entries"] if raw["action"] in APPLIED]
        return SavedPlan(
            path=shown,
            api_url=document["api_url"],
            environment=_environment_of(document, shown),
            lineage=lockfile["lineage"],
            serial=lockfile["serial"],
            targets=tuple(document["targets"]),
            replace=tuple(document["replace"]),
            to_apply=tuple(entries),
            carried=tuple(
                (raw["action"], raw["address"], raw["source"], _named(raw["declaration"]))
                for raw in document["entries"]
                if raw["action"] in RECORDED
            ),
            needs_person=bool(document["summary"]["needs_person"]),
            document=document,
            **_after_of(document, shown),
        )
    except (KeyError, TypeError) as exc:
        raise _malformed(shown, f"missing {exc}") from None


def _after_of(document: dict[str, Any], shown: str) -> dict[str, Any]:
    """The `--after` filter a saved plan was made with (none: {})."""
    after = document.get("after")
    if after is None:
        return {}
    try:
        name = after["environment"]
        held = {item["address"]: item["reason"] for item in after["held_back"]}
        # a plan saved before pfsync listed the creates PREV does not declare has none
        direct = {item["address"]: item["reason"] for item in after.get("not_declared", [])}
    except (KeyError, TypeError, AttributeError) as exc:
        raise _malformed(shown, f"its --after part lacks {exc}") from None
    reasons = [*held.values(), *direct.values()]
    if not isinstance(name, str) or not all(isinstance(v, str) for v in reasons):
        raise _malformed(shown, "its --after part is not an environment and its addresses")
    return {"after": name, "held_back": held, "not_declared": direct}


def _environment_of(document: dict[str, Any], shown: str) -> str | None:
    environment = document.get("environment")
    if environment is not None and not isinstance(environment, str):
        raise _malformed(shown, "its environment is not a name")
    return environment


def _same_state(saved: SavedPlan, lockfile: Lockfile | None) -> bool:
    if lockfile is None:
        return saved.lineage is None
    if saved.lineage is None:
        # Planned before any lockfile existed; apply --new-lockfile has just made an empty one.
        return not lockfile.triggers and not lockfile.pending and not lockfile.forgotten
    return (saved.lineage, saved.serial) == (lockfile.lineage, lockfile.serial)


def new_plan_step(saved: SavedPlan, invocation: Invocation) -> str:
    """What to do about a stale saved plan: the command that makes it again, as pasted."""
    options: list[str] = ["--after", saved.after] if saved.after else []
    for address in saved.targets:
        options += ["--target", address]
    for address in saved.replace:
        options += ["--replace", address]
    command = invocation.command("plan", options=[*options, "--out", saved.path])
    return (
        f"Make a new plan and review it: `{command}` (in CI, re-run the job that made the plan); "
        "nothing was sent"
    )


def check_saved_environment(
    saved: SavedPlan, environment: str | None, invocation: Invocation | None = None
) -> None:
    """Refuse a saved plan made for another environment (before anything is read or made)."""
    if saved.environment == environment:
        return
    planned = f"environment {saved.environment}" if saved.environment else "no environment"
    applying = f"environment {environment}" if environment else "no environment"
    invocation = invocation or Invocation(environment)
    there = dataclasses.replace(invocation, environment=saved.environment)
    how = f"apply it with `{there.command('apply', saved.path)}`, or " if saved.environment else ""
    command = invocation.command("plan", options=["--out", "FILE"])
    raise PlanError(
        f"the plan {saved.path} was made for {planned}, but this apply is for {applying}: "
        f"{how}make a plan for this environment with `{command}`; nothing was sent"
    )


def check_saved_after(saved: SavedPlan, after: str | None) -> None:
    """Refuse `apply PLANFILE --after ENV` unless the plan was made with that same --after
    (a saved plan keeps its own filter: it sends exactly what it showed)."""
    if after is None or after == saved.after:
        return
    made = f"with --after {saved.after}" if saved.after else "without --after"
    raise PlanError(
        f"the plan {saved.path} was made {made}: apply it without --after (it keeps the filter "
        f"it was made with), or make a plan with --after {escape(after)}"
    )


def check_saved_plan(
    saved: SavedPlan,
    plan: Plan,
    lockfile: Lockfile | None,
    environment: str | None = None,
    invocation: Invocation | None = None,
) -> None:
    """Refuse a saved plan that no longer says what apply would do, saying what changed and
    the command that makes a new plan (built from `invocation`: the running one's -e, -C…).

    `plan` is a fresh plan of the current manifests and `lockfile` with the saved plan's
    targets and replace addresses (held back as the saved plan was, if made with --after);
    its creates and replaces must be exactly the saved ones.
    """
    again = ". " + new_plan_step(saved, invocation or Invocation(environment))
    check_saved_environment(saved, environment, invocation)
    if saved.api_url.rstrip("/") != plan.api_url.rstrip("/"):
        raise PlanError(
            f"the plan {saved.path} was made for the API {saved.api_url}, but the configured "
            f"API URL is {plan.api_url}{again}"
        )
    if not _same_state(saved, lockfile):
        then_text = f"serial {saved.serial}" if saved.serial is not None else "no lockfile"
        now_text = f"serial {lockfile.serial}" if lockfile is not None else "no lockfile"
        if lockfile is not None and saved.lineage not in (None, lockfile.lineage):
            now_text = "a different lockfile (another lineage)"
        raise PlanError(
            f"the plan {saved.path} is stale: the lockfile changed since it was saved "
            f"({then_text} then, {now_text} now){again}"
        )
    carried = tuple(
        (
            entry.action,
            entry.address,
            entry.source,
            _named(declaration_document(entry.declaration)),
        )
        for entry in plan.entries
        if entry.action in RECORDED
    )
    if carried != saved.carried:
        raise PlanError(
            f"the plan {saved.path} is stale: the declarations (Moved, Import, Removed, "
            f"NotCreated) changed since the plan was saved{again}"
        )
    fresh = {entry.address: entry for entry in plan.to_apply}
    for entry in saved.to_apply:
        now = fresh.pop(entry.address, None)
        if (
            now is None
            or now.desired is None
            or (now.action, now.desired.digest, now.desired.revision)
            != (entry.action, entry.desired.digest, entry.desired.revision)
        ):
            raise PlanError(
                f"the plan {saved.path} is stale: the manifest of {entry.address} changed since "
                f"the plan was saved{again}"
            )
    if fresh:
        extra = ", ".join(sorted(fresh))
        raise PlanError(
            f"the plan {saved.path} is stale: apply would now also send {extra}, which the "
            f"saved plan does not contain{again}"
        )
