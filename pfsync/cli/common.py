"""What every command shares: global options and config loading."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from pfsync.config import Config
from pfsync.support.diagnostics import Diagnostic

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class GlobalOptions:
    """Options given before the command name."""

    verbosity: int  # -1 quiet, 0 normal, 1+ verbose
    directory: str | None
    config_path: str | None
    no_color: bool = False
    environment: str | None = None  # -e NAME
    no_cache: bool = False  # --no-cache


def global_options() -> GlobalOptions:
    """The global options of the running command."""
    options = click.get_current_context().find_object(GlobalOptions)
    assert options is not None
    return options


def load_config_or_report(
    options: GlobalOptions,
    *,
    paths: tuple[str, ...] = (),
    output_format: str = "text",
    check_url: bool = True,
    needs_environment: bool = True,
    sandbox: bool = False,
) -> Config | int:
    """The configuration, or exit code 1 after printing its located problems.

    `check_url=False` for commands that never talk to the API; `needs_environment=False` for
    validate, which checks every environment when none is named. With `sandbox` (`--sandbox`),
    sandbox mode's config: its own lockfile and API, so the configured URL is not checked.
    """
    from pfsync.config import load_config
    from pfsync.errors import ConfigInvalid
    from pfsync.support.diagnostics import FORMATTERS

    try:
        config = load_config(
            options.config_path,
            options.directory,
            paths=paths,
            check_url=check_url and not sandbox,
            environment=options.environment,
            needs_environment=needs_environment,
            no_cache=options.no_cache,
        )
    except ConfigInvalid as exc:
        click.echo(FORMATTERS[output_format](exc.diagnostics, ()), nl=False)
        click.echo("The configuration file is invalid; fix it and run again.", err=True)
        return 1
    if sandbox:
        from pfsync.config.rehearsal import sandbox_config

        return sandbox_config(config)
    return config


def lock_timeout_option(function: Any) -> Any:
    """The `--lock-timeout SECONDS` option of state-changing commands."""
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=0.0,
        show_default=True,
        metavar="SECONDS",
        help="Wait up to SECONDS for another pfsync holding the state lock (0: fail at once).",
    )(function)


def text_or_json_option(help_text: str) -> Callable[[F], F]:
    """`--format text|json` (default text), as `state list`, `state show`, `sandbox list` take."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help=help_text,
    )


def use_color() -> bool:
    """Colour only on a terminal, without NO_COLOR (https://no-color.org) or --no-color."""
    import os
    import sys

    context = click.get_current_context(silent=True)
    options = context.find_object(GlobalOptions) if context is not None else None
    if options is not None and options.no_color:
        return False
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def report_manifest_warnings(warnings: Sequence[Diagnostic]) -> None:
    """Print each manifest warning on stderr, as plan does (`Warning: file:line:col: …`)."""
    from pfsync.support.diagnostics import located

    for warning in warnings:
        click.echo(f"Warning: {located(warning)}", err=True)


def report_manifest_problems(diagnostics: Sequence[Diagnostic]) -> int:
    """Print manifest problems (text format) on stderr and return exit code 1."""
    from pfsync.support.diagnostics import format_text

    click.echo(format_text(diagnostics), nl=False, err=True)
    click.echo(
        f"Error: {len(diagnostics)} problem(s) in the manifests; fix them (see `pfsync validate`) "
        "and run again.",
        err=True,
    )
    return 1
