"""`pfsync cache clear`: remove the manifest cache `.pfsync/cache/`."""

from __future__ import annotations

import click

from pfsync.cli.common import global_options, load_config_or_report


@click.group()
def cache() -> None:
    """Manage the manifest cache (.pfsync/cache/), which makes unchanged files cost nothing.

    The cache never changes an answer: a file is read again whenever it, pfsync, the schemas
    or the environment's values change. Turn it off with --no-cache or PFSYNC_NO_CACHE=1.

    \b
    Examples:
      pfsync cache clear
    """


@cache.command("clear")
def clear_command() -> int:
    """Remove the manifest cache; the next run reads every manifest and builds it again.

    \b
    Examples:
      pfsync cache clear
    """
    from pfsync.manifests.cache import cache_dir, clear

    config = load_config_or_report(global_options(), check_url=False, needs_environment=False)
    if isinstance(config, int):
        return config
    folder = cache_dir(config)
    removed = clear(config)
    shown = folder.relative_to(config.root).as_posix()
    if removed:
        click.echo(f"Removed the manifest cache {shown}/ ({removed} file(s)).", err=True)
    else:
        click.echo(f"No manifest cache at {shown}/; nothing to remove.", err=True)
    return 0


COMMANDS = [cache]
