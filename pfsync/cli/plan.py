"""`pfsync plan`: compare manifests with the lockfile and say what apply would do."""

from __future__ import annotations

import os
from pathlib import Path

import click

from pfsync.cli.common import (
    global_options,
    load_config_or_report,
    report_manifest_problems,
    use_color,
)
from pfsync.plan.render import FORMATS
from pfsync.support.collector import collector_paused
from pfsync.support.textsafety import escape


@click.command()
@click.option(
    "--format",
    "output_format",
    type=click.Choice(list(FORMATS)),
    default="text",
    show_default=True,
    help="text for a terminal, json for tools, markdown for a pull-request comment.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Also save the plan (JSON with digests) for `pfsync apply FILE`.",
)
@click.option(
    "--target", "targets", multiple=True, metavar="ADDR", help="Plan only ADDR (repeatable)."
)
@click.option(
    "--replace",
    "replace",
    multiple=True,
    metavar="ADDR",
    help="Plan a new draft trigger for ADDR; the old one stays active (repeatable).",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Plan against the state of sandbox mode (.pfsync/), as `apply --sandbox` would.",
)
@click.option(
    "--base-plan",
    type=click.Path(dir_okay=False),
    help="A `plan --format json` of the base branch: with --detailed-exitcode, exit 3 only for "
    "what needs a person and is not already in it (for pull-request checks).",
)
@click.option(
    "--after",
    metavar="ENV",
    help="Plan only the creates environment ENV's record holds as created from the same "
    "manifest document; show the others as held back (promotion between environments).",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0: nothing to do, 2: changes apply can make, 3: something needs a person.",
)
def plan(
    output_format: str,
    out: str | None,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    sandbox: bool,
    base_plan: str | None,
    after: str | None,
    detailed_exitcode: bool,
) -> int:
    """Show what apply would create, and what needs a person (no credentials, no network).

    Actions: + create, ~ update, -/+ replace, - delete, ? uncertain. pfsync can only create
    triggers, so each update, delete or uncertain entry says exactly what a person must do.

    \b
    Examples:
      pfsync plan
      pfsync plan --format markdown > plan.md
      pfsync plan --out plan.json && pfsync apply plan.json
    """
    from pfsync.plan.run import plan_report

    options = global_options()
    config = load_config_or_report(options, sandbox=sandbox)
    if isinstance(config, int):
        return config
    color = use_color() and output_format == "text"
    # Planning and rendering 10,000 creates builds a few hundred thousand lists that the
    # collector would walk again and again; the few cycles made meanwhile (json's indenting
    # encoder, a remote store's client) are freed once it runs again.
    with collector_paused():
        report = plan_report(
            config, targets, replace, color=color, after=after, base_plan=base_plan
        )
        if isinstance(report, list):
            return report_manifest_problems(report, config.invocation)
        for warning in report.warnings:
            click.echo(f"Warning: {warning}", err=True)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            from pfsync.plan.run import workflow_annotations

            click.echo("".join(workflow_annotations(report)), err=True, nl=False)
        if out is not None:
            from pfsync.plan.saved import save_plan

            save_plan(Path(out), report)
        from pfsync.plan.render.text import RENDERERS

        click.echo(RENDERERS[output_format](report), nl=False, color=color)
        if options.verbosity >= 1:
            from pfsync.plan.run import verbose_lines

            for line in verbose_lines(config, report):
                click.echo(line, err=True)
    if out is not None and options.verbosity >= 0:
        apply = config.invocation.command("apply", out)
        click.echo(f"Saved the plan to {escape(out)}; apply it with `{escape(apply)}`.", err=True)
    if base_plan is not None and detailed_exitcode:
        from pfsync.plan.compare import exit_code_against_base

        code, only_on_base = exit_code_against_base(report.plan, base_plan, config.invocation)
        if only_on_base and options.verbosity >= 0:
            click.echo(
                "What needs a person was already in the base plan; not counted against this "
                "change.",
                err=True,
            )
        return code
    return report.plan.exit_code(detailed_exitcode)


COMMANDS = [plan]
