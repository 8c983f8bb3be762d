"""`pfsync state …`: inspect and repair the lockfile without touching Pocketflows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import click

from pfsync.cli.common import (
    global_options,
    load_config_or_report,
    lock_timeout_option,
    report_manifest_problems,
    text_or_json_option,
)
from pfsync.config import Config


def _config(sandbox: bool = False) -> Config | int:
    """The configuration, or sandbox mode's (its own lockfile under `.pfsync/`) with --sandbox."""
    options = global_options()
    config = load_config_or_report(options, sandbox=sandbox)
    if isinstance(config, int):
        return config
    if sandbox and options.verbosity >= 0:
        click.echo(
            f"Sandbox mode: using {config.shown_lockfile}, never the real lockfile.", err=True
        )
    return config


def sandbox_option(function: Any) -> Any:
    """`--sandbox`: work on sandbox mode's lockfile, as `plan --sandbox`/`apply --sandbox` do."""
    return click.option(
        "--sandbox",
        is_flag=True,
        help="Use sandbox mode's lockfile, as `apply --sandbox` keeps it: .pfsync/pfsync.lock, "
        "or .pfsync/env/NAME/pfsync.lock in environment NAME. The real lockfile is neither read "
        "nor changed.",
    )(function)


def _require_sandbox_state(config: Config, what: str) -> None:
    """Refuse a sandbox-mode change before anything is created when sandbox mode never ran."""
    from pfsync.config.rehearsal import is_sandbox
    from pfsync.state.commands import no_sandbox_lockfile

    if is_sandbox(config) and not config.lockfile.parent.is_dir():
        raise no_sandbox_lockfile(config, what)


def _refuse_sandbox_transfer(config: Config) -> NoReturn:
    from pfsync.errors import StateChangeError

    raise StateChangeError(
        f"sandbox mode's lockfile {config.shown_lockfile} records the "
        "triggers of the in-process sandbox, which exist nowhere else: it is not copied to or "
        "from a state store. Nothing was changed; to start the rehearsal over, delete .pfsync/"
    )


def no_push_option(function: Any) -> Any:
    """`--no-push`: with the git store, commit the change locally for a pull request."""
    return click.option(
        "--no-push",
        is_flag=True,
        help="git store: commit the change on the current branch instead of pushing it "
        "(propose it in a pull request).",
    )(function)


def _echo_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


@click.group()
def state() -> None:
    """Inspect and repair the lockfile (nothing is sent to Pocketflows).

    \b
    Examples:
      pfsync state list
      pfsync state import biz_123/welcome trg_abc123
      pfsync state rm biz_123/old-promo
      pfsync state mv biz_123/welcome biz_123/welcome-series
      pfsync state rm --sandbox biz_123/old-promo

    With --sandbox, every state command works on sandbox mode's lockfile (.pfsync/pfsync.lock,
    or .pfsync/env/NAME/pfsync.lock with -e NAME), to rehearse these repairs; `pfsync sandbox
    list` shows what the sandbox holds.
    """


@state.command("list")
@text_or_json_option("text: a table; json: a versioned document.")
@sandbox_option
def list_command(output_format: str, sandbox: bool) -> int:
    """List every recorded address: id, origin, revision, file, and any uncertain create.

    \b
    Examples:
      pfsync state list
      pfsync state list --format json
      pfsync state list --sandbox
    """
    from pfsync.state.access import read_state
    from pfsync.state.render import list_json, list_text

    config = _config(sandbox)
    if isinstance(config, int):
        return config
    view = read_state(config)
    for warning in view.warnings:
        click.echo(f"Warning: {warning}", err=True)
    name = view.where or config.shown_lockfile
    if output_format == "json":
        click.echo(list_json(view.state, name, view.journal_unfolded), nl=False)
    elif view.state is None:
        click.echo(f"No lockfile at {name} yet: nothing is recorded.", err=True)
    else:
        click.echo(list_text(view.state), nl=False)
    return 0


