"""The manifest cache `.pfsync/cache/`: each file's result, reused while the file is unchanged.

In a repository of 10,000 manifests almost nothing changes between two runs, yet every run
parsed and checked every file again. The cache keeps, per manifest file, what loading it gave
(the triggers it declares with their lines and body digests, and its diagnostics), and the
bodies by digest. A file's result is reused while its size, mtime and inode are those
recorded, or, when they differ or are too recent to be trusted (a change within the same
clock tick looks unchanged), while the sha256 of its bytes is.

The cache can make a run faster, never change its answer:
- one cache file per context: pfsync's code, the schemas, and what a declaration depends on
  (default business, values, environment); any change of those is another cache;
- anything odd (unreadable, another format, a body whose digest does not match) and the whole
  cache is ignored and rebuilt;
- written atomically (a temporary file renamed), so concurrent runs never see a torn file; the
  last writer wins, and either version is correct;
- `--no-cache` or PFSYNC_NO_CACHE=1 turns it off; `pfsync cache clear` removes it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfsync.models import DesiredTrigger
from pfsync.support.canonical import body_digest
from pfsync.support.diagnostics import Diagnostic

if TYPE_CHECKING:
    from pfsync.config import Config
    from pfsync.manifests.load import Declaring, LoadResult

CACHE_DIR = "cache"
FORMAT = "pfsync-manifest-cache"
VERSION = 1
KEEP = 8  # cache files kept (contexts: environments, recent versions); older ones are removed
# A file changed less than this before the cache was written may have changed again within
# the same mtime tick without its stat showing it: its bytes are compared instead.
RACY_NS = 2_000_000_000

StatKey = tuple[int, int, int]  # size, mtime_ns, inode


@dataclass
class _Entry:
    stat: StatKey
    sha256: str
    triggers: list[list[Any]]  # [business, key, revision, line, digest]
    diagnostics: list[list[Any]]  # [line, col, message, path, hint]


def cache_dir(config: Config) -> Path:
    """`.pfsync/cache/` beside pfsync.yaml."""
    return config.local_dir / CACHE_DIR


def file_sha256(path: Path) -> str | None:
    """The sha256 of the file's bytes (None if it cannot be read)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def stat_key(path: Path) -> StatKey | None:
    """What tells a file's version cheaply (None if it cannot be read)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino


@functools.cache
def _code_fingerprint() -> str:
    """pfsync's own code as it is installed: a changed module is another cache."""
    package = Path(__file__).parent.parent
    parts = []
    for folder, _, names in sorted(os.walk(package)):
        for name in sorted(names):
            if name.endswith(".py"):
                info = os.stat(os.path.join(folder, name))
                relative = os.path.relpath(os.path.join(folder, name), package)
                parts.append(f"{relative}:{info.st_size}:{info.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _schemas_fingerprint() -> str:
    from pfsync.schemas import schema_dir

    digest = hashlib.sha256()
    for path in sorted(schema_dir().glob("*.json")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def context_key(declaring: Declaring) -> str:
    """What every cached result depends on beyond its own file."""
    from pfsync import __version__

    context = {
        "pfsync": __version__,
        "code": _code_fingerprint(),
        "schemas": _schemas_fingerprint(),
        "business": declaring.default_business,
        "values": sorted(declaring.values.items()),
        "environment": declaring.environment,
    }
    return hashlib.sha256(json.dumps(context, sort_keys=True).encode()).hexdigest()[:32]


class ManifestCache:
    """The cached results of one context; lookups and stores, then one atomic save."""

    def __init__(self, config: Config, path: Path) -> None:
        self.config = config
        self.path = path
        self.files: dict[str, _Entry] = {}
        self.bodies: dict[str, Any] = {}
        self.written_ns = 0
        self.changed = False

    @classmethod
    def open(cls, config: Config, declaring: Declaring) -> ManifestCache:
        """The cache of this context, empty when there is none or it cannot be trusted."""
        cache = cls(config, cache_dir(config) / f"manifests-{context_key(declaring)}.json")
        with contextlib.suppress(
            OSError, ValueError, TypeError, KeyError, IndexError, AttributeError
        ):
            cache._read()
        return cache

    def _read(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        document = json.loads(text)
        if not isinstance(document, dict):
            return
        if document.get("format") != FORMAT or document.get("version") != VERSION:
            return
        bodies = document["bodies"]
        files = {
            shown: _Entry((size, mtime, inode), sha, triggers, diagnostics)
            for shown, (size, mtime, inode, sha, triggers, diagnostics) in document["files"].items()
        }
        for entry in files.values():
            for trigger in entry.triggers:
                if not isinstance(bodies[trigger[4]], dict):
                    return
        # Never trusted: a body that is not what its digest says discards the whole cache.
        if any(body_digest(body) != digest for digest, body in bodies.items()):
            return
        self.files, self.bodies = files, bodies
        self.written_ns = int(document["written_ns"])

    def lookup(self, path: Path, shown: str, key: StatKey) -> LoadResult | None:
        """The cached result of the file (whose stat is `key`) if it is unchanged, else None."""
        entry = self.files.get(shown)
        if entry is None:
            return None
        racy = entry.stat[1] >= self.written_ns - RACY_NS
        if key != entry.stat or racy:
            if key[0] != entry.stat[0] or file_sha256(path) != entry.sha256:
                return None
            if key != entry.stat:
                entry.stat = key  # touched, not changed: remember the new stat
                self.changed = True
        return self._result(shown, entry)

    def _result(self, shown: str, entry: _Entry) -> LoadResult:
        from pfsync.manifests.load import LoadResult

        return LoadResult(
            manifests=[
                DesiredTrigger(business, key, self.bodies[digest], digest, revision, shown, line)
                for business, key, revision, line, digest in entry.triggers
            ],
            diagnostics=[
                Diagnostic(shown, line, col, message, path, hint)
                for line, col, message, path, hint in entry.diagnostics
            ],
        )

    def store(
        self, shown: str, stat: StatKey | None, sha256: str | None, result: LoadResult
    ) -> None:
        """Remember the result of the file as read (nothing if it could not be read)."""
        if stat is None or sha256 is None:
            self.files.pop(shown, None)
            return
        for trigger in result.manifests:
            self.bodies.setdefault(trigger.digest, trigger.body)
        self.files[shown] = _Entry(
            stat,
            sha256,
            [[t.business, t.key, t.revision, t.line, t.digest] for t in result.manifests],
            [[d.line, d.col, d.message, d.path, d.hint] for d in result.diagnostics],
        )
        self.changed = True

    def save(self, present: Sequence[str]) -> None:
        """Write the cache if anything changed, keeping only the files in `present`."""
        kept = {shown: self.files[shown] for shown in present if shown in self.files}
        if not self.changed and len(kept) == len(self.files):
            return
        used = {trigger[4] for entry in kept.values() for trigger in entry.triggers}
        document = {
            "format": FORMAT,
            "version": VERSION,
            "written_ns": time.time_ns(),
            "files": {
                shown: [*entry.stat, entry.sha256, entry.triggers, entry.diagnostics]
                for shown, entry in kept.items()
            },
            "bodies": {digest: self.bodies[digest] for digest in used},
        }
        # A cache that cannot be written only makes the next run slower: never an error.
        with contextlib.suppress(OSError):
            self._write(json.dumps(document, ensure_ascii=False, separators=(",", ":")))

    def _write(self, text: str) -> None:
        from pfsync.support.atomic import atomic_write_text

        folder = self.path.parent
        self.config.prepare_local_dir()
        folder.mkdir(exist_ok=True)
        atomic_write_text(self.path, text)
        older = sorted(folder.glob("manifests-*.json"), key=_mtime, reverse=True)[KEEP:]
        for stale in older:
            with contextlib.suppress(OSError):
                stale.unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def clear(config: Config) -> int:
    """Remove `.pfsync/cache/`; how many cache files were removed."""
    folder = cache_dir(config)
    removed = 0
    if folder.is_dir():
        for path in folder.iterdir():
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
        with contextlib.suppress(OSError):
            folder.rmdir()
    return removed
