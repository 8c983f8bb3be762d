"""`plan`/`apply`/`state … --sandbox`: rehearsals against an in-process sandbox API.

Its state lives under `.pfsync/` beside the config (its own lockfile and the sandbox's data), so
trying pfsync never touches the real lockfile and the sandbox remembers what it created:

    .pfsync/pfsync.lock          sandbox mode's lockfile (API `sandbox:.pfsync`), with its
                                 journal and state lock beside it
    .pfsync/sandbox-data.json    the in-process sandbox's triggers (`pfsync sandbox list`)
    .pfsync/.gitignore           `*`: none of it belongs in the repository

Deleting `.pfsync/` starts the rehearsal over.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfsync.config import Config, StateConfig

if TYPE_CHECKING:
    from pfsync.planner import Plan
    from pfsync.sandbox import Sandbox

SANDBOX_DIR = ".pfsync"
SANDBOX_DATA = "sandbox-data.json"
# What the sandbox lockfile records as its API: the in-process server's port changes every run.
SANDBOX_API_URL = "sandbox:.pfsync"


def sandbox_config(config: Config) -> Config:
    """The config with the lockfile and API of sandbox mode."""
    state = config.root / SANDBOX_DIR
    return dataclasses.replace(
        config,
        lockfile=state / "pfsync.lock",
        api_url=SANDBOX_API_URL,
        state=StateConfig(),  # a local file: rehearsals never touch a remote store
    )


def is_sandbox(config: Config) -> bool:
    """Whether `config` is sandbox mode's (from `sandbox_config`)."""
    return config.api_url == SANDBOX_API_URL


def sandbox_data_file(config: Config) -> Path:
    """Where the in-process sandbox keeps its triggers."""
    return config.root / SANDBOX_DIR / SANDBOX_DATA


def prepare_sandbox_dir(config: Config) -> Path:
    """Create `.pfsync/` (ignored by git) if needed; returns it."""
    state = config.root / SANDBOX_DIR
    state.mkdir(exist_ok=True)
    gitignore = state / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("# pfsync sandbox mode state: not part of the repository\n*\n")
    return state


def start_sandbox(config: Config, **faults: Any) -> Sandbox:
    """A started in-process sandbox keeping its triggers in `.pfsync/sandbox-data.json`.

    `faults` are Sandbox keywords (`pfsync.sandbox.faults.parse_fault_spec`), e.g.
    lose_response_rate=0.3.
    """
    from pfsync.sandbox import Sandbox

    prepare_sandbox_dir(config)
    return Sandbox(
        username="pfsync",
        password=secrets.token_urlsafe(16),
        data_file=sandbox_data_file(config),
        **faults,
    ).start()


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
