"""The pull-request loop of the generated GitHub recipes, executed: every `run:` step word for
word in a fresh clone of a bare origin (tests/workflow_runner.py), against two sandboxes standing
for the staging and production Pocketflows accounts (tests/ci_loop.py).

Each scenario asserts the creates each sandbox received, the records each lockfile on origin's
main ends with, and the text a reviewer (the pull-request comment) and an approver (the run
summary before the approval) see. Without node the comment step is stood in (the test output
says so) and the plans the comment would post are checked in the plan jobs' summaries instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ci_loop import ENVIRONMENTS, Loop, PullRequest, git, trigger_yaml
from conftest import clean_env, normalise, pfsync_executable
from fixtures_background import MakeGate, wait_until
from fixtures_sandbox import MakeSandbox
from workflow_runner import Approval, Run

NODE = shutil.which("node") is not None
WHEN = {
    "staging": "*Applied to staging when merged, without an approval.*",
    "production": (
        "*Applied to production after staging, once a reviewer approves the plan shown in the "
        "apply run's summary (only what staging created from the same manifests).*"
    ),
}
APPROVAL_HEADING = "## What approving production applies"


@pytest.fixture
def loop(tmp_path: Path, make_sandbox: MakeSandbox) -> Loop:
    staging = make_sandbox(username="staging-user", password="staging-secret")
    production = make_sandbox(username="production-user", password="production-secret")
    return Loop.create(tmp_path, staging, production)


def approve_all(seen: list[Approval]) -> Callable[[Approval], bool]:
    def approve(approval: Approval) -> bool:
        seen.append(approval)
        return True

    return approve


def reviewed(loop: Loop, pr: PullRequest, plan: Run | None = None) -> str:
    """Plan the pull request (unless `plan` is its plan run already), post its comment; what the
    reviewer reads ('' without node)."""
    plan = plan or loop.plan(pr)
    assert [job.status for job in plan.jobs["plan"]] == ["success", "success"], plan.jobs
    comment = loop.comment(plan, pr)
    assert comment.result("comment") == "success", comment.job("comment").log
    if not NODE:
        print("node is not installed: the comment step was stood in; the plans were checked")
        for environment in ENVIRONMENTS:
            folder = plan.artifacts / f"pfsync-plan-{environment}" / environment
            assert (folder / "pr-number.txt").read_text() == f"{pr.number}\n"
            assert (folder / "plan.md").read_text() == plan.job("plan", environment).summary
        return ""
    return loop.api.comment(pr.number)


def assert_section(body: str, environment: str, *lines: str) -> None:
    """The comment's section of `environment` says when it applies and holds `lines`."""
    if not body:
        return
    section = body.split(f"### {environment}\n\n", 1)[1].split("\n### ", 1)[0]
    assert section.startswith(WHEN[environment] + "\n\n"), section
    for line in lines:
        assert line in section, (line, section)


def ids_by_address(loop: Loop, environment: str) -> dict[str, str]:
    """Address → id of every trigger the environment's sandbox holds (by its manifest key)."""
    keys = {"VIP upgrade": "vip", "Welcome series": "welcome-series", "Cart nudge": "cart"}
    return {
        f"biz_1-{environment}/{keys[t['name']]}": t["id"]
        for t in loop.sandboxes[environment].triggers()
    }


def assert_promoted(loop: Loop, posts: int) -> None:
    """Each environment received `posts` creates, each recorded once on origin's main."""
    for environment in ENVIRONMENTS:
        assert loop.posts(environment) == posts, environment
        assert loop.records(environment) == ids_by_address(loop, environment)


