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

import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from apply_helpers import BUSINESS
from conftest import RunPfsync
from fixtures_sandbox import MakeSandbox
from kill_helpers import (
    KillLog,
    KillPlan,
    Pace,
    addresses,
    assert_exactly_once,
    batches_of,
    kill_at_random_moment,
    plan_entries,
    sandbox_ids_by_name,
    settle,
    trigger_name,
)
from pfsync.sandbox import Sandbox
from s3_helpers import S3Server, make_s3_repo, runner, s3_env, s3_server, without_aws_settings

MANIFESTS = 60
LATENCY_MS = 40
PARALLELISM = 2
INTENT_BATCH = 2
KILLS = 5
MAX_ATTEMPTS = 20  # runs that finished before their kill moment do not count as kills
KILL_WINDOW_CREATES = MANIFESTS // KILLS  # a sending kill lands within this many creates
DEFAULT_SEED = 16_2026


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    with without_aws_settings():
        yield s3_server()


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
    pace = Pace(first_create=0.4, per_create=LATENCY_MS / 1000 / PARALLELISM)
    kill_plan = KillPlan(PARALLELISM, KILL_WINDOW_CREATES)
    all_addresses = [f"{BUSINESS}/t{n:03d}" for n in range(MANIFESTS)]
    to_send = all_addresses  # this run's creates, in sending order (sorted by address)
    kills = kills_while_creating = refusals = 0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if kills >= KILLS:
            break
        first_apply = server.lockfile(bucket) is None
        before_run = len(sandbox.triggers(BUSINESS))
        pid, alive, when = kill_at_random_moment(
            runners.fresh(), env, sandbox, rng, pace, len(to_send), first_apply, kill_plan
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
        batches = batches_of(uncertain, to_send, INTENT_BATCH)
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
        forget = settle(run_pfsync, here, env, uncertain, by_name)

        # What the next run sends, in its order: the creates, and the uncertain ones forgotten.
        # (The next attempt's plan checks that nothing is left uncertain but its own kill's.)
        to_send = sorted([*addresses(entries, "create"), *forget])
        kills_while_creating += alive and in_sandbox > before_run
    assert kills >= KILLS, f"only {kills} runs were killed while running\n{log}"

    final = run_pfsync("apply", "--auto-approve", cwd=runners.fresh(), env=env)
    assert final.code == 0, f"{final}\n{log}"

    assert_exactly_once(sandbox, server.lockfile(bucket), all_addresses, log)
    check = run_pfsync("plan", "--detailed-exitcode", cwd=runners.fresh(), env=env)
    assert check.code == 0, check
    log.add(f"{kills} kills ({kills_while_creating} while creating), 0 duplicates, 0 lost")
