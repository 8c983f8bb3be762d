"""Atomic file replacement: readers see the old file or the new one, never a mix.

The text goes to a temporary file in the same directory (a rename is atomic only within one file
system), which is fsynced before the rename so the new name never points at unwritten data; the
directory is fsynced after, so the rename itself survives a power loss.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path

_DEFAULT_MODE = 0o644


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably (OSError on failure, old file intact)."""
    directory = path.parent
    mode = _existing_mode(path)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
            temp.flush()
            if hasattr(os, "fchmod"):  # Windows before Python 3.13 has none (nor modes to keep)
                os.fchmod(temp.fileno(), mode)
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    fsync_directory(directory)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with the UTF-8 `text` atomically and durably."""
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_directory(directory: Path) -> None:
    """Make a rename, creation or removal in `directory` durable."""
    if sys.platform == "win32":  # a directory cannot be opened (or fsynced) with os.open there
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _existing_mode(path: Path) -> int:
    # mkstemp creates 0600; keep the mode of the file being replaced (or a readable default), as
    # the lockfile is committed and read by other tools.
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return _DEFAULT_MODE
