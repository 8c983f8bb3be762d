"""The command a person is told to run: the running invocation's words, quoted for the shell.

Every command pfsync prints for a person (a remedy, a hint, lock advice, a next step) must work
as pasted: from the same directory, it reaches the same configuration, the same environment and,
in sandbox mode, the sandbox's own lockfile. So each is built here, from how the running pfsync
was pointed at its configuration, never written out by hand.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Invocation:
    """How the running pfsync was pointed at its configuration (what a printed command repeats)."""

    environment: str | None = None  # -e NAME
    directory: str | None = None  # -C DIR, as given (relative to where pfsync was started)
    config_path: str | None = None  # --config FILE, as given
    sandbox: bool = False  # --sandbox: sandbox mode's lockfile and API

    def command(self, name: str, *arguments: str, sandbox_option: bool = True) -> str:
        """`pfsync [-C DIR] [--config FILE] [-e NAME] NAME [--sandbox] ARGUMENTS…`, shell-quoted.

        `name` is the command's path (`"state rm"`); `sandbox_option=False` for commands that
        take no `--sandbox` (`sandbox list`, `validate`). Arguments are quoted one by one, so an
        address or a path with a space or a `$` stays one word.
        """
        words = ["pfsync"]
        if self.directory is not None:
            words += ["-C", self.directory]
        if self.config_path is not None:
            words += ["--config", self.config_path]
        if self.environment is not None:
            words += ["-e", self.environment]
        words += name.split()
        if self.sandbox and sandbox_option:
            words.append("--sandbox")
        words += arguments
        return shlex.join(words)
