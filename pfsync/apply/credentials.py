"""API credentials: only from the environment, never a flag or a file, never printed."""

from __future__ import annotations

import dataclasses
import os
import unicodedata
from collections.abc import Mapping

from pfsync.errors import ConfigError
from pfsync.support.invocation import BARE, Invocation
from pfsync.support.textsafety import REDACTED

USERNAME_ENV = "PFSYNC_USERNAME"
PASSWORD_ENV = "PFSYNC_PASSWORD"


def credentials_from_environment(
    environ: Mapping[str, str] | None = None, invocation: Invocation = BARE
) -> tuple[str, str]:
    """(username, password) from PFSYNC_USERNAME and PFSYNC_PASSWORD; ConfigError if unusable.

    Every message names the variable, never its value (and the sandbox-mode apply to try
    instead, with the running `invocation`'s options).
    """
    environ = os.environ if environ is None else environ
    username = environ.get(USERNAME_ENV, "")
    password = environ.get(PASSWORD_ENV, "")
    missing = [
        name for name, value in ((USERNAME_ENV, username), (PASSWORD_ENV, password)) if not value
    ]
    if missing:
        rehearsal = dataclasses.replace(invocation, sandbox=True).command("apply")
        raise ConfigError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: apply needs "
            "the Pocketflows API credentials in the environment (never in a file or a flag). "
            f"To try pfsync without them, use `{rehearsal}`"
        )
    for name, value in ((USERNAME_ENV, username), (PASSWORD_ENV, password)):
        check_credential(name, value)
    if password in REDACTED:
        raise ConfigError(
            f"{PASSWORD_ENV} is made only of `*`, which pfsync cannot hide in a message (it "
            f"writes {REDACTED} for every secret it hides); set a longer password"
        )
    if ":" in username:
        raise ConfigError(
            f"{USERNAME_ENV} contains ':', which HTTP Basic authentication cannot carry in a "
            "user name (it separates the user name from the password)"
        )
    return username, password


def check_credential(name: str, value: str) -> None:
    """ConfigError if HTTP Basic cannot carry `value` (the variable `name`), naming only `name`."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # On POSIX, os.environ holds bytes that are not UTF-8 as lone surrogates.
        raise ConfigError(
            f"{name} is not valid UTF-8 text: it holds a byte that is not part of any UTF-8 "
            "character; set it again as UTF-8 text"
        ) from None
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise ConfigError(
            f"{name} contains a control character (a trailing newline, perhaps), which HTTP "
            "Basic authentication does not allow; set it without one"
        )
