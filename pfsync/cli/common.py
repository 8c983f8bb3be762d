"""What every command shares: global options and config loading."""

from __future__ import annotations

from dataclasses import dataclass

import click

from pfsync.config import Config


@dataclass(frozen=True)
class GlobalOptions:
    """Options given before the command name."""

    verbosity: int  # -1 quiet, 0 normal, 1+ verbose
    directory: str | None
    config_path: str | None


def global_options() -> GlobalOptions:
    """The global options of the running command."""
    options = click.get_current_context().find_object(GlobalOptions)
    assert options is not None
    return options


def load_config_or_report(
    options: GlobalOptions, *, paths: tuple[str, ...] = (), output_format: str = "text"
) -> Config | int:
    """The configuration, or exit code 1 after printing its located problems."""
    from pfsync.config import ConfigInvalid, load_config
    from pfsync.diagnostics import FORMATTERS

    try:
        return load_config(options.config_path, options.directory, paths=paths)
    except ConfigInvalid as exc:
        click.echo(FORMATTERS[output_format](exc.diagnostics), nl=False)
        click.echo("The configuration file is invalid; fix it and run again.", err=True)
        return 1
