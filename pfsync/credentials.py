"""API credentials: only from the environment, never a flag or a file, never printed (§5)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pfsync.errors import ConfigError

USERNAME_ENV = "PFSYNC_USERNAME"
PASSWORD_ENV = "PFSYNC_PASSWORD"


def credentials_from_environment(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(username, password) from PFSYNC_USERNAME and PFSYNC_PASSWORD; ConfigError if unset."""
    environ = os.environ if environ is None else environ
    username = environ.get(USERNAME_ENV, "")
    password = environ.get(PASSWORD_ENV, "")
    missing = [
        name for name, value in ((USERNAME_ENV, username), (PASSWORD_ENV, password)) if not value
    ]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: apply needs "
            "the Pocketflows API credentials in the environment (never in a file or a flag). "
            "To try pfsync without them, use `pfsync apply --sandbox`"
        )
    return username, password
