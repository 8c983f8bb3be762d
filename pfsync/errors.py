"""The exceptions pfsync raises on purpose; the CLI maps each to a message and exit code 1.

    PfsyncError                  every expected failure; `str()` is a complete user message
    ├── ConfigError              pfsync.yaml or the environment is unusable
    ├── LockfileError            the lockfile or journal cannot be trusted (never overwritten)
    │   └── LockHeldError        another pfsync holds the state lock
    ├── PlanError                a saved plan is stale or malformed
    └── ApiError                 the Pocketflows API refused the run as a whole (e.g. 401/403)

    SignalStop (a BaseException) SIGTERM or SIGHUP while a remote store's lock is held and
                                 nothing is being sent: unwinds so the lock is released

Bad manifests are not exceptions: they are `Diagnostic` values, so every file gets reported.
"""

from __future__ import annotations


class PfsyncError(Exception):
    """An expected failure whose message tells the user what happened and what to do."""

    exit_code = 1


class ConfigError(PfsyncError):
    """The configuration file or the environment cannot be used."""


class LockfileError(PfsyncError):
    """The lockfile or its journal is unreadable, invalid, or from a newer pfsync."""


class LockHeldError(LockfileError):
    """Another pfsync process holds the state lock."""


class PlanError(PfsyncError):
    """A saved plan cannot be applied as it stands."""


class ApiError(PfsyncError):
    """The API refused the whole run (authentication, unusable URL)."""


class SignalStop(BaseException):
    """A signal asked the process to stop; exits 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
