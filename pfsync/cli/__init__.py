"""The `pfsync` command line: parse flags, call the core, turn results into exit codes.

Each command lives in its own module here and keeps heavy imports (httpx, deepdiff) inside its
function, so `pfsync --help` and `pfsync validate` stay fast. Usage errors exit 1, not click's 2,
because 2 and 3 always mean a plan result (docs/plan-and-apply.md, exit codes).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

import click

from pfsync import __version__
from pfsync.cli.common import with_global_options
from pfsync.errors import PfsyncError, SignalStop
from pfsync.support.textsafety import escape


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="pfsync", message="%(prog)s %(version)s")
def cli() -> None:
    """Keep Pocketflows triggers declared in YAML and make Pocketflows match them.

    \b
    Examples:
      pfsync validate && pfsync plan && pfsync apply
      pfsync -C examples -e staging apply --sandbox --auto-approve
    """


def _register() -> None:
    from pfsync.cli import apply, cache, plan, sandbox, scaffold, state, validate

    for module in (validate, plan, apply, state, sandbox, scaffold, cache):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
with_global_options(cli)


def main(argv: Sequence[str] | None = None) -> int:
    """Run pfsync with `argv` (default: sys.argv[1:]) and return its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
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
