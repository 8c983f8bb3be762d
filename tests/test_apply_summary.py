"""`apply --summary FILE`: the outcome as Markdown appended to FILE (GitHub's step summary),
written even when the run stops early; each asserted whole."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from test_after import write_manifest, write_repo

from apply_helpers import BUSINESS, make_repo, start_apply
from conftest import RunPfsync, normalise
from fixtures_sandbox import MakeSandbox
from pfsync.apply.applier import ApplyReport, ItemResult
from pfsync.apply.summary import ApplyRecord, render_summary
from pfsync.config import load_config
from pfsync.plan.planner import create_plan

ENV = {"PFSYNC_USERNAME": "sandbox", "PFSYNC_PASSWORD": "sandbox"}
UNCERTAIN_ALPHA = """\
#### Needs a person

##### ? `biz_1/alpha` uncertain

source `triggers/alpha.yaml:3`

> A create of biz_1/alpha was started at <TIME> (Idempotency-Key <UUID>) and its outcome is \
unknown; pfsync will not send it again by itself. Look for the trigger in Pocketflows: if it \
exists, paste the Import below into a manifest file with its id (or run `pfsync -e production \
state import biz_1/alpha ID`); if not, paste the NotCreated below instead, and apply sends the \
create once more with its original Idempotency-Key (or run `pfsync -e production state rm \
biz_1/alpha`, and the next plan creates it anew).

