"""The generated repositories the steps measure, the request bodies of the curl loop, and pfsync
as it was at an earlier commit (for the cache's "no slower than before" budget).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import REPO, WORK


@dataclass
class Corpus:
    """A generated repository: its root and manifest files."""

    root: Path
    files: list[Path]


def corpus(name: str, count: int, *, multi_document: bool = False, split: bool = False) -> Corpus:
    from generate import write_repository  # type: ignore[import-not-found]

    root = WORK / name
    marker = root / ".complete"
    if marker.exists():
        files = sorted((root / "triggers").rglob("*.yaml"))
    else:
        shutil.rmtree(root, ignore_errors=True)
        files = sorted(write_repository(root, count, multi_document=multi_document, split=split))
        marker.write_text("")
    if split:  # a configuration declaring only the first half (triggers/a/)
        (root / "half.yaml").write_text(
            (root / "pfsync.yaml").read_text().replace("triggers/**/", "triggers/a/**/")
        )
    return Corpus(root, files)


def clear_cache(root: Path) -> None:
    """Remove the manifest cache: the next run is a cold one."""
    shutil.rmtree(root / ".pfsync" / "cache", ignore_errors=True)


# pfsync as it was when the manifest cache's budget "cold runs no slower than today" was set:
# the commit before that work began. Its code runs from its own tree, beside this checkout's.
BEFORE_CACHE = "437bbe9"


def pfsync_at(commit: str) -> Path | None:
    """A folder holding pfsync's package and schemas as of `commit`, taken from this checkout's
    history (None when the history lacks it: a shallow clone)."""
    folder = WORK / f"pfsync-{commit}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", commit, "pfsync", "schemas"],
            capture_output=True,
        )
        if archive.returncode != 0:
            return None
        folder.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(folder, filter="data")
        (folder / ".complete").write_text("")
    return folder


def checkout_state() -> dict[str, Any]:
    """The commit measured, and whether the work tree differed from it (what was installed)."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True)
    changes = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "pfsync", "schemas"],
        capture_output=True,
    )
    if head.returncode != 0:
        return {"commit": None, "changed": None}
    return {"commit": head.stdout.decode().strip(), "changed": bool(changes.stdout.strip())}


def reset_state(root: Path) -> None:
    for name in ("pfsync.lock", "pfsync.lock.journal", "pfsync.lock.lck"):
        (root / name).unlink(missing_ok=True)


def request_bodies(source: Corpus, count: int) -> Path:
    """One JSON request body per manifest (the `spec`), for the curl loop."""
    import yaml

    folder = WORK / f"bodies-{count}"
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    written = 0
    for path in source.files:
        for document in yaml.safe_load_all(path.read_text()):
            if document and written < count:
                (folder / f"{written:05d}.json").write_text(json.dumps(document["spec"]))
                written += 1
    (folder / ".complete").write_text("")
    return folder
