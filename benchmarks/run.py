#!/usr/bin/env python3
"""pfsync benchmarks, side by side with the peers, against the budgets in docs/performance.md.

    python3 benchmarks/run.py            # the full run (a few minutes)
    python3 benchmarks/run.py --quick    # smaller sizes, fewer runs, to iterate

Needs only Python: it makes its own virtual environment `benchmarks/.venv`, installs pfsync from
this checkout (`pip install .`) and the peers (check-jsonschema) into it, then re-runs itself
there. Manifests are generated under `benchmarks/work/`. It prints a table of ratios and writes
the same as JSON to `benchmarks/results/`. Every figure is the median of several runs of the
whole CLI process (start-up included), with min and max. All traffic stays on 127.0.0.1.

This file is the driver; each step is a module of its own: `bench_startup`, `bench_validate`
(validate and plan), `bench_apply` (apply and linear), `bench_git_store` and `bench_s3_store`
(with `store_compare`), `bench_cache`. They share `harness` (paths, sizes, timed runs, the
sandbox) and `corpora` (the generated repositories); `report` prints the budget table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench_apply import bench_apply, bench_linear
from bench_cache import bench_cache
from bench_git_store import bench_git_store
from bench_s3_store import bench_s3_store
from bench_startup import bench_memory, bench_startup
from bench_validate import bench_plan, bench_validate
from corpora import checkout_state
from harness import BIN, HERE, PEERS, QUICK, REPO, RESULTS, VENV, WORK, Sizes
from report import budgets, machine, other_figures, print_tables

# The steps, in the order they run; `--only NAME` picks some (docs/performance.md lists them).
STEPS: dict[str, Callable[[Sizes, dict[str, Any]], None]] = {
    "startup": bench_startup,
    "validate": bench_validate,
    "plan": bench_plan,
    "apply": bench_apply,
    "git-store": bench_git_store,
    "s3-store": bench_s3_store,
    "cache": bench_cache,
    "linear": bench_linear,
}


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def setup_and_reexec(argv: Sequence[str]) -> None:
    """Create benchmarks/.venv, install pfsync (this checkout) and the peers, run again there."""
    python = BIN / "python"
    if not python.exists():
        print(f"Creating {VENV.relative_to(REPO)} …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(REPO), *PEERS], check=True)
    # Always reinstall pfsync itself, so the run measures the checkout as it is now.
    print("Installing pfsync from this checkout …", flush=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(REPO)],
        check=True,
    )
    # …and whatever it now depends on that this environment lacks (a no-op when all are there).
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(REPO)], check=True)
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *argv])


def parser() -> argparse.ArgumentParser:
    """The command line of benchmarks/run.py."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer runs")
    parser.add_argument(
        "--only",
        action="append",
        choices=tuple(STEPS),
        help="run only these benchmarks (repeatable)",
    )
    parser.add_argument(
        "--serial-creates",
        type=int,
        help="creates for the --parallelism 1 vs curl comparison (default 300; 1000 takes "
        "about 4 more minutes)",
    )
    parser.add_argument("--out", help="result file (default: benchmarks/results/latest.json)")
    parser.add_argument("--report", metavar="FILE", help="print the tables of a result file")
    return parser


def main(argv: Sequence[str]) -> int:
    options = parser().parse_args(argv)
    if options.report:
        saved = json.loads(Path(options.report).read_text())
        print_tables(saved["results"], [tuple(b.values()) for b in saved["budgets"]])
        return 0
    if not in_venv():
        setup_and_reexec(argv)
    sys.path.insert(0, str(HERE))
    sizes = QUICK if options.quick else Sizes()
    if options.serial_creates:
        sizes.apply_serial = options.serial_creates
    for tool, needed_by, why in (("curl", "apply", "curl-loop"), ("git", "git-store", "git store")):
        if shutil.which(tool) is None and (not options.only or needed_by in options.only):
            raise SystemExit(f"{tool} is needed for the {why} comparison (apt-get install {tool})")
    WORK.mkdir(exist_ok=True)
    started = time.perf_counter()
    info = machine()
    print(
        f"Machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}; {info['pfsync']}"
    )
    results: dict[str, Any] = {}
    for name, step in STEPS.items():
        if not options.only or name in options.only:
            step(sizes, results)
    bench_memory(results, sizes)
    rows = budgets(results, sizes)
    document = {
        "format_version": 1,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "checkout": checkout_state(),
        "quick": options.quick,
        "machine": {**info, "load_average_at_end": list(os.getloadavg())},
        "sizes": sizes.__dict__,
        "results": results,
        "budgets": [{"budget": a, "measured": b, "limit": c, "met": d} for a, b, c, d in rows],
        "duration_s": round(time.perf_counter() - started, 1),
    }
    print_tables(results, rows)
    for line in other_figures(results):
        print(line)
    RESULTS.mkdir(exist_ok=True)
    name = "quick.json" if options.quick else "latest.json"
    out = Path(options.out) if options.out else RESULTS / name
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nWrote {out} in {document['duration_s']} s.")
    return 0 if all(row[3] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
