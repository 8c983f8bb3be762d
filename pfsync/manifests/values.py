"""`${values.NAME}` in manifests: per-environment values substituted into string scalars.

A string scalar that is exactly `${values.NAME}` takes the value as it is (a number stays a
number); inside longer text the value's text is spliced in (`true`/`false` for booleans).
`$${` is a literal `${`. Any other `${` is an error, as is an unknown name: every problem is
a Diagnostic at the line and column of the scalar, naming the environment.

Values apply in `business:`, `revision:` and under `spec:` only: a `${values.` in another
top-level field (`key:`, `apiVersion:`, `kind:`) is an error there, not substituted.
`$values.NAME` without braces is sent as written, with a located warning: it is almost always a
reference missing its braces.

Substitution happens in place on a freshly parsed Document (its containers keep their
identity, so positions still locate every value) and before the schema check, which thus
sees the resolved body while its errors still point at the manifest's lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pfsync.config import Scalar
from pfsync.support.diagnostics import Diagnostic, json_path
from pfsync.support.suggest import closest
from pfsync.support.textsafety import escape, json_text
from pfsync.support.yamlload import MAX_DOCUMENT_JSON_BYTES, Document

MARKER = "${"
BRACELESS = "$values."  # `$values.NAME`: a reference without its braces
SUBSTITUTED = ("business", "revision", "spec")  # the top-level fields values apply in
_BRACELESS = re.compile(r"\$values\.([A-Za-z_][A-Za-z0-9_]*)")
_NAME = re.compile(r"values\.([A-Za-z_][A-Za-z0-9_]{0,63})")
# `$${` (a literal), or `${…}` up to the first `}`, or a `${` with no `}` after it.
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")


class _Unresolved(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json_text(value)


def _lookup(inner: str, values: Mapping[str, Scalar], environment: str | None) -> Scalar:
    match = _NAME.fullmatch(inner)
    if match is None:
        raise _Unresolved(
            f"`${{{escape(inner)}}}` is not a value reference",
            "write `${values.NAME}` for a value of pfsync.yaml, or `$${` for a literal `${`",
        )
    name = match.group(1)
    if name in values:
        return values[name]
    where = f"environment {environment}" if environment else "pfsync.yaml"
    close = closest(name, values)
    known = ", ".join(sorted(values)) or "none"
    hint = f"did you mean {close}?" if close else f"the values of {where}: {known}"
    raise _Unresolved(f"unknown value `{name}` in {where}", hint)


def _whole_reference(text: str) -> str | None:
    """What is inside `${…}` when `text` is exactly one reference, else None."""
    whole = _TOKEN.fullmatch(text)
    return whole.group(1) if whole is not None else None


def resolve_text(text: str, values: Mapping[str, Scalar], environment: str | None) -> Any:
    """`text` with its references replaced (the value itself when `text` is one reference)."""
    inner = _whole_reference(text)
    if inner is not None:
        return _lookup(inner, values, environment)
    parts: list[str] = []
    end = 0
    for token in _TOKEN.finditer(text):
        parts.append(text[end : token.start()])
        end = token.end()
        if token.group(0) == "$${":
            parts.append(MARKER)
        elif token.group(1) is None:
            raise _Unresolved("`${` is not closed by `}`", "write `$${` for a literal `${`")
        else:
            parts.append(_text(_lookup(token.group(1), values, environment)))
    parts.append(text[end:])
    return "".join(parts)


def substitute(
    document: Document,
    shown: str,
    values: Mapping[str, Scalar],
    environment: str | None,
    whole: dict[tuple[int, int], str] | None = None,
    warnings: list[Diagnostic] | None = None,
) -> list[Diagnostic]:
    """Resolve every reference in `business:` and `spec:`, in place; the problems.

    `warnings` gets each `$values.NAME` written without braces (kept as written).

    `whole` gets the line and column of each scalar that was one reference and now holds the
    value itself, with that reference (`${values.NAME}`): a schema error about that value shows
    the manifest's line but not the value's origin. (By position, not path: an alias reaches one
    scalar by several paths, and an unknown field's error has the value's path but the key's
    position.)
    """
    walk = _Walk(document, shown, values, environment, whole)
    if isinstance(document.data, dict):
        walk.visit_top(document.data)
    elif isinstance(document.data, list):
        walk.visit(document.data, [])
    problems, changed = walk.problems, walk.changed
    if warnings is not None:
        warnings.extend(walk.warnings)
    if changed and not problems and _json_size(document.data, {}) > MAX_DOCUMENT_JSON_BYTES:
        # The YAML loader bounds what a document expands to; values must not undo that (a
        # long value in a container that aliases repeat would multiply again).
        where = f"environment {environment}" if environment else "pfsync.yaml"
        line, col = document.start
        problems.append(
            Diagnostic(
                shown,
                line,
                col,
                f"with the values of {where}, the document expands to more than "
                f"{MAX_DOCUMENT_JSON_BYTES // (1024 * 1024)} MiB of JSON, the limit for a document",
                "$",
                "use shorter values, or fewer aliases of the containers that hold them",
            )
        )
    return problems


def from_value(message: str, reference: str, environment: str | None) -> str:
    """`message` about a value that a whole-scalar reference gave, saying so."""
    where = f"environment {environment}" if environment else "pfsync.yaml"
    return f"{message} (the value of {escape(reference)} in {where})"


class _Walk:
    """One substitution's walk of a document. A class, not a nested function calling itself:
    that would be a reference cycle holding the whole document until the cyclic garbage
    collector runs, and pfsync pauses it while loading."""

    def __init__(
        self,
        document: Document,
        shown: str,
        values: Mapping[str, Scalar],
        environment: str | None,
        whole: dict[tuple[int, int], str] | None,
    ) -> None:
        self.document, self.shown, self.whole = document, shown, whole
        self.values, self.environment = values, environment
        self.problems: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.visited: set[int] = set()
        self.changed = False

    def visit_top(self, manifest: dict[str, Any]) -> None:
        """The fields values apply in, walked; a reference in any other field, refused."""
        self.visited.add(id(manifest))
        for field, value in list(manifest.items()):
            if field in SUBSTITUTED:
                if isinstance(value, (dict, list)):
                    self.visit(value, [field])
                elif isinstance(value, str):
                    self.scalar(manifest, field, value, [])
            elif isinstance(value, str) and MARKER + "values." in value:
                line, col = self.document.locate([field])
                self.problems.append(
                    Diagnostic(
                        self.shown,
                        line,
                        col,
                        f"`${{values.…}}` is not substituted in `{escape(str(field))}:`",
                        json_path([field]),
                        "values apply only in `business:`, `revision:` and under `spec:`; "
                        f"write the {escape(str(field))} as it is",
                    )
                )

    def visit(self, node: Any, path: list[str | int]) -> None:
        if id(node) in self.visited:
            return  # an alias: the same container, resolved once already
        self.visited.add(id(node))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for step, value in list(items):
            if isinstance(value, (dict, list)):
                self.visit(value, [*path, step])
            elif isinstance(value, str):
                self.scalar(node, step, value, path)

    def scalar(self, node: Any, step: str | int, value: str, path: list[str | int]) -> None:
        if BRACELESS in value:
            self.braceless(value, [*path, step])
        if MARKER in value:
            self.resolve(node, step, value, path)

    def braceless(self, value: str, path: list[str | int]) -> None:
        """A warning for each `$values.NAME` without braces: it stays text, as written."""
        line, col = self.document.locate(path)
        for match in _BRACELESS.finditer(value):
            name = escape(match.group(1))
            self.warnings.append(
                Diagnostic(
                    self.shown,
                    line,
                    col,
                    f"`$values.{name}` is not a value reference: it is sent as written",
                    json_path(path),
                    f"write `${{values.{name}}}` for the value",
                )
            )

    def resolve(self, node: Any, step: str | int, value: str, path: list[str | int]) -> None:
        try:
            node[step] = resolve_text(value, self.values, self.environment)
        except _Unresolved as problem:
            line, col = self.document.locate([*path, step])
            where = json_path([*path, step])
            self.problems.append(
                Diagnostic(self.shown, line, col, problem.message, where, problem.hint)
            )
            return
        self.changed = True
        if self.whole is not None and _whole_reference(value) is not None:
            self.whole[self.document.locate([*path, step])] = value


def _json_size(node: Any, sizes: dict[int, int]) -> int:
    """About how long `node` is as JSON, each alias counted again (memoised per container)."""
    if isinstance(node, (dict, list)):
        known = sizes.get(id(node))
        if known is None:
            if isinstance(node, dict):
                known = 2 + sum(len(key) + 4 + _json_size(v, sizes) for key, v in node.items())
            else:
                known = 2 + sum(1 + _json_size(v, sizes) for v in node)
            sizes[id(node)] = known
        return known
    return len(node) + 2 if isinstance(node, str) else 8
