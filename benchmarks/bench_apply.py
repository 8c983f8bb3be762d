"""`apply` with `--parallelism 16` against the ideal time, `--parallelism 1` against a shell
loop of `curl` POSTs, and the time per create at two sizes (linear).
"""

from __future__ import annotations

from typing import Any

from corpora import corpus, request_bodies, reset_state
from harness import CREDENTIALS, Sizes, measure, pfsync, sandbox


def bench_apply(sizes: Sizes, results: dict[str, Any]) -> None:
    print("apply against `pfsync sandbox --latency-ms 50`")
    count = sizes.apply_parallel
    repo = corpus(f"apply-{count}", count)
    serial = corpus(f"apply-{sizes.apply_serial}", sizes.apply_serial)
    bodies = request_bodies(serial, sizes.apply_serial)
    with sandbox(50) as url:
        env = {**CREDENTIALS, "PFSYNC_API_URL": url}
        apply = pfsync("-q", "apply", "--auto-approve", "--new-lockfile")
        p16 = measure(
            f"pfsync apply --parallelism 16, {count} creates",
            sizes.runs_slow,
            [*pfsync("-C", str(repo.root)), *apply[1:], "--parallelism", "16"],
            prepare=lambda: reset_state(repo.root),
            env=env,
        )
        ideal = count * 0.050 / 16
        results[f"apply_{count}_parallelism_16"] = {
            "pfsync": p16.to_json(count),
            "ideal_s": ideal,
            "ratio_to_ideal": round(p16.median / ideal, 2),
        }
        n = sizes.apply_serial
        loop = (
            'for f in "$0"/*.json; do curl -sS -o /dev/null --fail-with-body -u sandbox:sandbox '
            '-H "Content-Type: application/json" --data-binary @"$f" '
            '"$1/businesses/biz_bench/triggers" || exit 1; done'
        )
        curl = measure(
            f"shell loop of curl POSTs, {n} creates",
            sizes.runs_slow,
            ["bash", "-c", loop, str(bodies), url],
        )
        p1 = measure(
            f"pfsync apply --parallelism 1, {n} creates",
            sizes.runs_slow,
            [*pfsync("-C", str(serial.root)), *apply[1:], "--parallelism", "1"],
            prepare=lambda: reset_state(serial.root),
            env=env,
        )
        results[f"apply_{n}_parallelism_1"] = {
            "pfsync": p1.to_json(n),
            "curl_loop": curl.to_json(n),
            "ratio_to_curl": round(p1.median / curl.median, 3),
        }


def bench_linear(sizes: Sizes, results: dict[str, Any]) -> None:
    print("apply cost per create, sandbox without latency (default --parallelism 4)")
    entry: dict[str, Any] = {}
    with sandbox(0) as url:
        env = {**CREDENTIALS, "PFSYNC_API_URL": url}
        for count in (sizes.linear_small, sizes.linear_large):
            repo = corpus(f"apply-{count}", count)
            runs = sizes.runs_fast if count <= 1000 else sizes.runs_slow
            timing = measure(
                f"pfsync apply, {count} creates",
                runs,
                pfsync("-C", str(repo.root), "-q", "apply", "--auto-approve", "--new-lockfile"),
                prepare=lambda root=repo.root: reset_state(root),
                env=env,
            )
            entry[str(count)] = timing.to_json(count)
    small = entry[str(sizes.linear_small)]["per_item_ms"]
    large = entry[str(sizes.linear_large)]["per_item_ms"]
    entry["ratio_per_create"] = round(large / small, 2)
    results["apply_linearity"] = entry
