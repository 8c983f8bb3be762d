"""How a path is shown to the user: relative where that is shorter and unambiguous."""

from __future__ import annotations

import os
from pathlib import Path

# A path as a Path or as the string of one (10,000 Path objects cost a warm run a twentieth).
StrPath = str | os.PathLike[str]


def display_path(path: Path, root: Path) -> str:
    """`path` relative to `root` (POSIX separators) when inside it, else as an absolute path."""
    absolute = os.path.abspath(path)
    top = os.path.abspath(root)
    if os.sep == "/" and top != "/" and absolute.startswith(top + "/"):
        return absolute[len(top) + 1 :]  # the common case, without pathlib's cost per file
    try:
        return Path(absolute).relative_to(top).as_posix()
    except ValueError:
        return str(Path(absolute))


def shown_path(path: Path) -> str:
    """`path` relative to the current directory when inside it, else absolute."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    return absolute if relative.startswith("..") else relative
