"""Discover manifest files, load them safely, validate them → Manifests and Diagnostics.

Bad input is a value, not an exception: every file is read and every problem is reported in one
run, sorted by file then line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pfsync.config import Config
from pfsync.manifests.across import (
    duplicate_address_diagnostics,
    once_each,
    shared_address_diagnostics,
)
from pfsync.manifests.cache import Fragment, ManifestCache, StatKey, fragment_of, stat_key
from pfsync.manifests.declarations import declaration_diagnostics
from pfsync.manifests.discovery import discover_shown, expand_paths
from pfsync.manifests.results import BODY_NOT_READ, Declaring, LoadResult
from pfsync.manifests.values import BRACELESS, MARKER, from_value, substitute
from pfsync.models import (
    DECLARATION_KINDS,
    IMPORT,
    MOVED,
    NOT_CREATED,
    REMOVED,
    Declaration,
    DesiredTrigger,
    make_address,
)
from pfsync.schemas import IMPORT as IMPORT_SCHEMA
from pfsync.schemas import MANIFEST, check, validator
from pfsync.schemas import MOVED as MOVED_SCHEMA
from pfsync.schemas import NOT_CREATED as NOT_CREATED_SCHEMA
from pfsync.schemas import REMOVED as REMOVED_SCHEMA
from pfsync.schemas.diagnostics import field_hint, schema_diagnostics
from pfsync.support.canonical import body_digest
from pfsync.support.collector import collector_paused
from pfsync.support.diagnostics import Diagnostic, json_path, sort_diagnostics
from pfsync.support.paths import StrPath, display_path
from pfsync.support.suggest import closest
from pfsync.support.textsafety import json_text
from pfsync.support.yamlfile import decode, parse_yaml_text, read_raw_and_stat
from pfsync.support.yamlload import Document

# A file's result, and the sha256 and stat of its bytes (None when it could not be read).
Loaded = tuple[LoadResult, str | None, StatKey | None, Fragment | None]
PARALLEL_MIN_FILES = 512  # below this, a second process costs more than it saves
KEY_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
BUSINESS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")
ID_RE = re.compile(r"[^\s]{1,200}")
INTENT_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def _manifest_from(
    document: Document,
    shown: str,
    declaring: Declaring,
    has_references: bool,
    warnings: list[Diagnostic],
) -> DesiredTrigger | Declaration | list[Diagnostic] | None:
    whole: dict[tuple[int, int], str] = {}  # (line, col) → the reference that gave its value
    written = _as_written(document.data) if has_references and declaring.with_bodies else None
    if has_references:
        unresolved = substitute(
            document, shown, declaring.values, declaring.environment, whole, warnings
        )
        if unresolved:
            return unresolved
    data = document.data
    if not isinstance(data, dict):
        line, col = document.start
        return [Diagnostic(shown, line, col, "a manifest must be a mapping (apiVersion, kind, …)")]
    kind = data.get("kind")
    schema = _SCHEMAS.get(kind, MANIFEST) if isinstance(kind, str) else MANIFEST
    if isinstance(kind, str) and kind not in _SCHEMAS and kind != "Trigger":
        return [_unknown_kind(document, shown, kind)]
    if not check(schema)(data):
        problems = schema_diagnostics(validator(schema), document, shown)
        return [
            dataclasses.replace(
                problem,
                message=from_value(
                    problem.message, whole[problem.line, problem.col], declaring.environment
                ),
            )
            if (problem.line, problem.col) in whole
            else problem
            for problem in problems
        ]
    # JSON Schema's `$` also matches before a trailing newline in Python's re: check exactly.
    for name, regex in (
        ("key", KEY_RE),
        ("business", BUSINESS_RE),
        ("from", KEY_RE),
        ("to", KEY_RE),
        ("id", ID_RE),
        ("intent", INTENT_RE),
        ("acknowledges", DIGEST_RE),
    ):
        if name in data and not regex.fullmatch(data[name]):
            line, col = document.locate([name])
            return [
                Diagnostic(
                    shown,
                    line,
                    col,
                    f"{json_text(data[name])} is not a valid {name}",
                    json_path([name]),
                    field_hint(name),
                )
            ]
    business = data.get("business", declaring.default_business)
    if kind in DECLARATION_KINDS:
        return _declaration_from(document, data, shown, business, declaring)
    key_line = document.locate(["key"], key=True)[0]
    if business is None:
        return [
            Diagnostic(
                shown,
                key_line,
                1,
                "no business for this trigger",
                "$.business",
                "set `business:` in the manifest, or a default `business:` in pfsync.yaml",
            )
        ]
    # JSON Schema counts 2.0 as an integer: the record holds the int.
    revision = int(data.get("revision", 0))
    if not declaring.with_bodies:
        return DesiredTrigger(business, data["key"], BODY_NOT_READ, "", revision, shown, key_line)
    body = data["spec"]
    digest = body_digest(body)
    fields, spec_digest = written if written is not None else (_without_spec(data), digest)
    document_digest = body_digest({**fields, "spec": spec_digest})
    return DesiredTrigger(
        business, data["key"], body, digest, revision, shown, key_line, None, document_digest
    )


def _without_spec(data: dict[str, Any]) -> dict[str, Any]:
    return {field: value for field, value in data.items() if field != "spec"}


def _as_written(data: Any) -> tuple[dict[str, Any], str] | None:
    """A document's fields but `spec`, and its spec's digest, before values are substituted
    (substitution happens in place): its document digest is made of them, so two environments
    whose values differ still agree on which version of the manifest a record was created from.
    """
    if not isinstance(data, dict) or "spec" not in data:
        return None
    return _without_spec(data), body_digest(data["spec"])


# The schema of each kind of document besides `Trigger` (the manifest schema).
_SCHEMAS = {
    MOVED: MOVED_SCHEMA,
    REMOVED: REMOVED_SCHEMA,
    IMPORT: IMPORT_SCHEMA,
    NOT_CREATED: NOT_CREATED_SCHEMA,
}
KINDS = ("Trigger", *DECLARATION_KINDS)


def _unknown_kind(document: Document, shown: str, kind: str) -> Diagnostic:
    line, col = document.locate(["kind"])
    close = closest(kind, KINDS)
    return Diagnostic(
        shown,
        line,
        col,
        f"unknown kind {json_text(kind)}" + (f" (did you mean {close}?)" if close else ""),
        "$.kind",
        f"a document's kind is one of {', '.join(KINDS)}",
    )


def _declaration_from(
    document: Document,
    data: dict[str, Any],
    shown: str,
    business: str | None,
    declaring: Declaring,
) -> Declaration | list[Diagnostic] | None:
    """The declaration, its problems, or None when it is for another environment."""
    kind = data["kind"]
    line = document.locate(["kind"], key=True)[0]
    problem = _environment_problem(data, declaring)
    if problem is not None:
        at = document.locate(["environment"]) if "environment" in data else (line, 1)
        return [Diagnostic(shown, at[0], at[1], *problem)]
    if business is None:
        return [
            Diagnostic(
                shown,
                line,
                1,
                f"no business for this {kind} declaration",
                "$.business",
                "set `business:` in the declaration, or a default `business:` in pfsync.yaml",
            )
        ]
    environment = data.get("environment")
    if environment is not None and declaring.environment not in (None, environment):
        return None  # another environment's record change
    if kind == MOVED:
        return Declaration(kind, business, data["from"], shown, line, to=data["to"])
    return Declaration(
        kind,
        business,
        data["key"],
        shown,
        line,
        trigger_id=data.get("id"),
        environment=environment,
        intent=data.get("intent"),
        acknowledges=data.get("acknowledges"),
    )


def _environment_problem(data: dict[str, Any], declaring: Declaring) -> tuple[str, str, str] | None:
    """(message, path, hint) when the declaration's `environment:` does not fit pfsync.yaml."""
    kind, environment, names = data["kind"], data.get("environment"), declaring.environments
    if kind == MOVED:
        return None  # a rename holds in every environment
    if environment is None and names:
        return (
            f"this {kind} names no environment, and pfsync.yaml defines several (ids differ per "
            "environment)",
            "$.environment",
            f"add `environment:` with one of {', '.join(names)}",
        )
    if environment is not None and not names:
        return (
            f"this {kind} names the environment {json_text(environment)}, but pfsync.yaml "
            "defines no environments",
            "$.environment",
            "leave `environment:` out",
        )
    if environment is not None and environment not in names:
        close = closest(environment, names)
        return (
            f"unknown environment {json_text(environment)}"
            + (f" (did you mean {close}?)" if close else ""),
            "$.environment",
            f"the environments of pfsync.yaml are {', '.join(names)}",
        )
    return None


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
        outcome = _manifest_from(document, shown, declaring, has_references, result.warnings)
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
