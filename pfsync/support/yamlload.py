"""Safe YAML → JSON values, with the position of every value kept for error messages.

Why not `yaml.safe_load`: it accepts duplicate keys (the last one silently wins), non-string
keys, dates and NaN, and it expands aliases without bound (billion laughs). Here libyaml's C
parser produces events and a small constructor turns them into JSON values with an explicit
stack (no recursion), rejecting everything JSON cannot carry, with the exact line and column.
Nesting is bounded (`MAX_NESTING_DEPTH`, aliases included) so that every later step — schema
checks, the canonical digest, diffs, the lockfile's JSON — stays far from the recursion limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import events as ev

from pfsync.support.yamlsyntax import (
    SYNTAX_HINT,
    Position,
    YamlProblem,
    position,
    shown,
    syntax_problem,
)

try:  # libyaml is bundled in PyYAML's wheels; the pure-Python parser is the fallback.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_DOCUMENT_JSON_BYTES = 1024 * 1024
MAX_NESTING_DEPTH = 100
__all__ = ["Document", "YamlProblem", "iter_documents"]

_YAML = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_YAML + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE = _YAML + "map", _YAML + "seq", _YAML + "merge"
_NOT_JSON = {
    _YAML + "timestamp": "a date or timestamp",
    _YAML + "binary": "binary data",
    _YAML + "set": "a set",
    _YAML + "omap": "an ordered map",
    _YAML + "pairs": "a list of pairs",
    _YAML + "value": "a '=' value key",
}
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


@dataclass
class Document:
    """One YAML document as JSON data, with positions to locate any value by its JSON path."""

    data: Any
    start: Position
    # id(container) -> {key: (key position, value position)} for mappings,
    # id(container) -> [value position, ...] for sequences.
    positions: dict[int, Any] = field(default_factory=dict)
    # position -> source text of each plain (unquoted) scalar that YAML read as a non-string
    plain: dict[Position, str] = field(default_factory=dict)

    def locate(self, path: list[str | int], *, key: bool = False) -> Position:
        """Where the value at `path` is written (its key, with `key=True`); else the nearest."""
        node, where = self.data, self.start
        for step in path:
            table = self.positions.get(id(node))
            if table is None:
                return where
            try:
                if isinstance(node, dict):
                    key_pos, value_pos = table[step]
                    where = key_pos if key and step == path[-1] else value_pos
                else:
                    where = table[step]
                node = node[step]
            except (KeyError, IndexError, TypeError):
                return where
        return where


def _mebibytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MiB"


def _json_size(value: Any) -> int:
    return len(value) + 2 if isinstance(value, str) else len(str(value))


class _Container:
    """A mapping or sequence under construction."""

    __slots__ = ("anchor", "data", "height", "merges", "pending_key", "positions", "size", "start")

    def __init__(self, data: Any, positions: Any, start: Position, anchor: str | None) -> None:
        self.data = data
        self.positions = positions
        self.start = start
        self.anchor = anchor
        self.size = 2
        self.height = 1  # levels of nesting from this container down, itself included
        self.pending_key: tuple[Any, Position] | None = None
        self.merges: list[tuple[Any, Position]] = []


def _scalar(event: ev.ScalarEvent) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        if event.implicit[0]:
            tag = _RESOLVER.resolve(  # type: ignore[no-untyped-call]
                yaml.ScalarNode, event.value, event.implicit
            )
        else:
            tag = _STR
    if tag == _STR:
        return event.value
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return _CONSTRUCTOR.construct_yaml_bool(yaml.ScalarNode(tag, event.value))
    if tag == _INT:
        try:
            return _CONSTRUCTOR.construct_yaml_int(yaml.ScalarNode(tag, event.value))
        except ValueError:
            where = position(event.start_mark)
            raise YamlProblem(f"invalid integer {shown(event.value)}", where) from None
    if tag == _FLOAT:
        try:
            number = _CONSTRUCTOR.construct_yaml_float(yaml.ScalarNode(tag, event.value))
        except ValueError:
            where = position(event.start_mark)
            raise YamlProblem(f"invalid number {shown(event.value)}", where) from None
        if math.isnan(number) or math.isinf(number):
            raise YamlProblem(
                f"{shown(event.value)} is not a number JSON can carry "
                "(NaN and infinity are not allowed)",
                position(event.start_mark),
            )
        return number
    if tag == _MERGE:
        return _MERGE_KEY
    raise _unsupported_tag(tag, position(event.start_mark))


def _unsupported_tag(tag: str, where: Position) -> YamlProblem:
    if tag in _NOT_JSON:
        return YamlProblem(
            f"{_NOT_JSON[tag]} cannot be carried by JSON", where, "quote it to make it a string"
        )
    shown = "!!" + tag[len(_YAML) :] if tag.startswith(_YAML) else tag
    return YamlProblem(
        f"YAML tag {shown} is not allowed",
        where,
        "only plain YAML values (strings, numbers, booleans, null, lists, mappings) are accepted",
    )


def _too_deep(where: Position) -> YamlProblem:
    return YamlProblem(
        f"lists and mappings nested more than {MAX_NESTING_DEPTH} levels deep",
        where,
        "flatten the structure",
    )


class _MergeKey:
    """The `<<` merge key, kept apart from the string '<<'."""


_MERGE_KEY = _MergeKey()


def _describe_key(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "a boolean"
    if isinstance(key, (int, float)):
        return "a number"
    return "a list or mapping"


class _Builder:
    """Turns a stream of parser events into Documents (one per YAML document)."""

    def __init__(self) -> None:
        self.stack: list[_Container] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}
        self.document: Document | None = None
        self.aliased = False  # whether this document used an alias (or a merge of one)

    def start_document(self, event: ev.DocumentStartEvent) -> None:
        self.anchors = {}
        self.aliased = False
        self.document = Document(None, position(event.start_mark))

    def add(
        self, value: Any, size: int, where: Position, anchor: str | None = None, height: int = 0
    ) -> None:
        """Attach a finished value to the open container (or make it the document's root)."""
        if height == 0 and size > MAX_DOCUMENT_JSON_BYTES and self.stack:
            raise YamlProblem(
                f"a value of {_mebibytes(size)} exceeds the {_mebibytes(MAX_DOCUMENT_JSON_BYTES)} "
                "limit for a document",
                where,
            )
        if anchor is not None:
            self.anchors[anchor] = (value, size, height)
        if not self.stack:
            assert self.document is not None
            self.document.data = value
            self.document.start = where if isinstance(value, (dict, list)) else self.document.start
            return
        top = self.stack[-1]
        top.height = max(top.height, height + 1)
        if isinstance(top.data, list):
            top.data.append(value)
            top.positions.append(where)
            top.size += size + 1
        elif top.pending_key is None:
            if isinstance(value, _MergeKey):
                top.pending_key = (value, where)
                return
            if not isinstance(value, str):
                raise YamlProblem(
                    f"mapping keys must be strings, not {_describe_key(value)}",
                    where,
                    "quote the key",
                )
            if value in top.data:
                first = top.positions[value][0]
                top.pending_key = (value, where)  # so the problem's path names the key
                raise YamlProblem(
                    f"duplicate key {shown(value)} (first defined at line {first[0]})", where
                )
            top.pending_key = (value, where)
            top.positions[value] = (where, where)
        else:
            key, key_where = top.pending_key
            top.pending_key = None
            if isinstance(key, _MergeKey):
                top.merges.append((value, where))
                return
            top.data[key] = value
            top.positions[key] = (key_where, where)
            top.size += len(key) + 4 + size
        if top.size > MAX_DOCUMENT_JSON_BYTES:
            limit = _mebibytes(MAX_DOCUMENT_JSON_BYTES)
            if self.aliased:
                raise YamlProblem(
                    f"document expands to more than {limit} of JSON (aliases nested too deeply?)",
                    top.start,
                )
            raise YamlProblem(
                f"document is more than {limit} of JSON, the limit for a document",
                top.start,
                "split it into several documents or files",
            )

    def open(self, data: Any, positions: Any, event: ev.CollectionStartEvent) -> None:
        if event.tag not in (None, "!", _MAP if isinstance(data, dict) else _SEQ):
            raise _unsupported_tag(event.tag, position(event.start_mark))
        if len(self.stack) >= MAX_NESTING_DEPTH:
            raise _too_deep(position(event.start_mark))
        self.stack.append(_Container(data, positions, position(event.start_mark), event.anchor))

    def close(self) -> None:
        top = self.stack.pop()
        if isinstance(top.data, dict):
            self._apply_merges(top)
            self.positions(top)
        else:
            self.positions(top)
        self.add(top.data, top.size, top.start, top.anchor, top.height)

    def positions(self, top: _Container) -> None:
        assert self.document is not None
        self.document.positions[id(top.data)] = top.positions

    def _apply_merges(self, top: _Container) -> None:
        # `<<: *base` (or a list of them): keys written here win, then earlier merges win.
        for value, where in top.merges:
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    raise YamlProblem("a '<<' merge key needs a mapping or a list of them", where)
                assert self.document is not None
                source_positions = self.document.positions.get(id(source), {})
                for key, item in source.items():
                    if key not in top.data:
                        top.data[key] = item
                        top.positions[key] = source_positions.get(key, (where, where))
                        top.size += len(key) + 4 + len(str(item))

    def current_path(self) -> list[str | int]:
        """The JSON path of the value being read (for locating problems)."""
        path: list[str | int] = []
        for container in self.stack:
            if isinstance(container.data, list):
                path.append(len(container.data))
            elif container.pending_key is not None and isinstance(container.pending_key[0], str):
                path.append(container.pending_key[0])
        return path

    def alias(self, event: ev.AliasEvent) -> None:
        self.aliased = True
        where = position(event.start_mark)
        if event.anchor not in self.anchors:
            if any(c.anchor == event.anchor for c in self.stack):
                raise YamlProblem(f"alias *{event.anchor} refers to itself (recursive)", where)
            raise YamlProblem(f"alias *{event.anchor} is not defined", where)
        value, size, height = self.anchors[event.anchor]
        if len(self.stack) + height > MAX_NESTING_DEPTH:
            raise _too_deep(where)
        self.add(value, size, where, height=height)


def iter_documents(text: str) -> Iterator[Document | YamlProblem]:
    """Each non-empty document of `text`, or the problem that stopped reading it.

    A problem ends the stream: YAML cannot be resynchronised after a syntax error, and the
    documents before it have already been yielded.
    """
    loader = _Loader(text)
    builder = _Builder()
    try:
        while True:
            try:
                event = loader.get_event()
            except yaml.MarkedYAMLError as exc:
                problem = syntax_problem(exc, text)
                problem.path = builder.current_path()
                yield problem
                return
            except yaml.YAMLError as exc:
                yield YamlProblem(f"YAML error: {exc}", (1, 1), SYNTAX_HINT)
                return
            if event is None or isinstance(event, ev.StreamEndEvent):
                return
            try:
                if isinstance(event, ev.ScalarEvent):
                    value = _scalar(event)
                    where = position(event.start_mark)
                    if not isinstance(value, str) and not event.style and builder.document:
                        builder.document.plain[where] = event.value
                    builder.add(value, _json_size(value), where, event.anchor)
                elif isinstance(event, ev.MappingStartEvent):
                    builder.open({}, {}, event)
                elif isinstance(event, ev.SequenceStartEvent):
                    builder.open([], [], event)
                elif isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
                    builder.close()
                elif isinstance(event, ev.AliasEvent):
                    builder.alias(event)
                elif isinstance(event, ev.DocumentStartEvent):
                    builder.start_document(event)
                elif isinstance(event, ev.DocumentEndEvent):
                    document = builder.document
                    builder.document = None
                    if document is not None and document.data is not None:
                        yield document
            except YamlProblem as problem:
                problem.path = builder.current_path()
                yield problem
                return
    finally:
        loader.dispose()
