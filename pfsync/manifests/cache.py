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
- anything odd (unreadable, another format, a checksum that does not match its content) and
  the whole cache is ignored and rebuilt; the checksum on the first line is an HMAC-SHA256 of
  the content under a key kept outside the repository (`~/.cache/pfsync/cache-key`, made on
  first use): it catches a torn or damaged file, and a cache that this machine did not write
  (one committed in a pull request would otherwise forge what plan shows) is never read;
- written atomically (a temporary file renamed), so concurrent runs never see a torn file; the
  last writer wins, and either version is correct;
- `--no-cache` or PFSYNC_NO_CACHE=1 turns it off; `pfsync cache clear` removes it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import marshal
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfsync.manifests.results import BODY_NOT_READ, Declaring, LoadResult
from pfsync.manifests.seal import read_sealed, seal
from pfsync.models import Declaration, DesiredTrigger
from pfsync.support.diagnostics import Diagnostic
from pfsync.support.paths import StrPath

if TYPE_CHECKING:
    from pfsync.config import Config

CACHE_DIR = "cache"
FORMAT = "pfsync-manifest-cache"
VERSION = 6
KEEP = 8  # cache files kept (contexts: environments, recent versions); older ones are removed
# A file changed less than this before the cache was written may have changed again within
# the same mtime tick without its stat showing it: its bytes are compared instead.
RACY_NS = 2_000_000_000

StatKey = tuple[int, int, int]  # size, mtime_ns, inode


# One file's entry: [size, mtime_ns, inode, sha256, triggers, diagnostics, warnings,
# declarations], where a trigger is [business, key, revision, line, digest, document digest],
# a diagnostic or a warning [line, col, message, path, hint] and a declaration [kind, business,
# key, line, to, trigger_id, environment, intent, acknowledges].
# Kept as read (lists): building 10,000 objects up front would cost more than the lookups.
Entry = list[Any]


def _declaration(
    shown: str,
    kind: str,
    business: str,
    key: str,
    line: int,
    to: str | None,
    trigger_id: str | None,
    environment: str | None,
    intent: str | None,
    acknowledges: str | None,
) -> Declaration:
    """A declaration as stored (one more or one fewer field: TypeError, the file is read)."""
    return Declaration(
        kind, business, key, shown, line, to, trigger_id, environment, intent, acknowledges
    )


def cache_dir(config: Config) -> Path:
    """`.pfsync/cache/` beside pfsync.yaml."""
    return config.local_dir / CACHE_DIR


def file_sha256(path: Path) -> str | None:
    """The sha256 of the file's bytes (None if it cannot be read)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def stat_key(path: StrPath) -> StatKey | None:
    """What tells a file's version cheaply (None if it cannot be read)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino


@functools.cache
def _code_fingerprint() -> str:
    """pfsync's own code as it is installed, and the libraries whose answers it caches (YAML,
    both schema checkers): a changed or upgraded module is another cache."""
    package = Path(__file__).parent.parent
    parts = []
    for library in ("yaml", "_yaml", "jsonschema", "jsonschema_rs"):
        # Where the library is and when it was installed, without importing it (jsonschema
        # alone would cost a warm run a tenth of its time).
        spec = importlib.util.find_spec(library)
        origin = spec.origin if spec is not None else None
        if origin and os.path.exists(origin):
            info = os.stat(origin)
            parts.append(f"{library}:{origin}:{info.st_size}:{info.st_mtime_ns}")
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
        "python": sys.version,  # the bodies are marshalled
        "code": _code_fingerprint(),
        "schemas": _schemas_fingerprint(),
        "business": declaring.default_business,
        "values": sorted(declaring.values.items()),
        "environment": declaring.environment,
        "environments": list(declaring.environments),
    }
    return hashlib.sha256(json.dumps(context, sort_keys=True).encode()).hexdigest()[:32]


