"""The `file` store: the lockfile at its path, versioned by the sha256 of its text.

Its compare-and-swap holds only under the state lock (flock), which every caller takes first
(`pfsync.state.access.locked_state`); apply uses the journal, not this write, for its intents.
Used directly by `state push --to file:PATH` and `state pull`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pfsync.errors import StoreConflict, StoreError
from pfsync.state.lockfile import Lockfile, read_lockfile
from pfsync.state.stores.base import Snapshot
from pfsync.support.atomic import atomic_write_text
from pfsync.support.paths import shown_path

ABSENT = "absent"


def text_version(text: str | None) -> str:
    """The version of a lockfile text (ABSENT when there is none)."""
    return ABSENT if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


class FileStore:
    """A lockfile on the local disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def description(self) -> str:
        """The path as shown to the user."""
        return shown_path(self.path)

    def read(self, *, strict: bool = True) -> Snapshot:
        """The verified lockfile (LockfileError when it cannot be trusted)."""
        lockfile = read_lockfile(self.path)
        return Snapshot(lockfile, text_version(lockfile.dumps() if lockfile else None))

    def write(self, lockfile: Lockfile, expected: Snapshot, message: str) -> Snapshot:
        """Write `lockfile` as it is (serial included) if the file still holds `expected`."""
        current = self.read()
        if current.version != expected.version:
            raise StoreConflict(f"the lockfile {self.description} changed since it was read")
        text = lockfile.dumps()
        try:
            atomic_write_text(self.path, text)
        except OSError as exc:
            raise StoreError(
                f"cannot write the lockfile {self.description}: {exc.strerror}; it was not changed"
            ) from None
        return Snapshot(lockfile, text_version(text))

    def require_tip_checkout(self, snapshot: Snapshot) -> None:
        """Nothing to check: the lockfile is in the work tree apply reads from."""
