"""`apply` with the git state store, pushing to a bare repository on this disk."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

from corpora import Corpus, corpus
from harness import WORK, Sizes
from store_compare import apply_with_and_without, store_result

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "benchmark",
    "GIT_AUTHOR_EMAIL": "benchmark@localhost",
    "GIT_COMMITTER_NAME": "benchmark",
    "GIT_COMMITTER_EMAIL": "benchmark@localhost",
}


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git for the benchmark's own set-up; its stripped stdout."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_IDENTITY},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def git_remote(source: Corpus) -> tuple[Path, str]:
    """A bare repository beside `source` whose main holds its manifests and its pfsync.yaml
    with `state: {store: git}`; returns the repository and the commit of main (no lockfile)."""
    folder = WORK / f"{source.root.name}-git-store"
    remote = folder / "remote.git"
    marker = folder / ".complete"  # holds the commit without a lockfile (runs move main on)
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        git("init", "--quiet", "--bare", "-b", "main", str(remote))
        seed = folder / "seed"
        git("clone", "--quiet", str(remote), str(seed))
        shutil.copytree(source.root / "triggers", seed / "triggers")
        config = (source.root / "pfsync.yaml").read_text()
        (seed / "pfsync.yaml").write_text(config + "state: {store: git}\n")
        (seed / ".gitignore").write_text("pfsync.lock.journal\npfsync.lock.lck\n.pfsync/\n")
        git("add", ".", cwd=seed)
        git("-c", "commit.gpgsign=false", "commit", "--quiet", "-m", "manifests", cwd=seed)
        git("push", "--quiet", "origin", "main", cwd=seed)
        shutil.rmtree(seed)
        marker.write_text(git("--git-dir", str(remote), "rev-parse", "refs/heads/main") + "\n")
    return remote, marker.read_text().strip()


def bench_git_store(sizes: Sizes, results: dict[str, Any]) -> None:
    print(
        "apply with the git store (pushing to a bare repository on this disk) vs the file "
        "store, in turns, `pfsync sandbox --latency-ms 50`, --parallelism 16"
    )
    count = sizes.apply_parallel
    repo = corpus(f"apply-{count}", count)
    remote, base = git_remote(repo)
    checkout = remote.parent / "runner"
    writes: list[int] = []

    def fresh_runner() -> None:
        # Every run starts from a branch without a lockfile, in a fresh clone (a CI runner).
        git("--git-dir", str(remote), "update-ref", "refs/heads/main", base)
        shutil.rmtree(checkout, ignore_errors=True)
        git("clone", "--quiet", "--branch", "main", str(remote), str(checkout))

    def count_writes() -> None:
        lockfile = json.loads(git("--git-dir", str(remote), "show", "refs/heads/main:pfsync.lock"))
        if len(lockfile["triggers"]) != count or lockfile.get("lock") or lockfile["pending"]:
            raise SystemExit("the git store's lockfile does not record the apply it measured")
        commits = git("--git-dir", str(remote), "rev-list", "--count", f"{base}..refs/heads/main")
        writes.append(int(commits))

    file_store, git_store = apply_with_and_without(
        "git", sizes, repo, checkout, fresh_runner, count_writes, {}
    )
    lockfile_bytes = len(git("--git-dir", str(remote), "show", "refs/heads/main:pfsync.lock"))
    print(
        f"  (git store: {statistics.median(writes):g} pushed commits per apply, "
        f"a lockfile of {lockfile_bytes / 2**20:.2f} MiB at the end)"
    )
    results[f"apply_{count}_git_store"] = store_result(
        "git", count, file_store, git_store, writes, lockfile_bytes
    )
