"""The command a person is told to run: the running invocation's words, quoted for the shell.

Every command pfsync prints for a person (a remedy, a hint, lock advice, a next step) must work
as pasted: from the same directory, it reaches the same configuration, the same environment and,
in sandbox mode, the sandbox's own lockfile. So each is built here, from how the running pfsync
was pointed at its configuration, never written out by hand.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Invocation:
    """How the running pfsync was pointed at its configuration (what a printed command repeats)."""

    environment: str | None = None  # -e NAME
    directory: str | None = None  # -C DIR, as given (relative to where pfsync was started)
    config_path: str | None = None  # --config FILE, as given
    sandbox: bool = False  # --sandbox: sandbox mode's lockfile and API

    def command(
        self,
        name: str,
        *arguments: str,
        options: Sequence[str] = (),
        sandbox_option: bool = True,
    ) -> str:
        """`pfsync [-C DIR] [--config FILE] [-e NAME] NAME [--sandbox] ARGUMENTS… OPTIONS…`,
        shell-quoted.

        `name` is the command's path (`"state rm"`); `arguments` its positional arguments, and
        `options` its option words (`"--force"`, or `"--out", FILE`). When an argument starts
        with `-` (a file named `-q.json`), the options go first and `--` before the arguments,
        so that it stays an argument. `sandbox_option=False` for commands that take
        no `--sandbox` (`sandbox list`, `validate`). Each word is quoted on its own, so an
        address or a path with a space or a `$` stays one word.
        """
        words = ["pfsync", *self.global_words(), *name.split()]
        if self.sandbox and sandbox_option:
            words.append("--sandbox")
        if any(argument.startswith("-") for argument in arguments):
            words += [*options, "--", *arguments]
        else:
            words += [*arguments, *options]
        return shlex.join(words)

    @property
    def where_to_look(self) -> str:
        """Where a person looks a trigger up, to end "look for the trigger …": Pocketflows, or in
        sandbox mode the sandbox's own list (the triggers a rehearsal made are only there)."""
        if self.sandbox:
            return f"with `{self.command('sandbox list', sandbox_option=False)}`"
        return "in Pocketflows"

    def global_words(self) -> list[str]:
        """The global options that point a command at this configuration: -C, --config, -e."""
        words = []
        if self.directory is not None:
            words += ["-C", self.directory]
        if self.config_path is not None:
            words += ["--config", self.config_path]
        if self.environment is not None:
            words += ["-e", self.environment]
        return words


# `pfsync` run with no -C, --config, -e or --sandbox: the default of pure functions' callers
# that have no configuration (tests, a plan made in memory).
BARE = Invocation()