COMMIT = re.compile(r"(?<=commit `)[0-9a-f]{12}(?=`)")
BODY = """\
```json
{{
  "name": "{name}",
  "project_defined_event": "pde_signup",
  "steps": [
    {{
      "type": "email",
      "email_template_id": "et_welcome_1"
    }}
  ]
}}
```
"""
APPROVER_SEES = (
    "### Apply to environment `staging`\n\nAPI `<STAGING>`\n\n"
    "**Apply (staging): 2 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
    "0 uncertain.**\n\n#### Created\n\n| address | trigger id |\n|---|---|\n"
    "| `biz_1-staging/vip` | `<ID>` |\n| `biz_1-staging/welcome-series` | `<ID>` |\n\n"
    f"{APPROVAL_HEADING}\n\n"
    "**Planned from** commit `<SHA>` · state `state/production.lock on origin/main` (serial 1, "
    "commit `<SHA>`, lineage `<UUID>`)\n\n"
    "New triggers start as drafts; a person activates them in Pocketflows.\n\n"
    "**Plan: 2 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
    "0 unchanged.**\n\n"
    "Environment `production` · Business `biz_1-production` · API `<PRODUCTION>` · lockfile "
    "`state/production.lock on origin/main` serial 1\n\n"
    "<details><summary>+ 2 to create</summary>\n\n"
    "#### + `biz_1-production/vip` create\n\nsource `triggers/vip.yaml:3`\n\n"
    + BODY.format(name="VIP upgrade")
    + "\n#### + `biz_1-production/welcome-series` create\n\n"
    "source `triggers/welcome-series.yaml:4`\n\n"
    + BODY.format(name="Welcome series")
    + "\n</details>\n\n"
)


def test_happy_path_promotes_a_reviewed_change_through_both_environments(loop: Loop) -> None:
    pr = loop.open_pull_request({"triggers/vip.yaml": trigger_yaml("vip", "VIP upgrade")})
    body = reviewed(loop, pr)
    for environment in ENVIRONMENTS:
        # What was planned from what, that creates start as drafts, and when it applies.
        assert_section(
            body,
            environment,
            f"**Planned from** commit `{pr.merge[:12]}` (base `{pr.base[:12]}`) · state "
            f"`state/{environment}.lock on origin/main` (serial 1, commit `{pr.base[:12]}`",
            "New triggers start as drafts; a person activates them in Pocketflows.",
            "**Plan: 2 to create, 0 to replace.",
            f"`biz_1-{environment}/vip` create",
        )
    seen: list[Approval] = []
    run = loop.apply(loop.merge(pr), approver=approve_all(seen))
    for job_id in ("apply-staging", "apply-production"):
        assert run.result(job_id) == "success", run.job(job_id).log
    # The approver sees what staging's apply created, then production's saved plan.
    [approval] = seen
    assert (approval.job_id, approval.environment) == ("apply-production", "production")
    known = {
        "STAGING": loop.sandboxes["staging"].url,
        "PRODUCTION": loop.sandboxes["production"].url,
    }
    assert normalise(approval.summary, **known, SHA=COMMIT) == APPROVER_SEES
    assert_promoted(loop, posts=2)
    # Each apply's summary lists what it created.
    for environment in ENVIRONMENTS:
        summary = run.job(f"apply-{environment}").summary
        for address, trigger_id in loop.records(environment).items():
            assert address in summary and trigger_id in summary, summary


def test_a_fork_pull_request_is_planned_without_secrets_and_commented(loop: Loop) -> None:
    pr = loop.open_pull_request(
        {"triggers/vip.yaml": trigger_yaml("vip", "VIP upgrade")}, fork=True
    )
    plan = loop.plan(pr)
    assert plan.secrets_available is False
    for environment in ENVIRONMENTS:
        summary = plan.job("plan", environment).summary
        assert f"`biz_1-{environment}/vip` create" in summary
    body = reviewed(loop, pr, plan)
    for environment in ENVIRONMENTS:
        assert_section(body, environment, f"`biz_1-{environment}/vip` create")
    if NODE:
        [(_, created)] = [c for c in loop.api.calls if c[0] == "issues.createComment"]
        assert created["issue_number"] == pr.number
    assert (loop.posts("staging"), loop.posts("production")) == (0, 0)


