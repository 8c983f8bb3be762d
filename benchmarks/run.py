#!/usr/bin/env python3
"""pfsync benchmarks, side by side with the peers, against the budgets in docs/performance.md.

    python3 benchmarks/run.py            # the full run (a few minutes)
    python3 benchmarks/run.py --quick    # smaller sizes, fewer runs, to iterate

Needs only Python: it makes its own virtual environment `benchmarks/.venv`, installs pfsync from
this checkout (`pip install .`) and the peers (check-jsonschema) into it, then re-runs itself
there. Manifests are generated under `benchmarks/work/`. It prints a table of ratios and writes
the same as JSON to `benchmarks/results/`. Every figure is the median of several runs of the
whole CLI process (start-up included), with min and max. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
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


# ---------------------------------------------------------------------------------------------
# The environment


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


# ---------------------------------------------------------------------------------------------
# Measuring


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
    full_env = {**os.environ, **(env or {})}
    started = time.perf_counter()
    process = subprocess.Popen(
        list(args),
        cwd=cwd,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if not check(process.returncode):
        raise SystemExit(
            f"benchmark command failed ({process.returncode}): {' '.join(args)[:300]}\n"
            + errors.decode(errors="replace")[-2000:]
        )
    return elapsed, usage.ru_maxrss


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
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------------------------------
# The corpora


@dataclass
class Corpus:
    """A generated repository: its root and manifest files."""

    root: Path
    files: list[Path]


def corpus(name: str, count: int, *, multi_document: bool = False, split: bool = False) -> Corpus:
    from generate import write_repository  # type: ignore[import-not-found]

    root = WORK / name
    marker = root / ".complete"
    if marker.exists():
        files = sorted((root / "triggers").rglob("*.yaml"))
    else:
        shutil.rmtree(root, ignore_errors=True)
        files = sorted(write_repository(root, count, multi_document=multi_document, split=split))
        marker.write_text("")
    if split:  # a configuration declaring only the first half (triggers/a/)
        (root / "half.yaml").write_text(
            (root / "pfsync.yaml").read_text().replace("triggers/**/", "triggers/a/**/")
        )
    return Corpus(root, files)


def clear_cache(root: Path) -> None:
    """Remove the manifest cache: the next run is a cold one."""
    shutil.rmtree(root / ".pfsync" / "cache", ignore_errors=True)


# pfsync as it was when the manifest cache's budget "cold runs no slower than today" was set:
# the commit before that work began. Its code runs from its own tree, beside this checkout's.
BEFORE_CACHE = "437bbe9"


def pfsync_at(commit: str) -> Path | None:
    """A folder holding pfsync's package and schemas as of `commit`, taken from this checkout's
    history (None when the history lacks it: a shallow clone)."""
    folder = WORK / f"pfsync-{commit}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", commit, "pfsync", "schemas"],
            capture_output=True,
        )
        if archive.returncode != 0:
            return None
        folder.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(folder, filter="data")
        (folder / ".complete").write_text("")
    return folder


def checkout_state() -> dict[str, Any]:
    """The commit measured, and whether the work tree differed from it (what was installed)."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True)
    changes = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "pfsync", "schemas"],
        capture_output=True,
    )
    if head.returncode != 0:
        return {"commit": None, "changed": None}
    return {"commit": head.stdout.decode().strip(), "changed": bool(changes.stdout.strip())}


def reset_state(root: Path) -> None:
    for name in ("pfsync.lock", "pfsync.lock.journal", "pfsync.lock.lck"):
        (root / name).unlink(missing_ok=True)


def request_bodies(source: Corpus, count: int) -> Path:
    """One JSON request body per manifest (the `spec`), for the curl loop."""
    import yaml

    folder = WORK / f"bodies-{count}"
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    written = 0
    for path in source.files:
        for document in yaml.safe_load_all(path.read_text()):
            if document and written < count:
                (folder / f"{written:05d}.json").write_text(json.dumps(document["spec"]))
                written += 1
    (folder / ".complete").write_text("")
    return folder


# ---------------------------------------------------------------------------------------------
# The benchmarks


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


