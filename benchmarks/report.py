"""The budget table and the measurements, as printed and as written to the results file."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import BIN, Sizes


def budgets(results: dict[str, Any], sizes: Sizes) -> list[tuple[str, str, str, bool]]:
    """(budget, measured, limit, met) for each budget measured (docs/performance.md)."""
    rows = []
    for count, need in ((sizes.small, 2.0), (sizes.large, 10.0)):
        entry = results.get(f"validate_{count}")
        if entry:
            rows.append(
                (
                    f"validate {count} vs check-jsonschema",
                    f"{entry['speedup']:.1f}x faster",
                    f"≥ {need:g}x faster",
                    entry["speedup"] >= need,
                )
            )
    entry = results.get(f"plan_{sizes.small}")
    if entry and "speedup_vs_check_jsonschema" in entry:
        speedup = entry["speedup_vs_check_jsonschema"]
        rows.append(
            (
                f"plan {sizes.small} vs check-jsonschema",
                f"{speedup:.1f}x faster",
                "≥ 2x faster",
                speedup >= 2.0,
            )
        )
    entry = results.get(f"cache_{sizes.large}")
    if entry:
        ratios = entry["ratios"]
        seconds = entry["validate_one_warm"]["median_s"]
        rows += [
            (
                f"validate 1 of {sizes.large}, warm cache",
                f"{seconds:.3f} s, {ratios['validate_one_warm_to_check_jsonschema']:.2f}x "
                "check-jsonschema on that file",
                "≤ 0.3 s and ≤ 1.5x",
                seconds <= 0.3 and ratios["validate_one_warm_to_check_jsonschema"] <= 1.5,
            ),
            (
                f"plan {sizes.large}, warm cache vs cold",
                f"{ratios['plan_warm_to_cold']:.2f}x the cold plan",
                "≤ 0.4x",
                ratios["plan_warm_to_cold"] <= 0.4,
            ),
        ]
        before = entry.get("ratios_before")
        if before:
            rows.append(
                (
                    f"validate 1, validate, plan {sizes.large}: cold vs pfsync "
                    f"{entry['before_cache']} (before the cache)",
                    f"{before['validate_one_cold_to_before_cache']:.2f}x, "
                    f"{before['validate_all_cold_to_before_cache']:.2f}x, "
                    f"{before['plan_cold_to_before_cache']:.2f}x",
                    "≤ 1x (no slower)",
                    max(before.values()) <= 1.0,
                )
            )
        else:
            rows.append(("cold vs pfsync before the cache", "not measured", "≤ 1x", False))
    entry = results.get(f"apply_{sizes.apply_parallel}_parallelism_16")
    if entry:
        ratio = entry["ratio_to_ideal"]
        rows.append(
            (
                f"apply {sizes.apply_parallel} p16 vs ideal {entry['ideal_s']:.3g} s",
                f"{ratio:.2f}x ideal",
                "≤ 1.5x ideal",
                ratio <= 1.5,
            )
        )
    entry = results.get(f"apply_{sizes.apply_serial}_parallelism_1")
    if entry:
        ratio = entry["ratio_to_curl"]
        rows.append(
            (
                f"apply {sizes.apply_serial} p1 vs curl loop",
                f"{ratio:.2f}x curl's time",
                "≤ 1x curl's time",
                ratio <= 1.0,
            )
        )
    for store in ("git", "s3"):
        entry = results.get(f"apply_{sizes.apply_parallel}_{store}_store")
        if not entry:
            continue
        ratio = entry["ratio_to_file_store"]
        rows.append(
            (
                f"apply {sizes.apply_parallel} p16 {store} store vs file store",
                f"{ratio:.2f}x file store's time",
                "≤ 1.3x file store's time",
                ratio <= 1.3,
            )
        )
    entry = results.get("apply_linearity")
    if entry:
        ratio = entry["ratio_per_create"]
        rows.append(
            (
                f"apply per create {sizes.linear_large} vs {sizes.linear_small}",
                f"{ratio:.2f}x",
                "≤ 1.5x",
                ratio <= 1.5,
            )
        )
    entry = results.get("startup")
    if entry:
        imported = entry["http_or_diff_modules_imported"]
        clean = not imported["help"] and not imported["validate"]
        rows.append(
            (
                "--help / validate import no HTTP or diff library",
                "none" if clean else ", ".join(imported["help"] + imported["validate"]),
                "none",
                clean,
            )
        )
    return rows


def measurements(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(what, median, min, max, per item) for every timing, in the order measured."""
    rows = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and "median_s" in node:
            per = f"{node['per_item_ms']:.3f} ms" if "per_item_ms" in node else ""
            rows.append(
                (
                    prefix,
                    f"{node['median_s']:.3f} s",
                    f"{node['min_s']:.3f} s",
                    f"{node['max_s']:.3f} s",
                    per,
                )
            )
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix} {key}".strip(), value)

    walk("", results)
    return rows


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    lines = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def print_tables(results: dict[str, Any], rows: Sequence[Sequence[Any]]) -> None:
    print()
    print(table(measurements(results), ("measurement", "median", "min", "max", "per item")))
    print()
    print(
        table(
            [(a, b, c, "yes" if d else "NO") for a, b, c, d in rows],
            ("budget", "measured", "limit", "met"),
        )
    )


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = subprocess.run(
        [str(BIN / "pfsync"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pfsync": version,
        "load_average_at_start": list(os.getloadavg()),
    }


def other_figures(results: dict[str, Any]) -> list[str]:
    """The figures printed after the tables: start-up and peak memory."""
    lines = []
    if "startup" in results:
        s = results["startup"]
        lines.append(
            f"pfsync --help: {s['pfsync_help']['median_s'] * 1000:.0f} ms "
            f"(bare interpreter {s['python_bare']['median_s'] * 1000:.0f} ms; "
            f"import pfsync.cli {s['import_pfsync_cli_ms']} ms)"
        )
    for key, value in results.get("memory", {}).items():
        lines.append(f"peak RSS of {key.replace('_peak_rss_mib', '')}: {value} MiB")
    return lines
