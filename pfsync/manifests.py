"""Discover manifest files, load them safely, validate them → Manifests and Diagnostics.

Bad input is a value, not an exception: every file is read and every problem is reported in one
run, sorted by file then line (§4).
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfsync.config import Config
from pfsync.diagnostics import Diagnostic, json_path, sort_diagnostics
from pfsync.discovery import discover, display_path, expand_paths
from pfsync.models import Manifest, make_address
from pfsync.schemas import MANIFEST, check, validator
from pfsync.textsafety import json_text
from pfsync.yamlload import Document, YamlProblem, iter_documents

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

MAX_FILE_BYTES = 10 * 1024 * 1024
PARALLEL_MIN_FILES = 512  # below this, a second process costs more than it saves
KEY_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
BUSINESS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")


@dataclass
class LoadResult:
    """Every valid manifest found, and every problem, sorted by file then line."""

    manifests: list[Manifest] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Reading


def read_text(path: Path, shown: str) -> str | Diagnostic:
    """The file's text, or why it cannot be a manifest (size, type, encoding)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return Diagnostic(shown, 1, 1, f"cannot read file: {exc.strerror}")
    if not stat.S_ISREG(info.st_mode):
        return Diagnostic(shown, 1, 1, "not a regular file", hint="name only .yaml files")
    if info.st_size > MAX_FILE_BYTES:
        return Diagnostic(
            shown,
            1,
            1,
            f"file is larger than 10 MiB ({info.st_size} bytes); not read",
            hint="split it into several manifest files",
        )
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return Diagnostic(shown, 1, 1, f"cannot read file: {exc.strerror}")
    if len(raw) > MAX_FILE_BYTES:
        return Diagnostic(
            shown,
            1,
            1,
            "file is larger than 10 MiB; not read",
            hint="split it into several manifest files",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return Diagnostic(
            shown,
            line,
            col,
            f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            hint="save the file as UTF-8",
        )
    return text[1:] if text.startswith("\ufeff") else text


def load_yaml_file(path: Path, shown: str) -> tuple[list[Document], list[Diagnostic]]:
    """The file's non-empty YAML documents, and the problem that stopped reading, if any."""
    text = read_text(path, shown)
    if isinstance(text, Diagnostic):
        return [], [text]
    documents: list[Document] = []
    problems: list[Diagnostic] = []
    for item in iter_documents(text):
        if isinstance(item, YamlProblem):
            line, col = item.position
            problems.append(
                Diagnostic(shown, line, col, item.message, json_path(item.path), item.hint)
            )
        else:
            documents.append(item)
    return documents, problems


# ---------------------------------------------------------------------------------------------
# Validation


def _field_hints(field_name: str) -> str | None:
    return {
        "key": "a key is 1-100 characters of a-z, 0-9, '.', '_', '-', starting with a letter "
        "or digit",
        "business": "a business id is 1-128 characters of A-Z, a-z, 0-9, '.', '_', '~', '-', "
        "starting with a letter or digit",
    }.get(field_name)


def schema_diagnostics(
    schema_validator: Draft202012Validator, document: Document, shown: str
) -> list[Diagnostic]:
    """Every schema violation in `document`, each at the line and column of its YAML value."""
    problems = []
    for error in schema_validator.iter_errors(document.data):
        problems.extend(_error_diagnostics(error, document, shown))
    return problems


MAX_SHOWN_VALUE = 80
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def shown_value(value: Any) -> str:
    """`value` as JSON (`true`, `null`, `{"a": 1}`, `"x"`), shortened when long."""
    text = json_text(value)
    return text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 1] + "…"


def _type_names(expected: Any) -> str:
    names = expected if isinstance(expected, list) else [expected]
    return " or ".join(_TYPE_NAMES.get(str(name), str(name)) for name in names)


def _plain_scalar_hint(instance: Any, source: str | None) -> str | None:
    """Why an unquoted YAML scalar is not the string it looks like, and how to quote it."""
    if source is None or isinstance(instance, str):
        return None
    if source == "":
        return "the value is empty, which YAML reads as null; write the text after the colon"
    quoted = json_text(source)
    if isinstance(instance, bool):
        return f"YAML reads yes/no/on/off/true/false as a boolean; quote it: {quoted}"
    if instance is None:
        return f"YAML reads {source} as null; quote it: {quoted}"
    return f"YAML reads {source} as a number; quote it: {quoted}"