def status(run: Run, job_id: str) -> str:
    return run.jobs[job_id][0].status if job_id in run.jobs else "not started"


def test_two_merges_applied_at_once_queue_and_production_ends_with_both(
    loop: Loop, make_gate: MakeGate
) -> None:
    first = loop.open_pull_request({"triggers/vip.yaml": trigger_yaml("vip", "VIP upgrade")})
    second = loop.open_pull_request({"triggers/cart.yaml": trigger_yaml("cart", "Cart nudge")})
    gate = make_gate(loop.sandboxes["staging"], 0)
    runs = [loop.start_apply(loop.merge(first))]
    # The second merge lands while the first run's apply to staging is sending its creates; its
    # run's apply to staging queues behind it (one concurrency group).
    gate.wait_for(0)
    runs.append(loop.start_apply(loop.merge(second)))
    wait_until(lambda: status(runs[1], "apply-staging") == "pending", "the second apply queued")
    gate.release(0)
    # The second run's production job replaces the first one's pending approval, as GitHub does.
    wait_until(
        lambda: sorted(status(run, "apply-production") for run in runs) == ["cancelled", "waiting"],
        "one pending production approval, the other replaced",
    )
    [pending] = [run for run in runs if status(run, "apply-production") == "waiting"]
    approvals = [loop.runner.next_approval()]
    while approvals[-1].run is not pending:
        approvals.append(loop.runner.next_approval())
    approval = approvals[-1]
    for address in ("biz_1-production/vip", "biz_1-production/cart"):
        assert f"`{address}` create" in approval.summary, approval.summary
    approval.decide(True)
    for run in runs:
        run.wait()
        assert run.result("apply-staging") == "success", run.job("apply-staging").log
        assert "failure" not in {job.status for jobs in run.jobs.values() for job in jobs}
    assert pending.result("apply-production") == "success"
    # Staging received each create once, production both with the one approval.
    assert_promoted(loop, posts=3)


def test_a_pull_request_whose_base_moved_on_fails_in_the_merge_queue_not_on_main(
    loop: Loop,
) -> None:
    mine = loop.open_pull_request({"triggers/vip-upgrade.yaml": trigger_yaml("vip", "VIP upgrade")})
    body = reviewed(loop, mine)
    assert_section(body, "staging", "`biz_1-staging/vip` create")
    # Another pull request declares the same trigger with another body, and merges first.
    other = loop.open_pull_request({"triggers/vip.yaml": trigger_yaml("vip", "VIP gold")})
    reviewed(loop, other)
    loop.merge(other)
    # The stale plan is not merged: the merge queue plans the merge result, which fails.
    queue = loop.merge_group(mine)
    for environment in ENVIRONMENTS:
        job = queue.job("plan", environment)
        assert job.status == "failure"
        assert job.annotations("error") == [
            f"pfsync plan ({environment}) failed (exit 1); its error is in the log of the Plan step"
        ]
        assert "declared twice" in job.log, job.log
    assert queue.result("validate") == "failure"
    assert "triggers/vip-upgrade.yaml" not in loop.origin_files()
    # Its branch brought up to date is planned again, and its one comment is updated.
    comment_id = [c["id"] for c in loop.api.comments.get(mine.number, [])]
    loop.update_branch(mine)
    plan = loop.plan(mine)
    assert plan.result("plan") == "failure"
    assert loop.comment(plan, mine).result("comment") == "success"
    if NODE:
        assert [c["id"] for c in loop.api.comments[mine.number]] == comment_id
        body = loop.api.comment(mine.number)
        for environment in ENVIRONMENTS:
            assert_section(body, environment, f"*No plan: the plan job of {environment} failed")
    assert (loop.posts("staging"), loop.posts("production")) == (0, 0)


def assert_production_holds_only_what_staging_created(loop: Loop) -> None:
    staging = {t["name"] for t in loop.sandboxes["staging"].triggers()}
    assert {t["name"] for t in loop.sandboxes["production"].triggers()} <= staging