```yaml
---
apiVersion: pfsync/v1
kind: Import
key: alpha
id: ""  # the id of the trigger found in Pocketflows
environment: production
---
apiVersion: pfsync/v1
kind: NotCreated
key: alpha
intent: <UUID>
environment: production
```
"""


def test_the_summary_lists_what_was_created_what_needs_a_person_and_what_was_held_back(
    tmp_path: Path, make_sandbox: MakeSandbox, run_pfsync: RunPfsync
) -> None:
    staging, production = make_sandbox(), make_sandbox()
    root = write_repo(tmp_path / "repo", staging.url, production.url)
    first = run_pfsync(
        "-e", "staging", "apply", "--auto-approve", "--new-lockfile", cwd=root, env=ENV
    )
    assert first.code == 0, first
    write_manifest(root, "gamma", "Gamma")  # not in staging: held back
    summary = root / "summary.md"
    summary.write_text("# Earlier step\n\n", encoding="utf-8")
    production.script("lose-response")  # alpha is stored, its answer lost: uncertain
    applied = run_pfsync(
        "-e", "production", "apply", "--after", "staging", "--auto-approve", "--new-lockfile",
        "--parallelism", "1", "--summary", "summary.md", cwd=root, env=ENV,
    )  # fmt: skip
    assert applied.code == 3, applied
    assert normalise(summary.read_text(encoding="utf-8"), URL=production.url) == (
        "# Earlier step\n"
        "\n"
        "### Apply to environment `production`\n"
        "\n"
        "API `<URL>`\n"
        "\n"
        "**Apply (production): 1 created, 0 failed, 1 uncertain. Needs a person: 0 update, "
        "0 delete, 1 uncertain. Held back by --after staging: 1 (not sent).**\n"
        "\n"
        "#### Created\n"
        "\n"
        "| address | trigger id |\n"
        "|---|---|\n"
        "| `biz_1/beta` | `<ID>` |\n"
        "\n"
        f"{UNCERTAIN_ALPHA}"
        "\n"
        "#### Held back by --after `staging` (not sent)\n"
        "\n"
        "- `biz_1/gamma` create · source `triggers/gamma.yaml:3`: not yet applied to staging\n"
        "\n"
    )


def test_a_run_stopped_by_an_error_before_its_plan_says_why(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = write_repo(tmp_path / "repo", "https://s.example.test", "https://p.example.test")
    applied = run_pfsync(
        "-e", "production", "apply", "--after", "staging", "--auto-approve", "--new-lockfile",
        "--summary", "summary.md", cwd=root, env=ENV,
    )  # fmt: skip
    error = (
        "Error: --after staging: environment staging has no record yet (staging.lock does not "
        "exist): apply staging first; nothing was sent\n"
    )
    assert (applied.code, applied.out, applied.err) == (1, "", error)
    assert (root / "summary.md").read_text(encoding="utf-8") == (
        "### Apply to environment `production`\n"
        "\n"
        "API `https://p.example.test`\n"
        "\n"
        "#### Stopped\n"
        "\n"
        f"{error}"
        "\n"
    )


def test_a_run_stopped_by_a_signal_still_writes_what_it_did(
    tmp_path: Path, make_sandbox: MakeSandbox
) -> None:
    sandbox = make_sandbox(slow_seconds=60)
    repo = make_repo(tmp_path, 3)
    sandbox.script("ok", "slow")
    # t001 is held in flight (60 s) past the wait after the signal: a short wait ends it sooner.
    proc = start_apply(
        repo, sandbox, "--new-lockfile", "--parallelism", "1", "--summary", "s.md",
        "--interrupt-wait", "0.5",
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(sandbox.triggers(BUSINESS)) < 2:  # t000 created, t001 stored and held
        assert time.monotonic() < deadline, "the creates did not arrive"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    t1 = f"{BUSINESS}/t001"
    text = normalise((repo / "s.md").read_text(encoding="utf-8"), URL=sandbox.url)
    assert text == (
        "### Apply\n"
        "\n"
        "API `<URL>`\n"
        "\n"
        "**Apply: 1 created, 0 failed, 1 uncertain, 1 not sent. Needs a person: 0 update, "
        "0 delete, 1 uncertain.**\n"
        "\n"
        "#### Created\n"
        "\n"
        "| address | trigger id |\n"
        "|---|---|\n"
        f"| `{BUSINESS}/t000` | `<ID>` |\n"
        "\n"
        "#### Needs a person\n"
        "\n"
        f"##### ? `{t1}` uncertain\n"
        "\n"
        "source `triggers/t001.yaml:3`\n"
        "\n"
        f"> A create of {t1} was started at <TIME> (Idempotency-Key <UUID>) and its outcome is "
        "unknown; pfsync will not send it again by itself. Look for the trigger in Pocketflows: "
        "if it exists, paste the Import below into a manifest file with its id (or run "
        f"`pfsync state import {t1} ID`); if not, paste the NotCreated below instead, and apply "
        "sends the create once more with its original Idempotency-Key (or run "
        f"`pfsync state rm {t1}`, and the next plan creates it anew).\n"
        "\n"
        "```yaml\n"
        "---\n"
        "apiVersion: pfsync/v1\n"
        "kind: Import\n"
        "key: t001\n"
        'id: ""  # the id of the trigger found in Pocketflows\n'
        "---\n"
        "apiVersion: pfsync/v1\n"
        "kind: NotCreated\n"
        "key: t001\n"
        "intent: <UUID>\n"
        "```\n"
        "\n"
        "#### Stopped\n"
        "\n"
        "Interrupted: nothing new was started; 1 create(s) still in flight are uncertain.\n"
        "\n"
    )


def test_outside_text_cannot_break_the_summary_out_of_its_code(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", "https://s.example.test", "https://p.example.test")
    config = load_config(cwd=root, environment="staging")
    plan = create_plan([], None, config.api_url)
    failed = ItemResult("biz_1/a", "failed", "HTTP 422: `x` | <b>\n# not a heading\x1b[31m")
    created = ItemResult("biz_1/b", "created", trigger_id="trg_`1`|")
    record = ApplyRecord(plan, ApplyReport([failed, created]), plan)
    assert render_summary(config, record) == (
        "### Apply to environment `staging`\n"
        "\n"
        "API `https://s.example.test`\n"
        "\n"
        "**Apply (staging): 1 created, 1 failed, 0 uncertain. Needs a person: 0 update, "
        "0 delete, 0 uncertain.**\n"
        "\n"
        "#### Created\n"
        "\n"
        "| address | trigger id |\n"
        "|---|---|\n"
        "| `biz_1/b` | ``trg_`1`\\|`` |\n"
        "\n"
        "#### Failed\n"
        "\n"
        "- `biz_1/a`: ``HTTP 422: `x` \\| <b>\\n# not a heading\\x1b[31m``\n"
        "\n"
    )
