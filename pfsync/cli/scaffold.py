"""`pfsync init` (scaffold a repository) and `pfsync schema` (print the manifest schema)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click

from pfsync.support.invocation import BARE, Invocation
from pfsync.support.placeholders import PLACEHOLDER_BUSINESS, is_placeholder_business


@click.command()
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False))
@click.option(
    "--business",
    default=PLACEHOLDER_BUSINESS,
    show_default=True,
    help="The default business (without it, a placeholder that plan and apply refuse outside "
    "--sandbox).",
)
@click.option(
    "--api-url",
    default="https://api.pocketflows.com",
    show_default=True,
    help="The Pocketflows API this repository's lockfile describes.",
)
@click.option(
    "--ci",
    type=click.Choice(["none", "github", "gitlab"]),
    default="none",
    show_default=True,
    help="Also write CI workflow files; pfsync.yaml then keeps the lockfile in the git state "
    "store, so CI's apply pushes it itself. With --env, pull requests plan every environment "
    "and merges apply to them in the order given, each after the first on an approval.",
)
@click.option(
    "-e",
    "--env",
    "environments",
    multiple=True,
    metavar="NAME",
    help="Define this environment (repeatable), each with its own lockfile under state/.",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(
    directory: str,
    business: str,
    api_url: str,
    ci: str,
    force: bool,
    environments: tuple[str, ...],
) -> int:
    """Start a pfsync repository: config, empty lockfile, an example trigger, .gitignore.

    \b
    Examples:
      pfsync init my-triggers --business biz_123
      pfsync init . --ci github
      pfsync init my-triggers --env staging --env production
    """
    from pfsync.cli.common import global_options
    from pfsync.errors import PfsyncError
    from pfsync.scaffold import scaffold
    from pfsync.support.textsafety import escape

    options = global_options()
    if options.directory is not None:  # `pfsync -C DIR init d`: as if started in DIR
        directory = os.path.normpath(os.path.join(options.directory, directory))
    selected = options.environment
    if selected is not None:  # `pfsync -e NAME init`: NAME would be silently ignored
        defining = [word for name in (*environments, selected) for word in ("--env", name)]
        command = BARE.command("init", directory, options=defining)
        raise PfsyncError(
            f"-e {escape(selected)} before init selects an environment of an existing "
            "repository; to define environments, give them to init: " + escape(command)
        )
    for line in scaffold(Path(directory), business, api_url, ci, force, environments):
        click.echo(line)
    click.echo(_next_steps(directory, business, ci, environments), err=True)
    if ci != "none":
        from pfsync.scaffold.ci import ci_next_steps

        click.echo(ci_next_steps(ci, environments), err=True)
    return 0


def _next_steps(directory: str, business: str, ci: str, environments: tuple[str, ...]) -> str:
    """`Next: cd DIR && pfsync validate && pfsync -e FIRST plan …`: commands that work as pasted
    from where init ran (the directory and the names quoted for the shell)."""
    from pfsync.support.textsafety import escape

    there = Invocation(environment=environments[0] if environments else None)
    # `cd -x` would read -x as an option of cd: `./-x`
    folder = f"./{directory}" if directory.startswith("-") else directory
    go_there = f"cd {shlex.quote(folder)} && " if Path(directory) != Path(".") else ""
    # With --ci the lockfile lives on origin's main (the git state store): plan outside
    # --sandbox needs the repository pushed there first, so the first steps stay in --sandbox.
    fresh = ci != "none" and not _in_git_repository(Path(directory))
    git_init = "git init -b main && " if fresh else ""
    rehearse = there.command("plan", options=("--sandbox",))
    if is_placeholder_business(business):  # plan refuses it but with --sandbox
        then = f"{rehearse}   (set your business id in pfsync.yaml to plan against Pocketflows)"
    elif ci != "none":
        then = rehearse
    else:
        apply = there.command("apply", options=("--sandbox",))
        then = f"{there.command('plan')}   (try an apply with `{apply}`)"
    validate = BARE.command("validate")  # without -e it checks every environment
    # A name from the command line may hold what a terminal acts on: escaped, line by line.
    steps = ["", escape(f"Next: {go_there}{git_init}{validate} && {then}")]
    if ci != "none":
        steps.append(escape(_push_first(there, fresh, plural=bool(environments))))
    return "\n".join(steps)


def _in_git_repository(directory: Path) -> bool:
    """Whether `directory` is in a git work tree (a `.git` in it or a folder above it)."""
    where = directory.resolve()
    return any((folder / ".git").exists() for folder in (where, *where.parents))


def _push_first(there: Invocation, fresh: bool, plural: bool) -> str:
    """The step before a plan against Pocketflows with the git state store: push to origin."""
    said = (
        f"Before `{there.command('plan')}` against Pocketflows, push this repository to origin's "
        f"main, where the git state store keeps the {'lockfiles' if plural else 'lockfile'}"
    )
    if not fresh:  # an existing repository: its remote and history are its own
        return f"{said}."
    return (
        f'{said} (URL: your repository\'s): git add -A && git commit -m "Start pfsync" && '
        "git remote add origin URL && git push -u origin main"
    )


@click.command()
@click.option(
    "--name",
    type=click.Choice(
        [
            "manifest",
            "moved",
            "removed",
            "import",
            "notcreated",
            "trigger-request",
            "trigger",
            "lockfile",
            "config",
        ]
    ),
    default="manifest",
    show_default=True,
    help="Which schema to print.",
)
def schema(name: str) -> int:
    """Print a JSON Schema (default: the manifest schema, self-contained) for editors and tools.

    \b
    Examples:
      pfsync schema > manifest.schema.json
      pfsync schema --name trigger
      pfsync schema --name moved > moved.schema.json
    """
    import json

    from pfsync.schemas import load_schema, self_contained_manifest_schema

    if name == "manifest":
        document = self_contained_manifest_schema()
    else:
        document = load_schema(f"{name}.schema.json")
    text = json.dumps(document, indent=2, ensure_ascii=False)
    click.echo(text)
    return 0


COMMANDS = [init, schema]
