"""`pfsync apply`: create what the plan says, recording every outcome as it happens."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import click

from pfsync.cli.common import (
    global_options,
    load_config_or_report,
    lock_timeout_option,
    report_manifest_problems,
    report_manifest_warnings,
    use_color,
)

if TYPE_CHECKING:
    from pfsync.apply.applier import ApplyItem
    from pfsync.apply.execute import Server
    from pfsync.apply.run import ApplyIO
    from pfsync.config import Config
    from pfsync.plan.planner import Plan
    from pfsync.support.invocation import Invocation

SANDBOX_FAULTS_HELP = (
    "With --sandbox: inject the server's faults into the in-process sandbox, as comma-separated "
    "NAME=VALUE pairs: lose-response=FRACTION (stored, response lost: uncertain), fail=FRACTION "
    "(500, nothing stored: uncertain), latency-ms=MS, rate-limit=PER_SECOND, seed=INTEGER, "
    "idempotency-keys=on|off."
)


def sandbox_hint(invocation: Invocation) -> str:
    """Said after a sandbox-mode apply that left something to a person: where to look."""
    listing = invocation.command("sandbox list", sandbox_option=False)
    return (
        f"Sandbox mode: `{listing}` shows what the sandbox holds (where you would look in "
        "Pocketflows)."
    )


def parse_sandbox_faults(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, dict[str, Any]] | None:
    """`--sandbox-faults SPEC` → (SPEC as shown, Sandbox keywords); a usage error if invalid."""
    if value is None:
        return None
    from pfsync.sandbox.faults import FaultSpecError, parse_fault_spec

    try:
        keywords = parse_fault_spec(value)
    except FaultSpecError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    shown = ",".join(item.replace(" ", "") for item in value.split(",") if item.strip())
    return shown, keywords


def confirm_prompt(
    items: Sequence[ApplyItem], sandbox: bool, environment: str | None = None
) -> str:
    """`Send 3 creates to Pocketflows (1 replace)?`: exactly what a yes sends, and where."""
    count = len(items)
    where = "the sandbox" if sandbox else "Pocketflows"
    if not count:
        record = f"the record of environment {environment}" if environment else "the record"
        return f"Carry out the declarations above in {record} (nothing is sent to {where})?"
    replaces = sum(1 for item in items if item.trigger.replaces)
    resent = sum(1 for item in items if item.idempotency_key)
    kinds = [f"{replaces} replace" if replaces else "", f"{resent} re-sent" if resent else ""]
    detail = ", ".join(kind for kind in kinds if kind)
    if environment:
        where += f" environment {environment}"
    return (
        f"Send {count} create{'' if count == 1 else 's'} to {where}"
        f"{f' ({detail})' if detail else ''}?"
    )


RETRY_UNCERTAIN_HELP = (
    "Re-send uncertain creates with their original Idempotency-Key. Safe ONLY if Pocketflows "
    "honours that header, which its API reference does not document: otherwise this can create "
    "a second trigger. First look in Pocketflows and use `state import` or `state rm`."
)


@click.command()
@click.argument("planfile", required=False, type=click.Path(dir_okay=False, exists=True))
@click.option("--auto-approve", is_flag=True, help="Apply without asking (required without a TTY).")
@click.option(
    "--new-lockfile",
    is_flag=True,
    help="Start a new lockfile when none exists (first apply of a repository only).",
)
@click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Concurrent creates.",
)
@lock_timeout_option
@click.option("--retry-uncertain", is_flag=True, help=RETRY_UNCERTAIN_HELP)
@click.option("--target", "targets", multiple=True, metavar="ADDR", help="Only this address.")
@click.option(
    "--replace",
    "replace",
    multiple=True,
    metavar="ADDR",
    help="Create a new draft for ADDR; the old trigger stays active until deactivated by hand.",
)
@click.option(
    "--after",
    metavar="ENV",
    help="Send only the creates environment ENV's record holds as created from the same "
    "manifest document (promotion between environments); the others are held back.",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Apply against an in-process sandbox API with its own state in .pfsync/.",
)
@click.option(
    "--sandbox-faults",
    "sandbox_faults",
    metavar="SPEC",
    callback=parse_sandbox_faults,
    help=SANDBOX_FAULTS_HELP,
)
@click.option(
    "--summary",
    metavar="FILE",
    help='Append a Markdown report of the outcome to FILE (e.g. "$GITHUB_STEP_SUMMARY"): what '
    "was created, what failed or needs a person with the declarations to paste, what was held "
    "back; written even when the run stops early.",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up connecting to the API after SECONDS (the create was not sent: retried).",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(0.1),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Wait up to SECONDS for an answer (none in time: the create is uncertain).",
)
@click.option(
    "--interrupt-wait",
    type=click.FloatRange(0.1),
    default=5.0,  # pfsync.apply.applier.INTERRUPT_GRACE_SECONDS (not imported: it loads httpx)
    show_default=True,
    metavar="SECONDS",
    help="After SIGINT, SIGTERM or SIGHUP, wait up to SECONDS for the creates in flight to be "
    "answered (those still in flight then stay uncertain).",
)
def apply(
    planfile: str | None,
    auto_approve: bool,
    new_lockfile: bool,
    parallelism: int,
    lock_timeout: float,
    retry_uncertain: bool,
    targets: tuple[str, ...],
    replace: tuple[str, ...],
    after: str | None,
    sandbox: bool,
    sandbox_faults: tuple[str, dict[str, Any]] | None,
    summary: str | None,
    connect_timeout: float,
    read_timeout: float,
    interrupt_wait: float,
) -> int:
    """Create the triggers the plan adds (never a second create for one that may exist).

    Without PLANFILE it plans first and asks for confirmation on a terminal; in CI pass
    --auto-approve. With a PLANFILE saved by `pfsync plan --out` it applies exactly that plan, and
    refuses if the lockfile or a manifest changed since. Credentials come from PFSYNC_USERNAME
    and PFSYNC_PASSWORD.

    \b
    Examples:
      pfsync apply --sandbox --auto-approve --new-lockfile
      pfsync plan --out plan.json && pfsync apply plan.json
      PFSYNC_USERNAME=u PFSYNC_PASSWORD=... pfsync apply --auto-approve
      pfsync apply --sandbox --auto-approve --sandbox-faults lose-response=0.3,seed=1
    """
    from pfsync.apply.execute import ApplyRequest, Reporters, execute_apply
    from pfsync.apply.run import ApplyOptions
    from pfsync.config.placeholders import refuse_placeholder

    if sandbox_faults is not None and not sandbox:
        raise click.UsageError(
            "--sandbox-faults needs --sandbox: faults are injected only into the in-process "
            "sandbox. Nothing was sent."
        )
    options = global_options()
    config = load_config_or_report(options, sandbox=sandbox)
    if isinstance(config, int):
        return config
    refuse_placeholder(config)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if planfile is None and not auto_approve and not interactive:
        return _refuse_unconfirmed(config.invocation)
    request = ApplyRequest(
        ApplyOptions(
            auto_approve=auto_approve,
            new_lockfile=new_lockfile or sandbox,
            parallelism=parallelism,
            lock_timeout=lock_timeout,
            retry_uncertain=retry_uncertain,
            targets=targets,
            replace=replace,
            plan_file=planfile,
            after=after,
            interrupt_wait=interrupt_wait,
        ),
        sandbox=_sandbox_starter(config, sandbox_faults, options.verbosity) if sandbox else None,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        summary=summary,
    )
    reporters = Reporters(
        lambda problems: report_manifest_problems(problems, config.invocation),
        report_manifest_warnings,
    )
    code = execute_apply(config, request, _apply_io(config, options.verbosity), reporters)
    if sandbox and code == 3 and options.verbosity >= 0:
        click.echo(sandbox_hint(config.invocation), err=True)
    return code


def _refuse_unconfirmed(invocation: Invocation) -> int:
    """Without a terminal to ask on, apply runs only with --auto-approve or a saved plan."""
    plan_first = invocation.command("plan")
    approved = invocation.command("apply", options=["--auto-approve"])
    click.echo(
        "Error: apply needs confirmation, and this is not an interactive terminal: "
        f"run `{plan_first}`, review it, then `{approved}` (or apply a saved plan). "
        "Nothing was sent.",
        err=True,
    )
    return 1


def _sandbox_starter(
    config: Config, faults: tuple[str, dict[str, Any]] | None, verbosity: int
) -> Callable[[], AbstractContextManager[Server]]:
    """Starts sandbox mode's in-process sandbox (with its faults), saying where it listens."""

    def start() -> AbstractContextManager[Server]:
        from pfsync.sandbox.rehearsal import start_sandbox

        shown, keywords = faults or ("", {})
        server = start_sandbox(config, **keywords)
        if verbosity >= 0:
            with_faults = f", faults: {shown}" if shown else ""
            click.echo(
                f"Sandbox: in-process Pocketflows API at {server.url}{with_faults}", err=True
            )
        return server

    return start


def _apply_io(config: Config, verbosity: int) -> ApplyIO:
    """How apply talks to the person: the plan on stdout, progress on stderr, the prompt."""
    from pfsync.apply.run import ApplyIO
    from pfsync.plan.render.json_document import PlanReport
    from pfsync.plan.render.text import render_text

    color = use_color()

    def show_plan(plan: Plan, where: str | None) -> None:
        if verbosity >= 0:
            shown = where or config.shown_lockfile
            report = PlanReport(plan, shown, color=color, environment=config.environment)
            click.echo(render_text(report), nl=False)

    def confirm(items: Sequence[ApplyItem]) -> bool:
        sandbox = config.invocation.sandbox
        prompt = confirm_prompt(items, sandbox, config.environment)
        return click.confirm(prompt, default=False, err=True)

    def progress(line: str) -> None:
        click.echo(line, err=True)

    return ApplyIO(
        show_plan=show_plan,
        confirm=confirm,
        progress=progress,
        detail=progress if verbosity > 0 else lambda line: None,
    )


COMMANDS = [apply]
