"""The exact remedy printed for each action pfsync cannot take, naming the trigger.

pfsync can only create triggers, so every other change is shown with what a person must do.
Each command in a remedy is built by the running invocation (`Invocation.command`), so it
carries the run's -C, --config, -e and --sandbox and works as pasted; where a person looks a
trigger up (Pocketflows, or the sandbox in sandbox mode) comes from the same data.
"""

from __future__ import annotations

import re

from pfsync.models import IMPORT, MOVED, NOT_CREATED, Declaration
from pfsync.state.declared import CARRIED, DONE
from pfsync.state.trigger_records import PendingCreate
from pfsync.support.invocation import Invocation
from pfsync.support.textsafety import escape, json_text, shown_id

_UNKNOWN_ID_NOTE = (
    " (Its id was not returned when it was created: find the trigger in Pocketflows to learn it.)"
)


def _id(trigger_id: str | None) -> str:
    # An id comes from a server or a lockfile: shown so that it forges no line, no markup and
    # no shell command in the command a person copies.
    return shown_id(trigger_id)


def _unknown_note(trigger_id: str | None) -> str:
    return _UNKNOWN_ID_NOTE if trigger_id is None else ""


def _run(invocation: Invocation, name: str, *arguments: str, options: tuple[str, ...] = ()) -> str:
    """`pfsync … state rm ADDR`, built from the running invocation, in backticks."""
    return f"`{invocation.command(name, *arguments, options=options)}`"


def update_remedy(address: str, trigger_id: str | None, invocation: Invocation) -> str:
    """What to do about a changed body: revert, raise `revision`, or edit by hand and import."""
    shown = _id(trigger_id)
    state_import = _run(invocation, "state import", address, shown, options=("--force",))
    if trigger_id is None:
        return (
            "Pocketflows has no update endpoint, so pfsync cannot change this trigger. Revert "
            "the manifest, or raise `revision` to create a replacement, or edit trigger "
            f"{shown} in Pocketflows by hand and then run {state_import}." + _UNKNOWN_ID_NOTE
        )
    return (
        "Pocketflows has no update endpoint, so pfsync cannot change this trigger. Revert the "
        "manifest, or raise `revision` to create a replacement, or edit trigger "
        f"{shown} in Pocketflows by hand and then acknowledge it: paste the Import below into a "
        f"manifest file (or run {state_import})."
    )


def delete_remedy(
    address: str, trigger_id: str | None, invocation: Invocation, renamed_to: str | None = None
) -> str:
    """What to do about a trigger no longer declared: deactivate it, then forget it; or, when
    its key looks renamed, declare the move (the `Moved` to paste comes with the entry)."""
    state_rm = _run(invocation, "state rm", address)
    if renamed_to:
        return (
            f"This looks like its key renamed to {renamed_to}: paste the Moved below into a "
            "manifest file, so the plan shows the move and apply carries the record over "
            f"without sending anything (or run {_run(invocation, 'state mv', address, renamed_to)}"
            "). If it was not renamed: Pocketflows has no delete endpoint, so pfsync cannot "
            f"remove this trigger; deactivate trigger {_id(trigger_id)} in Pocketflows, then run "
            f"{state_rm}." + _unknown_note(trigger_id)
        )
    state_mv = _run(invocation, "state mv", address, "NEW_ADDRESS")
    if trigger_id is None:
        return (
            "Pocketflows has no delete endpoint, so pfsync cannot remove this trigger. "
            f"Deactivate trigger ID in Pocketflows, then run {state_rm}. If its key was renamed, "
            "declare a Moved (from: the old key, to: the new one) in a manifest file, or run "
            f"{state_mv}." + _UNKNOWN_ID_NOTE
        )
    return (
        "Pocketflows has no delete endpoint, so pfsync cannot remove this trigger. Deactivate "
        f"trigger {_id(trigger_id)} in Pocketflows, then paste the Removed below into a "
        f"manifest file, so that apply forgets it once reviewed (or run {state_rm}). If its key "
        "was renamed, declare a Moved (from: the old key, to: the new one) instead, or run "
        f"{state_mv}."
    )


def replace_remedy(address: str, old_id: str | None) -> str:
    """A replace creates a new draft; the old trigger keeps running until someone stops it."""
    settle = (
        "; then paste the Removed below into a manifest file, so the record stops listing it "
        "as still active"
        if old_id is not None
        else ""
    )
    return (
        f"A new draft trigger is created for {address}; the old trigger {_id(old_id)} stays "
        f"active in Pocketflows until a person deactivates it{settle}." + _unknown_note(old_id)
    )


