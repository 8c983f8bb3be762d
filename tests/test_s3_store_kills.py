"""SIGKILL an s3-store apply at random moments, each run in a fresh working directory.

One bucket on the S3 test server (moto over loopback, IAM enforced), one sandbox WITHOUT
idempotency keys (a second create for an address would be a visible duplicate). Every apply runs
in a fresh copy of the repository that is thrown away after the kill, as a CI runner that
vanished: all that survives a run is what it wrote to the bucket. Only the pfsync process is
killed; a write it had sent is left to land, as it would in S3 (the test waits until the object
stops changing before looking at it).

After each kill, from a fresh runner: the plan never says `create` for a trigger the sandbox
holds, only the killed run's in-flight batches are uncertain (the batch being sent and the one
written ahead: at most 2 x intent_batch addresses, with intent_batch >= parallelism), the next
apply refuses naming the dead run's lock, and a person unlocks and settles the uncertain
addresses from the sandbox listing. In the end every manifest exists exactly once and the object
records exactly the sandbox's triggers.

The kill moments come from a seeded random generator: PFSYNC_KILL_SEED=N reproduces a run (the
seed is printed, and named in the assertion messages). Each killed run's stderr is kept beside
the runners in tmp_path (runnerNN.stderr). Fewer kills than the git store's test: each costs a
few pfsync start-ups, and the protocol under test is the same.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from apply_helpers import BUSINESS
from conftest import RunPfsync, clean_env, pfsync_executable
from fixtures_sandbox import MakeSandbox
from pfsync.sandbox import Sandbox
from s3_helpers import S3Server, make_s3_repo, runner, s3_env, s3_server

MANIFESTS = 60
LATENCY_MS = 40
PARALLELISM = 2
INTENT_BATCH = 2
KILLS = 5
MAX_ATTEMPTS = 20  # runs that finished before their kill moment do not count as kills
EARLY_KILLS = 0.25  # share of kills aimed before the first create (read, lock, first intents)
KILL_WINDOW_CREATES = MANIFESTS // KILLS  # a sending kill lands within this many creates
DEFAULT_SEED = 16_2026


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    for name in saved:
        del os.environ[name]
    try:
        yield s3_server()
    finally:
        os.environ.update(saved)


@dataclass
class Runners:
    """Fresh working directories of the repository, one per CI run, each discarded after it."""

    repo: Path
    root: Path
    count: int = 0
    current: Path | None = None

    def fresh(self) -> Path:
        if self.current is not None:
            shutil.rmtree(self.current)
        self.count += 1
        self.current = runner(self.repo, self.root / f"runner{self.count:02d}")
        return self.current


@dataclass
class Pace:
    """How long this machine takes to reach the first create, and per create after it."""

    first_create: float = 0.4
    per_create: float = LATENCY_MS / 1000 / PARALLELISM


@dataclass
class KillLog:
    """What each kill left behind, printed at the end (and on failure)."""

    seed: int
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)

    def __str__(self) -> str:
        return f"seed {self.seed} (PFSYNC_KILL_SEED={self.seed} reproduces it)\n" + "\n".join(
            self.lines
        )


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def wait_for_quiet(sandbox: Sandbox, server: S3Server, bucket: str) -> None:
    """Let what the dead run had in flight land: its creates, and a write it had sent."""
    quiet_for = 3 * LATENCY_MS / 1000
    client = server.client()

    def etag() -> str | None:
        try:
            return client.head_object(Bucket=bucket, Key="pfsync.lock")["ETag"]
        except client.exceptions.ClientError:
            return None

    seen = (len(sandbox.triggers(BUSINESS)), etag())
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < quiet_for:
        time.sleep(0.02)
        now = (len(sandbox.triggers(BUSINESS)), etag())
        if now != seen:
            seen, stable_since = now, time.monotonic()


def plan_entries(run_pfsync: RunPfsync, repo: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    plan = run_pfsync("plan", "--format", "json", cwd=repo, env=env)
    assert plan.code == 0, plan
    entries: list[dict[str, Any]] = json.loads(plan.out)["entries"]
    return entries


def addresses(entries: list[dict[str, Any]], action: str) -> list[str]:
    return sorted(e["address"] for e in entries if e["action"] == action)


def sandbox_ids_by_name(sandbox: Sandbox) -> dict[str, str]:
    by_name: dict[str, str] = {}
    for trigger in sandbox.triggers(BUSINESS):
        assert trigger["name"] not in by_name, f"duplicate trigger {trigger['name']}"
        by_name[trigger["name"]] = trigger["id"]
    return by_name


def trigger_name(address: str) -> str:
    return "Trigger " + address.split("/", 1)[1]


def kill_at_random_moment(
    repo: Path,
    env: dict[str, str],
    sandbox: Sandbox,
    rng: random.Random,
    pace: Pace,
    to_send: int,
    first_apply: bool,
) -> tuple[int, bool, str]:
    """Start an apply in `repo` and SIGKILL it; (its pid, whether it was still running, when)."""
    args = ["--new-lockfile"] if first_apply else []
    before = len(sandbox.triggers(BUSINESS))
    with (repo.parent / f"{repo.name}.stderr").open("w") as stderr:
        proc = subprocess.Popen(
            [
                pfsync_executable(),
                "apply",
                "--auto-approve",
                "--parallelism",
                str(PARALLELISM),
                *args,
            ],
            cwd=repo,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        started = time.monotonic()
        if to_send == 0 or rng.random() < EARLY_KILLS:
            # Before the first create: start-up, the read, the lock write, the first intents.
            time.sleep(rng.uniform(0.0, pace.first_create))
            when = f"{time.monotonic() - started:.3f}s after start (aimed before sending)"
        else:
            wait_until(
                lambda: proc.poll() is not None or len(sandbox.triggers(BUSINESS)) > before,
                timeout=30,
                what="the first create",
            )
            pace.first_create = time.monotonic() - started
            time.sleep(rng.uniform(0.0, min(to_send, KILL_WINDOW_CREATES) * pace.per_create))
            when = f"{time.monotonic() - started:.3f}s after start (first create at "
            when += f"{pace.first_create:.3f}s)"
        alive = proc.poll() is None
        proc.kill()
        proc.wait(timeout=30)
    return proc.pid, alive, when


def batches_of(uncertain: list[str], sending_order: list[str]) -> list[int]:
    """The batches (by index in this run's sending order) that hold the uncertain addresses."""
    position = {address: n for n, address in enumerate(sending_order)}
    return sorted({position[address] // INTENT_BATCH for address in uncertain})


def test_sigkill_across_fresh_runners_never_duplicates_nor_loses_records(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, server: S3Server, tmp_path: Path
) -> None:
    seed = int(os.environ.get("PFSYNC_KILL_SEED", str(DEFAULT_SEED)))
    log = KillLog(seed)
    log.add(f"PFSYNC_KILL_SEED={seed}")
    rng = random.Random(seed)
    sandbox = make_sandbox(latency_ms=LATENCY_MS)
    bucket = server.make_bucket()
    env = {**sandbox.environment(), **s3_env(server.admin)}
    repo = make_s3_repo(
        tmp_path / "repo",
        MANIFESTS,
        bucket=bucket,
        endpoint_url=server.url,
        intent_batch=INTENT_BATCH,
    )
    runners = Runners(repo, tmp_path)
    pace = Pace()
    all_addresses = [f"{BUSINESS}/t{n:03d}" for n in range(MANIFESTS)]
    to_send = all_addresses  # this run's creates, in sending order (sorted by address)
    kills = kills_while_creating = refusals = 0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if kills >= KILLS:
            break
        first_apply = server.lockfile(bucket) is None
        before_run = len(sandbox.triggers(BUSINESS))
        pid, alive, when = kill_at_random_moment(
            runners.fresh(), env, sandbox, rng, pace, len(to_send), first_apply
        )
        wait_for_quiet(sandbox, server, bucket)
        in_sandbox = len(sandbox.triggers(BUSINESS))
        kills += alive
        lockfile = server.lockfile(bucket)
        lock = lockfile.get("lock") if lockfile else None

        # The next runner: a fresh directory, knowing only what the dead one wrote.
        here = runners.fresh()
        entries = plan_entries(run_pfsync, here, env)
        by_name = sandbox_ids_by_name(sandbox)
        again = [a for a in addresses(entries, "create") if trigger_name(a) in by_name]
        assert not again, f"plan would create again what exists: {again}\n{log}"
        uncertain = addresses(entries, "uncertain")
        batches = batches_of(uncertain, to_send)
        log.add(
            f"attempt {attempt}: killed {when}{'' if alive else ' (had finished)'}; "
            f"{in_sandbox} in the sandbox, {len(uncertain)} uncertain in batches {batches}, "
            f"lock {'left' if lock else 'released'}"
        )
        assert len(uncertain) <= 2 * INTENT_BATCH, (
            f"more than 2 x intent_batch ({2 * INTENT_BATCH}) left uncertain: {uncertain}\n{log}"
        )

        if lock is not None:
            assert lock["pid"] == pid, f"the lock is not the killed run's: {lock}"
            if not refusals:
                # The next apply refuses, naming the dead run's lock and how to remove it (once
                # here: the whole refusal is checked in test_s3_store.py).
                refused = run_pfsync("apply", "--auto-approve", cwd=here, env=env)
                assert refused.code == 1, refused
                assert f"pfsync state unlock {lock['id']}" in refused.err, refused
                assert len(sandbox.triggers(BUSINESS)) == in_sandbox, "sent under a held lock"
                refusals += 1
            unlocked = run_pfsync("state", "unlock", lock["id"], cwd=here, env=env)
            assert unlocked.code == 0, unlocked

        # A person settles every uncertain address from the sandbox listing.
        forget = [a for a in uncertain if trigger_name(a) not in by_name]
        if forget:
            rm = run_pfsync("state", "rm", *forget, cwd=here, env=env)
            assert rm.code == 0, rm
        for address in uncertain:
            if address not in forget:
                imported = run_pfsync(
                    "state", "import", address, by_name[trigger_name(address)], cwd=here, env=env
                )
                assert imported.code == 0, imported

        # What the next run sends, in its order: the creates, and the uncertain ones forgotten.
        # (The next attempt's plan checks that nothing is left uncertain but its own kill's.)
        to_send = sorted([*addresses(entries, "create"), *forget])
        kills_while_creating += alive and in_sandbox > before_run
    assert kills >= KILLS, f"only {kills} runs were killed while running\n{log}"

    final = run_pfsync("apply", "--auto-approve", cwd=runners.fresh(), env=env)
    assert final.code == 0, f"{final}\n{log}"

    triggers = sandbox.triggers(BUSINESS)
    names = [t["name"] for t in triggers]
    assert len(names) == len(set(names)), f"a trigger was created twice\n{log}"
    assert sorted(names) == sorted(trigger_name(a) for a in all_addresses)
    lockfile = server.lockfile(bucket)
    assert lockfile is not None
    assert lockfile.get("lock") is None
    assert not lockfile["pending"]
    recorded = {address: record["id"] for address, record in lockfile["triggers"].items()}
    assert sorted(recorded) == all_addresses
    assert sorted(recorded.values()) == sorted(t["id"] for t in triggers), f"lost records\n{log}"
    check = run_pfsync("plan", "--detailed-exitcode", cwd=runners.fresh(), env=env)
    assert check.code == 0, check
    log.add(f"{kills} kills ({kills_while_creating} while creating), 0 duplicates, 0 lost")