class ManifestCache:
    """The cached results of one context; lookups and stores, then one atomic save.

    Two files: the index (each file's stat, sha256, triggers and diagnostics) and the bodies
    by digest, read only when a run needs bodies (plan, apply; not validate).
    """

    def __init__(self, config: Config, context: str, with_bodies: bool) -> None:
        self.config = config
        folder = cache_dir(config)
        self.index_path = folder / f"manifests-{context}.json"
        self.bodies_path = folder / f"bodies-{context}.json"
        self.with_bodies = with_bodies
        self.files: dict[str, Entry] = {}
        self._bodies: dict[str, Any] | None = None
        self.fresh: dict[str, Fragment] = {}  # entries read in this run, as JSON text
        self.new_bodies: dict[str, Any] = {}  # digest → body, read in this run
        self.written_ns = 0
        self.changed = False

    @classmethod
    def open(cls, config: Config, declaring: Declaring, with_bodies: bool = True) -> ManifestCache:
        """The cache of this context, empty when there is none or it cannot be trusted."""
        cache = cls(config, context_key(declaring), with_bodies)
        document = _read_checked(cache.index_path)
        if isinstance(document, dict) and isinstance(document.get("files"), dict):
            with contextlib.suppress(ValueError, TypeError, KeyError):
                cache.written_ns = int(document["written_ns"])
                cache.files = document["files"]
        return cache

    @property
    def bodies(self) -> dict[str, Any]:
        """The cached bodies by digest (read on first use; empty if unreadable)."""
        if self._bodies is None:
            found: Any = None
            content = read_sealed(self.bodies_path)
            if content is not None:
                # marshal: 4x faster to write and 2x to read than JSON for 10,000 bodies, and
                # safe here: only bytes this machine sealed are read (the format is per Python
                # version, which is part of the context).
                with contextlib.suppress(ValueError, EOFError, TypeError):
                    found = marshal.loads(content)
            self._bodies = found if isinstance(found, dict) else {}
        return self._bodies

    def lookup(self, path: StrPath, shown: str, key: StatKey) -> LoadResult | None:
        """The cached result of the file (whose stat is `key`) if it is unchanged, else None."""
        entry = self.files.get(shown)
        try:
            if entry is None:
                return None
            recorded: StatKey = (entry[0], entry[1], entry[2])
            racy = recorded[1] >= self.written_ns - RACY_NS
            if key != recorded or racy:
                if key[0] != recorded[0] or file_sha256(Path(path)) != entry[3]:
                    return None
                if key != recorded:
                    entry[:3] = key  # touched, not changed: remember the new stat
                    self.changed = True
            return self._result(shown, entry)
        except (TypeError, ValueError, IndexError, KeyError):
            return None  # an entry not of this format: read the file

    def _result(self, shown: str, entry: Entry) -> LoadResult | None:
        triggers, diagnostics, warnings, declarations = entry[4], entry[5], entry[6], entry[7]
        bodies = self.bodies if self.with_bodies else {}
        manifests = []
        for business, key, revision, line, digest, document in triggers:
            body = bodies.get(digest) if self.with_bodies else BODY_NOT_READ
            if not isinstance(body, dict):
                return None  # written by another run meanwhile, or damaged: read the file
            manifests.append(
                DesiredTrigger(business, key, body, digest, revision, shown, line, None, document)
            )
        return LoadResult(
            manifests=manifests,
            diagnostics=[
                Diagnostic(shown, line, col, message, path, hint)
                for line, col, message, path, hint in diagnostics
            ],
            warnings=[
                Diagnostic(shown, line, col, message, path, hint)
                for line, col, message, path, hint in warnings
            ],
            declarations=[_declaration(shown, *named) for named in declarations],
        )

    def store(
        self,
        shown: str,
        stat: StatKey | None,
        sha256: str | None,
        result: LoadResult,
        fragment: Fragment | None = None,
    ) -> None:
        """Remember the result of the file as read (nothing if it could not be read).

        `fragment` is the entry already written as JSON where the file was read (a worker
        process), so that a cold run's parent only joins text.
        """
        if stat is None or sha256 is None:
            forgotten = self.files.pop(shown, None), self.fresh.pop(shown, None)
            if forgotten != (None, None):
                self.changed = True
            return
        fragment = fragment or fragment_of(shown, stat, sha256, result)
        known = self.files.get(shown)
        if known is not None:
            if _dumps(known) == fragment.entry:  # a named file read again is usually unchanged
                if self.with_bodies:
                    # Read again because its body was missing (a damaged or older bodies file).
                    self._add_bodies(result, only_missing=True)
                return
            if not self.with_bodies and _same_but_digests(known, json.loads(fragment.entry)):
                return  # read again by validate, which computes no digests: keep the ones known
            del self.files[shown]
        self.fresh[shown] = fragment
        self.changed = True
        self._add_bodies(result, only_missing=False)

    def _add_bodies(self, result: LoadResult, only_missing: bool) -> None:
        for trigger in result.manifests:
            if trigger.digest and (not only_missing or trigger.digest not in self.bodies):
                self.new_bodies[trigger.digest] = trigger.body
                self.changed = True

    def save(self, present: Sequence[str]) -> None:
        """Write the cache if anything changed, keeping only the files in `present`."""
        kept = [shown for shown in present if shown in self.files or shown in self.fresh]
        if not self.changed and len(kept) == len(self.files):
            return
        entries = []
        digests: set[str] = set()
        for shown in kept:
            fragment = self.fresh.get(shown)
            if fragment is not None:
                entries.append(fragment.member)
                digests.update(fragment.digests)
            else:
                entry = self.files[shown]
                entries.append(f"{_dumps(shown)}:{_dumps(entry)}")
                digests.update(trigger[4] for trigger in entry[4] if trigger[4])
        # A cache that cannot be written only makes the next run slower: never an error.
        with contextlib.suppress(OSError):
            # validate writes no bodies: it needs none, and 10,000 of them would cost its cold
            # run a tenth more; the first plan after it reads and adds them.
            if self.new_bodies and self.with_bodies:
                known = self.bodies
                bodies = {
                    digest: self.new_bodies[digest] if digest in self.new_bodies else known[digest]
                    for digest in digests
                    if digest in self.new_bodies or digest in known
                }
                self._write_sealed(self.bodies_path, marshal.dumps(bodies))
            written = f'"written_ns":{time.time_ns()},"files":{{' + ",".join(entries) + "}"
            self._write(self.index_path, written)

    def _write(self, path: Path, members: str) -> None:
        """Write `{"format": …, "version": …, MEMBERS}` (members already JSON text)."""
        head = f'{{"format":{_dumps(FORMAT)},"version":{VERSION},'
        self._write_sealed(path, (head + members + "}").encode("utf-8", "surrogatepass"))

    def _write_sealed(self, path: Path, content: bytes) -> None:
        self.config.prepare_local_dir()
        path.parent.mkdir(exist_ok=True)
        # Renamed into place, so a reader sees the old file or the new one; not fsynced: a
        # file a crash left torn fails its checksum and is rebuilt, and durability would cost
        # a cold run of 10,000 manifests more than the cache saves it.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            temporary.write_bytes(seal(content) + b"\n" + content)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        older = sorted(path.parent.glob("*-*.json"), key=_mtime, reverse=True)[2 * KEEP :]
        for stale in older:
            with contextlib.suppress(OSError):
                stale.unlink()


_dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Fragment:
    """A file's cache entry as JSON text made where the file was read, and its digests."""

    entry: str
    digests: tuple[str, ...]
    member: str  # `"SHOWN":ENTRY`, as it goes into the index


def fragment_of(shown: str, stat: StatKey, sha256: str, result: LoadResult) -> Fragment:
    """What `store` keeps of a file read (called in the worker that read it)."""
    entry = [
        *stat,
        sha256,
        [
            [t.business, t.key, t.revision, t.line, t.digest, t.document_digest]
            for t in result.manifests
        ],
        [[d.line, d.col, d.message, d.path, d.hint] for d in result.diagnostics],
        [[w.line, w.col, w.message, w.path, w.hint] for w in result.warnings],
        [
            [
                *(d.kind, d.business, d.key, d.line, d.to, d.trigger_id, d.environment),
                *(d.intent, d.acknowledges),
            ]
            for d in result.declarations
        ],
    ]
    text = _dumps(entry)
    digests = tuple(t.digest for t in result.manifests if t.digest)
    return Fragment(text, digests, f"{_dumps(shown)}:{text}")


def _same_but_digests(known: Entry, new: Entry) -> bool:
    """The same file and triggers, `new` without the digests validate does not compute."""
    try:
        same_triggers = [t[:4] for t in known[4]] == [t[:4] for t in new[4]]
        return known[:4] == new[:4] and same_triggers and known[5:8] == new[5:8]
    except (TypeError, IndexError):
        return False


def _read_checked(path: Path) -> Any:
    """The JSON document of a cache file whose seal holds, else None."""
    content = read_sealed(path)
    if content is None:
        return None
    try:
        document = json.loads(content)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        return None
    return document


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
