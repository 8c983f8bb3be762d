"""The in-process sandbox that `plan`/`apply`/`state … --sandbox` rehearse against."""

from __future__ import annotations

import secrets
from typing import Any

from pfsync.config import Config
from pfsync.config.rehearsal import prepare_sandbox_dir, sandbox_data_file
from pfsync.sandbox import Sandbox


def start_sandbox(config: Config, **faults: Any) -> Sandbox:
    """A started in-process sandbox keeping its triggers in `.pfsync/sandbox-data.json`.

    `faults` are Sandbox keywords (`pfsync.sandbox.faults.parse_fault_spec`), e.g.
    lose_response_rate=0.3.
    """
    prepare_sandbox_dir(config)
    return Sandbox(
        username="pfsync",
        password=secrets.token_urlsafe(16),
        data_file=sandbox_data_file(config),
        **faults,
    ).start()