S3_PACKAGES = ("boto3>=1.36", "moto[s3]>=5.1.5", "flask", "flask-cors")  # and moto's server
S3_BUCKET = "pfsync-bench"
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "benchmark",
    "AWS_SECRET_ACCESS_KEY": "benchmark",
    "AWS_EC2_METADATA_DISABLED": "true",  # nothing beyond loopback
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@contextmanager
def s3_server() -> Any:
    """moto's S3 API server on a free loopback port; yields a boto3 client and the URL."""
    try:
        import boto3
        import moto  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *S3_PACKAGES], check=True)
        import boto3
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **S3_ENV},
    )
    url = f"http://127.0.0.1:{port}"
    os.environ.update(S3_ENV)
    client = boto3.session.Session().client("s3", endpoint_url=url, region_name="us-east-1")
    try:
        for _ in range(300):
            try:
                client.list_buckets()
                break
            except Exception:
                if process.poll() is not None:
                    raise SystemExit("moto_server did not start") from None
                time.sleep(0.1)
        yield client, url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def bench_s3_store(sizes: Sizes, results: dict[str, Any]) -> None:
    print(
        "apply with the s3 store (a local S3 API server: moto, over loopback) vs the file store, "
        "in turns, `pfsync sandbox --latency-ms 50`, --parallelism 16"
    )
    count = sizes.apply_parallel
    repo = corpus(f"apply-{count}", count)
    writes: list[int] = []
    with s3_server() as (client, endpoint):
        client.create_bucket(Bucket=S3_BUCKET)
        client.put_bucket_versioning(
            Bucket=S3_BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
        folder = WORK / f"{repo.root.name}-s3-store"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(repo.root / "triggers", folder / "triggers")
        config = (repo.root / "pfsync.yaml").read_text()
        (folder / "pfsync.yaml").write_text(
            config + f"state: {{store: s3, bucket: {S3_BUCKET}, key: pfsync.lock, "
            f"endpoint_url: '{endpoint}', region: us-east-1}}\n"
        )

        def versions() -> list[dict[str, Any]]:
            """The lockfile's versions and its probe object's (pfsync.lock.cas-probe)."""
            listed = client.list_object_versions(Bucket=S3_BUCKET, Prefix="pfsync.lock")
            return list(listed.get("Versions", []))

        def empty_bucket() -> None:
            # Every run starts without a lockfile or probe object, as the first apply of a new
            # store: its check of conditional writes is part of what is measured.
            for version in versions():
                client.delete_object(
                    Bucket=S3_BUCKET, Key=version["Key"], VersionId=version["VersionId"]
                )

        def count_writes() -> None:
            body = client.get_object(Bucket=S3_BUCKET, Key="pfsync.lock")["Body"].read()
            lockfile = json.loads(body)
            if len(lockfile["triggers"]) != count or lockfile.get("lock") or lockfile["pending"]:
                raise SystemExit("the s3 store's lockfile does not record the apply it measured")
            writes.append(len([v for v in versions() if v["Key"] == "pfsync.lock"]))

        file_store, s3_store = apply_with_and_without(
            "s3", sizes, repo, folder, empty_bucket, count_writes, S3_ENV
        )
        lockfile_bytes = client.head_object(Bucket=S3_BUCKET, Key="pfsync.lock")["ContentLength"]
    print(
        f"  (s3 store: {statistics.median(writes):g} conditional writes per apply, "
        f"a lockfile of {lockfile_bytes / 2**20:.2f} MiB at the end)"
    )
    results[f"apply_{count}_s3_store"] = store_result(
        "s3", count, file_store, s3_store, writes, lockfile_bytes
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


# ---------------------------------------------------------------------------------------------
# The report


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


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer runs")
    parser.add_argument(
        "--only",
        action="append",
        choices=(
            "validate",
            "plan",
            "apply",
            "git-store",
            "s3-store",
            "cache",
            "linear",
            "startup",
        ),
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
    options = parser.parse_args(argv)
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
    if shutil.which("curl") is None and (not options.only or "apply" in options.only):
        raise SystemExit("curl is needed for the curl-loop comparison (apt-get install curl)")
    if shutil.which("git") is None and (not options.only or "git-store" in options.only):
        raise SystemExit("git is needed for the git store comparison (apt-get install git)")
    WORK.mkdir(exist_ok=True)
    started = time.perf_counter()
    info = machine()
    print(
        f"Machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}; {info['pfsync']}"
    )
    results: dict[str, Any] = {}
    steps = {
        "startup": bench_startup,
        "validate": bench_validate,
        "plan": bench_plan,
        "apply": bench_apply,
        "git-store": bench_git_store,
        "s3-store": bench_s3_store,
        "cache": bench_cache,
        "linear": bench_linear,
    }
    for name, step in steps.items():
        if not options.only or name in options.only:
            step(sizes, results)
    bench_memory(results, sizes)
    rows = budgets(results, sizes)
    document = {
        "format_version": 1,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "checkout": checkout_state(),
        "quick": options.quick,
        "machine": info,
        "sizes": sizes.__dict__,
        "results": results,
        "budgets": [{"budget": a, "measured": b, "limit": c, "met": d} for a, b, c, d in rows],
        "duration_s": round(time.perf_counter() - started, 1),
    }
    document["machine"]["load_average_at_end"] = list(os.getloadavg())
    print_tables(results, rows)
    extra = []
    if "startup" in results:
        s = results["startup"]
        extra.append(
            f"pfsync --help: {s['pfsync_help']['median_s'] * 1000:.0f} ms "
            f"(bare interpreter {s['python_bare']['median_s'] * 1000:.0f} ms; "
            f"import pfsync.cli {s['import_pfsync_cli_ms']} ms)"
        )
    if "memory" in results:
        for key, value in results["memory"].items():
            extra.append(f"peak RSS of {key.replace('_peak_rss_mib', '')}: {value} MiB")
    for line in extra:
        print(line)
    RESULTS.mkdir(exist_ok=True)
    name = "quick.json" if options.quick else "latest.json"
    out = Path(options.out) if options.out else RESULTS / name
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nWrote {out} in {document['duration_s']} s.")
    return 0 if all(row[3] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
