"""What `pfsync plan` computes: manifests + state (journal folded read-only) → a PlanReport.

No credentials, no network, no state lock, no writes: plan runs on pull requests from forks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pfsync.config import Config
from pfsync.diagnostics import Diagnostic
from pfsync.discovery import display_path
from pfsync.manifests import load_manifests
from pfsync.plan_json import PlanReport
from pfsync.planner import create_plan
from pfsync.sandbox_mode import is_sandbox, with_sandbox_remedies
from pfsync.state_store import read_state


def plan_report(
    config: Config,
    targets: Sequence[str] = (),
    replace: Sequence[str] = (),
    color: bool = False,
) -> PlanReport | list[Diagnostic]:
    """The plan of the configured manifests against the lockfile, or the manifests' problems."""
    loaded = load_manifests(config, cwd=Path.cwd())
    if loaded.diagnostics:
        return loaded.diagnostics
    view = read_state(config)
    plan = create_plan(loaded.manifests, view.state, config.api_url, targets, replace)
    if is_sandbox(config):
        plan = with_sandbox_remedies(plan)
    return PlanReport(
        plan=plan,
        lockfile_name=view.where or display_path(config.lockfile, config.root),
        journal_unfolded=view.journal_unfolded,
        warnings=view.warnings,
        color=color,
    )
