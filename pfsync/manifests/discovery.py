"""Which files are manifests: the config's globs, or paths named on the command line.

Directory symlinks are followed only inside the repository and never round a loop; what cannot
be followed is reported where it is, like any other problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from pfsync.config import Config
from pfsync.support.diagnostics import Diagnostic
from pfsync.support.paths import display_path

MANIFEST_SUFFIXES = (".yaml", ".yml")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a glob over POSIX relative paths: `**/` spans directories, `*` does not."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _static_prefix(pattern: str) -> str:
    """The leading directories of a glob that hold no wildcard (where the walk starts)."""
    parts = pattern.split("/")
    prefix = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        prefix.append(part)
    return "/".join(prefix)


def _walk_files(top: Path, root: Path, problems: list[Diagnostic]) -> Iterator[str]:
    """Files under `top`, following directory symlinks that stay inside `root`, never a loop."""
    root_real = os.path.realpath(root)
    top_real = os.path.realpath(top)
    visited = {top_real}
    stack: list[tuple[str, str]] = [(str(top), top_real)]
    while stack:
        directory, directory_real = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name, reverse=True)
        except OSError as exc:
            problems.append(_file_problem(Path(directory), root, f"cannot list: {exc.strerror}"))
            continue
        subdirectories = []
        for entry in entries:
            link = entry.is_symlink()
            real = (
                os.path.realpath(entry.path) if link else os.path.join(directory_real, entry.name)
            )
            if link and not _inside(real, root_real):
                problems.append(
                    _file_problem(
                        Path(entry.path),
                        root,
                        "symbolic link points outside the repository; not followed",
                    )
                )
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                yield entry.path
            elif link and _inside(directory_real, real):
                problems.append(
                    _file_problem(
                        Path(entry.path),
                        root,
                        "symbolic link loop: this directory contains itself; not followed",
                    )
                )
            elif real not in visited:  # a second link to a directory already walked adds nothing
                visited.add(real)
                subdirectories.append((entry.path, real))
        stack.extend(subdirectories)


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _file_problem(path: Path, root: Path, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(display_path(path, root), 1, 1, message, hint=hint)


def discover_shown(config: Config) -> tuple[list[tuple[str, str]], list[Diagnostic]]:
    """The files the config's `manifests` globs match, each as (its path, its path as shown:
    relative to the config's directory), and problems met while looking. Paths are strings:
    a Path object for each of 10,000 files costs a warm run a twentieth of its time."""
    problems: list[Diagnostic] = []
    found: dict[str, str] = {}
    not_manifests = {str(p) for p in (config.path, config.lockfile) if p is not None}
    # Most files are under the root: their shown path is a slice (10,000 files, every run).
    root_prefix = os.path.join(str(config.root), "")
    for pattern in config.manifests:
        pattern = pattern.lstrip("./") if pattern.startswith("./") else pattern
        if not any(c in pattern for c in "*?["):
            path = config.root / pattern
            if path.exists():
                found.setdefault(display_path(path, config.root), str(path))
            continue
        regex = _glob_regex(pattern)
        prefix = _static_prefix(pattern)
        top = config.root / prefix if prefix else config.root
        if not top.is_dir():
            continue
        for name in _walk_files(top, config.root, problems):
            if name.startswith(root_prefix) and os.sep == "/":
                relative = name[len(root_prefix) :]
            else:
                relative = display_path(Path(name), config.root)
            if regex.fullmatch(relative) and name not in not_manifests:
                found.setdefault(relative, name)
    return [(found[shown], shown) for shown in sorted(found)], problems


def is_manifest_path(config: Config, relative: str) -> bool:
    """Whether `relative` (a POSIX path from the config's directory) is one the config's
    `manifests` globs name, whether or not the file exists now."""
    for pattern in config.manifests:
        pattern = pattern.lstrip("./") if pattern.startswith("./") else pattern
        if not any(c in pattern for c in "*?["):
            if relative == pattern:
                return True
        elif _glob_regex(pattern).fullmatch(relative):
            return True
    return False


def expand_paths(
    paths: Sequence[str], root: Path, cwd: Path
) -> tuple[list[Path], list[Diagnostic]]:
    """Files named on the command line; directories contribute their *.yaml and *.yml files."""
    problems: list[Diagnostic] = []
    files: dict[str, Path] = {}
    for name in paths:
        path = cwd / name
        if path.is_dir():
            for name in _walk_files(path, path, problems):
                if name.endswith(MANIFEST_SUFFIXES):
                    file = Path(name)
                    files.setdefault(display_path(file, root), file)
        elif path.exists() or path.is_symlink():
            files.setdefault(display_path(path, root), path)
        else:
            problems.append(_file_problem(path, root, "no such file or directory"))
    return [files[k] for k in sorted(files)], problems
