"""What every state store offers: a Snapshot to read, a compare-and-swap write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pfsync.state.lockfile import Lockfile


@dataclass(frozen=True)
class Snapshot:
    """The lockfile a store holds and the version it was read at."""

    lockfile: Lockfile | None
    version: str
    # Not empty: the store could not be read, and this is a local copy that may be out of date.
    warnings: tuple[str, ...] = ()
    # For people and tools (what `plan` says it read), not compared: where the lockfile is,
    # field by field (git: remote, branch, path; s3: bucket, key), and the version as the store
    # names it (git: the branch's commit; s3: the object's VersionId, or its ETag).
    location: Mapping[str, str] = field(default_factory=dict, compare=False)
    shown_version: str | None = field(default=None, compare=False)


class StateStore(Protocol):
    """Read, and compare-and-swap write, one lockfile."""

    @property
    def description(self) -> str:
        """Where the lockfile is, for messages: `pfsync.lock on origin/main`."""
        ...

    def read(self, *, strict: bool = True) -> Snapshot:
        """The current lockfile; `strict=False` may fall back to a cached copy with a warning."""
        ...

    def write(self, lockfile: Lockfile, expected: Snapshot, message: str) -> Snapshot:
        """Store `lockfile` if the store still holds `expected`; StoreConflict if not."""
        ...

    def require_tip_checkout(self, snapshot: Snapshot) -> None:
        """StoreError unless what apply reads its manifests from is what `snapshot` was read
        at: the git store's checkout must be its branch's tip; other stores hold no checkout."""
        ...


def next_lockfile(before: Lockfile | None, after: Lockfile) -> Lockfile | None:
    """`after` with the serial that follows `before`'s, or None when nothing changed."""
    from dataclasses import replace

    if before is not None and before.serial > 0 and before.same_content(after):
        return None
    return replace(after, serial=(before.serial if before is not None else 0) + 1)