def resend_remedy(address: str, pending: PendingCreate) -> str:
    """What `apply --retry-uncertain` does about a create whose outcome is unknown, and its risk."""
    return (
        f"A create of {address} was started at {escape(pending.started_at)} (Idempotency-Key "
        f"{pending.idempotency_key}) and its outcome is unknown; --retry-uncertain sends it again "
        "now, with the same body and Idempotency-Key. That is safe only if Pocketflows honours "
        "the key (its API reference does not document it): otherwise it can create a second "
        "trigger."
    )


def uncertain_remedy(
    address: str,
    pending: PendingCreate,
    declared: bool,
    invocation: Invocation,
    resent: bool = False,
) -> str:
    """What to do about a create whose outcome is unknown: look, then import or forget
    (`resent`: a NotCreated sent it once more already, so another does nothing). In sandbox
    mode the trigger is looked up in the sandbox, and the commands carry `--sandbox`."""
    started = (
        f"A create of {address} was started at {escape(pending.started_at)} (Idempotency-Key "
        f"{pending.idempotency_key}) and its outcome is unknown; pfsync will not send it again "
        "by itself. "
    )
    replaces = (
        f" If it was not created, trigger {_id(pending.trigger.replaces)} stays the record of "
        f"{address}."
        if pending.trigger.replaces
        else ""
    )
    look = f"Look for the trigger {invocation.where_to_look}"
    state_rm = _run(invocation, "state rm", address)
    state_import = _run(invocation, "state import", address, "ID")
    if not declared:
        return (
            started + f"{look} and deactivate it if it exists (no manifest declares {address} "
            f"any more); then run {state_rm}."
        )
    if resent:
        return (
            started + "It was sent once more for a NotCreated already, so another NotCreated "
            f"does nothing. {look}: if it exists, paste the Import below into a manifest file "
            f"with its id (or run {state_import}); if not, run {state_rm}, and the next plan "
            "creates it anew." + replaces
        )
    return (
        started + f"{look}: if it exists, paste the Import below into a manifest file with its "
        f"id (or run {state_import}); if not, paste the NotCreated below instead, and apply "
        "sends the create once more with its original Idempotency-Key (or run "
        f"{state_rm}, and the next plan creates it anew)." + replaces
    )


def create_rename_note(old: str, new: str, invocation: Invocation) -> str:
    """A create whose body equals a deleted address's: probably a renamed key."""
    return (
        f"If this is {old} with its key renamed, paste the Moved below into a manifest file "
        "instead of creating a second trigger: apply then carries the record over without "
        f"sending anything (or run {_run(invocation, 'state mv', old, new)})."
    )


def _declaration_yaml(
    kind: str,
    address: str,
    default_business: str | None,
    fields: list[str],
    environment: str | None = None,
) -> str:
    """A declaration document to paste: its kind, its business unless it is the default one,
    its `fields` (YAML lines), and the environment whose record it changes."""
    business = address.partition("/")[0]
    lines = ["---", "apiVersion: pfsync/v1", f"kind: {kind}"]
    if business != default_business:
        lines.append(f"business: {business}")
    lines += fields
    if environment is not None:
        lines.append(f"environment: {_yaml_scalar(environment)}")
    return "\n".join(lines) + "\n"


def moved_yaml(old: str, new: str, default_business: str | None) -> str:
    """The `Moved` declaration of a rename, as YAML to paste into a manifest file."""
    fields = [f"from: {old.partition('/')[2]}", f"to: {new.partition('/')[2]}"]
    return _declaration_yaml("Moved", old, default_business, fields)


def removed_yaml(
    address: str, trigger_id: str, default_business: str | None, environment: str | None
) -> str:
    """The `Removed` declaration forgetting `trigger_id` at `address`, as YAML to paste."""
    fields = [f"key: {address.partition('/')[2]}", f"id: {_yaml_scalar(trigger_id)}"]
    return _declaration_yaml("Removed", address, default_business, fields, environment)


_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _yaml_scalar(text: str) -> str:
    """`text` as a YAML scalar that reads back as this string (quoted unless plainly safe)."""
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json_text(text)  # a JSON string is a YAML double-quoted scalar; JSON escapes it


_YAML_WORDS = frozenset({"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"})


