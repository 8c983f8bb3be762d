"""Every exception pfsync raises on purpose; the CLI maps each to its message and exit code 1.

    PfsyncError                    every expected failure; `str()` is a complete user message
    ├── ConfigError                pfsync.yaml or the environment is unusable
    │   └── ConfigInvalid          pfsync.yaml has located problems (`.diagnostics`)
    ├── LockfileError              the lockfile or journal cannot be trusted (never overwritten)
    │   ├── LockHeldError          another pfsync holds the state lock
    │   ├── JournalWriteError      a journal record could not be made durable: stop sending
    │   └── StoreError             a state store cannot be read or written: stop sending
    │       └── StoreConflict      the store's lockfile changed since it was read
    ├── StateChangeError           a `state rm`/`mv`/`import` does not fit the lockfile
    ├── PlanError                  a --target/--replace makes no sense, or a saved plan is
    │                              stale or malformed
    │   └── DeclarationConflict    a declaration contradicts the lockfile (`.diagnostics`)
    ├── ApplyRefused               apply refused before sending anything
    └── SandboxDataError           the sandbox's data file cannot be read (left untouched)

    SignalStop (a BaseException)   SIGTERM or SIGHUP while a remote store's lock is held and
                                   nothing is being sent: unwinds so the lock is released;
                                   exits 128 + the signal's number

Bad manifests are not exceptions: they are `Diagnostic` values, so every file gets reported.
Failed creates are not exceptions either: they are outcomes, recorded and summarised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pfsync.support.diagnostics import Diagnostic


class PfsyncError(Exception):
    """An expected failure whose message tells the user what happened and what to do."""

    exit_code = 1


class ConfigError(PfsyncError):
    """The configuration file or the environment cannot be used."""


class ConfigInvalid(ConfigError):
    """pfsync.yaml has located problems, reported like manifest problems."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        count = len(diagnostics)
        super().__init__(f"{count} problem{'' if count == 1 else 's'} in the configuration")
        self.diagnostics = list(diagnostics)


class LockfileError(PfsyncError):
    """The lockfile or its journal is unreadable, invalid, or from a newer pfsync."""


class LockHeldError(LockfileError):
    """Another pfsync process holds the state lock."""


class JournalWriteError(LockfileError):
    """A journal record could not be made durable; no further create may be sent."""


class StoreError(LockfileError):
    """The store cannot be read or written; nothing more may be sent."""


class StoreConflict(StoreError):
    """The lockfile in the store changed since it was read (a compare-and-swap lost)."""


class StateChangeError(PfsyncError):
    """A requested state change does not fit the lockfile (missing address, existing target…)."""


class PlanError(PfsyncError):
    """A plan cannot be made as asked, or a saved plan cannot be applied as it stands."""


class DeclarationConflict(PlanError):
    """A declaration (a `Moved`) contradicts the lockfile; located like a manifest problem."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        from pfsync.support.diagnostics import format_text

        super().__init__(format_text(diagnostics).rstrip("\n"))
        self.diagnostics = list(diagnostics)


class ApplyRefused(PfsyncError):
    """Apply refused before sending anything."""


class SandboxDataError(PfsyncError):
    """The sandbox data file cannot be read; it is left untouched."""


class SignalStop(BaseException):
    """A signal asked the process to stop; exits 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
