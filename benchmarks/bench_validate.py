"""`validate` and `plan` against check-jsonschema on the same files."""

from __future__ import annotations

import functools
import time
from typing import Any

from corpora import clear_cache, corpus, reset_state
from harness import CREDENTIALS, Sizes, check_jsonschema, measure, pfsync, run_once, sandbox


def bench_validate(sizes: Sizes, results: dict[str, Any]) -> None:
    print("validate (single-document files: check-jsonschema reads one document per file)")
    for count in (sizes.small, sizes.large):
        repo = corpus(f"single-{count}", count, split=True)
        runs = sizes.runs_fast if count <= 1000 else sizes.runs_slow
        ours = measure(
            f"pfsync validate, {count} files (cold cache)",
            runs,
            pfsync("-C", str(repo.root), "-q", "validate"),
            prepare=functools.partial(clear_cache, repo.root),
        )
        peer = measure(f"check-jsonschema, {count} files", runs, check_jsonschema(repo.files))
        results[f"validate_{count}"] = {
            "pfsync": ours.to_json(count),
            "check_jsonschema": peer.to_json(count),
            "speedup": round(peer.median / ours.median, 2),
        }
    mixed = corpus(f"multi-{sizes.large}", sizes.large, multi_document=True)
    ours = measure(
        f"pfsync validate, {sizes.large} manifests in {len(mixed.files)} files (multi-doc)",
        sizes.runs_slow,
        pfsync("-C", str(mixed.root), "-q", "validate"),
        prepare=functools.partial(clear_cache, mixed.root),
    )
    results[f"validate_{sizes.large}_multi_document"] = {
        "files": len(mixed.files),
        "pfsync": ours.to_json(sizes.large),
    }


def bench_plan(sizes: Sizes, results: dict[str, Any]) -> None:
    print("plan (lockfile holding half of the manifests, built by applying that half)")
    for count in (sizes.small, sizes.large):
        repo = corpus(f"single-{count}", count, split=True)
        with sandbox(0) as url:
            env = {**CREDENTIALS, "PFSYNC_API_URL": url}
            reset_state(repo.root)
            started = time.perf_counter()
            run_once(
                pfsync(
                    "--config",
                    str(repo.root / "half.yaml"),
                    "-q",
                    "apply",
                    "--auto-approve",
                    "--new-lockfile",
                    "--parallelism",
                    "8",
                ),
                env=env,
            )
            print(f"  (lockfile of {count // 2} applied in {time.perf_counter() - started:.1f} s)")
        runs = sizes.runs_fast if count <= 1000 else sizes.runs_slow
        ours = measure(
            f"pfsync plan, {count} manifests (cold cache)",
            runs,
            pfsync("-C", str(repo.root), "plan"),
            env={"PFSYNC_API_URL": url},
            prepare=functools.partial(clear_cache, repo.root),
        )
        entry: dict[str, Any] = {"pfsync": ours.to_json(count)}
        peer = results.get(f"validate_{count}", {}).get("check_jsonschema")
        if peer:
            entry["speedup_vs_check_jsonschema"] = round(peer["median_s"] / ours.median, 2)
        results[f"plan_{count}"] = entry
