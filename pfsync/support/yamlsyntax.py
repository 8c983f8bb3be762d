"""YAML syntax errors worded for people, and the located problem every YAML reader reports.

libyaml's messages name the token it choked on ("mapping values are not allowed here"); the usual
causes (a tab, a key indented under a plain value) are recognised and named instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

Position = tuple[int, int]  # 1-based line and column


class YamlProblem(Exception):
    """A located reason a document cannot be turned into JSON."""

    def __init__(self, message: str, position: Position, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.hint = hint
        self.path: list[str | int] = []


def position(mark: Any) -> Position:
    """A libyaml mark as a 1-based (line, column)."""
    return (mark.line + 1, mark.column + 1)


SYNTAX_HINT = "other problems in this file are not checked until this is fixed"
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_SIMPLE_KEY = re.compile(r"( *)([^\s#:'\"\[\]{}&*!|>%@`-][^:#]*?) *")
_PLAIN_PAIR = re.compile(r"( *)([^\s#:'\"\[\]{}&*!|>%@`-][^:#]*?) *: +[^\s#'\"\[{&*!|>].*")


def shown(text: str) -> str:
    """Text quoted as JSON writes it, so spaces and control characters show."""
    return json.dumps(text, ensure_ascii=False)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _significant(lines: list[str], before: int) -> int | None:
    """The index of the last line before `before` that is neither blank nor a comment."""
    for index in range(before - 1, -1, -1):
        stripped = lines[index].strip()
        if stripped and not stripped.startswith("#"):
            return index
    return None


def _misplaced_key(lines: list[str], line: int, col: int) -> tuple[str, Position] | None:
    """For "mapping values are not allowed" at the ':' of (line, col), 0-based: the key to blame.

    The ':' ends a key on a line indented more than the `key: plain value` line before it, so
    YAML read this line as the continuation of that value. Either the line before is dedented
    (the lines around it are aligned) or this line is indented too far.
    """
    if line >= len(lines):
        return None
    here = _SIMPLE_KEY.fullmatch(lines[line][:col])
    above = _significant(lines, line)
    if here is None or above is None:
        return None
    pair = _PLAIN_PAIR.fullmatch(lines[above].rstrip())
    if pair is None or _indent(lines[above]) >= len(here.group(1)):
        return None
    key, indent = here.group(2), len(here.group(1))
    earlier = _significant(lines, above)
    if earlier is not None and _indent(lines[earlier]) >= indent:
        before_key = pair.group(2)
        return (
            f"{shown(before_key)} is indented less than the keys around it, "
            f"so line {line + 1} reads as part of its value",
            (above + 1, _indent(lines[above]) + 1),
        )
    return (
        f"{shown(key)} is indented more than the key on line {above + 1}, "
        "so it reads as part of that key's value",
        (line + 1, indent + 1),
    )


def syntax_problem(exc: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    """A located syntax error, worded to teach the usual cause where it is known."""
    mark = exc.problem_mark or exc.context_mark
    where = position(mark) if mark is not None else (1, 1)
    message = exc.problem or exc.context or "invalid YAML"
    lines = _LINE_BREAK.split(text)
    line, col = where[0] - 1, where[1] - 1
    text_line = lines[line] if line < len(lines) else ""
    if "cannot start any token" in message and text_line[col : col + 1] == "\t":
        if text_line[:col].strip(" \t") == "":
            message = "tabs are not allowed for indentation in YAML; use spaces"
        else:
            message = "tabs are not allowed here in YAML; use spaces"
        return YamlProblem(f"YAML syntax error: {message}", where, SYNTAX_HINT)
    if message.startswith("mapping values are not allowed"):
        blamed = _misplaced_key(lines, line, col)
        if blamed is not None:
            return YamlProblem(f"YAML syntax error: {blamed[0]}", blamed[1], SYNTAX_HINT)
    if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
        context_line, context_col = position(exc.context_mark)
        message += f" ({exc.context} at line {context_line}, column {context_col})"
    return YamlProblem(f"YAML syntax error: {message}", where, SYNTAX_HINT)
