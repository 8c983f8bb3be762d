"""The `pfsync` command line: parse flags, call the core, turn results into exit codes.

Each command lives in its own module here and keeps heavy imports (httpx, deepdiff) inside its
function, so `pfsync --help` and `pfsync validate` stay fast. Usage errors exit 1, not click's 2,
because 2 and 3 always mean a plan result (docs/plan-and-apply.md, exit codes).
"""

from __future__ import annotations

import re
import signal
import sys
from collections.abc import Sequence

import click

from pfsync import __version__
from pfsync.cli.common import GlobalOptions
from pfsync.errors import PfsyncError, SignalStop
from pfsync.support.textsafety import escape


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="pfsync", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True, help="Say more (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and requested output.")
@click.option("--no-color", is_flag=True, help="Never colour the output (as NO_COLOR=1).")
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False),
    help="Run as if started in DIR (its pfsync.yaml is used).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Use this pfsync.yaml instead of searching for one.",
)
@click.option(
    "-e",
    "--env",
    "environment",
    metavar="NAME",
    help="The environment of pfsync.yaml to work on (required when it defines environments).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Read every manifest again instead of reusing .pfsync/cache/ (as PFSYNC_NO_CACHE=1).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    verbose: int,
    quiet: bool,
    no_color: bool,
    directory: str | None,
    config_path: str | None,
    environment: str | None,
    no_cache: bool,
) -> None:
    """Keep Pocketflows triggers declared in YAML and make Pocketflows match them.

    \b
    Examples:
      pfsync validate && pfsync plan && pfsync apply
      pfsync -C examples -e staging apply --sandbox --auto-approve
    """
    ctx.obj = GlobalOptions(
        verbosity=-1 if quiet else verbose,
        directory=directory,
        config_path=config_path,
        no_color=no_color,
        environment=environment,
        no_cache=no_cache,
    )


def _register() -> None:
    from pfsync.cli import apply, cache, plan, sandbox, scaffold, state, validate

    for module in (validate, plan, apply, state, sandbox, scaffold, cache):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


_GLOBAL_FLAGS = re.compile(r"-v+|--verbose|-q|--quiet|--no-color|--no-cache")
_GLOBAL_WITH_VALUE = ("-C", "--config", "-e", "--env")
_COMMAND_OWN_OPTIONS = {"init": ("-e", "--env")}
_ATTACHED_VALUE = re.compile(r"-[eC][^-].*")
# Global short flags given together (`-qv`), the last one maybe -e or -C with its value attached
# (`-qestaging`) or in the next word (`-qe staging`).
_SHORT_CLUSTER = re.compile(r"-[vq]+(?:([eC])(.*))?")


def _global_cluster(token: str) -> tuple[str, ...] | None:
    """The short options `token` gives if it gives only global ones (`-qe` → q, e), else None;
    the last is followed by the value in the next word when that is its, as -e or -C alone."""
    match = _SHORT_CLUSTER.fullmatch(token)
    return tuple(token[1 : match.end(1) if match.group(1) else None]) if match else None


def _takes_next_word(token: str) -> bool:
    """Whether `token` (a global option or cluster) is followed by its value in the next word."""
    if token in _GLOBAL_WITH_VALUE:
        return True
    match = _SHORT_CLUSTER.fullmatch(token)
    return match is not None and match.group(1) is not None and match.group(2) == ""


def hoist_global_options(argv: Sequence[str]) -> list[str]:
    """`argv` with global options given after the command moved before it.

    `pfsync plan -v` then means `pfsync -v plan`, as users of git and kubectl expect. Nothing
    after `--` moves. No command has an option of the same name, but for `init --env NAME`,
    which defines environments (and so stays with init).
    """
    args = list(argv)
    command_at = _command_index(args)
    if command_at is None:
        return args
    # `init --env NAME` defines environments; it selects none, so its -e/--env stay its own.
    own = _COMMAND_OWN_OPTIONS.get(args[command_at], ())
    hoisted: list[str] = []
    rest: list[str] = []
    index = command_at + 1
    while index < len(args):
        token = args[index]
        if token == "--":
            rest += args[index:]
            break
        cluster = _global_cluster(token)
        if _GLOBAL_FLAGS.fullmatch(token):
            hoisted.append(token)
        elif cluster is not None and f"-{cluster[-1]}" in own:
            # `init d -qe NAME`: -q is global, -e NAME is init's own.
            flags = len(cluster) - 1
            hoisted.append(token[: flags + 1])
            rest.append("-" + token[flags + 1 :])
        elif cluster is not None:
            with_value = _takes_next_word(token)
            hoisted += args[index : index + 2] if with_value else [token]
            index += 1 if with_value else 0
        elif token in own or token.startswith(tuple(f"{name}=" for name in own)):
            rest.append(token)
        elif token in _GLOBAL_WITH_VALUE and index + 1 < len(args):
            hoisted += args[index : index + 2]
            index += 1
        elif token.startswith(tuple(f"{name}=" for name in _GLOBAL_WITH_VALUE)):
            hoisted.append(token)
        elif _ATTACHED_VALUE.fullmatch(token) and token[:2] not in own:
            hoisted.append(token)  # -estaging, -Crepo: a short option with its value attached
        else:
            rest.append(token)
        index += 1
    return args[:command_at] + hoisted + args[command_at : command_at + 1] + rest


def _command_index(args: list[str]) -> int | None:
    """Where the command name is: the first word that is not a global option or its value."""
    index = 0
    while index < len(args):
        token = args[index]
        if _takes_next_word(token):
            index += 2
            continue
        if token.startswith("-"):
            index += 1
            continue
        return index
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run pfsync with `argv` (default: sys.argv[1:]) and return its exit code."""
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="pfsync", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 1
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except PfsyncError as exc:
        # Messages may carry text from outside (a lockfile, git, a server): escaped.
        click.echo(f"Error: {escape(str(exc))}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except SignalStop as exc:
        name = signal.Signals(exc.signum).name
        click.echo(f"Stopped by {name}; nothing more was sent.", err=True)
        return 128 + exc.signum
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    return result if isinstance(result, int) else 0
