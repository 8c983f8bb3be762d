"""The checkout a plan is made from: its git commit and uncommitted changes, and what was read.

planned_from(config, view, base_plan) -> PlannedFrom
    HEAD of the git repository holding the config (none outside one), the manifests and
    pfsync.yaml that differ from it (untracked ones too), the base plan's commit, and the state
    read (where, which version, or why it may be stale).

Reads only: `git rev-parse` and `git status`, each bounded by state.timeout.
"""

from __future__ import annotations

import os
from pathlib import Path

from pfsync.config import Config
from pfsync.config.rehearsal import is_sandbox
from pfsync.errors import StoreError
from pfsync.manifests.discovery import is_manifest_path
from pfsync.plan.compare import base_plan_commit
from pfsync.plan.render.planned_from import PlannedFrom
from pfsync.state.access import StateView
from pfsync.state.stores.git_runner import Git


def planned_from(config: Config, view: StateView, base_plan: str | None = None) -> PlannedFrom:
    """What the plan of `config` against `view` is made from."""
    repository, commit, uncommitted = _checkout(config)
    return PlannedFrom(
        repository=repository,
        commit=commit,
        uncommitted=uncommitted,
        store=config.state.store,
        where=view.where or config.shown_lockfile,
        location=view.location,
        version=view.version,
        stale=view.warnings if config.state.is_remote else (),
        sandbox=is_sandbox(config),
        # A base plan that does not exist is no base (its branch had no plan), as for the exit
        # code: nothing is said about it.
        base_plan=base_plan if base_plan is not None and Path(base_plan).exists() else None,
        base_commit=base_plan_commit(base_plan) if base_plan is not None else None,
    )


def _checkout(config: Config) -> tuple[bool, str | None, tuple[str, ...]]:
    """Whether the config's directory is in a git repository, its HEAD, and the manifests and
    pfsync.yaml with uncommitted changes (paths relative to the config's directory)."""
    git = Git(config.root, config.state.timeout)
    try:
        top = git.maybe("rev-parse", "--show-toplevel")
        if top is None:
            return False, None, ()
        head = git.maybe("rev-parse", "--verify", "-q", "HEAD^{commit}")
        # Porcelain paths are the repository's, from its top; `.`: only under the config's
        # directory, where manifests and pfsync.yaml are. No optional locks: a read-only plan
        # never takes index.lock from a git command running beside it.
        status = git.run(
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--no-renames",
            "--",
            ".",
            env={"GIT_OPTIONAL_LOCKS": "0"},
        )
    except StoreError:  # no git executable, or it did not answer in time
        return False, None, ()
    changed = _changed_paths(status.out) if status.code == 0 else []
    root = os.path.realpath(config.root)
    config_file = os.path.realpath(config.path) if config.path is not None else None
    uncommitted = []
    for name in changed:
        path = os.path.realpath(os.path.join(top, name))
        relative = Path(os.path.relpath(path, root)).as_posix()
        if path == config_file or is_manifest_path(config, relative):
            uncommitted.append(relative)
    return True, head, tuple(sorted(set(uncommitted)))


def _changed_paths(porcelain: str) -> list[str]:
    """The paths of `git status --porcelain=v1 -z` output (no renames: one path an entry)."""
    return [entry[3:] for entry in porcelain.split("\0") if len(entry) > 3]
