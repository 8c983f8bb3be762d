"""The manifest cache: warm `validate` of one file and warm `plan`, and cold runs against pfsync
before the cache.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Any

from corpora import BEFORE_CACHE, Corpus, clear_cache, corpus, pfsync_at, reset_state
from harness import (
    BIN,
    Contender,
    Sizes,
    check_jsonschema,
    measure,
    measure_interleaved,
    pfsync,
    run_once,
)


def bench_cache(sizes: Sizes, results: dict[str, Any]) -> None:
    """Warm runs (the cache built by an earlier run) against cold ones and against no cache."""
    count = sizes.large
    print(f"manifest cache (.pfsync/cache/), {count} manifests")
    repo = corpus(f"single-{count}", count, split=True)
    root = str(repo.root)
    reset_state(repo.root)  # plan without a lockfile: every manifest is a create
    one = repo.files[len(repo.files) // 2]
    runs = sizes.runs_fast

    def cold() -> None:
        clear_cache(repo.root)

    def warm() -> None:
        run_once(pfsync("-C", root, "-q", "validate"))  # untimed: builds or refreshes it

    validate_one = pfsync("-C", root, "-q", "validate", str(one))
    validate_all = pfsync("-C", root, "-q", "validate")
    plan = pfsync("-C", root, "plan")
    timings = {
        "validate_one_warm": measure(
            "pfsync validate FILE, warm", runs, validate_one, prepare=warm
        ),
        "validate_one_cold": measure(
            "pfsync validate FILE, cold", runs, validate_one, prepare=cold
        ),
        "check_jsonschema_one": measure("check-jsonschema FILE", runs, check_jsonschema([one])),
        "validate_all_warm": measure("pfsync validate, warm", runs, validate_all, prepare=warm),
        "validate_all_cold": measure("pfsync validate, cold", runs, validate_all, prepare=cold),
        "validate_all_no_cache": measure(
            "pfsync --no-cache validate", runs, pfsync("-C", root, "-q", "--no-cache", "validate")
        ),
        # A plan warms it for the next plan: validate writes no bodies.
        "plan_warm": measure(
            "pfsync plan, warm", runs, plan, prepare=functools.partial(run_once, plan)
        ),
        "plan_cold": measure("pfsync plan, cold", runs, plan, prepare=cold),
        "plan_no_cache": measure(
            "pfsync --no-cache plan", runs, pfsync("-C", root, "--no-cache", "plan")
        ),
    }
    entry: dict[str, Any] = {name: timing.to_json(count) for name, timing in timings.items()}
    median = {name: timing.median for name, timing in timings.items()}
    entry["ratios"] = {
        "validate_one_warm_to_check_jsonschema": round(
            median["validate_one_warm"] / median["check_jsonschema_one"], 2
        ),
        "plan_warm_to_cold": round(median["plan_warm"] / median["plan_cold"], 2),
        "validate_all_cold_to_no_cache": round(
            median["validate_all_cold"] / median["validate_all_no_cache"], 2
        ),
        "plan_cold_to_no_cache": round(median["plan_cold"] / median["plan_no_cache"], 2),
    }
    entry.update(cold_against_before_cache(repo, one, runs))
    results[f"cache_{count}"] = entry


def cold_against_before_cache(repo: Corpus, one: Path, runs: int) -> dict[str, Any]:
    """Cold runs (no cache yet, so writing it) in turns with pfsync before the cache existed."""
    before = pfsync_at(BEFORE_CACHE)
    if before is None:
        print(f"  (pfsync {BEFORE_CACHE} is not in this checkout's history: not compared)")
        return {}
    then = {"PYTHONPATH": str(before)}
    # Both run as `python -m pfsync`: this checkout's, installed, and the old one's tree. In the
    # corpus, where no `pfsync` folder comes first on the module path (here, this checkout's
    # source would).
    python, where = str(BIN / "python"), repo.root
    module = [python, "-m", "pfsync"]
    found = subprocess.run(
        [python, "-c", "import pfsync; print(pfsync.__file__)"],
        cwd=where,
        env={**os.environ, **then},
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not Path(found).is_relative_to(before):
        raise SystemExit(f"pfsync {BEFORE_CACHE} was not the one imported: {found}")
    # Its bytecode compiled once, as pip compiles the installed one's (a run need not write it:
    # PYTHONDONTWRITEBYTECODE, a read-only tree).
    subprocess.run([python, "-m", "compileall", "-q", str(before)], check=True)
    clear = functools.partial(clear_cache, repo.root)
    entry: dict[str, Any] = {}
    ratios: dict[str, float] = {}
    commands = {
        "validate_one": ("validate FILE", ["-q", "validate", str(one)]),
        "validate_all": ("validate", ["-q", "validate"]),
        "plan": ("plan", ["plan"]),
    }
    for name, (label, args) in commands.items():
        cold, old = measure_interleaved(
            [
                Contender(f"pfsync {label}, cold", [*module, *args], clear),
                Contender(f"pfsync {label}, as of {BEFORE_CACHE}", [*module, *args], env=then),
            ],
            runs,
            cwd=where,
        )
        entry[f"{name}_cold_in_turns"] = cold.to_json()
        entry[f"{name}_before_cache"] = old.to_json()
        ratios[f"{name}_cold_to_before_cache"] = round(cold.median / old.median, 2)
    return {"before_cache": BEFORE_CACHE, "cold_to_before_cache": entry, "ratios_before": ratios}
