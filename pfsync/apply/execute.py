"""`pfsync apply` below its flags: one call from the CLI does the wiring.

    execute_apply(config, request, io, reporters) -> exit code
        reads the credentials (not in sandbox mode), loads the manifests (their problems go to
        `reporters`), starts the in-process sandbox when asked, builds the client, runs the
        apply (`run.run_apply`) and, with `request.summary`, appends the Markdown report of
        the outcome to that file even when the run stops with an error or a signal.

The CLI keeps the flags, the prompts, the plan's rendering and the exit codes (the shape of
check-jsonschema's command: parse, then one call).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pfsync.apply.run import ApplyIO, ApplyOptions, run_apply
from pfsync.apply.summary import ApplyRecord, append_summary, render_summary, stopped_by
from pfsync.config import Config
from pfsync.support.diagnostics import Diagnostic

if TYPE_CHECKING:
    from pfsync.apply.client import PocketflowsClient


class Server(Protocol):
    """A started API server to apply against (sandbox mode's in-process sandbox)."""

    @property
    def url(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...


@dataclass(frozen=True)
class ApplyRequest:
    """What `pfsync apply` was asked, as its flags say."""

    options: ApplyOptions = field(default_factory=ApplyOptions)
    # sandbox mode: starts the in-process sandbox (stopped when the run ends)
    sandbox: Callable[[], AbstractContextManager[Server]] | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    summary: str | None = None  # `--summary FILE`: append the outcome's Markdown report


@dataclass(frozen=True)
class Reporters:
    """How the CLI reports what is found before the run: manifest problems and warnings."""

    problems: Callable[[list[Diagnostic]], int]  # prints them; the exit code
    warnings: Callable[[list[Diagnostic]], None]
    sandbox_started: Callable[[str], None] = lambda url: None


def execute_apply(config: Config, request: ApplyRequest, io: ApplyIO, reporters: Reporters) -> int:
    """Credentials, manifests, sandbox and client put together, then the run; its exit code."""
    if request.summary is None:
        return _execute(config, request, io, reporters)
    io.record = record = ApplyRecord()
    try:
        return _execute(config, request, io, reporters)
    except BaseException as exc:
        record.stopped = stopped_by(exc)
        raise
    finally:
        if record.has_news:
            _write_summary(config, request.summary, record, io)


def _write_summary(config: Config, path: str, record: ApplyRecord, io: ApplyIO) -> None:
    from pfsync.errors import PfsyncError

    try:
        append_summary(path, render_summary(config, record))
    except PfsyncError as exc:  # the run's own outcome stands; the log has it all
        io.progress(f"Warning: {exc}")


def _execute(config: Config, request: ApplyRequest, io: ApplyIO, reporters: Reporters) -> int:
    from pfsync.apply.credentials import credentials_from_environment
    from pfsync.manifests.load import load_manifests

    credentials = (
        ("", "") if request.sandbox else credentials_from_environment(invocation=config.invocation)
    )
    loaded = load_manifests(config, cwd=Path.cwd())
    if loaded.diagnostics:
        if io.record is not None:
            io.record.stopped = f"The manifests have {len(loaded.diagnostics)} problem(s)."
        return reporters.problems(loaded.diagnostics)
    reporters.warnings(loaded.warnings)
    with _client_factory(config, request, credentials, reporters) as client_factory:
        return run_apply(
            config, loaded.manifests, request.options, client_factory, io, loaded.declarations
        )


@contextlib.contextmanager
def _client_factory(
    config: Config, request: ApplyRequest, credentials: tuple[str, str], reporters: Reporters
) -> Iterator[Callable[[], PocketflowsClient]]:
    """Makes the client when the run first sends (sandbox mode: the sandbox is started first);
    everything it opened is closed when the block ends."""
    from pfsync.apply.client import PocketflowsClient, Timeouts

    with ExitStack() as stack:
        api_url, (username, password) = config.api_url, credentials
        if request.sandbox is not None:
            server = stack.enter_context(request.sandbox())
            api_url, username, password = server.url, server.username, server.password
            reporters.sandbox_started(api_url)
        read = request.read_timeout

        def client_factory() -> PocketflowsClient:
            client = PocketflowsClient(
                api_url,
                username,
                password,
                timeouts=Timeouts(request.connect_timeout, read, read * 2),
                max_connections=request.options.parallelism,
            )
            return stack.enter_context(client)

        yield client_factory
