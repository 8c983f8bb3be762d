"""Start-up: `pfsync --help` and `validate` import no HTTP or diff library; peak memory."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from corpora import corpus
from harness import BIN, NOT_ON_STARTUP, Sizes, measure, pfsync


def bench_startup(sizes: Sizes, results: dict[str, Any]) -> None:
    print("start-up")
    repo = corpus(f"single-{sizes.small}", sizes.small, split=True)
    help_timing = measure("pfsync --help", sizes.runs_fast * 2, pfsync("--help"))
    python = str(BIN / "python")
    bare = measure(
        "python -c pass (the interpreter alone)", sizes.runs_fast * 2, [python, "-c", "pass"]
    )
    probe = (
        "import sys, json\n"
        "from pfsync.cli import main\n"
        "code = main(sys.argv[1:])\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {list(NOT_ON_STARTUP)!r})\n"
        "print(json.dumps(bad), file=sys.stderr)\n"
    )
    imported = {}
    for name, args in (
        ("help", ["--help"]),
        ("validate", ["-C", str(repo.root), "-q", "validate"]),
    ):
        done = subprocess.run(
            [python, "-c", probe, *args], capture_output=True, text=True, check=True
        )
        imported[name] = json.loads(done.stderr.strip().splitlines()[-1])
    importtime = subprocess.run(
        [python, "-X", "importtime", "-c", "import pfsync.cli"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr.splitlines()
    cumulative = [line for line in importtime if line.rstrip().endswith("| pfsync.cli")]
    pfsync_cli_us = int(cumulative[-1].split("|")[1]) if cumulative else None
    results["startup"] = {
        "pfsync_help": help_timing.to_json(),
        "python_bare": bare.to_json(),
        "import_pfsync_cli_ms": pfsync_cli_us / 1000 if pfsync_cli_us else None,
        "http_or_diff_modules_imported": imported,
    }


def bench_memory(results: dict[str, Any], sizes: Sizes) -> None:
    plan = results.get(f"plan_{sizes.large}")
    if plan:
        results["memory"] = {f"plan_{sizes.large}_peak_rss_mib": plan["pfsync"]["peak_rss_mib"]}
