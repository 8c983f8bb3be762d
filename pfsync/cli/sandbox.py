"""`pfsync sandbox`: serve a local Pocketflows API with fault injection; `sandbox list`."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from pfsync.cli.common import (
    global_options,
    is_global_option,
    load_config_or_report,
    text_or_json_option,
)
from pfsync.config import is_loopback_host
from pfsync.errors import SignalStop
from pfsync.support.signals import raising

if TYPE_CHECKING:
    from pfsync.sandbox import Sandbox

USERNAME_ENV = "PFSYNC_USERNAME"
PASSWORD_ENV = "PFSYNC_PASSWORD"
DEFAULT_CREDENTIAL = "sandbox"  # pfsync.sandbox.DEFAULT_USERNAME/PASSWORD, without importing it


def _credential(given: str | None, flag: str, variable: str) -> tuple[str, str]:
    """The flag's value, else the environment variable's (unless empty), else the default."""
    if given is not None:
        return given, f"from {flag}"
    from_environment = os.environ.get(variable, "")
    if from_environment:
        return from_environment, f"from {variable}"
    return DEFAULT_CREDENTIAL, "by default"


@click.group(invoke_without_command=True, subcommand_metavar="[COMMAND [ARGS]...]")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8787,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--username",
    help=f"Basic auth username [default: ${USERNAME_ENV}, else {DEFAULT_CREDENTIAL}]",
)
@click.option(
    "--password",
    help=f"Basic auth password, never printed [default: ${PASSWORD_ENV}, else "
    f"{DEFAULT_CREDENTIAL}]. A flag is visible in `ps`: prefer {PASSWORD_ENV}.",
)
@click.option(
    "--data",
    "data_file",
    type=click.Path(dir_okay=False),
    help="Keep created triggers in this JSON file across restarts (default: memory only).",
)
@click.option(
    "--idempotency-keys",
    is_flag=True,
    help="Honour the Idempotency-Key header (the documented API does not; ignored by default).",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0,
    help="Answer each create request no sooner than this.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    help="Requests per second (token bucket); beyond it, 429 with Retry-After.",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Fraction of creates answered 500 before storing anything.",
)
@click.option(
    "--lose-response-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Fraction of creates stored, then the connection closed without a response.",
)
@click.option("--seed", type=int, help="Seed the random faults for a reproducible run.")
@click.pass_context
def sandbox(
    ctx: click.Context,
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    data_file: str | None,
    idempotency_keys: bool,
    latency_ms: float,
    rate_limit: float | None,
    fail_rate: float,
    lose_response_rate: float,
    seed: int | None,
) -> int:
    """Serve a local Pocketflows create-trigger API, for trying pfsync and for tests.

    The first line printed is the base URL; SIGINT or SIGTERM stops it (exit 0).
    Authenticate with HTTP Basic: --username/--password, else PFSYNC_USERNAME/PFSYNC_PASSWORD
    (not visible in `ps`), else username `sandbox` and password `sandbox`. `pfsync sandbox list`
    shows what sandbox mode's in-process sandbox holds.

    \b
    Sandbox-only endpoints (not part of Pocketflows; no auth, no faults):
      GET  /businesses/ID/triggers   the triggers created for business ID
      GET  /__sandbox/requests       every request received (never its credentials)
      POST /__sandbox/faults         script the next create outcomes, e.g.
                                     ["lose-response", "500", "429", "ok"]
    Outcomes: ok, ok-no-id, lose-response, slow, drop, 503-retry-after, and any 4xx/5xx
    status such as 500, 502, 503, 504, 409, 401, 403, 422, 429.

    \b
    Examples:
      pfsync sandbox --port 0
      PFSYNC_USERNAME=ops PFSYNC_PASSWORD=... pfsync sandbox --port 8787
      pfsync sandbox --latency-ms 50 --rate-limit 100 --seed 1 --data sandbox.json
      pfsync sandbox list

    \b
    Apply to it from a new repository (a lockfile records one API: not your real one's):
      pfsync sandbox --port 8787 &
      pfsync init try --business biz_try --api-url http://127.0.0.1:8787
      PFSYNC_USERNAME=sandbox PFSYNC_PASSWORD=sandbox pfsync -C try apply --auto-approve
    """
    if ctx.invoked_subcommand is not None:
        given = [
            parameter
            for parameter in ctx.command.params
            if parameter.name is not None
            and not is_global_option(parameter)
            and ctx.get_parameter_source(parameter.name) is ParameterSource.COMMANDLINE
        ]
        if given:
            raise click.UsageError(
                f"{given[0].opts[-1]} serves the sandbox; it cannot be combined with "
                f"`sandbox {ctx.invoked_subcommand}`."
            )
        return 0
    from pfsync.sandbox import Sandbox

    username, username_source = _credential(username, "--username", USERNAME_ENV)
    password, password_source = _credential(password, "--password", PASSWORD_ENV)
    server = Sandbox(
        host,
        port,
        username=username,
        password=password,
        data_file=data_file,
        idempotency_keys=idempotency_keys,
        latency_ms=latency_ms,
        rate_limit=rate_limit,
        fail_rate=fail_rate,
        lose_response_rate=lose_response_rate,
        seed=seed,
    )
    _serve_until_stopped(
        server,
        f"{host}:{port}",
        lambda url: _say_serving(url, host, username, username_source, password_source),
    )
    return 0


def _serve_until_stopped(server: Sandbox, address: str, say_serving: Callable[[str], None]) -> None:
    """Start `server`, say where it is, and serve until SIGINT or SIGTERM; then stop it."""
    # The signal unwinds the wait below, so the server stops cleanly.
    try:
        with raising((signal.SIGINT, signal.SIGTERM), SignalStop):
            try:
                server.start()
            except OSError as exc:
                message = f"cannot listen on {address}: {exc.strerror or exc}"
                raise click.ClickException(message) from None
            say_serving(server.url)
            while True:
                if hasattr(signal, "pause"):
                    signal.pause()
                else:  # Windows: no pause(), but Ctrl-C ends a sleep there too
                    time.sleep(3600)
    except SignalStop:
        pass
    finally:
        server.stop()


def _say_serving(
    url: str, host: str, username: str, username_source: str, password_source: str
) -> None:
    """The URL on stdout (a script reads it); who may log in, and warnings, on stderr."""
    click.echo(url)
    sys.stdout.flush()
    if not is_loopback_host(host):
        click.echo(f"Warning: listening on {host}, reachable beyond this machine.", err=True)
    click.echo(
        f"Sandbox Pocketflows API at {url} (user {username!r} {username_source}, "
        f"password {password_source}); SIGINT or SIGTERM stops it.",
        err=True,
    )
    if password_source == "from --password":
        click.echo(
            "Note: --password is visible to other users of this machine (ps); set "
            f"{PASSWORD_ENV} instead.",
            err=True,
        )


@sandbox.command("list", short_help="List the triggers the sandbox holds.")
@text_or_json_option("text: a table; json: a versioned document.")
@click.option("--business", metavar="BUSINESS", help="Only the triggers of BUSINESS.")
@click.option(
    "--data",
    "data_file",
    type=click.Path(dir_okay=False),
    help="Read this data file (of `pfsync sandbox --data FILE`) instead of sandbox mode's "
    ".pfsync/sandbox-data.json.",
)
def list_command(output_format: str, business: str | None, data_file: str | None) -> int:
    """List the triggers the sandbox holds: what you would look up in Pocketflows.

    Reads sandbox mode's data (.pfsync/sandbox-data.json beside pfsync.yaml, kept by
    `apply --sandbox`) without changing it: business, id, name, status and
    created_at of each trigger, oldest first per business. Use it to settle an uncertain
    create in a rehearsal: `pfsync state import --sandbox ADDR ID` when the trigger is there,
    `pfsync state rm --sandbox ADDR` when it is not.

    \b
    Examples:
      pfsync sandbox list
      pfsync sandbox list --format json
      pfsync sandbox list --business biz_123
      pfsync sandbox list --data sandbox.json
    """
    from pfsync.sandbox.store import Store
    from pfsync.support.paths import display_path
    from pfsync.support.textsafety import escape, json_text

    if data_file is not None:
        path, name, hint = Path(data_file), data_file, ""
    else:
        from pfsync.config.rehearsal import sandbox_data_file

        config = load_config_or_report(global_options(), check_url=False)
        if isinstance(config, int):
            return config
        path = sandbox_data_file(config)
        name = display_path(path, config.root)
        hint = f": `{config.invocation.command('apply', options=('--sandbox',))}` creates them"
    exists = path.exists()
    rows = _rows(Store(path), path, business) if exists else []
    if output_format == "json":
        document = {"format_version": 1, "data_file": name, "triggers": rows}
        click.echo(json_text(document, indent=2))
    elif rows:
        click.echo(_table(rows), nl=False)
    elif not exists:
        click.echo(
            f"The sandbox holds no triggers yet ({escape(name)} does not exist){hint}.", err=True
        )
    elif business is not None:
        click.echo(f"The sandbox holds no triggers of business {escape(business)}.", err=True)
    else:
        click.echo("The sandbox holds no triggers yet.", err=True)
    return 0


_COLUMNS = ("business", "id", "name", "status", "created_at")


def _rows(store: Any, path: Path, business: str | None) -> list[dict[str, Any]]:
    """One row per stored trigger (of `business`), businesses sorted, oldest first in each."""
    from pfsync.errors import SandboxDataError

    rows = []
    for each in store.businesses() if business is None else [business]:
        triggers = store.triggers(each)
        if not isinstance(triggers, list) or not all(isinstance(t, dict) for t in triggers):
            raise SandboxDataError(
                f"{path} is not a pfsync sandbox data file: the triggers of {each!r} are not "
                "a list of objects"
            )
        rows += [{"business": each, **{c: t.get(c) for c in _COLUMNS[1:]}} for t in triggers]
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    """An aligned table of `rows`; outside text escaped."""
    from pfsync.support.textsafety import escape

    def cell(value: Any) -> str:
        return "-" if value is None else escape(value if isinstance(value, str) else repr(value))

    table = [tuple(c.upper() for c in _COLUMNS)]
    table += [tuple(cell(row[c]) for c in _COLUMNS) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    return "".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in table
    )


COMMANDS = [sandbox]
