"""What the SIGKILL tests of the remote stores (git, s3) share: one kill, one settling, one check.

Each store's test keeps only what is its own: how a fresh runner is made, how to tell that the
dead run's last write has landed, and where the lockfile is read back from.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apply_helpers import BUSINESS
from conftest import RunPfsync, clean_env, pfsync_executable
from fixtures_background import wait_until
from pfsync.sandbox import Sandbox

EARLY_KILLS = 0.25  # share of kills aimed before the first create (start-up, lock, first intents)


@dataclass
class Pace:
    """How long this machine takes to reach the first create, and per create after it."""

    first_create: float
    per_create: float


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


def plan_entries(run_pfsync: RunPfsync, repo: Path, env: Mapping[str, str]) -> list[dict[str, Any]]:
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


def batches_of(uncertain: list[str], sending_order: list[str], intent_batch: int) -> list[int]:
    """The batches (by index in this run's sending order) that hold the uncertain addresses."""
    position = {address: n for n, address in enumerate(sending_order)}
    return sorted({position[address] // intent_batch for address in uncertain})


@dataclass(frozen=True)
class Moment:
    """Where a kill lands: before the first create or while creating, `share` (0 to 1) of the
    way through that stretch (start-up up to the pace's first create, or the kill window)."""

    before_sending: bool
    share: float

    def describe(self) -> str:
        return f"{'before sending' if self.before_sending else 'while creating'}, {self.share:.2f}"


def stratified_moments(early: int, creating: int, rng: random.Random) -> list[Moment]:
    """`early` kills spread over the start-up, `creating` over the kill window, shuffled.

    Each stretch is cut into equal slices and one kill lands at a random place in each slice:
    every part of a run is hit by construction, where as many purely random moments could all
    fall in one part.
    """
    moments = [
        Moment(before, (slice_ + rng.random()) / count)
        for before, count in ((True, early), (False, creating))
        for slice_ in range(count)
    ]
    rng.shuffle(moments)
    return moments


@dataclass(frozen=True)
class KillPlan:
    """Where a kill may land: before the first create, or within the next few creates."""

    parallelism: int
    kill_window_creates: int
    start_new_session: bool = False  # the git store: its git children stay findable


def kill_at_random_moment(
    repo: Path,
    env: Mapping[str, str],
    sandbox: Sandbox,
    rng: random.Random,
    pace: Pace,
    to_send: int,
    first_apply: bool,
    plan: KillPlan,
    after_kill: Callable[[int], None] = lambda pid: None,
    moment: Moment | None = None,
) -> tuple[int, bool, str]:
    """Start an apply in `repo` and SIGKILL it; (its pid, whether it was still running, when).

    The kill lands at `moment`, or at a random one (EARLY_KILLS of them before sending).
    `after_kill(pid)` runs while the run's stderr (`REPO.stderr` beside it) is still open.
    """
    if moment is None:
        moment = Moment(rng.random() < EARLY_KILLS, rng.random())
    args = ["--new-lockfile"] if first_apply else []
    before = len(sandbox.triggers(BUSINESS))
    with (repo.parent / f"{repo.name}.stderr").open("w") as stderr:
        proc = subprocess.Popen(
            [
                pfsync_executable(),
                "apply",
                "--auto-approve",
                "--parallelism",
                str(plan.parallelism),
                *args,
            ],
            cwd=repo,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=plan.start_new_session,
        )
        started = time.monotonic()
        if to_send == 0 or moment.before_sending:
            # Before the first create: start-up, reading the store, the lock, the first intents.
            time.sleep(moment.share * pace.first_create)
            when = f"{time.monotonic() - started:.3f}s after start (aimed before sending)"
        else:
            # While creating: a moment within the time to send a few batches of what is left.
            wait_until(
                lambda: proc.poll() is not None or len(sandbox.triggers(BUSINESS)) > before,
                what="the first create",
                timeout=30,
                interval=0.005,  # the kill moment is measured from here
            )
            pace.first_create = time.monotonic() - started
            creates = min(to_send, plan.kill_window_creates)
            time.sleep(moment.share * creates * pace.per_create)
            when = f"{time.monotonic() - started:.3f}s after start (first create at "
            when += f"{pace.first_create:.3f}s)"
        alive = proc.poll() is None
        proc.kill()
        proc.wait(timeout=30)
        after_kill(proc.pid)
    return proc.pid, alive, when


def settle(
    run_pfsync: RunPfsync,
    repo: Path,
    env: Mapping[str, str],
    uncertain: list[str],
    by_name: dict[str, str],
) -> list[str]:
    """What a person does from the sandbox listing: import what exists, forget the rest.

    Returns the addresses forgotten (the next apply creates them).
    """
    forget = [a for a in uncertain if trigger_name(a) not in by_name]
    if forget:
        rm = run_pfsync("state", "rm", *forget, cwd=repo, env=env)
        assert rm.code == 0, rm
    pairs = [word for a in uncertain if a not in forget for word in (a, by_name[trigger_name(a)])]
    if pairs:
        imported = run_pfsync("state", "import", *pairs, cwd=repo, env=env)
        assert imported.code == 0, imported
    return forget


def assert_exactly_once(
    sandbox: Sandbox,
    lockfile: dict[str, Any] | None,
    all_addresses: list[str],
    log: KillLog,
) -> None:
    """Every manifest exists once, and the lockfile records exactly the sandbox's triggers."""
    triggers = sandbox.triggers(BUSINESS)
    names = [t["name"] for t in triggers]
    assert len(names) == len(set(names)), f"a trigger was created twice\n{log}"
    assert sorted(names) == sorted(trigger_name(a) for a in all_addresses)
    assert lockfile is not None
    assert lockfile.get("lock") is None
    assert not lockfile["pending"]
    recorded = {address: record["id"] for address, record in lockfile["triggers"].items()}
    assert sorted(recorded) == all_addresses
    assert sorted(recorded.values()) == sorted(t["id"] for t in triggers), f"lost records\n{log}"


def leftovers_alive(pgid: int, checkout: Path) -> bool:
    """Whether a process of the dead run still runs: one of its process group, or a git working
    on its checkout (`git -C CHECKOUT push`, even in a session of its own). Zombies left to init
    do not count."""
    proc = Path("/proc")
    paths = {os.fsencode(checkout), os.fsencode(checkout.resolve())}
    if proc.is_dir():
        for folder in proc.glob("[0-9]*"):
            try:
                fields = (folder / "stat").read_text().rsplit(")", 1)[1].split()
                argv = (folder / "cmdline").read_bytes().split(b"\0")
            except (OSError, IndexError):
                continue
            if fields[0] == "Z":
                continue
            if int(fields[2]) == pgid or paths.intersection(argv):
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
