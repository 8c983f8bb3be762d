"""Declarations on any record: carrying them out twice equals carrying them out once, and no
declaration ever changes an address it does not name.

The declarations are any that pass the offline checks (`validate`, which `plan` and `apply` run
first): two declarations for one address, or a `Moved` from a key still declared, never reach
the record."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from project_helpers import LINEAGE, manifest, record

from pfsync.manifests.declarations import declaration_diagnostics
from pfsync.models import IMPORT, MOVED, NOT_CREATED, REMOVED, Declaration, DesiredTrigger
from pfsync.state.declared import CONFLICT, carry_out
from pfsync.state.lockfile import Lockfile
from pfsync.state.trigger_records import HistoryEntry, PendingCreate, TriggerRecord

KEYS = ("a", "b", "c", "d")
IDS = ("trg_1", "trg_2", "trg_3")
INTENTS = ("11111111-2222-4333-8444-555555555555", "99999999-2222-4333-8444-555555555555")
AT = "2026-03-01T00:00:00Z"


def recorded(key: str) -> st.SearchStrategy[TriggerRecord]:
    """A trigger record of `key`, maybe with a trigger it replaced that is still active."""

    def build(trigger_id: str, replaced: str | None) -> TriggerRecord:
        history = (HistoryEntry(replaced, AT, "replaced", "created", 0),) if replaced else ()
        return replace(record(trigger_id, key.upper()), history=history)

    return st.builds(build, st.sampled_from(IDS), st.none() | st.sampled_from(IDS))


def pending_of(key: str) -> st.SearchStrategy[PendingCreate]:
    """An uncertain create of `key`."""

    def build(intent: str) -> PendingCreate:
        return PendingCreate(manifest(key, key.upper()), intent, "2026-02-01T00:00:00Z", "HTTP 504")

    return st.builds(build, st.sampled_from(INTENTS))


records = st.fixed_dictionaries({}, optional={key: recorded(key) for key in KEYS})
pendings = st.fixed_dictionaries({}, optional={key: pending_of(key) for key in KEYS})


def declaration(kind: str, key: str, other: str, trigger_id: str, intent: str) -> Declaration:
    if kind == MOVED:
        return Declaration(MOVED, "biz_1", key, "triggers/d.yaml", 1, to=other)
    if kind == NOT_CREATED:
        return Declaration(NOT_CREATED, "biz_1", key, "triggers/d.yaml", 1, intent=intent)
    return Declaration(kind, "biz_1", key, "triggers/d.yaml", 1, trigger_id=trigger_id)


declarations = st.lists(
    st.builds(
        declaration,
        st.sampled_from((MOVED, REMOVED, IMPORT, NOT_CREATED)),
        st.sampled_from(KEYS),
        st.sampled_from(KEYS),
        st.sampled_from(IDS),
        st.sampled_from(INTENTS),
    ),
    max_size=4,
    # Two declarations from one key (`from` or `key`) are always refused offline: drawn, they
    # were only thrown away. A chain of Moved (a → b, b → c) and a `to` shared with another's
    # key are still drawn, and `assume` still keeps only what passes.
    unique_by=lambda declaration: declaration.address,
)


@st.composite
def declared_and_chosen(draw: st.DrawFn) -> tuple[set[str], list[Declaration]]:
    """Declarations, and the keys the manifests declare, drawn as the offline checks want them:
    each key an Import or NotCreated names, or a Moved moves to (not along a chain), declared;
    each key a Moved moves from not declared; every other key declared or not. These are all
    the pairs that pass those two checks (drawn apart, most pairs failed them)."""
    chosen = draw(declarations)
    sources = {d.key for d in chosen if d.kind == MOVED}
    required = {d.key for d in chosen if d.kind in (IMPORT, NOT_CREATED)} | {
        d.to for d in chosen if d.kind == MOVED and d.to not in sources and d.to != d.key
    }
    free = sorted(set(KEYS) - required - sources)
    also = draw(st.sets(st.sampled_from(free))) if free else set()
    return {key for key in required if key is not None} | also, chosen


def named(declarations: list[Declaration]) -> set[str]:
    return {address for d in declarations for address in (d.address, d.target)}


def of(lockfile: Lockfile, address: str) -> tuple[Any, ...]:
    """Everything the lockfile records for one address."""
    return (
        lockfile.triggers.get(address),
        lockfile.pending.get(address),
        lockfile.forgotten.get(address),
    )


# 600 examples (was 1,000 of a draw that failed the offline checks half the time): as measured
# with --hypothesis-show-statistics, about as many carry something out (60 to 90, more of them
# two or three declarations at once) and about as many conflict (70 to 110) as the 1,000 did,
# in half the time.
@settings(max_examples=600, deadline=None)
@given(
    triggers=records,
    pending=pendings,
    case=declared_and_chosen(),
)
def test_carrying_out_twice_equals_once_and_touches_only_named_addresses(
    triggers: dict[str, Any],
    pending: dict[str, PendingCreate],
    case: tuple[set[str], list[Declaration]],
) -> None:
    declared, chosen = case
    before = Lockfile(
        LINEAGE,
        3,
        "https://api.pocketflows.com",
        triggers={f"biz_1/{key}": r for key, r in triggers.items()},
        pending={f"biz_1/{key}": p for key, p in pending.items()},
    )
    manifests: dict[str, DesiredTrigger] = {
        f"biz_1/{key}": manifest(key, key.upper()) for key in declared
    }
    assume(not declaration_diagnostics(chosen, list(manifests.values())))
    once = carry_out(before, chosen, AT, manifests)
    if once.conflicts:
        # A conflict stops the plan and apply before anything is carried out.
        assert any(step.outcome == CONFLICT for step in once.steps)
        event("a conflict")
        return
    event(f"{len(once.carried)} carried out")
    assert once.lockfile is not None
    twice = carry_out(once.lockfile, chosen, AT, manifests)
    assert twice.lockfile == once.lockfile
    assert twice.carried == []
    for address in {f"biz_1/{key}" for key in KEYS} - named(chosen):
        assert of(once.lockfile, address) == of(before, address), address