@state.command("show")
@click.argument("address")
@text_or_json_option("text or a JSON document.")
@sandbox_option
def show_command(address: str, output_format: str, sandbox: bool) -> int:
    """Show everything the lockfile records for ADDRESS, with its history.

    \b
    Example:
      pfsync state show biz_123/welcome-series
    """
    from pfsync.errors import StateChangeError
    from pfsync.state.access import read_state
    from pfsync.state.render import show_json, show_text

    config = _config(sandbox)
    if isinstance(config, int):
        return config
    view = read_state(config)
    for warning in view.warnings:
        click.echo(f"Warning: {warning}", err=True)
    lockfile = view.state
    if lockfile is None or not (lockfile.recorded(address) or address in lockfile.forgotten):
        listing = config.invocation.command("state list")
        raise StateChangeError(f"{address} is not in the lockfile (`{listing}` shows it)")
    render = show_json if output_format == "json" else show_text
    click.echo(render(lockfile, address), nl=False)
    return 0


@state.command("rm")
@click.argument("addresses", nargs=-1, required=True, metavar="ADDRESS...")
@lock_timeout_option
@no_push_option
@sandbox_option
def rm_command(
    addresses: tuple[str, ...], lock_timeout: float, no_push: bool, sandbox: bool
) -> int:
    """Forget ADDRESS: its id moves to history; nothing is deleted in Pocketflows.

    Use it after deactivating a deleted trigger in Pocketflows, or to settle an uncertain create
    that did not happen (then only the uncertain create is forgotten).

    \b
    Example:
      pfsync state rm biz_123/old-promo
      pfsync state rm --sandbox biz_123/old-promo
    """
    from pfsync.state.commands import remove_addresses

    config = _config(sandbox)
    if isinstance(config, int):
        return config
    _require_sandbox_state(config, "remove")
    _echo_lines(remove_addresses(config, addresses, lock_timeout, no_push))
    return 0


@state.command("mv")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@lock_timeout_option
@no_push_option
@sandbox_option
def mv_command(old: str, new: str, lock_timeout: float, no_push: bool, sandbox: bool) -> int:
    """Record that the key of OLD was renamed to NEW (same business only).

    \b
    Examples:
      pfsync state mv biz_123/welcome biz_123/welcome-series
      pfsync state mv --sandbox biz_123/welcome biz_123/welcome-series
    """
    from pfsync.state.commands import move_address

    config = _config(sandbox)
    if isinstance(config, int):
        return config
    _require_sandbox_state(config, "move")
    _echo_lines(move_address(config, old, new, lock_timeout, no_push))
    return 0


@state.command("import")
@click.argument("pairs", nargs=-1, required=True, metavar="(ADDRESS TRIGGER_ID)...")
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite an existing record (its id is kept in the history).",
)
@lock_timeout_option
@no_push_option
@sandbox_option
def import_command(
    pairs: tuple[str, ...], force: bool, lock_timeout: float, no_push: bool, sandbox: bool
) -> int:
    """Record an existing trigger TRIGGER_ID for the declared ADDRESS, without any request.

    The record gets the manifest's current body. Use it to adopt triggers made by hand, to
    settle an uncertain create that did happen, or (with --force) to acknowledge an edit made
    by hand in Pocketflows. Several pairs are recorded in one change (with a remote store, one
    write), or none if one is refused. Creates the lockfile when none exists.

    \b
    Examples:
      pfsync state import biz_123/welcome-series trg_abc123
      pfsync state import biz_123/welcome-series trg_abc123 biz_123/win-back trg_def456
      pfsync state import biz_123/welcome-series trg_abc123 --force
      pfsync state import --sandbox biz_123/welcome-series trg_abc123
    """
    from pathlib import Path

    from pfsync.errors import StateChangeError
    from pfsync.manifests.load import load_manifests
    from pfsync.state.commands import check_address, import_triggers

    if len(pairs) % 2:
        raise click.UsageError("state import takes pairs: ADDRESS TRIGGER_ID, repeated")
    config = _config(sandbox)
    if isinstance(config, int):
        return config
    wanted = list(zip(pairs[::2], pairs[1::2], strict=True))
    for address, _id in wanted:
        check_address(address)
    loaded = load_manifests(config, cwd=Path.cwd())
    if loaded.diagnostics:
        return report_manifest_problems(loaded.diagnostics, config.invocation)
    declared = {m.address: m for m in loaded.manifests}
    for address, _id in wanted:
        if address not in declared:
            raise StateChangeError(
                f"no manifest declares {address}; `state import` records a declared trigger "
                "with its manifest's body, so add the manifest first"
            )
    if sandbox:
        from pfsync.config.rehearsal import prepare_sandbox_dir

        prepare_sandbox_dir(config)
    imports = [(declared[address], trigger_id) for address, trigger_id in wanted]
    _echo_lines(import_triggers(config, imports, force, lock_timeout, no_push))
    return 0


