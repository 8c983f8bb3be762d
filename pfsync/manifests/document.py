"""One YAML document → the trigger or declaration it declares, or its located problems.

A document is checked against its kind's schema (a Trigger's is the manifest schema), then its
identifiers against their exact patterns; `${values.NAME}` references are substituted first, and
a schema error in a substituted value names the reference that gave it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pfsync.manifests.results import BODY_NOT_READ, Declaring
from pfsync.manifests.values import from_value, substitute
from pfsync.models import (
    DECLARATION_KINDS,
    IMPORT,
    MOVED,
    NOT_CREATED,
    REMOVED,
    Declaration,
    DesiredTrigger,
)
from pfsync.schemas import IMPORT as IMPORT_SCHEMA
from pfsync.schemas import MANIFEST, check, validator
from pfsync.schemas import MOVED as MOVED_SCHEMA
from pfsync.schemas import NOT_CREATED as NOT_CREATED_SCHEMA
from pfsync.schemas import REMOVED as REMOVED_SCHEMA
from pfsync.schemas.diagnostics import field_hint, schema_diagnostics
from pfsync.support.canonical import body_digest
from pfsync.support.diagnostics import Diagnostic, json_path
from pfsync.support.suggest import closest
from pfsync.support.textsafety import json_text
from pfsync.support.yamlload import Document

KEY_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
BUSINESS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")
ID_RE = re.compile(r"[^\s]{1,200}")
INTENT_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def manifest_from(
    document: Document,
    shown: str,
    declaring: Declaring,
    has_references: bool,
    warnings: list[Diagnostic],
) -> DesiredTrigger | Declaration | list[Diagnostic] | None:
    """The trigger or declaration a document declares, its problems, or None when it is a
    declaration for another environment."""
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
        return _schema_problems(document, shown, schema, whole, declaring.environment)
    invalid = _invalid_field(document, shown, data)
    if invalid is not None:
        return [invalid]
    business = data.get("business", declaring.default_business)
    if kind in DECLARATION_KINDS:
        return _declaration_from(document, data, shown, business, declaring)
    return _trigger_from(document, data, shown, business, declaring, written)


def _schema_problems(
    document: Document,
    shown: str,
    schema: str,
    whole: dict[tuple[int, int], str],
    environment: str | None,
) -> list[Diagnostic]:
    """The schema's objections, each worded with the `${values.NAME}` that gave a bad value."""
    problems = schema_diagnostics(validator(schema), document, shown)
    return [
        dataclasses.replace(
            problem,
            message=from_value(problem.message, whole[problem.line, problem.col], environment),
        )
        if (problem.line, problem.col) in whole
        else problem
        for problem in problems
    ]


def _invalid_field(document: Document, shown: str, data: dict[str, Any]) -> Diagnostic | None:
    """The first identifier field whose value its exact pattern refuses."""
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
            return Diagnostic(
                shown,
                line,
                col,
                f"{json_text(data[name])} is not a valid {name}",
                json_path([name]),
                field_hint(name),
            )
    return None


def _trigger_from(
    document: Document,
    data: dict[str, Any],
    shown: str,
    business: str | None,
    declaring: Declaring,
    written: tuple[dict[str, Any], str] | None,
) -> DesiredTrigger | list[Diagnostic]:
    """The trigger a checked Trigger document declares (no business: its problem)."""
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
