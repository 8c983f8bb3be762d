"""(manifests, lockfile state) → Plan: a pure function, no I/O.

    create_plan(manifests, lockfile, api_url, targets=(), replace=()) -> Plan
    Plan.entries              one PlanEntry per address in scope, sorted by address
    Plan.to_apply             the creates and replaces apply sends, in address order; each
                              entry's `desired` is the DesiredTrigger to send (a replace's
                              names the id it retires)
    Plan.counts / needs_person / has_changes / exit_code(detailed)

Actions: create, no-op, update, replace, delete, uncertain. pfsync can only create, so update,
delete and uncertain need a person; each such entry carries the exact remedy naming the trigger.
Declarations (`Moved`) that change the record have an action of their own (`moved`): apply
carries them out before any create, and the other addresses are classified against the record
as it will then be. A declaration already carried out, or with nothing to act on, is a no-op
entry saying so.
The values (Plan, PlanEntry, the actions) live in `entries` and are re-exported here.
Raises PlanError for a --target or --replace address that makes no sense, DeclarationConflict
for a declaration that contradicts the lockfile.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence
from typing import Any

from pfsync import models as kinds
from pfsync.errors import DeclarationConflict, PlanError
from pfsync.models import Declaration, DesiredTrigger
from pfsync.plan.diff import FieldChange, field_diff
from pfsync.plan.entries import (
    ACTIONS,
    APPLIED,
    CREATE,
    DELETE,
    EXIT_CHANGES,
    EXIT_NEEDS_PERSON,
    EXIT_NOTHING_TO_DO,
    FORGET,
    IMPORT,
    MOVED,
    NEEDS_PERSON,
    NOOP,
    RECORDED,
    REPLACE,
    RESEND,
    UNCERTAIN,
    UPDATE,
    HeldBack,
    Plan,
    PlanEntry,
    summary_line,
)
from pfsync.plan.remedies import (
    create_rename_note,
    declaration_note,
    delete_remedy,
    import_yaml,
    moved_yaml,
    not_created_yaml,
    removed_yaml,
    replace_remedy,
    resend_remedy,
    uncertain_remedy,
    update_remedy,
)
from pfsync.state.declared import CARRIED, DeclarationStep, carry_out, was_resent
from pfsync.state.lockfile import Lockfile
from pfsync.state.trigger_records import PendingCreate, TriggerRecord
from pfsync.support.invocation import BARE, Invocation
from pfsync.support.suggest import closest

__all__ = [
    "ACTIONS",
    "APPLIED",
    "CREATE",
    "DELETE",
    "EXIT_CHANGES",
    "EXIT_NEEDS_PERSON",
    "EXIT_NOTHING_TO_DO",
    "FORGET",
    "IMPORT",
    "MOVED",
    "NEEDS_PERSON",
    "NOOP",
    "RECORDED",
    "REPLACE",
    "RESEND",
    "UNCERTAIN",
    "UPDATE",
    "HeldBack",
    "Plan",
    "PlanEntry",
    "create_plan",
    "resending_uncertain",
    "summary_line",
]

# the action of each kind of declaration when it is carried out
_DECLARED_ACTION = {
    kinds.MOVED: MOVED,
    kinds.REMOVED: FORGET,
    kinds.IMPORT: IMPORT,
    kinds.NOT_CREATED: RESEND,
}


def create_plan(
    manifests: Sequence[DesiredTrigger],
    lockfile: Lockfile | None,
    api_url: str,
    targets: Iterable[str] = (),
    replace: Iterable[str] = (),
    declarations: Sequence[Declaration] = (),
    default_business: str | None = None,
    environment: str | None = None,
    invocation: Invocation = BARE,
) -> Plan:
    """Classify every declared or recorded address (or only `targets`) into an action.

    `declarations` are carried out first (in memory: apply carries them out for real), and the
    addresses are classified against the record as it then is. `default_business` is the
    configured business, left out of the declarations a remedy offers to paste, and
    `environment` the selected one, which they name. `invocation` builds the commands the
    remedies print (with the run's -C, --config, -e and --sandbox).
    """
    declared = {manifest.address: manifest for manifest in manifests}
    carried = carry_out(lockfile, declarations, "", declared, invocation)
    after = carried.lockfile
    known = set(declared) | _addresses(lockfile) | _addresses(after)
    target_set = _check_targets(tuple(dict.fromkeys(targets)), known)
    if target_set:
        named = _chained(declarations, set(target_set))
        in_scope = [d for d in declarations if {d.address, d.target} & named]
        carried = carry_out(lockfile, in_scope, "", declared, invocation)
        after = carried.lockfile
    if carried.conflicts:
        raise DeclarationConflict(carried.conflicts)
    triggers = after.triggers if after is not None else {}
    pending = after.pending if after is not None else {}
    replace_set = tuple(dict.fromkeys(replace))
    _check_replace(replace_set, target_set, declared, triggers, pending, invocation)
    scope = sorted(target_set) if target_set else sorted(set(declared) | _addresses(after))
    if environment is None and lockfile is not None:
        environment = lockfile.environment
    if target_set:
        scope = [address for address in scope if address in set(declared) | _addresses(after)]
    entries = [
        _classify(
            address,
            declared.get(address),
            triggers.get(address),
            pending.get(address),
            address in replace_set,
            invocation,
        )
        for address in scope
    ]
    entries = _with_declarations_to_paste(entries, default_business, environment, after, invocation)
    noted = [_declaration_entry(step, lockfile, declared) for step in carried.steps]
    at_noted = {entry.address for entry in noted}
    resent = {entry.address for entry in noted if entry.action == RESEND}
    entries = [
        e
        for e in entries
        if not (e.action == NOOP and e.address in at_noted)
        and not (e.action == UNCERTAIN and e.address in resent)
    ]
    ordered = sorted(
        [(entry.address, 0, n, entry) for n, entry in enumerate(noted)]
        + [(entry.address, 1, n, entry) for n, entry in enumerate(entries)],
        key=lambda item: item[:3],
    )
    return Plan(
        tuple(item[3] for item in ordered),
        api_url,
        lockfile,
        target_set,
        replace_set,
        tuple(carried.carried),
    )


def _chained(declarations: Sequence[Declaration], named: set[str]) -> set[str]:
    """`named` with every address a chain of `Moved` links to one of them (a → b → c targeted
    at c moves a's record too: without a → b, c would be created while a's trigger exists)."""
    moves = [d for d in declarations if d.kind == kinds.MOVED]
    grown = True
    while grown:
        grown = False
        for move in moves:
            ends = {move.address, move.target}
            if ends & named and not ends <= named:
                named |= ends
                grown = True
    return named


def _addresses(lockfile: Lockfile | None) -> set[str]:
    return lockfile.addresses() if lockfile is not None else set()


def _declaration_entry(
    step: DeclarationStep, lockfile: Lockfile | None, declared: dict[str, DesiredTrigger]
) -> PlanEntry:
    """The entry of a declaration: its own action when carried out, else a no-op saying why."""
    declaration = step.declaration
    address = declaration.target
    business, _, key = address.partition("/")
    before = lockfile.triggers.get(declaration.address) if lockfile is not None else None
    pending = lockfile.pending.get(address) if lockfile is not None else None
    desired = declared.get(address)
    if declaration.kind == kinds.NOT_CREATED and step.outcome == CARRIED and pending is not None:
        desired = pending.trigger  # sent as it was the first time: body and Idempotency-Key
    return PlanEntry(
        address=address,
        business=business,
        key=key,
        action=_DECLARED_ACTION[declaration.kind] if step.outcome == CARRIED else NOOP,
        source=declaration.source,
        desired=desired,
        old_id=step.trigger_id,
        # a NotCreated's `recorded` says it was re-sent; no trigger is recorded for it
        recorded=step.recorded and declaration.kind != kinds.NOT_CREATED,
        recorded_digest=before.digest if before is not None and step.outcome == CARRIED else None,
        reason=f"from {declaration.address}"
        if step.outcome == CARRIED and declaration.kind == kinds.MOVED
        else None,
        remedy=declaration_note(
            step.declaration, step.outcome, step.trigger_id, step.recorded, pending
        ),
        declaration=declaration,
    )


def resending_uncertain(plan: Plan) -> Plan:
    """`plan` as `apply --retry-uncertain` shows it: each uncertain create, which it sends again,
    says so instead of telling a person to settle it."""
    pending = plan.lockfile.pending if plan.lockfile is not None else {}
    entries = tuple(
        _replace_fields(
            entry, remedy=resend_remedy(entry.address, pending[entry.address]), paste=None
        )
        if entry.action == UNCERTAIN and entry.address in pending
        else entry
        for entry in plan.entries
    )
    return dataclasses.replace(plan, entries=entries)


def _check_targets(targets: tuple[str, ...], known: set[str]) -> tuple[str, ...]:
    for address in targets:
        if address not in known:
            close = closest(address, known)
            hint = f" (did you mean {close}?)" if close else ""
            raise PlanError(
                f"--target {address}: no manifest declares it and the lockfile does not "
                f"record it{hint}"
            )
    return targets


def _check_replace(
    replace: tuple[str, ...],
    targets: tuple[str, ...],
    declared: dict[str, DesiredTrigger],
    triggers: dict[str, TriggerRecord],
    pending: dict[str, PendingCreate],
    invocation: Invocation,
) -> None:
    for address in replace:
        if address not in declared:
            raise PlanError(
                f"--replace {address}: no manifest declares it (a replace creates a new trigger "
                "from the address's manifest)"
            )
        if address in pending:
            raise PlanError(
                f"--replace {address}: a create of it has an unknown outcome; settle that first "
                f"(`{invocation.command('state import', address, 'ID')}` or "
                f"`{invocation.command('state rm', address)}`)"
            )
        if address not in triggers:
            raise PlanError(
                f"--replace {address}: it is not in the lockfile, so there is nothing to replace "
                "(the plan creates it)"
            )
        if targets and address not in targets:
            raise PlanError(f"--replace {address} is not among the --target addresses")


def _classify(
    address: str,
    manifest: DesiredTrigger | None,
    record: TriggerRecord | None,
    pending: PendingCreate | None,
    forced_replace: bool,
    invocation: Invocation,
) -> PlanEntry:
    business, _, key = address.partition("/")
    old_id = record.id if record is not None else None
    # Each entry is made once, with its action (10,000 creates: copying each would cost more).
    entry = functools.partial(
        PlanEntry,
        address=address,
        business=business,
        key=key,
        source=manifest.source if manifest else _recorded_file(record, pending),
        desired=manifest,
        old_id=old_id,
        recorded=record is not None,
        recorded_digest=record.digest if record is not None else None,
    )
    if pending is not None:
        return entry(
            action=UNCERTAIN,
            reason=pending.reason,
            remedy=uncertain_remedy(address, pending, manifest is not None, invocation),
        )
    if record is None:
        assert manifest is not None  # the address came from somewhere
        return entry(action=CREATE)
    if manifest is None:
        return entry(action=DELETE, remedy=delete_remedy(address, old_id, invocation))
    if forced_replace or manifest.revision > record.revision:
        reason = (
            "requested with --replace"
            if forced_replace
            else f"revision raised from {record.revision} to {manifest.revision}"
        )
        return entry(
            action=REPLACE,
            desired=manifest.replacing(old_id),
            reason=reason,
            remedy=replace_remedy(address, old_id),
        )
    changes = field_diff(record.body, manifest.body) if manifest.digest != record.digest else ()
    if manifest.revision < record.revision:
        changes = (FieldChange("$.revision", record.revision, manifest.revision), *changes)
    if changes:
        remedy = update_remedy(address, old_id, invocation)
        return entry(action=UPDATE, diff=changes, remedy=remedy)
    return entry(action=NOOP)


def _recorded_file(record: TriggerRecord | None, pending: PendingCreate | None) -> str:
    if record is not None:
        return record.file
    assert pending is not None
    return pending.trigger.file


def _replace_fields(entry: PlanEntry, **changes: Any) -> PlanEntry:
    return dataclasses.replace(entry, **changes)


def _with_declarations_to_paste(
    entries: list[PlanEntry],
    default_business: str | None,
    environment: str | None,
    after: Lockfile | None,
    invocation: Invocation,
) -> list[PlanEntry]:
    """Each entry a declaration would settle, with that declaration to paste: a delete and a
    create of the same body in one business look like a renamed key (Moved); a delete or a
    replace retires an id (Removed); an update is acknowledged (Import); an uncertain create
    is found in Pocketflows (Import) or not (NotCreated)."""
    creates: dict[tuple[str, str | None], list[PlanEntry]] = {}
    deletes: dict[tuple[str, str | None], list[PlanEntry]] = {}
    for entry in entries:
        if entry.action == CREATE:
            digest = entry.desired.digest if entry.desired else None
            creates.setdefault((entry.business, digest), []).append(entry)
        elif entry.action == DELETE:
            deletes.setdefault((entry.business, entry.recorded_digest), []).append(entry)
    renamed_to: dict[str, str] = {}
    renamed_from: dict[str, str] = {}
    for group, deleted in deletes.items():
        created = creates.get(group, [])
        if len(deleted) == 1 and len(created) == 1:  # only an unambiguous pair is named
            renamed_to[deleted[0].address] = created[0].address
            renamed_from[created[0].address] = deleted[0].address
    out = []
    for entry in entries:
        if entry.address in renamed_to:
            new = renamed_to[entry.address]
            remedy = delete_remedy(entry.address, entry.old_id, invocation, new)
            paste = moved_yaml(entry.address, new, default_business)
            entry = _replace_fields(entry, remedy=remedy, paste=paste)
        elif entry.address in renamed_from:
            old = renamed_from[entry.address]
            note = create_rename_note(old, entry.address, invocation)
            paste = moved_yaml(old, entry.address, default_business)
            entry = _replace_fields(entry, remedy=note, paste=paste)
        elif entry.action in (DELETE, REPLACE) and entry.old_id is not None:
            paste = removed_yaml(entry.address, entry.old_id, default_business, environment)
            entry = _replace_fields(entry, paste=paste)
        elif entry.action == UPDATE and entry.old_id is not None and entry.desired is not None:
            digest = entry.desired.digest  # the body it acknowledges as edited by hand
            paste = import_yaml(entry.address, entry.old_id, default_business, environment, digest)
            entry = _replace_fields(entry, paste=paste)
        elif entry.action == UNCERTAIN and entry.desired is not None and after is not None:
            paste = import_yaml(entry.address, None, default_business, environment)
            pending = after.pending[entry.address]
            if was_resent(after, entry.address, pending.idempotency_key):
                # A NotCreated sent it once more already: another would do nothing.
                remedy = uncertain_remedy(entry.address, pending, True, invocation, resent=True)
                entry = _replace_fields(entry, paste=paste, remedy=remedy)
            else:
                paste += not_created_yaml(
                    entry.address, pending.idempotency_key, default_business, environment
                )
                entry = _replace_fields(entry, paste=paste)
        out.append(entry)
    return out
