"""Declarations carried out on a lockfile: a pure function, no I/O.

    carry_out(lockfile, declarations, at) -> Carried
        Carried.lockfile   the lockfile with every declaration that has something to act on
                           carried out (None when there was none and nothing was carried)
        Carried.steps      one DeclarationStep per declaration, in the order carried out

Each declaration is bound to what it names, so a stale one acts on nothing else:

    Moved A → B   carried   A is recorded, B is not: A's record (or pending create) becomes B's
                  done      A is not recorded, and B (or where a chain of Moved goes on from B)
                            is: it was carried out before and may be deleted
                  nothing   neither is recorded: B is planned as usual
                  conflict  both A and B are recorded
    Removed A ID  carried   A records exactly ID: the record is forgotten, ID kept in history;
                            or ID is a trigger A's current one replaced, still active: the
                            history says it is gone now
                  done      A's history says ID was removed
                  nothing   A is not recorded
                  conflict  A records another id
    Import A ID   carried   A (declared) is not recorded, or is uncertain: ID is recorded with
                            A's manifest body (origin imported); or A records exactly ID with
                            another body, and the Import `acknowledges` the manifest's digest:
                            the edit made by hand is acknowledged
                  done      A records exactly ID with the manifest's body, or with another body
                            than the one it acknowledges (it was carried out before: the
                            manifest was edited since, an update for a person)
                  conflict  A records another id; or A is not recorded, or is uncertain, and
                            the Import acknowledges another body than the manifest's
    NotCreated A K carried  A is uncertain with exactly the pending Idempotency-Key K: the
                            history notes the re-send (before it is sent); apply sends it once
                            more with K
                  done      the history notes it was re-sent (once only: a re-send whose
                            outcome is unknown again stays uncertain for a person)
                  nothing   A is not uncertain
                  conflict  A is uncertain with another Idempotency-Key

`Moved` chains (A → B, B → C) are carried out in order, so A's record ends at C. Carrying out
twice is carrying out once: a carried declaration is `done` the next time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from pfsync.models import IMPORT, MOVED, NOT_CREATED, REMOVED, Declaration, DesiredTrigger
from pfsync.state.changes import move, record_import
from pfsync.state.lockfile import Lockfile
from pfsync.state.trigger_records import REASON_MOVED, REASON_REMOVED, REASON_RESENT, HistoryEntry
from pfsync.support.diagnostics import Diagnostic
from pfsync.support.invocation import BARE, Invocation
from pfsync.support.textsafety import shown_id

CARRIED = "carried"
DONE = "done"
NOTHING = "nothing"
CONFLICT = "conflict"


@dataclass(frozen=True)
class DeclarationStep:
    """What a declaration does to the lockfile it meets."""

    declaration: Declaration
    outcome: str  # carried | done | nothing | conflict
    trigger_id: str | None = None  # the id it moves (carried), or that has moved (done)
    recorded: bool = False  # whether that record exists (id None: created, id unknown)
    problem: Diagnostic | None = None  # a conflict, located at the declaration


@dataclass(frozen=True)
class Carried:
    """A lockfile after the declarations, and what each did."""

    lockfile: Lockfile | None
    steps: tuple[DeclarationStep, ...]

    @property
    def conflicts(self) -> list[Diagnostic]:
        """The located problems of the declarations that conflict with the record."""
        return [step.problem for step in self.steps if step.problem is not None]

    @property
    def carried(self) -> list[Declaration]:
        """The declarations that change the record, in order."""
        return [step.declaration for step in self.steps if step.outcome == CARRIED]


def in_order(declarations: Sequence[Declaration]) -> list[Declaration]:
    """The declarations in the order they are carried out: each `Moved` chain from its start."""
    moves = [d for d in declarations if d.kind == MOVED]
    by_from = {move.address: move for move in moves}
    targets = {move.target for move in moves}
    ordered: list[Declaration] = []
    placed: set[int] = set()
    for head in moves:
        if head.address in targets:
            continue  # not the start of its chain
        link: Declaration | None = head
        while link is not None and id(link) not in placed:
            ordered.append(link)
            placed.add(id(link))
            link = by_from.get(link.target)
    # what no chain reached (a cycle, which validation refuses) keeps its file order
    ordered += [d for d in moves if id(d) not in placed]
    return ordered + [d for d in declarations if d.kind != MOVED]


def _chain_end_recorded(
    lockfile: Lockfile, move_: Declaration, by_from: dict[str, Declaration]
) -> str | None:
    """The address where the chain of Moved from `move_` ends up recorded, if any."""
    seen = {move_.address}
    address = move_.target
    while address not in seen:
        if lockfile.recorded(address):
            return address
        seen.add(address)
        following = by_from.get(address)
        if following is None:
            return None
        address = following.target
    return None


def carry_out(
    lockfile: Lockfile | None,
    declarations: Sequence[Declaration],
    at: str,
    declared: Mapping[str, DesiredTrigger] | None = None,
    invocation: Invocation = BARE,
) -> Carried:
    """Carry out every declaration that has something to act on (see the module's table).

    `declared` are the triggers declared, by address: a `Removed` of one's current trigger is
    a conflict (forgetting it would create it again), and an `Import` records its body.
    `invocation` builds the commands a conflict's advice names.
    """
    declared = declared or {}
    ordered = in_order(declarations)
    if lockfile is None:
        return Carried(None, tuple(DeclarationStep(d, NOTHING) for d in ordered))
    by_from = {d.address: d for d in ordered if d.kind == MOVED}
    steps = []
    for declaration in ordered:
        if declaration.kind == MOVED:
            step = _moved(lockfile, declaration, by_from, invocation)
            if step.outcome == CARRIED:
                lockfile = _moved_record(lockfile, declaration, at)
        elif declaration.kind == NOT_CREATED:
            step = _not_created(lockfile, declaration, invocation)
            if step.outcome == CARRIED:
                lockfile = _resend_noted(lockfile, declaration, at)
        elif declaration.kind == IMPORT:
            step = _imported(lockfile, declaration, declared, invocation)
            if step.outcome == CARRIED:
                lockfile = _imported_record(lockfile, declaration, declared, at)
        else:
            assert declaration.kind == REMOVED
            step = _removed(lockfile, declaration, declared, invocation)
            if step.outcome == CARRIED:
                lockfile = _removed_record(lockfile, declaration, at)
        steps.append(step)
    return Carried(lockfile, tuple(steps))


def _moved(
    lockfile: Lockfile,
    move_: Declaration,
    by_from: dict[str, Declaration],
    invocation: Invocation,
) -> DeclarationStep:
    old, new = move_.address, move_.target
    record = lockfile.triggers.get(old)
    if lockfile.recorded(old) and lockfile.recorded(new):
        there = lockfile.triggers.get(new)
        problem = Diagnostic(
            move_.file,
            move_.line,
            1,
            f"Moved {old} → {new} conflicts with the lockfile: both are recorded ({old}: "
            f"{_described(lockfile, old)}; {new}: {_described(lockfile, new)}), so the record "
            f"of {old} cannot become that of {new}",
            "$.to",
            f"look {invocation.where_to_look}: forget the one that does not exist any more "
            f"(`{invocation.command('state rm', old)}` or "
            f"`{invocation.command('state rm', new)}`), or delete this Moved",
        )
        return DeclarationStep(
            move_, CONFLICT, there.id if there else None, there is not None, problem
        )
    if lockfile.recorded(old):
        return DeclarationStep(move_, CARRIED, record.id if record else None, record is not None)
    end = _chain_end_recorded(lockfile, move_, by_from)
    if end is not None:
        now = lockfile.triggers.get(end)
        return DeclarationStep(move_, DONE, now.id if now else None, now is not None)
    return DeclarationStep(move_, NOTHING)


def _described(lockfile: Lockfile, address: str) -> str:
    record = lockfile.triggers.get(address)
    if record is not None:
        return f"trigger {shown_id(record.id, '(id unknown)')}"
    return "an uncertain create"


def _moved_record(lockfile: Lockfile, move_: Declaration, at: str) -> Lockfile:
    """`move`, with the move kept in the new address's history (its id, where it came from)."""
    old, new = move_.address, move_.target
    moved = move(lockfile, old, new)
    record = moved.triggers.get(new)
    if record is None:
        return moved  # only an uncertain create moved: it has no id yet
    entry = HistoryEntry(
        record.id, at, REASON_MOVED, record.origin, record.revision, old, move_.source
    )
    triggers = {**moved.triggers, new: replace(record, history=(*record.history, entry))}
    return replace(moved, triggers=triggers)


def _removed(
    lockfile: Lockfile,
    removed: Declaration,
    declared: Mapping[str, DesiredTrigger],
    invocation: Invocation,
) -> DeclarationStep:
    address, named = removed.address, removed.trigger_id
    record = lockfile.triggers.get(address)
    if record is not None and record.id == named and address in declared:
        problem = Diagnostic(
            removed.file,
            removed.line,
            1,
            f"Removed {address} names its current trigger {shown_id(named)}, but a trigger "
            f"manifest still declares {address}: forgetting it would create it again",
            "$.key",
            "delete that trigger's manifest in the same change, or this declaration (a Removed "
            "of a declared key settles only a trigger its current one replaced)",
        )
        return DeclarationStep(removed, CONFLICT, named, True, problem)
    if record is not None and (record.id == named or named in record.replaced_still_active()):
        return DeclarationStep(removed, CARRIED, named, True)
    history = record.history if record is not None else lockfile.forgotten.get(address, ())
    if any(entry.id == named and entry.reason == REASON_REMOVED for entry in history):
        return DeclarationStep(removed, DONE, named, True)
    if record is None:
        return DeclarationStep(removed, NOTHING, named, False)
    problem = Diagnostic(
        removed.file,
        removed.line,
        1,
        f"Removed {address} names trigger {shown_id(named)}, but the lockfile records trigger "
        f"{shown_id(record.id, '(id unknown)')} for {address}",
        "$.id",
        "a Removed forgets exactly the trigger it names: check the id "
        f"{invocation.where_to_look} and with `{invocation.command('state show', address)}`",
    )
    return DeclarationStep(removed, CONFLICT, record.id, True, problem)


def _removed_record(lockfile: Lockfile, removed: Declaration, at: str) -> Lockfile:
    """The record forgotten (its id kept in the history), or a replaced id settled."""
    address = removed.address
    record = lockfile.triggers[address]
    if record.id != removed.trigger_id:  # a trigger the current one replaced: now gone too
        replaced = next(e for e in reversed(record.history) if e.id == removed.trigger_id)
        entry = HistoryEntry(
            replaced.id,
            at,
            REASON_REMOVED,
            replaced.origin,
            replaced.revision,
            declared_by=removed.source,
        )
        settled = replace(record, history=(*record.history, entry))
        return replace(lockfile, triggers={**lockfile.triggers, address: settled})
    history = (*record.history, record.retired(REASON_REMOVED, at, removed.source))
    return replace(
        lockfile,
        triggers={a: r for a, r in lockfile.triggers.items() if a != address},
        forgotten={**lockfile.forgotten, address: history},
    )


def _imported(
    lockfile: Lockfile,
    imported: Declaration,
    declared: Mapping[str, DesiredTrigger],
    invocation: Invocation,
) -> DeclarationStep:
    address, named = imported.address, imported.trigger_id
    manifest = declared.get(address)
    record = lockfile.triggers.get(address)
    if manifest is None:
        return DeclarationStep(imported, NOTHING, named, record is not None)
    acknowledged = imported.acknowledges in (None, manifest.digest)
    if address in lockfile.pending or record is None:
        if not acknowledged:
            return DeclarationStep(
                imported,
                CONFLICT,
                named,
                False,
                _acknowledges_another(imported, manifest, invocation),
            )
        return DeclarationStep(imported, CARRIED, named, False)
    if record.id == named:
        same = (record.digest, record.revision) == (manifest.digest, manifest.revision)
        # A hand edit is acknowledged only of the body named: a kept Import, carried out
        # before, leaves a later edit of the manifest an update for a person.
        edit = imported.acknowledges == manifest.digest
        return DeclarationStep(imported, CARRIED if edit and not same else DONE, named, True)
    problem = Diagnostic(
        imported.file,
        imported.line,
        1,
        f"Import {address} names trigger {shown_id(named)}, but the lockfile records trigger "
        f"{shown_id(record.id, '(id unknown)')} for {address}",
        "$.id",
        "an Import records a trigger for a key that is not recorded or is uncertain, or "
        f"acknowledges the recorded trigger; check the id {invocation.where_to_look} and with "
        f"`{invocation.command('state show', address)}`",
    )
    return DeclarationStep(imported, CONFLICT, record.id, True, problem)


def _acknowledges_another(
    imported: Declaration, manifest: DesiredTrigger, invocation: Invocation
) -> Diagnostic:
    """An Import that would record the manifest's body, but acknowledges another one."""
    return Diagnostic(
        imported.file,
        imported.line,
        1,
        f"Import {imported.address} acknowledges the body {imported.acknowledges}, but the "
        f"manifest declares {manifest.digest} now: it was edited since the Import was written",
        "$.acknowledges",
        f"an Import records the manifest's body as trigger {shown_id(imported.trigger_id)}'s: "
        f"check the trigger {invocation.where_to_look}, then set `acknowledges` to the "
        "manifest's digest or delete that line",
    )


def _imported_record(
    lockfile: Lockfile,
    imported: Declaration,
    declared: Mapping[str, DesiredTrigger],
    at: str,
) -> Lockfile:
    """`record_import` of the manifest's body; the ids it retires name the declaration."""
    address, manifest = imported.address, declared[imported.address]
    assert imported.trigger_id is not None
    before = lockfile.triggers.get(address)
    kept = len(before.history) if before is not None else 0
    after = record_import(
        lockfile,
        address,
        imported.trigger_id,
        manifest.body,
        manifest.revision,
        manifest.file,
        at,
        force=True,
    )
    record = after.triggers[address]
    history = (
        *record.history[:kept],
        *(replace(entry, declared_by=imported.source) for entry in record.history[kept:]),
    )
    return replace(after, triggers={**after.triggers, address: replace(record, history=history)})


def _history(lockfile: Lockfile, address: str) -> tuple[HistoryEntry, ...]:
    record = lockfile.triggers.get(address)
    return record.history if record is not None else lockfile.forgotten.get(address, ())


def was_resent(lockfile: Lockfile, address: str, intent: str | None) -> bool:
    """Whether a NotCreated sent the create with Idempotency-Key `intent` once more already."""
    return any(
        entry.reason == REASON_RESENT and entry.intent == intent
        for entry in _history(lockfile, address)
    )


def _not_created(
    lockfile: Lockfile, declaration: Declaration, invocation: Invocation
) -> DeclarationStep:
    address, intent = declaration.address, declaration.intent
    pending = lockfile.pending.get(address)
    resent = was_resent(lockfile, address, intent)
    if pending is not None and pending.idempotency_key == intent:
        return DeclarationStep(declaration, DONE if resent else CARRIED, None, resent)
    if pending is not None:
        problem = Diagnostic(
            declaration.file,
            declaration.line,
            1,
            f"NotCreated {address} names the create with Idempotency-Key {intent}, but the "
            f"uncertain create of {address} has Idempotency-Key {pending.idempotency_key}",
            "$.intent",
            "a NotCreated sends again exactly the create it names: copy the Idempotency-Key "
            f"from the plan or from `{invocation.command('state show', address)}`",
        )
        return DeclarationStep(declaration, CONFLICT, None, False, problem)
    return DeclarationStep(declaration, DONE if resent else NOTHING, None, False)


def _resend_noted(lockfile: Lockfile, declaration: Declaration, at: str) -> Lockfile:
    """The address's history notes the re-send before it is sent, so it is sent only once."""
    address = declaration.address
    pending = lockfile.pending[address]
    entry = HistoryEntry(
        None,
        at,
        REASON_RESENT,
        "created",
        pending.trigger.revision,
        declared_by=declaration.source,
        intent=declaration.intent,
    )
    record = lockfile.triggers.get(address)
    if record is not None:
        noted = replace(record, history=(*record.history, entry))
        return replace(lockfile, triggers={**lockfile.triggers, address: noted})
    history = (*lockfile.forgotten.get(address, ()), entry)
    return replace(lockfile, forgotten={**lockfile.forgotten, address: history})
