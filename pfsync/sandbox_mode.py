"""`plan --sandbox` / `apply --sandbox`: the same run against an in-process sandbox API.

Its state lives under `.pfsync/` beside the config (its own lockfile and the sandbox's data), so
trying pfsync never touches the real lockfile and the sandbox remembers what it created.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import TYPE_CHECKING

from pfsync.config import Config, StateConfig

if TYPE_CHECKING:
    from pfsync.sandbox import Sandbox

SANDBOX_DIR = ".pfsync"
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


def start_sandbox(config: Config) -> Sandbox:
    """A started in-process sandbox keeping its triggers in `.pfsync/sandbox-data.json`."""
    from pfsync.sandbox import Sandbox

    state = config.root / SANDBOX_DIR
    state.mkdir(exist_ok=True)
    gitignore = state / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("# pfsync sandbox mode state: not part of the repository\n*\n")
    return Sandbox(
        username="pfsync",
        password=secrets.token_urlsafe(16),
        data_file=state / "sandbox-data.json",
    ).start()
