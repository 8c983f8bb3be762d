"""Diagnostic: one located problem in a manifest or config file, and its output formats."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pfsync.support.textsafety import escape, json_text

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def json_path(path: Iterable[str | int]) -> str:
    """`$.spec.steps[0].type` for the given path elements."""
    return "$" + "".join(json_path_step(step) for step in path)


@functools.lru_cache(maxsize=65_536)
def json_path_step(step: str | int) -> str:
    """One element of a JSON path: `.name`, `[0]` or `['odd key']`."""
    if isinstance(step, int):
        return f"[{step}]"
    if _IDENTIFIER.fullmatch(step):
        return f".{step}"
    return "[" + repr(step) + "]"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A problem at file:line:col (1-based), with the JSON path of the offending value."""

    file: str
    line: int
    col: int
    message: str
    path: str = "$"
    hint: str | None = None

    @property
    def location(self) -> str:
        """`file:line:col`, as editors and terminals link it."""
        return f"{self.file}:{self.line}:{self.col}"

    def full_message(self) -> str:
        """The message followed by its hint, if any."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


def sort_diagnostics(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """All problems sorted by file, then line, then column; duplicates dropped."""
    return sorted(set(diagnostics))


def format_text(diagnostics: Sequence[Diagnostic]) -> str:
    """`file:line:col: message [json.path]`, one per line (outside text escaped)."""
    return "".join(
        escape(f"{d.location}: {d.full_message()} [{d.path}]") + "\n" for d in diagnostics
    )


def format_json(diagnostics: Sequence[Diagnostic]) -> str:
    """A versioned JSON document listing every problem."""
    doc = {
        "format_version": 1,
        "valid": not diagnostics,
        "problems": [
            {
                "file": d.file,
                "line": d.line,
                "col": d.col,
                "path": d.path,
                "message": d.message,
                "hint": d.hint,
            }
            for d in diagnostics
        ],
    }
    return json_text(doc, indent=2) + "\n"


def _escape_github_data(text: str) -> str:
    # Workflow commands end at a newline, and % starts an escape: encode both (as actions/toolkit).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_github_property(text: str) -> str:
    return _escape_github_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(diagnostics: Sequence[Diagnostic]) -> str:
    """GitHub Actions workflow annotations: `::error file=…,line=…,col=…::message`."""
    return "".join(
        f"::error file={_escape_github_property(escape(d.file))},line={d.line},col={d.col}"
        f"::{_escape_github_data(escape(d.full_message() + ' [' + d.path + ']'))}\n"
        for d in diagnostics
    )


FORMATTERS: dict[str, Callable[[Sequence[Diagnostic]], str]] = {
    "text": format_text,
    "json": format_json,
    "github": format_github,
}
