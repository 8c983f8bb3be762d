"""`${values.NAME}` in manifests: per-environment values substituted into string scalars.

A string scalar that is exactly `${values.NAME}` takes the value as it is (a number stays a
number); inside longer text the value's text is spliced in (`true`/`false` for booleans).
`$${` is a literal `${`. Any other `${` is an error, as is an unknown name: every problem is
a Diagnostic at the line and column of the scalar, naming the environment.

Substitution happens in place on a freshly parsed Document (its containers keep their
identity, so positions still locate every value) and before the schema check, which thus
sees the resolved body while its errors still point at the manifest's lines.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from pfsync.config import Scalar
from pfsync.support.diagnostics import Diagnostic, json_path
from pfsync.support.textsafety import escape, json_text
from pfsync.support.yamlload import MAX_DOCUMENT_JSON_BYTES, Document

MARKER = "${"
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
    close = difflib.get_close_matches(name, sorted(values), n=1)
    known = ", ".join(sorted(values)) or "none"
    hint = f"did you mean {close[0]}?" if close else f"the values of {where}: {known}"
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
) -> list[Diagnostic]:
    """Resolve every reference in the document's string values, in place; the problems.

    `whole` gets the line and column of each scalar that was one reference and now holds the
    value itself, with that reference (`${values.NAME}`): a schema error about that value shows
    the manifest's line but not the value's origin. (By position, not path: an alias reaches one
    scalar by several paths, and an unknown field's error has the value's path but the key's
    position.)
    """
    walk = _Walk(document, shown, values, environment, whole)
    if isinstance(document.data, (dict, list)):
        walk.visit(document.data, [])
    problems, changed = walk.problems, walk.changed
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
        self.visited: set[int] = set()
        self.changed = False

    def visit(self, node: Any, path: list[str | int]) -> None:
        if id(node) in self.visited:
            return  # an alias: the same container, resolved once already
        self.visited.add(id(node))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for step, value in list(items):
            if isinstance(value, (dict, list)):
                self.visit(value, [*path, step])
            elif isinstance(value, str) and MARKER in value:
                self.resolve(node, step, value, path)

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
