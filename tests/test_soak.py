"""Soak (small): hundreds of creates against a sandbox hostile in every way at once, resumed.

The sandbox honours Idempotency-Key, rate-limits (429 + Retry-After), answers 5% of creates with
500 before storing and drops the connection after storing 2%. `pfsync apply --auto-approve
--retry-uncertain` is re-run until it exits 0; then there are exactly N triggers, none twice, and
the lockfile's ids are the sandbox's. The 10,000-create version is `benchmarks/soak.py`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from apply_helpers import BUSINESS, lock_ids, make_repo
from conftest import RunPfsync
from fixtures_sandbox import MakeSandbox

COUNT = 400


def test_hostile_sandbox_resumed_until_done_creates_each_trigger_once(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(
        idempotency_keys=True, rate_limit=150, fail_rate=0.05, lose_response_rate=0.02, seed=11
    )
    repo = make_repo(tmp_path, COUNT)
    codes = []
    for attempt in range(25):
        args = ["apply", "--auto-approve", "--retry-uncertain", "--parallelism", "8"]
        run = run_pfsync(
            *args,
            *(["--new-lockfile"] if attempt == 0 else []),
            cwd=repo,
            env=sandbox.environment(),
        )
        assert "Traceback" not in run.err, run
        codes.append(run.code)
        if run.code == 0:
            break
        assert run.code in (1, 3), run  # 1: a 429 outlasted its retries; 3: uncertain left
    assert codes[-1] == 0, codes
    assert len(codes) > 1  # the faults did bite: the first run could not finish alone

    triggers = sandbox.triggers(BUSINESS)
    names = Counter(t["name"] for t in triggers)
    assert [name for name, seen in names.items() if seen > 1] == []
    assert len(triggers) == COUNT
    assert sorted(lock_ids(repo).values()) == sorted(t["id"] for t in triggers)
    assert json.loads((repo / "pfsync.lock").read_text())["pending"] == {}
    assert not (repo / "pfsync.lock.journal").exists()

    outcomes = Counter(r["outcome"] for r in sandbox.requests() if r["method"] == "POST")
    assert outcomes["429"] and outcomes["500"] and outcomes["lose-response"], outcomes
    # Every response lost after storing was recovered by a replay, never by a second create.
    replays = sum(seen for outcome, seen in outcomes.items() if outcome.startswith("replay"))
    assert replays >= outcomes["lose-response"], outcomes

    again = run_pfsync("plan", "--detailed-exitcode", cwd=repo, env={"PFSYNC_API_URL": sandbox.url})
    assert again.code == 0, again
