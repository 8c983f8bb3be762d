"""`--after PREV`: an environment receives only what the environment before it already holds.

    previous_record(config, name) -> Record   PREV's lockfile, read-only and without its lock
    hold_back(plan, record) -> Plan           the creates and replaces PREV's record does not
                                              hold as created from the same manifest document
                                              moved from `plan.entries` to `plan.held_back`
                                              (those PREV does not declare at all are kept, and
                                              listed in `plan.not_declared`)
    hold_back_saved(plan, name, held, direct) the same filter as a saved plan recorded it

A create passes when PREV's record holds a trigger created from the same manifest document as
written, before `${values…}` are substituted (its `document_digest`): the document promoted is
the one PREV received, whatever the values of each environment. This is decided from records,
never from commit authors or messages, which anyone can set. A held-back create is not sent and
is no change (plan exit codes, apply's confirmation).

A create whose document PREV's own manifests (its globs, with its values) do not declare at all,
neither that document nor that key, can never be promoted through PREV: it is sent, and listed
as "not declared for PREV". A document PREV declares, under whatever key or values, stays PREV's.
When PREV's manifests do not load, nothing is taken as undeclared.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from pfsync.config import Config
from pfsync.config.rehearsal import is_sandbox, sandbox_config
from pfsync.errors import LockfileError, PlanError
from pfsync.plan.entries import HeldBack, Plan, PlanEntry
from pfsync.state.lockfile import Lockfile, require_environment
from pfsync.support.textsafety import escape

NOT_YET = "not yet applied to {name}"
NOT_DECLARED = "not declared for {name}: {done} directly in {receiving}"
OTHER_VERSION = "applied to {name} from another version of the manifest"
UNKNOWN_VERSION = (
    "{name} records it without the manifest version it came from (imported, or created by an "
    "older pfsync)"
)


@dataclass(frozen=True)
class Declared:
    """What PREV's own manifests declare: their documents' digests and their keys."""

    documents: frozenset[str]
    keys: frozenset[str]


@dataclass(frozen=True)
class Record:
    """PREV's record as read for `--after`, with what PREV declares (None: unknown, so every
    create is PREV's) and the environment receiving the plan."""

    name: str
    lockfile: Lockfile
    warnings: tuple[str, ...] = ()
    declared: Declared | None = None
    receiving: str | None = None


def check_after(config: Config, name: str) -> None:
    """PlanError unless `name` is another environment of pfsync.yaml."""
    if not config.environments:
        raise PlanError(
            f"--after {escape(name)}: pfsync.yaml defines no environments; --after names the "
            "environment whose record a create must already be in"
        )
    if name not in config.environments:
        raise PlanError(
            f"--after {escape(name)}: pfsync.yaml defines no such environment; its environments "
            f"are {', '.join(config.environments)}"
        )
    if name == config.environment:
        raise PlanError(
            f"--after {escape(name)} names the environment being planned: name the environment "
            "before it (the one this environment's creates must already be in)"
        )


def previous_record(config: Config, name: str) -> Record:
    """PREV's lockfile through its configured store: read-only, no lock, nothing written.

    PlanError when it cannot be read or does not exist (nothing is then sent)."""
    from pfsync.config import load_config
    from pfsync.state.journal import folded_state
    from pfsync.state.lockfile import read_lockfile
    from pfsync.state.stores import open_store

    check_after(config, name)
    assert config.path is not None  # environments come from a pfsync.yaml
    previous = load_config(str(config.path), cwd=config.root, check_url=False, environment=name)
    if is_sandbox(config):
        previous = sandbox_config(previous)
    warnings: tuple[str, ...] = ()
    try:
        if previous.state.is_remote:
            store = open_store(previous)
            snapshot = store.read(strict=False)
            lockfile, warnings = snapshot.lockfile, tuple(snapshot.warnings)
            where = store.description
        else:
            lockfile = folded_state(read_lockfile(previous.lockfile), previous.journal)
            where = previous.shown_lockfile
        require_environment(lockfile, name, previous.lockfile)
    except LockfileError as exc:
        raise PlanError(
            f"--after {name}: cannot read the record of environment {name}: {exc}; nothing was sent"
        ) from None
    if lockfile is None:
        raise PlanError(
            f"--after {name}: environment {name} has no record yet ({escape(where)} does not "
            f"exist): apply {name} first; nothing was sent"
        )
    declared, unloaded = _declared(previous, config)
    return Record(name, lockfile, (*warnings, *unloaded), declared, config.environment)


def _declared(previous: Config, config: Config) -> tuple[Declared | None, tuple[str, ...]]:
    """What PREV's manifests declare, or None and a warning when they do not load."""
    from pfsync.manifests.load import load_manifests

    loaded = load_manifests(previous, other_environments=False)
    if loaded.diagnostics:
        name = previous.environment or ""
        validate = dataclasses.replace(config.invocation, environment=name).command("validate")
        return None, (
            f"--after {name}: the manifests of environment {name} do not load (`{validate}` "
            f"says why), so every create {name}'s record does not hold is held back",
        )
    documents = {m.document_digest for m in loaded.manifests if m.document_digest is not None}
    return Declared(frozenset(documents), frozenset(m.key for m in loaded.manifests)), ()


def hold_back(plan: Plan, record: Record) -> Plan:
    """`plan` without the creates and replaces `record` does not hold from the same document."""
    created = {
        trigger.document_digest
        for trigger in record.lockfile.triggers.values()
        if trigger.document_digest is not None
    }
    # key → whether PREV knows the document of some record of it (businesses may differ by
    # environment: the key is what the manifest names in each)
    keys: dict[str, bool] = {}
    for address, trigger in record.lockfile.triggers.items():
        key = address.partition("/")[2]
        keys[key] = keys.get(key, False) or trigger.document_digest is not None
    held: dict[str, str] = {}
    direct: dict[str, str] = {}
    declared = record.declared
    for entry in plan.to_apply:
        if entry.action == "resend" or entry.desired is None:
            continue  # a NotCreated re-sends this environment's own pending create
        if entry.desired.document_digest in created:
            continue
        if declared is not None and not (
            entry.key in declared.keys or entry.desired.document_digest in declared.documents
        ):
            done = "created" if entry.action == "create" else "replaced"
            receiving = record.receiving or "this environment"
            direct[entry.address] = NOT_DECLARED.format(
                name=record.name, done=done, receiving=receiving
            )
        elif entry.key not in keys:
            held[entry.address] = NOT_YET.format(name=record.name)
        elif keys[entry.key]:
            held[entry.address] = OTHER_VERSION.format(name=record.name)
        else:
            held[entry.address] = UNKNOWN_VERSION.format(name=record.name)
    return _held(plan, record.name, held, direct)


def hold_back_saved(
    plan: Plan, name: str, held: Mapping[str, str], direct: Mapping[str, str]
) -> Plan:
    """`plan` held back as a saved plan made with `--after` recorded it (what it showed)."""
    return _held(plan, name, held, direct)


def _held(plan: Plan, name: str, held: Mapping[str, str], direct: Mapping[str, str]) -> Plan:
    kept: list[PlanEntry] = []
    back: list[HeldBack] = []
    passed: list[HeldBack] = []
    for entry in plan.entries:
        sent = entry.action in ("create", "replace")
        if sent and entry.address in held:
            back.append(HeldBack(entry, held[entry.address]))
            continue
        if sent and entry.address in direct:
            passed.append(HeldBack(entry, direct[entry.address]))
        kept.append(entry)
    return dataclasses.replace(
        plan,
        entries=tuple(kept),
        after=name,
        held_back=tuple(back),
        not_declared=tuple(passed),
    )