def test_promotion_after_main_moved_on_refuses_the_stale_plan_with_the_next_step(
    loop: Loop,
) -> None:
    first = loop.open_pull_request({"triggers/vip.yaml": trigger_yaml("vip", "VIP upgrade")})
    run = loop.start_apply(loop.merge(first))
    approval = loop.runner.next_approval()
    assert "`biz_1-production/vip` create" in approval.summary
    assert "cart" not in approval.summary
    # Another merge lands while the approval waits; no run has applied it anywhere yet.
    second = loop.open_pull_request({"triggers/cart.yaml": trigger_yaml("cart", "Cart nudge")})
    tip = loop.merge(second)
    approval.decide(True)
    run.wait()
    # The approved plan no longer is what apply would do: refused, nothing sent, the next step
    # named (with its environment).
    refused = run.job("apply-production")
    assert refused.status == "failure"
    assert "apply would now also send biz_1-production/cart" in refused.log, refused.log
    assert "`pfsync -e production plan --after staging --out " in refused.log
    assert "(in CI, re-run the job that made the plan); nothing was sent" in refused.log
    assert (loop.posts("staging"), loop.posts("production")) == (2, 0)
    # That job is staging's apply: run again, it applies the tip to staging and saves a new plan.
    seen: list[Approval] = []
    loop.runner.rerun(run, "apply-staging", approver=approve_all(seen))
    [approval] = seen
    for key in ("vip", "cart", "welcome-series"):
        assert f"`biz_1-production/{key}` create" in approval.summary
    assert run.job("apply-production").status == "success"
    assert_production_holds_only_what_staging_created(loop)
    # The second merge's own run finds nothing left to do.
    later = loop.apply(tip, approver=lambda approval: True)
    assert later.result("apply-production") == "success", later.job("apply-production").log
    assert_promoted(loop, posts=3)


def moved_files() -> dict[str, str | None]:
    """A rename of init's example trigger, declared with `Moved`."""
    manifest = trigger_yaml("welcome-journey", "Welcome series")
    return {
        "triggers/welcome-series.yaml": None,
        "triggers/welcome-journey.yaml": manifest,
        "triggers/renames.yaml": (
            "apiVersion: pfsync/v1\nkind: Moved\nfrom: welcome-series\nto: welcome-journey\n"
        ),
    }


def test_a_rename_with_its_moved_creates_no_second_trigger(loop: Loop) -> None:
    main = loop.runner_tip()
    loop.apply(main, approver=lambda approval: True)
    before = {environment: loop.records(environment) for environment in ENVIRONMENTS}
    assert (loop.posts("staging"), loop.posts("production")) == (1, 1)
    pr = loop.open_pull_request(moved_files())
    body = reviewed(loop, pr)
    for environment in ENVIRONMENTS:
        assert_section(
            body,
            environment,
            "**Plan: 0 to create, 0 to replace, 1 to move.",
            f"biz_1-{environment}/welcome-journey",
        )
    seen: list[Approval] = []
    run = loop.apply(loop.merge(pr), approver=approve_all(seen))
    assert run.result("apply-production") == "success", run.job("apply-production").log
    [approval] = seen
    assert "biz_1-production/welcome-journey" in approval.summary
    # No second trigger anywhere: the records moved, with the ids they had.
    assert (loop.posts("staging"), loop.posts("production")) == (1, 1)
    for environment in ENVIRONMENTS:
        [old_id] = before[environment].values()
        assert loop.records(environment) == {f"biz_1-{environment}/welcome-journey": old_id}


