"""Where `plan`/`apply`/`state … --sandbox` rehearsals keep their state: the config of sandbox mode.

Its state lives under `.pfsync/` beside the config (its own lockfile and the sandbox's data), so
trying pfsync never touches the real lockfile and the sandbox remembers what it created:

    .pfsync/pfsync.lock          sandbox mode's lockfile (API `sandbox:.pfsync`), with its
                                 journal and state lock beside it
    .pfsync/sandbox-data.json    the in-process sandbox's triggers (`pfsync sandbox list`)
    .pfsync/.gitignore           `*`: none of it belongs in the repository

With environments, each has its own folder, `.pfsync/env/NAME/`, holding both files, so
rehearsing one environment never shows another's triggers. Deleting `.pfsync/` starts the
rehearsal over.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pfsync.config import LOCAL_DIR, Config, StateConfig

SANDBOX_DIR = LOCAL_DIR
SANDBOX_DATA = "sandbox-data.json"
# What the sandbox lockfile records as its API: the in-process server's port changes every run.
SANDBOX_API_URL = "sandbox:.pfsync"


def sandbox_state_dir(config: Config) -> Path:
    """Where sandbox mode keeps the lockfile and the sandbox's data (per environment)."""
    folder = config.root / SANDBOX_DIR
    return folder / "env" / config.environment if config.environment else folder


def sandbox_config(config: Config) -> Config:
    """The config with the lockfile and API of sandbox mode."""
    state = sandbox_state_dir(config)
    return dataclasses.replace(
        config,
        lockfile=state / "pfsync.lock",
        api_url=SANDBOX_API_URL,
        state=StateConfig(),  # a local file: rehearsals never touch a remote store
        invocation=dataclasses.replace(config.invocation, sandbox=True),
    )


def is_sandbox(config: Config) -> bool:
    """Whether `config` is sandbox mode's (from `sandbox_config`)."""
    return config.api_url == SANDBOX_API_URL


def sandbox_data_file(config: Config) -> Path:
    """Where the in-process sandbox keeps its triggers."""
    return sandbox_state_dir(config) / SANDBOX_DATA


def prepare_sandbox_dir(config: Config) -> Path:
    """Create `.pfsync/` (ignored by git) and the environment's folder if needed; returns it."""
    config.prepare_local_dir()
    state = sandbox_state_dir(config)
    state.mkdir(parents=True, exist_ok=True)
    return state
