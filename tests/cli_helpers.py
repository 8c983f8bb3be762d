"""Parse a pfsync command line with click, in process, without running it.

`parse_down(argv)` gives the contexts from `pfsync` down to the command argv names, as click
makes them before invoking it: a printed command, or a property test's argv, is checked by the
parser that will read it, in microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import click

from pfsync.cli import cli
from pfsync.cli.common import GlobalOptions, global_options


def parse_down(argv: Sequence[str]) -> list[click.Context]:
    """The contexts of `pfsync ARGV`, from the group to the command it names (click raises
    UsageError, BadParameter… for what it would refuse)."""
    ctx = cli.make_context("pfsync", list(argv))
    chain = [ctx]
    while isinstance(ctx.command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            break
        name, command, rest = ctx.command.resolve_command(ctx, rest)
        assert name is not None and command is not None
        ctx = command.make_context(name, rest, parent=ctx)
        chain.append(ctx)
    return chain


def command_path(chain: Sequence[click.Context]) -> str:
    """`state rm` for the contexts of `pfsync state rm …`."""
    return " ".join(ctx.info_name or "" for ctx in chain[1:])


def options_of(chain: Sequence[click.Context]) -> GlobalOptions:
    """The global options the command at the end of `chain` would see."""
    with chain[-1]:
        return global_options()


def commands(
    group: click.Command = cli, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command of the tree with its path (the group itself first, path ())."""
    yield path, group
    if isinstance(group, click.Group):
        for name, command in group.commands.items():
            yield from commands(command, (*path, name))
