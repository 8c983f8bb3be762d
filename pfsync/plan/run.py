"""What `pfsync plan` computes: manifests + state (journal folded read-only) → a PlanReport.

No credentials, no network, no state lock, no writes but the local manifest cache (whose
failure to write is ignored): plan runs on pull requests from forks and read-only checkouts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pfsync.config import Config
from pfsync.config.placeholders import refuse_placeholder
from pfsync.errors import DeclarationConflict
from pfsync.manifests.load import load_manifests
from pfsync.plan.after import check_after, hold_back, previous_record
from pfsync.plan.checkout import planned_from
from pfsync.plan.planner import NOOP, create_plan
from pfsync.plan.render.json_document import PlanReport
from pfsync.plan.render.planned_from import stale_words
from pfsync.state.access import read_state
from pfsync.support.diagnostics import Diagnostic, github_warning, located
from pfsync.support.textsafety import escape


def plan_report(
    config: Config,
    targets: Sequence[str] = (),
    replace: Sequence[str] = (),
    color: bool = False,
    after: str | None = None,
    base_plan: str | None = None,
) -> PlanReport | list[Diagnostic]:
    """The plan of the configured manifests against the lockfile, or the manifests' problems
    (and the declarations that contradict the lockfile); it says what it was planned from
    (`base_plan`: the base branch's plan, whose commit it names).

    With `after` (`--after PREV`), only the creates PREV's record holds from the same manifest
    document are planned; the others are held back. ConfigError for init's placeholder business
    outside sandbox mode; PlanError when PREV's record cannot be read."""
    refuse_placeholder(config)
    if after is not None:
        check_after(config, after)
    loaded = load_manifests(config, cwd=Path.cwd())
    if loaded.diagnostics:
        return loaded.diagnostics
    view = read_state(config)
    try:
        plan = create_plan(
            loaded.manifests,
            view.state,
            config.api_url,
            targets,
            replace,
            loaded.declarations,
            config.business,
            config.environment,
            config.invocation,
        )
    except DeclarationConflict as conflict:
        return conflict.diagnostics
    warnings = (*(located(w) for w in loaded.warnings), *view.warnings)
    if after is not None:
        record = previous_record(config, after)
        plan = hold_back(plan, record)
        warnings += record.warnings
    return PlanReport(
        plan=plan,
        lockfile_name=view.where or config.shown_lockfile,
        journal_unfolded=view.journal_unfolded,
        warnings=warnings,
        color=color,
        environment=config.environment,
        planned_from=planned_from(config, view, base_plan),
        invocation=config.invocation,
    )


def verbose_lines(config: Config, report: PlanReport) -> list[str]:
    """What `plan -v` adds on stderr: the state it read (where, which store, serial and
    lineage) and each unchanged address with its manifest, which the plan only counts."""
    lockfile = report.plan.lockfile
    where = f"State: {escape(report.lockfile_name)} ({config.state.store} store)"
    if lockfile is None or lockfile.serial == 0:
        lines = [f"{where}, not written yet"]
    else:
        lines = [f"{where}, serial {lockfile.serial}, lineage {escape(lockfile.lineage)}"]
    unchanged = report.plan.with_action(NOOP)
    lines += [f"Unchanged: {entry.address} ({escape(entry.source)})" for entry in unchanged]
    return lines if unchanged else [*lines, "Unchanged: none"]


def workflow_annotations(report: PlanReport) -> list[str]:
    """GitHub Actions `::warning` lines for what a run's page should show beside its log: a
    lockfile that may be stale."""
    source = report.planned_from
    if source is None or not source.stale:
        return []
    where = f" ({report.environment})" if report.environment else ""
    return [
        github_warning(f"pfsync plan{where}: the lockfile may be stale", stale_words(source, str))
    ]
