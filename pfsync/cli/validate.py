"""`pfsync validate`: check manifests offline, without a network call."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import click

from pfsync.cli.common import global_options, load_config_or_report
from pfsync.support.diagnostics import FORMATTERS, sort_diagnostics


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--format",
    "output_format",
    type=click.Choice(sorted(FORMATTERS)),
    default="text",
    show_default=True,
    help="text: file:line:col: message [path]; json: a document; github: workflow annotations.",
)
def validate(paths: tuple[str, ...], output_format: str) -> int:
    """Check manifests (default: the configured ones) without network or credentials.

    Address uniqueness is checked against all configured manifests, even when only some files
    are named (as pre-commit does).

    \b
    Examples:
      pfsync validate
      pfsync validate triggers/welcome.yaml --format github
    """
    from pfsync.manifests.load import load_every_environment

    options = global_options()
    load = functools.partial(
        load_config_or_report, paths=paths, output_format=output_format, check_url=False
    )
    config = load(options, needs_environment=False)
    if isinstance(config, int):
        return config
    configs = [config]
    if config.environment is None and config.environments:
        # Without -e, every environment: each resolves its own values and business.
        selected = [load(replace(options, environment=name)) for name in config.environments]
        configs = [c for c in selected if not isinstance(c, int)]
    named = list(paths) if paths else None
    result = load_every_environment(configs, named, cwd=Path.cwd(), with_bodies=False)
    if not paths:  # (pre-commit names the changed manifests: pfsync.yaml is not one of them)
        from pfsync.config.placeholders import placeholder_warnings

        result.warnings = sort_diagnostics(
            [*result.warnings, *(w for c in configs for w in placeholder_warnings(c))]
        )
    output = FORMATTERS[output_format](result.diagnostics, result.warnings)
    if output:
        click.echo(output, nl=False)
    if options.verbosity >= 0:
        count = len(result.manifests)
        warned = len(result.warnings)
        also = f"; {warned} warning{'s' if warned > 1 else ''}" if warned else ""
        if result.diagnostics:
            click.echo(f"{len(result.diagnostics)} problem(s) found{also}.", err=True)
        elif result.per_environment:
            counts = ", ".join(f"{n} in {name}" for name, n in result.per_environment.items())
            click.echo(f"Trigger(s) valid: {counts}{also}.", err=True)
        else:
            click.echo(f"{count} trigger(s) valid{also}.", err=True)
    return 1 if result.diagnostics else 0


COMMANDS = [validate]
