"""Git store across runners: SIGKILL a git-store apply at random moments, each run on a fresh clone.

One bare remote on disk, one sandbox WITHOUT idempotency keys (a second create for an address
would be a visible duplicate). Every apply runs in a fresh clone of the remote and that clone is
thrown away after the kill, as a CI runner that vanished: all that survives a run is what it
pushed. Only the pfsync process is killed; a `git push` it had started is left to finish, as
the server end of a real push would (the test waits for it before looking at the remote).

After each kill, from a fresh clone: the plan never says `create` for a trigger the sandbox
holds, only the killed run's in-flight batches are uncertain (the batch being sent and the one
written ahead: at most 2 x intent_batch addresses), the next apply refuses naming the dead run's
lock, and a person unlocks and settles the uncertain addresses from the sandbox listing. In the
end every manifest exists exactly once and the remote lockfile records exactly the sandbox's
triggers.

Six kills, stratified (kill_helpers.stratified_moments): two spread over the start-up (reading
the store, pushing the lock, pushing the first pending records) and four over the first
KILL_WINDOW_CREATES creates of a run, one in each quarter (the first batch in flight with the
next written ahead, then later batches, while outcomes ride along with the pushes). Each kill
lands at a random place in its own slice. This covers every stretch of a run that ten purely
random kills covered (they hit these same stretches, some twice, and could miss one), at the
cost of six. The places come from a seeded random generator: PFSYNC_KILL_SEED=N reproduces a
run (the seed is printed, and named in the assertion messages). Each killed run's stderr is
kept beside the clones in tmp_path (runnerNN.stderr).
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from apply_helpers import BUSINESS
from conftest import RunPfsync
from fixtures_background import wait_until
from fixtures_sandbox import MakeSandbox
from git_helpers import clone, make_remote, remote_lockfile
from kill_helpers import (
    KillLog,
    KillPlan,
    Pace,
    addresses,
    assert_exactly_once,
    batches_of,
    kill_at_random_moment,
    leftovers_alive,
    plan_entries,
    sandbox_ids_by_name,
    settle,
    stratified_moments,
    trigger_name,
)
from pfsync.sandbox import Sandbox

MANIFESTS = 100
LATENCY_MS = 40
PARALLELISM = 4
INTENT_BATCH = 4
EARLY_KILLS = 2  # over the start-up: before the lock, the lock pushed, the first pending records
CREATING_KILLS = 4  # one in each quarter of the kill window
KILLS = EARLY_KILLS + CREATING_KILLS
MAX_ATTEMPTS = 30  # runs that finished before their kill moment do not count as kills
KILL_WINDOW_CREATES = 10  # a sending kill lands within this many creates (2.5 batches)
DEFAULT_SEED = 6_2024


@dataclass
class Runner:
    """Fresh clones of the remote, one per CI run, each discarded before the next."""

    remote: Path
    root: Path
    count: int = 0
    current: Path | None = None

    def fresh(self) -> Path:
        if self.current is not None:
            shutil.rmtree(self.current)
        self.count += 1
        self.current = clone(self.remote, self.root / f"runner{self.count:02d}")
        return self.current


def wait_for_quiet_sandbox(sandbox: Sandbox) -> None:
    """Let creates the dead run had in flight land (the server finishes them without a client)."""
    wait_until(lambda: sandbox.open_connections() == 0, "the dead run's creates to land")


def test_sigkill_across_fresh_clones_never_duplicates_nor_loses_records(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    seed = int(os.environ.get("PFSYNC_KILL_SEED", str(DEFAULT_SEED)))
    log = KillLog(seed)
    log.add(f"PFSYNC_KILL_SEED={seed}")
    rng = random.Random(seed)
    sandbox = make_sandbox(latency_ms=LATENCY_MS)
    env = sandbox.environment()
    remote = make_remote(tmp_path, MANIFESTS, state=f"{{store: git, intent_batch: {INTENT_BATCH}}}")
    runner = Runner(remote, tmp_path)
    pace = Pace(first_create=0.3, per_create=LATENCY_MS / 1000 / PARALLELISM)
    kill_plan = KillPlan(PARALLELISM, KILL_WINDOW_CREATES, start_new_session=True)
    moments = stratified_moments(EARLY_KILLS, CREATING_KILLS, rng)
    plan_env = {"PFSYNC_API_URL": sandbox.url}
    all_addresses = [f"{BUSINESS}/t{n:03d}" for n in range(MANIFESTS)]
    to_send = all_addresses  # this run's creates, in sending order (sorted by address)
    kills = kills_while_creating = 0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if kills >= KILLS:
            break
        first_apply = remote_lockfile(remote) is None
        before_run = len(sandbox.triggers(BUSINESS))
        dying = runner.fresh()

        def git_gone(pid: int, checkout: Path = dying) -> None:
            # The dead run's `git push` (if any) finishes as the server end would; then look.
            wait_until(
                lambda: not leftovers_alive(pid, checkout), timeout=60, what="the dead run's git"
            )

        pid, alive, when = kill_at_random_moment(
            dying,
            env,
            sandbox,
            rng,
            pace,
            len(to_send),
            first_apply,
            kill_plan,
            git_gone,
            moments[kills],  # a run that finished before its moment: the next one tries it again
        )
        wait_for_quiet_sandbox(sandbox)
        in_sandbox = len(sandbox.triggers(BUSINESS))
        kills += alive
        lockfile = remote_lockfile(remote)
        lock = lockfile.get("lock") if lockfile else None

        # The next runner: a fresh clone, knowing only what the dead one pushed.
        repo = runner.fresh()
        entries = plan_entries(run_pfsync, repo, plan_env)
        by_name = sandbox_ids_by_name(sandbox)
        again = [a for a in addresses(entries, "create") if trigger_name(a) in by_name]
        assert not again, f"plan would create again what exists: {again}\n{log}"
        uncertain = addresses(entries, "uncertain")
        batches = batches_of(uncertain, to_send, INTENT_BATCH)
        log.add(
            f"attempt {attempt} ({moments[kills - alive].describe()}): killed {when}"
            f"{'' if alive else ' (had finished)'}; "
            f"{in_sandbox} in the sandbox, {len(uncertain)} uncertain in batches {batches}, "
            f"lock {'left' if lock else 'released'}"
        )
        assert len(uncertain) <= 2 * INTENT_BATCH, (
            f"more than 2 x intent_batch ({2 * INTENT_BATCH}) left uncertain: {uncertain}\n{log}"
        )

        if lock is not None:
            # The next apply refuses, naming the dead run's lock and how to remove it.
            assert lock["pid"] == pid, f"the lock is not the killed run's: {lock}"
            refused = run_pfsync("apply", "--auto-approve", cwd=repo, env=env)
            assert refused.code == 1, refused
            assert f"pfsync state unlock {lock['id']}" in refused.err, refused
            assert len(sandbox.triggers(BUSINESS)) == in_sandbox, "sent under a held lock"
            unlocked = run_pfsync("state", "unlock", lock["id"], cwd=repo, env=env)
            assert unlocked.code == 0, unlocked

        # A person settles every uncertain address from the sandbox listing.
        settle(run_pfsync, repo, env, uncertain, by_name)

        settled = plan_entries(run_pfsync, runner.fresh(), plan_env)
        assert not addresses(settled, "uncertain"), f"still uncertain after settling\n{log}"
        to_send = addresses(settled, "create")
        assert not [a for a in to_send if trigger_name(a) in sandbox_ids_by_name(sandbox)]
        kills_while_creating += alive and in_sandbox > before_run
    assert kills >= KILLS, f"only {kills} runs were killed while running\n{log}"

    repo = runner.fresh()
    final = run_pfsync("apply", "--auto-approve", cwd=repo, env=env)
    assert final.code == 0, f"{final}\n{log}"

    assert_exactly_once(sandbox, remote_lockfile(remote), all_addresses, log)
    check = run_pfsync("plan", "--detailed-exitcode", cwd=runner.fresh(), env=plan_env)
    assert check.code == 0, check
    log.add(f"{kills} kills ({kills_while_creating} while creating), 0 duplicates, 0 lost")
