"""A YAML file read safely: size, type and encoding checked, every document with positions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pfsync.support.diagnostics import Diagnostic, json_path
from pfsync.support.paths import StrPath
from pfsync.support.yamlload import Document, YamlProblem, iter_documents

MAX_FILE_BYTES = 10 * 1024 * 1024


def read_text(path: Path, shown: str) -> str | Diagnostic:
    """The file's text, or why it cannot be a manifest (size, type, encoding)."""
    raw = read_raw(path, shown)
    return raw if isinstance(raw, Diagnostic) else decode(raw, shown)


def read_raw(path: Path, shown: str) -> bytes | Diagnostic:
    """The file's bytes, or why it cannot be a manifest (not a regular file, too large)."""
    read = read_raw_and_stat(path, shown)
    return read if isinstance(read, Diagnostic) else read[0]


def read_raw_and_stat(path: StrPath, shown: str) -> tuple[bytes, os.stat_result] | Diagnostic:
    """`read_raw`, with the file's stat taken before reading it."""
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
    return raw, info


def decode(raw: bytes, shown: str) -> str | Diagnostic:
    """UTF-8 text without a byte-order mark, or where the first undecodable byte is."""
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
    return parse_yaml_text(text, shown)


def parse_yaml_text(text: str, shown: str) -> tuple[list[Document], list[Diagnostic]]:
    """The text's non-empty YAML documents, and the problem that stopped reading, if any."""
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
