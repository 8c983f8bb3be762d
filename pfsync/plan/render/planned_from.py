"""What a plan was planned from, as every format says it (pure).

    PlannedFrom              the commit planned (and its uncommitted changes), the base plan's
                             commit, the state read (store, where, version) or that it may be
                             stale, and sandbox mode
    planned_from_document    the `planned_from` object of `plan --format json` and saved plans
    commit_words, stale_words, draft_words
                             the sentences the text and markdown headers share

Field by field in docs/plan-and-apply.md ("What a plan was planned from").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pfsync.state.lockfile import Lockfile

SHORT_SHA = 12  # as git store messages shorten commits
_LISTED_FILES = 5  # uncommitted files named in a header; JSON lists them all
CREATED_STATUS = "draft"
ACTIVATION = "New triggers start as drafts; a person activates them in Pocketflows."
# The fields of `planned_from.state` that say where each store's lockfile was read.
_LOCATION_FIELDS = {"file": ("path",), "git": ("remote", "branch", "path"), "s3": ("bucket", "key")}
SANDBOX_ACTIVATION = (
    "Sandbox mode: new triggers go to the local sandbox (.pfsync/), not Pocketflows."
)


@dataclass(frozen=True)
class PlannedFrom:
    """The commit, base and state a plan was made from."""

    repository: bool  # the config's directory is in a git repository
    commit: str | None  # its HEAD (full SHA); None: not a repository, or no commit yet
    uncommitted: tuple[str, ...]  # manifests and pfsync.yaml changed since HEAD (shown paths)
    store: str  # file | git | s3
    where: str  # the lockfile as shown: `pfsync.lock on origin/main`
    location: Mapping[str, str] = field(default_factory=dict)  # path | remote, branch | bucket, key
    version: str | None = None  # git: the state branch's commit; s3: VersionId or ETag
    stale: tuple[str, ...] = ()  # why the store could not be read: a local copy was planned
    sandbox: bool = False
    base_plan: str | None = None  # --base-plan FILE as given
    base_commit: str | None = None  # that plan's own commit (None: it names none)


def short(sha: str) -> str:
    """A commit as messages show it."""
    return sha[:SHORT_SHA]


def commit_words(source: PlannedFrom, code: Callable[[str], str]) -> str:
    """`commit 1a2b3c4d5e6f with uncommitted changes to pfsync.yaml (base 9f8e7d6c5b4a)`, each
    outside name through `code` (escaping it for the format)."""
    if source.commit is not None:
        words = f"commit {code(short(source.commit))}"
    else:
        words = "no commit yet" if source.repository else "not a git repository"
    if source.uncommitted:
        shown = ", ".join(code(name) for name in source.uncommitted[:_LISTED_FILES])
        more = len(source.uncommitted) - _LISTED_FILES
        words += f" with uncommitted changes to {shown}" + (f" and {more} more" if more > 0 else "")
    if source.base_plan is not None:
        base = code(short(source.base_commit)) if source.base_commit else "unknown"
        words += f" (base {base})"
    return words


def version_words(source: PlannedFrom, code: Callable[[str], str]) -> str:
    """`commit abcdef123456` (git) or `version …` (s3); empty for the file store."""
    if source.version is None:
        return ""
    label = "commit" if source.store == "git" else "version"
    shown = short(source.version) if source.store == "git" else source.version
    return f"{label} {code(shown)}"


def stale_words(source: PlannedFrom, code: Callable[[str], str]) -> str:
    """The warning that the lockfile read may be stale, the store's message through `code`."""
    return (
        f"The lockfile may be stale: {code('; '.join(source.stale))}. This plan was made from "
        "that copy; run it again once the store can be read"
    )


def draft_words(source: PlannedFrom) -> str:
    """How created triggers start (not escaped)."""
    return SANDBOX_ACTIVATION if source.sandbox else ACTIVATION


def planned_from_document(
    source: PlannedFrom | None, lockfile: Lockfile | None
) -> dict[str, Any] | None:
    """The `planned_from` object (None when the report does not know it)."""
    if source is None:
        return None
    base = None
    if source.base_plan is not None:
        base = {"plan": source.base_plan, "commit": source.base_commit}
    return {
        "git_repository": source.repository,
        "commit": source.commit,
        "commit_short": short(source.commit) if source.commit else None,
        "uncommitted_changes": list(source.uncommitted),
        "base": base,
        "state": {
            "store": source.store,
            "where": source.where,
            **{name: source.location.get(name) for name in _LOCATION_FIELDS[source.store]},
            "lineage": lockfile.lineage if lockfile else None,
            "serial": lockfile.serial if lockfile else None,
            "version": source.version,
            "stale": bool(source.stale),
            "stale_reason": "; ".join(source.stale) or None,
        },
        "sandbox": source.sandbox,
        "created_status": CREATED_STATUS,
        "activation": draft_words(source),
    }
