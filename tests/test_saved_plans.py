"""Saved plans: the hint after `plan --out` and a stale plan's refusal name commands that work
as pasted (the running invocation's -e, -C, --config and --sandbox, and the plan's own options)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from project_helpers import record
from test_after import write_repo

from conftest import run_in_process
from pfsync.state.lockfile import Lockfile, save_lockfile

CREDENTIALS = {"PFSYNC_USERNAME": "u", "PFSYNC_PASSWORD": "p"}
LINEAGE = "0f0e0d0c-0b0a-4908-8706-050403020100"


def test_the_hint_after_plan_out_applies_in_sandbox_mode(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", "https://s.example.test", "https://p.example.test")
    code, output = run_in_process(["-e", "staging", "plan", "--sandbox", "--out", "p.json"], root)
    assert code == 0, output
    assert output.splitlines()[-1] == (
        "Saved the plan to p.json; apply it with `pfsync -e staging apply --sandbox p.json`."
    )


def recorded(environment: str, api_url: str, serial: int, **documents: str) -> Lockfile:
    """A lockfile of `environment` recording each key created from its document digest."""
    triggers = {
        f"biz_1/{key}": dataclasses.replace(record(f"trg_{key}", key, key=key), document_digest=d)
        for key, d in documents.items()
    }
    return Lockfile(LINEAGE, serial, api_url, triggers, environment=environment)


def test_a_stale_saved_plan_names_what_changed_and_the_command_that_makes_a_new_one(
    tmp_path: Path,
) -> None:
    root = write_repo(tmp_path / "repo", "https://s.example.test", "https://p.example.test")
    save_lockfile(root / "staging.lock", None, recorded("staging", "https://s.example.test", 0))
    production = save_lockfile(
        root / "production.lock", None, recorded("production", "https://p.example.test", 0)
    )
    argv = ["-e", "production", "plan", "--after", "staging", "--out", "plans/prod.json"]
    (root / "plans").mkdir()
    code, output = run_in_process(argv, root)
    assert code == 0, output
    # Another apply moved production's record on since the plan was made.
    moved_on = recorded("production", "https://p.example.test", 1, gamma="sha256:" + "0" * 64)
    save_lockfile(root / "production.lock", production, moved_on)
    argv = ["-e", "production", "apply", "plans/prod.json", "--summary", "summary.md"]
    code, output = run_in_process(argv, root, CREDENTIALS)
    refusal = (
        "Error: the plan plans/prod.json is stale: the lockfile changed since it was saved "
        "(serial 1 then, serial 2 now). Make a new plan and review it: `pfsync -e production "
        "plan --after staging --out plans/prod.json` (in CI, re-run the job that made the "
        "plan); nothing was sent\n"
    )
    assert (code, output) == (1, refusal)
    # The approver's page says why nothing happened, and nothing else.
    assert (root / "summary.md").read_text(encoding="utf-8") == (
        "### Apply to environment `production`\n"
        "\n"
        "API `https://p.example.test`\n"
        "\n"
        "#### Stopped\n"
        "\n"
        f"{refusal}"
        "\n"
    )