@state.command("unlock")
@click.argument("lock_id", metavar="LOCK_ID")
@sandbox_option
def unlock_command(lock_id: str, sandbox: bool) -> int:
    """Remove the lock a dead run left in a remote state store (git or s3).

    Only for a run that is surely dead (its CI job was killed): the error that names the holder
    gives LOCK_ID. A re-run of that same CI job takes the lock over by itself, without this.
    The dead run's pending creates stay uncertain until settled. With --sandbox
    it explains why there is nothing to unlock: sandbox mode's lockfile is a local file, whose
    lock the operating system releases when its holder exits.

    \b
    Example:
      pfsync state unlock 5f0c6c2e-8d7a-4d0e-9c53-2b1f3f1d9a10
    """
    from pfsync.state.commands import unlock

    config = _config(sandbox)
    if isinstance(config, int):
        return config
    _echo_lines(unlock(config, lock_id))
    return 0


@state.command("push")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="STORE",
    help="file:PATH, git (the configured remote and branch), git:REMOTE:BRANCH, s3 (the "
    "configured bucket and key) or s3://BUCKET/KEY.",
)
@click.option("--force", is_flag=True, help="Replace another lineage or a newer serial there.")
@lock_timeout_option
@sandbox_option
def push_command(to: str, force: bool, lock_timeout: float, sandbox: bool) -> int:
    """Copy the local lockfile file into STORE, with its lineage and serial.

    Refused with --sandbox: sandbox mode's lockfile names triggers that exist only in the
    sandbox, so it is never copied to a store.

    \b
    Examples:
      pfsync state push --to git
      pfsync state push --to file:/backup/pfsync.lock
    """
    from pfsync.state.stores.transfer import push

    return _transfer(sandbox, lambda config: push(config, to, force, lock_timeout))


@state.command("pull")
@click.option(
    "--from",
    "source",
    metavar="STORE",
    help="file:PATH, git, git:REMOTE:BRANCH, s3 or s3://BUCKET/KEY (default: the configured "
    "store).",
)
@click.option("--force", is_flag=True, help="Replace another lineage or a newer serial here.")
@lock_timeout_option
@sandbox_option
def pull_command(source: str | None, force: bool, lock_timeout: float, sandbox: bool) -> int:
    """Copy the store's lockfile into the local lockfile file, with its lineage and serial.

    Refused with --sandbox: sandbox mode's lockfile is never replaced by a store's.

    \b
    Examples:
      pfsync state pull
      pfsync state pull --from git:origin:main
    """
    from pfsync.state.stores.transfer import pull

    return _transfer(sandbox, lambda config: pull(config, source, force, lock_timeout))


def _transfer(sandbox: bool, copy: Callable[[Config], list[str]]) -> int:
    """`state push` or `state pull`: `copy` the lockfile, refused in sandbox mode."""
    config = _config(sandbox)
    if isinstance(config, int):
        return config
    if sandbox:
        _refuse_sandbox_transfer(config)
    _echo_lines(copy(config))
    return 0


COMMANDS = [state]
