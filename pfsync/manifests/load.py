"""Discover manifest files, load them safely, validate them → Manifests and Diagnostics.

Bad input is a value, not an exception: every file is read and every problem is reported in one
run, sorted by file then line.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

from pfsync.config import Config
from pfsync.manifests.across import (
    duplicate_address_diagnostics,
    once_each,
    shared_address_diagnostics,
)
from pfsync.manifests.cache import Fragment, ManifestCache, StatKey, fragment_of, stat_key
from pfsync.manifests.declarations import declaration_diagnostics
from pfsync.manifests.discovery import discover_shown, expand_paths
from pfsync.manifests.document import manifest_from
from pfsync.manifests.results import Declaring, LoadResult
from pfsync.manifests.values import BRACELESS, MARKER
from pfsync.models import Declaration, DesiredTrigger, make_address
from pfsync.support.collector import collector_paused
from pfsync.support.diagnostics import Diagnostic, sort_diagnostics
from pfsync.support.paths import StrPath, display_path
from pfsync.support.yamlfile import decode, parse_yaml_text, read_raw_and_stat

# A file's result, and the sha256 and stat of its bytes (None when it could not be read).
Loaded = tuple[LoadResult, str | None, StatKey | None, Fragment | None]
PARALLEL_MIN_FILES = 512  # below this, a second process costs more than it saves


def load_file(path: StrPath, shown: str, declaring: Declaring) -> LoadResult:
    """The manifests of one file, and its problems."""
    return _load_file(path, shown, declaring)[0]


def _load_file(path: StrPath, shown: str, declaring: Declaring, fragments: bool = False) -> Loaded:
    """The file's result, the sha256 and stat of the bytes it came from, and (with `fragments`)
    its cache entry already written as JSON, here where it can run on every core."""
    read = read_raw_and_stat(path, shown)
    if isinstance(read, Diagnostic):
        return LoadResult(diagnostics=[read]), None, None, None
    raw, info = read
    sha256 = hashlib.sha256(raw).hexdigest()
    stat: StatKey = (info.st_size, info.st_mtime_ns, info.st_ino)
    text = decode(raw, shown)
    if isinstance(text, Diagnostic):
        result = LoadResult(diagnostics=[text])
        return result, sha256, stat, fragment_of(shown, stat, sha256, result) if fragments else None
    documents, problems = parse_yaml_text(text, shown)
    result = LoadResult(diagnostics=problems)
    # Most files have no reference: skip the walk (a `$schema` comment is none). A `$` or `{`
    # can also be written as a YAML escape ("\x24{…}"), so any backslash walks too; and a
    # reference without its braces is walked to be warned about.
    has_references = MARKER in text or "\\" in text or BRACELESS in text
    for document in documents:
        outcome = manifest_from(document, shown, declaring, has_references, result.warnings)
        if isinstance(outcome, DesiredTrigger):
            result.manifests.append(outcome)
        elif isinstance(outcome, Declaration):
            result.declarations.append(outcome)
        elif outcome is not None:
            result.diagnostics.extend(outcome)
    return result, sha256, stat, fragment_of(shown, stat, sha256, result) if fragments else None


def _load_chunk(chunk: tuple[list[tuple[StrPath, str]], Declaring, bool]) -> list[Loaded]:
    files, declaring, fragments = chunk
    return [_load_file(path, shown, declaring, fragments) for path, shown in files]


def load_files(
    files: Sequence[tuple[StrPath, str]],
    declaring: Declaring,
    cache: ManifestCache | None = None,
    fresh: int = 0,
) -> list[LoadResult]:
    """`load_file` of each (path, shown path), in order.

    With a `cache`, an unchanged file's result is taken from it (but the first `fresh` files
    are always read: the files a user named), and what was read is stored back.
    """
    results: list[LoadResult | None] = [None] * len(files)
    todo: list[int] = []
    for index, (path, shown) in enumerate(files):
        # Only a file the cache knows is looked at here; the others are read (and stat'ed
        # while read, in the workers) below.
        if cache is not None and index >= fresh and shown in cache.files:
            key = stat_key(path)
            hit = cache.lookup(path, shown, key) if key else None
            if hit is not None:
                results[index] = hit
                continue
        todo.append(index)
    read = _read_files([files[i] for i in todo], declaring, fragments=cache is not None)
    for index, (result, sha256, stat, fragment) in zip(todo, read, strict=True):
        results[index] = result
        if cache is not None:
            cache.store(files[index][1], stat, sha256, result, fragment)
    if cache is not None:
        cache.save([shown for _, shown in files])
    return [result for result in results if result is not None]


def _read_files(
    files: Sequence[tuple[StrPath, str]], declaring: Declaring, fragments: bool = False
) -> list[Loaded]:
    """Each file read and checked, in order; large sets on every core."""
    if len(files) >= PARALLEL_MIN_FILES:
        from pfsync.support.workers import map_in_processes, usable_cores

        # One contiguous share per core keeps the results in file order.
        count = min(usable_cores(), len(files) // (PARALLEL_MIN_FILES // 2))
        size = -(-len(files) // max(count, 1))
        shares = [
            (list(files[i : i + size]), declaring, fragments) for i in range(0, len(files), size)
        ]
        results = map_in_processes(_load_chunk, shares)
        if results is not None:
            return [outcome for share in results for outcome in share]
    return _load_chunk((list(files), declaring, fragments))


def load_manifests(
    config: Config,
    paths: Sequence[str] | None = None,
    cwd: Path | None = None,
    with_bodies: bool = True,
    other_environments: bool = True,
) -> LoadResult:
    """Load the configured manifests (or just `paths`), validate, check address uniqueness.

    With `paths`, problems are reported for those files only, but addresses are still checked
    against every configured manifest (pre-commit passes only the changed files). Without
    `with_bodies` (validate), a manifest has no body and no digest: its address and place are
    all a validation needs, and computing, caching or passing bodies between processes would
    cost more.
    In one environment of several, the others' manifests are read too (`other_environments`):
    a trigger another environment would also create is refused, whichever runs first.
    """
    with collector_paused():
        return _load_manifests(config, paths, cwd or Path.cwd(), with_bodies, other_environments)


def _load_manifests(
    config: Config,
    paths: Sequence[str] | None,
    cwd: Path,
    with_bodies: bool,
    other_environments: bool,
) -> LoadResult:
    configured_shown, problems = discover_shown(config)
    named: list[Path] | None = None
    if paths is not None:
        named, problems = expand_paths(paths, config.root, cwd)
    result = LoadResult(diagnostics=list(problems))
    reported: Sequence[tuple[StrPath, str]] = configured_shown
    if named is not None:
        reported = [(path, display_path(path, config.root)) for path in named]
    shown_files = {shown for _, shown in reported}
    # With named files, the other configured files count for address uniqueness only.
    others: list[tuple[StrPath, str]] = []
    if named is not None:
        others = [(path, shown) for path, shown in configured_shown if shown not in shown_files]
    declaring = dataclasses.replace(Declaring.of(config), with_bodies=with_bodies)
    cache = ManifestCache.open(config, declaring, with_bodies) if config.cache else None
    loaded = load_files([*reported, *others], declaring, cache, fresh=len(reported) if named else 0)
    for outcome in loaded[: len(reported)]:
        result.manifests.extend(outcome.manifests)
        result.diagnostics.extend(outcome.diagnostics)
        result.warnings.extend(outcome.warnings)
    for outcome in loaded[: len(reported)]:
        result.declarations.extend(outcome.declarations)
    everything = list(result.manifests)
    declarations = list(result.declarations)
    for outcome in loaded[len(reported) :]:
        everything.extend(outcome.manifests)
        declarations.extend(outcome.declarations)
    only = shown_files if named is not None else None
    result.diagnostics.extend(duplicate_address_diagnostics(everything, only))
    result.diagnostics.extend(declaration_diagnostics(declarations, everything, only))
    if other_environments and config.environment is not None and len(config.environments) > 1:
        result.diagnostics.extend(_shared_with_other_environments(config, everything))
    result.diagnostics = sort_diagnostics(result.diagnostics)
    result.warnings = sort_diagnostics(result.warnings)
    result.manifests.sort(key=lambda m: m.address)
    result.declarations.sort(key=lambda d: (d.file, d.line))
    return result


def _shared_with_other_environments(
    config: Config, manifests: Sequence[DesiredTrigger]
) -> list[Diagnostic]:
    """The triggers of `config`'s environment that another environment would also create."""
    from pfsync.config import load_config

    configs, results = [config], [LoadResult(manifests=list(manifests))]
    for name in config.environments:
        if name == config.environment:
            continue
        other = load_config(
            str(config.path),
            check_url=False,
            environment=name,
            no_cache=not config.cache,
        )
        configs.append(other)
        results.append(load_manifests(other, with_bodies=False, other_environments=False))
    return shared_address_diagnostics(configs, results, involving=config.environment)


__all__ = ["Declaring", "DesiredTrigger", "LoadResult", "load_manifests", "make_address"]


def load_every_environment(
    configs: Sequence[Config],
    paths: Sequence[str] | None = None,
    cwd: Path | None = None,
    with_bodies: bool = True,
) -> LoadResult:
    """`load_manifests` in each environment; each problem reported once, naming the
    environments it is found in when that is not all of them or when it depends on their
    values (an unknown value: `in environments staging and production`)."""
    results = {
        config.environment or "": load_manifests(
            config, paths, cwd, with_bodies, other_environments=False
        )
        for config in configs
    }
    merged = LoadResult(
        diagnostics=once_each({name: r.diagnostics for name, r in results.items()}),
        warnings=once_each({name: r.warnings for name, r in results.items()}),
    )
    for name, result in results.items():
        merged.manifests.extend(result.manifests)
        merged.declarations.extend(result.declarations)
        if len(results) > 1:
            merged.per_environment[name] = len(result.manifests)
    merged.diagnostics.extend(shared_address_diagnostics(configs, list(results.values())))
    merged.diagnostics = sort_diagnostics(merged.diagnostics)
    merged.warnings = sort_diagnostics(merged.warnings)
    return merged
