"""Diagnostic: one located problem in a manifest or config file, and its output formats."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pfsync.support.textsafety import escape, json_text

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
WARNING = "warning: "  # how a warning's line starts after its place, in the text format


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


def format_text(diagnostics: Sequence[Diagnostic], warnings: Sequence[Diagnostic] = ()) -> str:
    """`file:line:col: message [json.path]`, one per line (outside text escaped); a warning's
    message starts `warning: `. In the order of their places."""
    return "".join(located(d, label) + "\n" for d, label in _in_order(diagnostics, warnings))


def located(d: Diagnostic, label: str = "") -> str:
    """`file:line:col: LABELmessage (hint) [json.path]`, escaped, on one line."""
    return escape(f"{d.location}: {label}{d.full_message()} [{d.path}]")


def _in_order(
    diagnostics: Sequence[Diagnostic], warnings: Sequence[Diagnostic]
) -> list[tuple[Diagnostic, str]]:
    """Problems and warnings together, by place; each with its label (`warning: ` or none)."""
    labelled = [(d, "") for d in diagnostics] + [(w, WARNING) for w in warnings]
    return sorted(labelled, key=lambda item: (item[0].file, item[0].line, item[0].col))


def format_json(diagnostics: Sequence[Diagnostic], warnings: Sequence[Diagnostic] = ()) -> str:
    """A versioned JSON document listing every problem (and every warning, which leaves the
    document valid)."""
    doc = {
        "format_version": 1,
        "valid": not diagnostics,
        "problems": [_as_json(d) for d in diagnostics],
        "warnings": [_as_json(w) for w in warnings],
    }
    return json_text(doc, indent=2) + "\n"


def _as_json(d: Diagnostic) -> dict[str, object]:
    return {
        "file": d.file,
        "line": d.line,
        "col": d.col,
        "path": d.path,
        "message": d.message,
        "hint": d.hint,
    }


def _escape_github_data(text: str) -> str:
    # Workflow commands end at a newline, and % starts an escape: encode both (as actions/toolkit).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_github_property(text: str) -> str:
    return _escape_github_data(text).replace(":", "%3A").replace(",", "%2C")


def github_warning(title: str, message: str) -> str:
    """A GitHub Actions `::warning title=…::message` workflow command line (escaped)."""
    return (
        f"::warning title={_escape_github_property(escape(title))}"
        f"::{_escape_github_data(escape(message))}\n"
    )


def format_github(diagnostics: Sequence[Diagnostic], warnings: Sequence[Diagnostic] = ()) -> str:
    """GitHub Actions workflow annotations: `::error file=…,line=…,col=…::message` (a
    warning: `::warning …`)."""
    return "".join(
        f"::{'warning' if label else 'error'} file={_escape_github_property(escape(d.file))},"
        f"line={d.line},col={d.col}"
        f"::{_escape_github_data(escape(d.full_message() + ' [' + d.path + ']'))}\n"
        for d, label in _in_order(diagnostics, warnings)
    )


Formatter = Callable[[Sequence[Diagnostic], Sequence[Diagnostic]], str]
FORMATTERS: dict[str, Formatter] = {
    "text": format_text,
    "json": format_json,
    "github": format_github,
}
