"""Remedies and progress lines worded for sandbox mode (`--sandbox` rehearsals)."""

from __future__ import annotations

import dataclasses
import re

from pfsync.plan.planner import Plan

_STATE_COMMAND = re.compile(r"`pfsync state (rm|mv|import) ([^`]*)`")
_LOOK_UP = re.compile(r"((?:[Ll]ook for (?:it|the trigger)|find it)) in Pocketflows")


def sandbox_wording(text: str) -> str:
    """A remedy or progress line as it applies in sandbox mode.

    Its state commands gain `--sandbox` (without it they would change the real lockfile), and
    where a person would look a trigger up in Pocketflows, `pfsync sandbox list` shows it.
    """
    text = _STATE_COMMAND.sub(r"`pfsync state \1 --sandbox \2`", text)
    return _LOOK_UP.sub(r"\1 with `pfsync sandbox list`", text)


def with_sandbox_remedies(plan: Plan) -> Plan:
    """`plan` with every remedy worded for sandbox mode."""
    entries = tuple(
        dataclasses.replace(entry, remedy=sandbox_wording(entry.remedy)) if entry.remedy else entry
        for entry in plan.entries
    )
    return dataclasses.replace(plan, entries=entries)
