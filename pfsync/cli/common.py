"""What every command shares: global options and config loading."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from pfsync.config import Config
from pfsync.support.diagnostics import Diagnostic
from pfsync.support.invocation import BARE, Invocation

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class GlobalOptions:
    """The global options of the running command, wherever they were given."""

    verbosity: int  # -1 quiet, 0 normal, 1+ verbose
    directory: str | None
    config_path: str | None
    no_color: bool = False
    environment: str | None = None  # -e NAME
    no_cache: bool = False  # --no-cache


# Where the global options given so far are kept: `Context.meta` is one dictionary shared by the
# group's context and every command's below it, so `-e` before and after the command meet there.
_GIVEN = "pfsync.global_options"


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep a global option's value if it was given: a value given later (after the command
    name) replaces one given before it; -v counts add up; a flag once given stays given."""
    if (
        param.name is None
        or ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE
    ):
        return value
    given: dict[str, Any] = ctx.meta.setdefault(_GIVEN, {})
    name = param.name.removeprefix("global_")
    given[name] = given.get(name, 0) + value if name == "verbose" else value
    return value


def _global_parameters() -> list[click.Option]:
    """New instances of the global options (one set per command: click owns each parameter).
    Their names start with `global_`, apart from any command's own (init's DIRECTORY)."""
    shared: dict[str, Any] = {"expose_value": False, "callback": _remember}
    return [
        click.Option(
            ["-v", "--verbose", "global_verbose"],
            count=True,
            help="Say more (repeatable).",
            **shared,
        ),
        click.Option(
            ["-q", "--quiet", "global_quiet"],
            is_flag=True,
            help="Print only errors and requested output.",
            **shared,
        ),
        click.Option(
            ["--no-color", "global_no_color"],
            is_flag=True,
            help="Never colour the output (as NO_COLOR=1).",
            **shared,
        ),
        click.Option(
            ["-C", "global_directory"],
            type=click.Path(file_okay=False),
            metavar="DIR",
            help="Run as if started in DIR (its pfsync.yaml is used).",
            **shared,
        ),
        click.Option(
            ["--config", "global_config_path"],
            type=click.Path(dir_okay=False),
            metavar="FILE",
            help="Use this pfsync.yaml instead of searching for one.",
            **shared,
        ),
        click.Option(
            ["-e", "--env", "global_environment"],
            metavar="NAME",
            help="The environment of pfsync.yaml to work on (required when it defines "
            "environments).",
            **shared,
        ),
        click.Option(
            ["--no-cache", "global_no_cache"],
            is_flag=True,
            help="Read every manifest again instead of reusing .pfsync/cache/ (as "
            "PFSYNC_NO_CACHE=1).",
            **shared,
        ),
    ]


def is_global_option(param: click.Parameter) -> bool:
    """Whether `param` is one of the global options every command accepts."""
    return param.callback is _remember


def with_global_options(command: click.Command) -> click.Command:
    """`command` and every command below it accepting the global options (before or after a
    command's name). A command's own option of the same name keeps it (`init --env NAME`
    defines environments), and the global one is left out of that command."""
    taken = {name for param in command.params for name in param.opts + param.secondary_opts}
    for option in _global_parameters():
        if not taken & set(option.opts):
            command.params.append(option)
    if isinstance(command, click.Group):
        for child in command.commands.values():
            with_global_options(child)
    return command


def global_options() -> GlobalOptions:
    """The global options of the running command (given before or after its name: the later
    value wins; -v counts add up)."""
    given: dict[str, Any] = click.get_current_context().meta.get(_GIVEN, {})
    return GlobalOptions(
        verbosity=-1 if given.get("quiet") else given.get("verbose", 0),
        directory=given.get("directory"),
        config_path=given.get("config_path"),
        no_color=given.get("no_color", False),
        environment=given.get("environment"),
        no_cache=given.get("no_cache", False),
    )


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
    if context is not None and global_options().no_color:
        return False
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def report_manifest_warnings(warnings: Sequence[Diagnostic]) -> None:
    """Print each manifest warning on stderr, as plan does (`Warning: file:line:col: …`)."""
    from pfsync.support.diagnostics import located

    for warning in warnings:
        click.echo(f"Warning: {located(warning)}", err=True)


def report_manifest_problems(
    diagnostics: Sequence[Diagnostic], invocation: Invocation = BARE
) -> int:
    """Print manifest problems (text format) on stderr and return exit code 1 (`invocation`:
    the run's, which the `validate` command it names repeats)."""
    from pfsync.support.diagnostics import format_text
    from pfsync.support.textsafety import escape

    validate = escape(invocation.command("validate", sandbox_option=False))
    click.echo(format_text(diagnostics), nl=False, err=True)
    click.echo(
        f"Error: {len(diagnostics)} problem(s) in the manifests; fix them (see `{validate}`) "
        "and run again.",
        err=True,
    )
    return 1
