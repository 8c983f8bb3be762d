"""`apply` with the s3 state store, writing to a local S3 API server (moto, over loopback)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Any

from corpora import corpus
from harness import BIN, WORK, Sizes, stop
from store_compare import apply_with_and_without, store_result

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
        stop(process)


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
