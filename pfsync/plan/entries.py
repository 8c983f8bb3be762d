"""A plan's values: the actions, one PlanEntry per address, the Plan, its summary line and its
exit code. The planner (`planner.py`) makes them; renderers, saved plans and apply read them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pfsync.models import Declaration, DesiredTrigger
from pfsync.plan.diff import FieldChange
from pfsync.state.lockfile import Lockfile

CREATE = "create"
NOOP = "no-op"
UPDATE = "update"
REPLACE = "replace"
DELETE = "delete"
UNCERTAIN = "uncertain"
MOVED = "moved"
FORGET = "forget"
IMPORT = "import"
RESEND = "resend"
ACTIONS = (CREATE, REPLACE, RESEND, MOVED, IMPORT, FORGET, UPDATE, DELETE, UNCERTAIN, NOOP)
APPLIED = frozenset({CREATE, REPLACE, RESEND})
# what apply changes in the record without sending anything (declarations carried out)
RECORDED = frozenset({MOVED, IMPORT, FORGET})
NEEDS_PERSON = frozenset({UPDATE, DELETE, UNCERTAIN})

EXIT_NOTHING_TO_DO = 0
EXIT_CHANGES = 2
EXIT_NEEDS_PERSON = 3


@dataclass(frozen=True)
class PlanEntry:
    """What the plan does (or cannot do) for one address."""

    address: str
    business: str
    key: str
    action: str
    source: str  # file:line of the manifest, or the recorded file when no longer declared
    desired: DesiredTrigger | None  # the declared trigger (None when not declared)
    old_id: str | None  # the recorded trigger id (None: not recorded, or id unknown)
    recorded: bool  # a trigger record exists (old_id None + recorded: id unknown)
    recorded_digest: str | None  # digest of the recorded body
    diff: tuple[FieldChange, ...] = ()
    reason: str | None = None  # why a replace or uncertain
    remedy: str | None = None
    declaration: Declaration | None = None  # the declaration this entry carries out or notes
    paste: str | None = None  # a declaration for a person to paste (YAML), the first remedy


@dataclass(frozen=True)
class HeldBack:
    """A create or replace that `--after PREV` does not send (or, in `plan.not_declared`, sends
    because PREV does not declare it), and why (see `plan.after`)."""

    entry: PlanEntry
    why: str  # "not yet applied to staging", "not declared for staging: created directly in …"


@dataclass(frozen=True)
class Plan:
    """Every address in scope with its action, and the state it was planned against."""

    entries: tuple[PlanEntry, ...]
    api_url: str
    lockfile: Lockfile | None
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    carried: tuple[Declaration, ...] = ()  # the declarations apply carries out, in order
    after: str | None = None  # `--after PREV`: the environment whose record creates must be in
    held_back: tuple[HeldBack, ...] = ()  # what `--after` keeps back: no change, not sent
    # what `--after` sends although PREV's record lacks it: PREV does not declare it at all
    not_declared: tuple[HeldBack, ...] = ()

    def with_action(self, action: str) -> list[PlanEntry]:
        """The entries with `action`, in address order."""
        return [entry for entry in self.entries if entry.action == action]

    @property
    def to_apply(self) -> list[PlanEntry]:
        """The creates and replaces, in address order: what apply sends."""
        return [entry for entry in self.entries if entry.action in APPLIED]

    @property
    def counts(self) -> dict[str, int]:
        """How many entries of each action (every action present, zeros included)."""
        counts = dict.fromkeys(ACTIONS, 0)
        for entry in self.entries:
            counts[entry.action] += 1
        return counts

    @property
    def needs_person(self) -> bool:
        """Whether some update, delete or uncertain needs a person."""
        return any(entry.action in NEEDS_PERSON for entry in self.entries)

    @property
    def has_changes(self) -> bool:
        """Whether apply has something to send or a declaration to carry out."""
        return bool(self.carried) or any(entry.action in APPLIED for entry in self.entries)

    @property
    def businesses(self) -> list[str]:
        """The businesses of the addresses in scope (those held back too), sorted."""
        held = {held.entry.business for held in self.held_back}
        return sorted({entry.business for entry in self.entries} | held)

    def exit_code(self, detailed: bool) -> int:
        """Exit code: 0 nothing to do, 2 changes apply can make, 3 something needs a person."""
        if not detailed:
            return 0
        if self.needs_person:
            return EXIT_NEEDS_PERSON
        return EXIT_CHANGES if self.has_changes else EXIT_NOTHING_TO_DO


def summary_line(counts: dict[str, int]) -> str:
    """`Plan: 2 to create, 1 to replace. Needs a person: 1 update, 1 delete, 0 uncertain. …`
    (`, 1 to move` after the replaces when a declaration moves a record)."""
    declared = "".join(
        f", {counts[action]} to {word}"
        for action, word in (
            (RESEND, "resend"),
            (MOVED, "move"),
            (IMPORT, "import"),
            (FORGET, "forget"),
        )
        if counts.get(action)
    )
    return (
        f"Plan: {counts[CREATE]} to create, {counts[REPLACE]} to replace{declared}. "
        f"Needs a person: {counts[UPDATE]} update, {counts[DELETE]} delete, "
        f"{counts[UNCERTAIN]} uncertain. {counts[NOOP]} unchanged."
    )
