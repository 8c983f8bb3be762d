"""An apply with a remote state store against the same apply with the file store, in turns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from corpora import Corpus, reset_state
from harness import CREDENTIALS, Contender, Sizes, Timing, measure_interleaved, pfsync, sandbox


def apply_with_and_without(
    store: str,
    sizes: Sizes,
    repo: Corpus,
    store_root: Path,
    prepare: Callable[[], None],
    check: Callable[[], None],
    env: dict[str, str],
) -> tuple[Timing, Timing]:
    """The same apply of `repo` with the file store and with `store` (in `store_root`), in
    turns, against `pfsync sandbox --latency-ms 50` at --parallelism 16."""
    count = sizes.apply_parallel
    apply = ["-q", "apply", "--auto-approve", "--new-lockfile", "--parallelism", "16"]
    with sandbox(50) as url:
        file_store, other = measure_interleaved(
            [
                Contender(
                    f"pfsync apply p16, {count} creates, file store",
                    pfsync("-C", str(repo.root), *apply),
                    prepare=lambda: reset_state(repo.root),
                ),
                Contender(
                    f"pfsync apply p16, {count} creates, {store} store",
                    pfsync("-C", str(store_root), *apply),
                    prepare=prepare,
                    check=check,
                ),
            ],
            sizes.runs_fast,
            env={**CREDENTIALS, **env, "PFSYNC_API_URL": url},
        )
    return file_store, other


def store_result(
    store: str,
    count: int,
    file_store: Timing,
    other: Timing,
    writes: list[int],
    lockfile_bytes: int,
) -> dict[str, Any]:
    """What the results file records of a remote store against the file store."""
    return {
        "file_store": file_store.to_json(count),
        f"{store}_store": other.to_json(count),
        "ratio_to_file_store": round(other.median / file_store.median, 3),
        "ratios_per_round": [
            round(o / f, 3) for f, o in zip(file_store.seconds, other.seconds, strict=True)
        ],
        "store_writes_per_apply": writes,
        "final_lockfile_bytes": lockfile_bytes,
    }