def test_a_production_only_trigger_is_created_directly_not_held_back_forever(loop: Loop) -> None:
    # The layout docs/environments.md recommends: a folder only production's globs include.
    config = (loop.desk / "pfsync.yaml").read_text()
    lockfile = "    lockfile: state/production.lock"
    globs = '    manifests: ["triggers/**/*.yaml", "only/production/**/*.yaml"]\n'
    at = config.index("\n", config.index(lockfile)) + 1
    pr = loop.open_pull_request(
        {
            "pfsync.yaml": config[:at] + globs + config[at:],
            "only/production/cart.yaml": trigger_yaml("cart", "Cart nudge"),
        }
    )
    body = reviewed(loop, pr)
    assert_section(body, "production", "**Plan: 2 to create, 0 to replace.")
    seen: list[Approval] = []
    run = loop.apply(loop.merge(pr), approver=approve_all(seen))
    assert run.result("apply-production") == "success", run.job("apply-production").log
    [approval] = seen
    not_declared = (
        "- `biz_1-production/cart` create · source `only/production/cart.yaml:3`: not declared "
        "for staging: created directly in production\n"
    )
    assert not_declared in approval.summary, approval.summary
    assert (loop.names("staging"), loop.names("production")) == (
        ["Welcome series"],
        ["Cart nudge", "Welcome series"],
    )
    assert (loop.posts("staging"), loop.posts("production")) == (1, 2)
    for environment in ENVIRONMENTS:
        assert loop.records(environment) == ids_by_address(loop, environment)


def pasted(command: str, cwd: Path) -> str:
    """Run a command as a person pastes it into a shell, in `cwd`; its output."""
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=clean_env({"PATH": f"{Path(pfsync_executable()).parent}:{os.environ['PATH']}"}),
        timeout=120,
    )
    assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
    return proc.stdout + proc.stderr


def test_a_killed_apply_re_run_takes_its_lock_over_and_its_remedies_work_as_pasted(
    loop: Loop, make_gate: MakeGate
) -> None:
    pr = loop.open_pull_request(
        {
            "triggers/vip.yaml": trigger_yaml("vip", "VIP upgrade"),
            "triggers/cart.yaml": trigger_yaml("cart", "Cart nudge"),
        }
    )
    staging = loop.sandboxes["staging"]
    gate = make_gate(staging, 1)
    run = loop.start_apply(loop.merge(pr))
    # The runner dies while a create is on its way: SIGKILL, nothing cleaned up.
    gate.wait_for(1)
    wait_until(lambda: len(staging.triggers()) == 2, "the other creates answered")
    loop.runner.kill(run, "apply-staging")
    gate.release(1)
    run.wait()
    assert run.result("apply-staging") == "failure"
    assert run.result("apply-production") == "skipped"
    # "Re-run failed jobs": the same job of the same run, attempt 2, takes the lock over without
    # a person; what the dead attempt may have created stays uncertain (never sent again).
    loop.runner.rerun(run, "apply-staging")
    again = run.job("apply-staging")
    assert (again.attempt, again.status) == (2, "failure")
    assert "Took over the state lock of attempt 1 of this job" in again.log, again.log
    assert sorted(loop.lockfile("staging")["pending"]) == [
        "biz_1-staging/cart",
        "biz_1-staging/vip",
        "biz_1-staging/welcome-series",
    ]
    assert loop.posts("staging") == 3
    # Its remedies carry -e staging: a person looks each one up and pastes the import.
    imports = re.findall(r"`(pfsync -e staging state import \S+ ID)`", again.log)
    found = ids_by_address(loop, "staging")
    assert sorted(command.split()[5] for command in imports) == sorted(found)
    laptop = loop.root / "laptop"
    git(loop.root, "clone", "--quiet", str(loop.origin), str(laptop))
    for command in sorted(set(imports)):
        pasted(command.replace(" ID", " " + found[command.split()[5]]), laptop)
    assert loop.lockfile("staging")["pending"] == {}
    # The job run again finds nothing left for staging; production gets each trigger once.
    loop.runner.rerun(run, "apply-staging", approver=lambda approval: True)
    assert run.result("apply-production") == "success", run.job("apply-production").log
    assert_promoted(loop, posts=3)