def declaration_note(
    declaration: Declaration,
    outcome: str,
    trigger_id: str | None,
    recorded: bool,
    pending: PendingCreate | None = None,
) -> str:
    """What a declaration does to the record (nothing is sent), or why it does nothing."""
    if declaration.kind == NOT_CREATED:
        return _not_created_note(declaration, outcome, recorded, pending)
    if declaration.kind != MOVED:
        return _removed_note(declaration, outcome, trigger_id)
    old, new = declaration.address, declaration.target
    trigger = f"trigger {_id(trigger_id)}" if recorded else "its uncertain create"
    if outcome == CARRIED:
        return (
            f"The record of {old} ({trigger}) becomes the record of {new}; nothing is sent to "
            "Pocketflows."
        )
    if outcome == DONE:
        return (
            f"Moved {old} → {new} is done ({old} is not recorded any more; its record, "
            f"{trigger}, has moved); this declaration may be deleted."
        )
    return (
        f"Moved {old} → {new}: nothing to act on, {old} is not recorded here; {new} is planned "
        "as usual."
    )


def _removed_note(declaration: Declaration, outcome: str, trigger_id: str | None) -> str:
    address, named = declaration.address, _id(declaration.trigger_id)
    if declaration.kind == IMPORT:
        return _import_note(declaration, outcome, trigger_id)
    if outcome == CARRIED:
        return (
            f"The record forgets trigger {named} of {address} (its id is kept in the history); "
            "nothing is sent to Pocketflows, where it stays as a person left it."
        )
    if outcome == DONE:
        return f"Removed {address} (trigger {named}) is done; this declaration may be deleted."
    return (
        f"Removed {address} (trigger {named}): nothing to act on, {address} is not recorded here."
    )


def _import_note(declaration: Declaration, outcome: str, recorded: str | None) -> str:
    address, named = declaration.address, _id(declaration.trigger_id)
    if outcome == CARRIED:
        return (
            f"Trigger {named} becomes the record of {address} (origin imported, with this "
            "manifest's body); nothing is sent to Pocketflows."
        )
    if outcome == DONE:
        return f"Import {address} (trigger {named}) is done; this declaration may be deleted."
    return f"Import {address} (trigger {named}): nothing to act on, no trigger declares it here."


def import_yaml(
    address: str,
    trigger_id: str | None,
    default_business: str | None,
    environment: str | None,
    acknowledges: str | None = None,
) -> str:
    """The `Import` declaration of `address`, as YAML to paste; without an id, an empty one to
    fill in (which validate refuses until it is). `acknowledges`: the digest of the manifest
    body it acknowledges as edited by hand (the update remedy's)."""
    fields = [f"key: {address.partition('/')[2]}"]
    if trigger_id is None:
        fields.append('id: ""  # the id of the trigger found in Pocketflows')
    else:
        fields.append(f"id: {_yaml_scalar(trigger_id)}")
    document = _declaration_yaml("Import", address, default_business, fields, environment)
    if acknowledges is not None:
        document += f"acknowledges: {acknowledges}\n"  # a digest pfsync made: plain
    return document


def not_created_yaml(
    address: str, intent: str, default_business: str | None, environment: str | None
) -> str:
    """The `NotCreated` declaration of the uncertain create `intent`, as YAML to paste."""
    fields = [f"key: {address.partition('/')[2]}", f"intent: {_yaml_scalar(intent)}"]
    return _declaration_yaml("NotCreated", address, default_business, fields, environment)


def _not_created_note(
    declaration: Declaration, outcome: str, still_pending: bool, pending: PendingCreate | None
) -> str:
    address, intent = declaration.address, declaration.intent
    if outcome == CARRIED:
        started = f"started at {escape(pending.started_at)} " if pending is not None else ""
        return (
            f"The create of {address} {started}is sent once more, with its original body and "
            f"Idempotency-Key {intent} (a person found it is not in Pocketflows); it is recorded "
            "first, like any create."
        )
    if outcome == DONE and still_pending:
        return (
            f"NotCreated {address} (Idempotency-Key {intent}) was carried out: the create was "
            "sent once more, and its outcome is unknown again, so it is not sent a third time; "
            "this declaration may be deleted."
        )
    if outcome == DONE:
        return (
            f"NotCreated {address} (Idempotency-Key {intent}) is done; this declaration may be "
            "deleted."
        )
    return (
        f"NotCreated {address} (Idempotency-Key {intent}): nothing to act on, {address} has no "
        "uncertain create here."
    )