def _count(number: Any, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _message(error: ValidationError, source: str | None) -> tuple[str, str | None]:
    """A concise message (values shown as JSON) and a hint, from the error's fields."""
    kind, expected, value = error.validator, error.validator_value, error.instance
    shown = shown_value(value)
    if kind == "type":
        hint = None
        if "string" in (expected if isinstance(expected, list) else [expected]):
            hint = _plain_scalar_hint(value, source)
        if expected == "array" and isinstance(value, (dict, str)):
            hint = "a list item starts with `- `"
        return f"{shown} is not {_type_names(expected)}", hint
    if kind == "enum" and isinstance(expected, list):
        choices = ", ".join(shown_value(choice) for choice in expected)
        return f"{shown} is not one of {choices}", None
    if kind == "const":
        return f"must be {shown_value(expected)}, not {shown}", None
    if kind == "pattern":
        return f"{shown} does not match {expected}", None
    if kind == "minLength":
        if expected == 1:
            return f"{shown} must not be empty", None
        return f"{shown} is shorter than {_count(expected, 'character')}", None
    if kind == "maxLength":
        return f"{shown} is longer than {_count(expected, 'character')}", None
    if kind == "minItems":
        if expected == 1:
            return f"{shown} must not be empty", None
        return f"{shown} has fewer than {_count(expected, 'item')}", None
    if kind == "maxItems":
        return f"{shown} has more than {_count(expected, 'item')}", None
    if kind == "minimum":
        return f"{shown} is less than the minimum of {shown_value(expected)}", None
    if kind == "maximum":
        return f"{shown} is more than the maximum of {shown_value(expected)}", None
    return error.message, None


def _error_diagnostics(error: ValidationError, document: Document, shown: str) -> list[Diagnostic]:
    path = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(schema.get("properties", {}))
        out = []
        for name in error.instance:
            if name in known:
                continue
            line, col = document.locate([*path, name], key=True)
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            advice = (
                f"did you mean {json_text(close[0])}?"
                if close
                else "known fields: " + ", ".join(known)
            )
            out.append(
                Diagnostic(
                    shown,
                    line,
                    col,
                    f"unknown field {json_text(name)}",
                    json_path([*path, name]),
                    advice,
                )
            )
        return out
    if (
        error.validator == "required"
        and isinstance(error.validator_value, list)
        and isinstance(error.instance, dict)
    ):
        missing = [name for name in error.validator_value if name not in error.instance]
        line, col = document.locate(path, key=True) if path else document.start
        return [
            Diagnostic(
                shown, line, col, f"missing required field {json_text(name)}", json_path(path)
            )
            for name in missing
        ]
    line, col = document.locate(path)
    message, hint = _message(error, document.plain.get((line, col)))
    if len(path) == 1 and error.validator == "pattern":
        hint = _field_hints(str(path[-1]))
    if len(message) > 300:
        message = message[:300] + "…"
    return [Diagnostic(shown, line, col, message, json_path(path), hint)]


def _manifest_from(
    document: Document, shown: str, default_business: str | None
) -> Manifest | list[Diagnostic]:
    data = document.data
    if not isinstance(data, dict):
        line, col = document.start
        return [Diagnostic(shown, line, col, "a manifest must be a mapping (apiVersion, kind, …)")]
    if not check(MANIFEST)(data):
        return schema_diagnostics(validator(MANIFEST), document, shown)
    # JSON Schema's `$` also matches before a trailing newline in Python's re: check exactly.
    for name, regex in (("key", KEY_RE), ("business", BUSINESS_RE)):
        if name in data and not regex.fullmatch(data[name]):
            line, col = document.locate([name])
            return [
                Diagnostic(
                    shown,
                    line,
                    col,
                    f"{json_text(data[name])} is not a valid {name}",
                    json_path([name]),
                    _field_hints(name),
                )
            ]
    business = data.get("business", default_business)
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
    return Manifest(
        business=business,
        key=data["key"],
        revision=data.get("revision", 0),
        spec=data["spec"],
        file=shown,
        line=key_line,
    )


def load_file(path: Path, shown: str, default_business: str | None) -> LoadResult:
    """The manifests of one file, and its problems."""
    documents, problems = load_yaml_file(path, shown)
    result = LoadResult(diagnostics=problems)
    for document in documents:
        outcome = _manifest_from(document, shown, default_business)
        if isinstance(outcome, Manifest):
            result.manifests.append(outcome)
        else:
            result.diagnostics.extend(outcome)
    return result


def _load_chunk(chunk: tuple[list[tuple[Path, str]], str | None]) -> list[LoadResult]:
    files, default_business = chunk
    return [load_file(path, shown, default_business) for path, shown in files]


def load_files(files: Sequence[tuple[Path, str]], default_business: str | None) -> list[LoadResult]:
    """`load_file` of each (path, shown path), in order; large sets on every core."""
    if len(files) >= PARALLEL_MIN_FILES:
        from pfsync.workers import map_in_processes, usable_cores

        # One contiguous share per core keeps the results in file order.
        count = min(usable_cores(), len(files) // (PARALLEL_MIN_FILES // 2))
        size = -(-len(files) // max(count, 1))
        shares = [(list(files[i : i + size]), default_business) for i in range(0, len(files), size)]
        results = map_in_processes(_load_chunk, shares)
        if results is not None:
            return [outcome for share in results for outcome in share]
    return _load_chunk((list(files), default_business))


def duplicate_address_diagnostics(
    manifests: Sequence[Manifest], reported_files: set[str] | None = None
) -> list[Diagnostic]:
    """One problem per repeated address, naming both places (only in `reported_files` if given)."""
    first: dict[str, Manifest] = {}
    problems = []
    for manifest in sorted(manifests, key=lambda m: (m.file, m.line)):
        earlier = first.setdefault(manifest.address, manifest)
        if earlier is manifest:
            continue
        if reported_files is not None and manifest.file not in reported_files:
            if earlier.file not in reported_files:
                continue
            manifest, earlier = earlier, manifest
        problems.append(
            Diagnostic(
                manifest.file,
                manifest.line,
                1,
                f"address {manifest.address} is declared twice: here and at {earlier.source}",
                "$.key",
                "each BUSINESS/KEY must be declared once; rename one key",
            )
        )
    return problems


def load_manifests(
    config: Config, paths: Sequence[str] | None = None, cwd: Path | None = None
) -> LoadResult:
    """Load the configured manifests (or just `paths`), validate, check address uniqueness.

    With `paths`, problems are reported for those files only, but addresses are still checked
    against every configured manifest (pre-commit passes only the changed files).
    """
    cwd = cwd or Path.cwd()
    configured, problems = discover(config)
    named: list[Path] | None = None
    if paths is not None:
        named, problems = expand_paths(paths, config.root, cwd)
    files = named if named is not None else configured
    result = LoadResult(diagnostics=list(problems))
    reported = [(path, display_path(path, config.root)) for path in files]
    shown_files = {shown for _, shown in reported}
    # With named files, the other configured files count for address uniqueness only.
    others = []
    if named is not None:
        for path in configured:
            shown = display_path(path, config.root)
            if shown not in shown_files:
                others.append((path, shown))
    loaded = load_files([*reported, *others], config.business)
    for outcome in loaded[: len(reported)]:
        result.manifests.extend(outcome.manifests)
        result.diagnostics.extend(outcome.diagnostics)
    everything = list(result.manifests)
    for outcome in loaded[len(reported) :]:
        everything.extend(outcome.manifests)
    result.diagnostics.extend(
        duplicate_address_diagnostics(everything, shown_files if named is not None else None)
    )
    result.diagnostics = sort_diagnostics(result.diagnostics)
    result.manifests.sort(key=lambda m: m.address)
    return result


__all__ = ["LoadResult", "Manifest", "load_manifests", "make_address"]
