"""What every benchmark step shares: where things are, the sizes, timed runs of whole CLI
processes (median, min, max), and a `pfsync sandbox` to apply to.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = HERE / ".venv"
WORK = HERE / "work"
RESULTS = HERE / "results"
SCHEMA = REPO / "schemas" / "manifest.schema.json"
BIN = VENV / "bin"
PEERS = ("check-jsonschema",)
NOT_ON_STARTUP = (
    *("httpx", "httpcore", "h11", "anyio", "deepdiff", "urllib3", "requests"),
    *("boto3", "botocore"),  # the s3 store's client: only when that store is read or written
)
CREDENTIALS = {"PFSYNC_USERNAME": "sandbox", "PFSYNC_PASSWORD": "sandbox"}


@dataclass
class Timing:
    """Wall seconds of several runs (and the peak RSS of the child, in KiB)."""

    seconds: list[float] = field(default_factory=list)
    max_rss_kib: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def to_json(self, per: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "median_s": round(self.median, 4),
            "min_s": round(min(self.seconds), 4),
            "max_s": round(max(self.seconds), 4),
            "runs": len(self.seconds),
        }
        if per:
            out["per_item_ms"] = round(self.median / per * 1000, 4)
        if self.max_rss_kib:
            out["peak_rss_mib"] = round(max(self.max_rss_kib) / 1024, 1)
        return out


def run_once(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: Callable[[int], bool] = lambda code: code == 0,
) -> tuple[float, int]:
    """Run a command to completion; its wall time and peak RSS (KiB). Output is discarded."""
    elapsed, usage = run_measured(args, cwd=cwd, env={**os.environ, **(env or {})}, check=check)
    return elapsed, usage.ru_maxrss


def run_measured(
    args: Sequence[str],
    *,
    cwd: Path | None,
    env: dict[str, str],
    check: Callable[[int], bool] = lambda code: code == 0,
) -> tuple[float, Any]:
    """Run a command to completion in exactly `env`: its wall time and its resource usage
    (`os.wait4`'s: CPU times, peak RSS), its forked workers' included. Output is discarded;
    a failure (by `check`) stops the benchmark with the command's last words on stderr."""
    started = time.perf_counter()
    process = subprocess.Popen(
        list(args),
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if not check(code):
        raise SystemExit(
            f"benchmark command failed ({code}): {' '.join(args)[:300]}\n"
            + errors.decode(errors="replace")[-2000:]
        )
    return elapsed, usage


def measure(
    label: str,
    runs: int,
    args: Sequence[str] | Callable[[], Sequence[str]],
    *,
    prepare: Callable[[], None] | None = None,
    **kwargs: Any,
) -> Timing:
    """`runs` timed runs (after `prepare` each time, untimed)."""
    timing = Timing()
    for _ in range(runs):
        if prepare is not None:
            prepare()
        command = args() if callable(args) else args
        seconds, rss = run_once(command, **kwargs)
        timing.seconds.append(seconds)
        timing.max_rss_kib.append(rss)
    print_timing(label, timing)
    return timing


def print_timing(label: str, timing: Timing) -> None:
    print(
        f"  {label:<52} median {timing.median:8.3f} s  "
        f"(min {min(timing.seconds):.3f}, max {max(timing.seconds):.3f}, "
        f"{len(timing.seconds)} runs)",
        flush=True,
    )


@dataclass
class Contender:
    """One of several commands measured in turns (see `measure_interleaved`)."""

    label: str
    args: Sequence[str]
    prepare: Callable[[], None] | None = None  # before each run, untimed
    check: Callable[[], None] | None = None  # after each run, untimed
    env: dict[str, str] | None = None  # added to the environment of its runs
    timing: Timing = field(default_factory=Timing)


def measure_interleaved(contenders: Sequence[Contender], runs: int, **kwargs: Any) -> list[Timing]:
    """`runs` rounds of one run of each contender, the order rotating each round, so that
    machine noise (other load, CPU frequency, a warming disk cache) hits all of them alike."""
    for round_ in range(runs):
        for n in range(len(contenders)):
            contender = contenders[(round_ + n) % len(contenders)]
            if contender.prepare is not None:
                contender.prepare()
            env = {**kwargs.get("env", {}), **(contender.env or {})}
            seconds, rss = run_once(contender.args, **{**kwargs, "env": env})
            contender.timing.seconds.append(seconds)
            contender.timing.max_rss_kib.append(rss)
            if contender.check is not None:
                contender.check()
    for contender in contenders:
        print_timing(contender.label, contender.timing)
    return [contender.timing for contender in contenders]


def stop(process: subprocess.Popen[Any]) -> None:
    """Terminate a server the benchmark started; kill it if it has not exited in 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def sandbox(latency_ms: int) -> Any:
    """A `pfsync sandbox` on a free loopback port; yields its base URL."""
    process = subprocess.Popen(
        [str(BIN / "pfsync"), "sandbox", "--port", "0", "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"the sandbox did not start (it said {url!r})")
        yield url
    finally:
        stop(process)


@dataclass
class Sizes:
    small: int = 100
    large: int = 10_000
    apply_parallel: int = 1000
    apply_serial: int = 300
    linear_small: int = 500
    linear_large: int = 5000
    runs_fast: int = 5
    runs_slow: int = 3


QUICK = Sizes(
    small=100,
    large=1000,
    apply_parallel=200,
    apply_serial=40,
    linear_small=100,
    linear_large=1000,
    runs_fast=3,
    runs_slow=3,
)


def pfsync(*args: str) -> list[str]:
    return [str(BIN / "pfsync"), *args]


def check_jsonschema(files: Sequence[Path]) -> list[str]:
    return [str(BIN / "check-jsonschema"), "--schemafile", str(SCHEMA), *map(str, files)]
