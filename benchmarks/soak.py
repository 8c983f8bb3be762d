#!/usr/bin/env python3
"""Soak test: N creates against a hostile sandbox, resumed until done, then exactly-once checks.

    .venv/bin/python benchmarks/soak.py                 # 10,000 creates (several minutes)
    .venv/bin/python benchmarks/soak.py --count 500     # a quick one

Runs with the Python that has pfsync installed (the sandbox is in-process, the `pfsync` next to
this interpreter is run as a subprocess). The sandbox honours Idempotency-Key and is hostile at
once: a rate limit (429 with Retry-After), 5% of creates answered 500 before storing, 2% stored
and then the connection dropped without an answer. `pfsync apply --auto-approve
--retry-uncertain` is re-run until it exits 0. Then: exactly N triggers in the sandbox, no name
twice, and the lockfile's ids are exactly the sandbox's. All traffic stays on 127.0.0.1. Prints
one JSON line with the result and exits 0 only when every check holds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pfsync.sandbox import Sandbox

BUSINESS = "biz_soak"


def pfsync_executable() -> str:
    """The pfsync installed next to this interpreter, else the one on PATH."""
    candidate = Path(sys.executable).parent / "pfsync"
    found = str(candidate) if candidate.exists() else shutil.which("pfsync")
    if not found:
        sys.exit("pfsync is not installed for this Python; run: pip install -e .")
    return found


def make_repo(root: Path, count: int) -> None:
    """pfsync.yaml and `count` manifests, 500 per directory."""
    (root / "pfsync.yaml").write_text(f"business: {BUSINESS}\n")
    for n in range(count):
        folder = root / "triggers" / f"part-{n // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"t{n:05d}.yaml").write_text(
            "apiVersion: pfsync/v1\nkind: Trigger\n"
            f"key: t{n:05d}\n"
            "spec:\n"
            f"  name: Soak trigger {n:05d}\n"
            "  project_defined_event: pde_signup\n"
            "  steps:\n"
            "    - type: email\n"
            f"      email_template_id: et_{n:05d}\n"
        )


def soak(count: int, rate_limit: float, parallelism: int, seed: int, max_rounds: int) -> int:
    started = time.monotonic()
    rounds: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="pfsync-soak-") as work,
        Sandbox(
            idempotency_keys=True,
            rate_limit=rate_limit,
            fail_rate=0.05,
            lose_response_rate=0.02,
            seed=seed,
        ) as sandbox,
    ):
        root = Path(work)
        make_repo(root, count)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PFSYNC_")}
        env.update(sandbox.environment())
        code = None
        for number in range(1, max_rounds + 1):
            args = [pfsync_executable(), "-q", "apply", "--auto-approve", "--retry-uncertain"]
            args += ["--parallelism", str(parallelism)]
            if number == 1:
                args.append("--new-lockfile")
            round_started = time.monotonic()
            proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True)
            summary = next(
                (line for line in reversed(proc.stderr.splitlines()) if line.startswith("Apply:")),
                proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "",
            )
            rounds.append(
                {
                    "round": number,
                    "exit": proc.returncode,
                    "seconds": round(time.monotonic() - round_started, 1),
                    "summary": summary,
                }
            )
            print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
            if "Traceback" in proc.stderr:
                print(proc.stderr, file=sys.stderr)
                break
            code = proc.returncode
            if code == 0:
                break
        triggers = sandbox.triggers(BUSINESS)
        names = Counter(t["name"] for t in triggers)
        duplicates = sorted(name for name, seen in names.items() if seen > 1)
        lock = json.loads((root / "pfsync.lock").read_text())
        lock_ids = sorted(r["id"] for r in lock["triggers"].values())
        remote_ids = sorted(t["id"] for t in triggers)
        posts = [r for r in sandbox.requests() if r["method"] == "POST"]
        outcomes = Counter(r["outcome"] for r in posts)
    result = {
        "count": count,
        "created": len(triggers),
        "duplicates": len(duplicates),
        "lockfile_matches_sandbox": lock_ids == remote_ids,
        "pending_left": len(lock["pending"]),
        "final_exit": code,
        "rounds": len(rounds),
        "posts": len(posts),
        "outcomes": dict(sorted(outcomes.items())),
        "seconds": round(time.monotonic() - started, 1),
        "settings": {
            "idempotency_keys": True,
            "rate_limit": rate_limit,
            "fail_rate": 0.05,
            "lose_response_rate": 0.02,
            "parallelism": parallelism,
            "seed": seed,
        },
    }
    print(json.dumps(result))
    ok = (
        code == 0
        and len(triggers) == count
        and not duplicates
        and result["lockfile_matches_sandbox"]
        and not lock["pending"]
    )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rate-limit", type=float, default=150.0, help="requests per second")
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-rounds", type=int, default=60)
    options = parser.parse_args()
    return soak(
        options.count, options.rate_limit, options.parallelism, options.seed, options.max_rounds
    )


if __name__ == "__main__":
    sys.exit(main())
