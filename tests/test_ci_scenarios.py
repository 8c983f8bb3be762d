"""The pull-request loop of the generated GitHub recipes, executed: every `run:` step word for
word in a fresh clone of a bare origin (tests/workflow_runner.py), against two sandboxes standing
for the staging and production Pocketflows accounts (tests/ci_loop.py).

Each scenario asserts the creates each sandbox received, the records each lockfile on origin's
main ends with, and the text a reviewer (the pull-request comment) and an approver (the run
summary before the approval) see.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ci_loop import ENVIRONMENTS, Loop, trigger_yaml
from fixtures_sandbox import MakeSandbox
from workflow_runner import Approval

NODE = shutil.which("node") is not None


@pytest.fixture
def loop(tmp_path: Path, make_sandbox: MakeSandbox) -> Loop:
    staging = make_sandbox(username="staging-user", password="staging-secret")
    production = make_sandbox(username="production-user", password="production-secret")
    return Loop.create(tmp_path, staging, production)


def test_happy_path_promotes_a_reviewed_change_through_both_environments(loop: Loop) -> None:
    pr = loop.open_pull_request({"triggers/vip.yaml": trigger_yaml("vip", "VIP upgrade")})
    plan = loop.plan(pr)
    assert [job.status for job in plan.jobs["plan"]] == ["success", "success"]
    for environment in ENVIRONMENTS:
        summary = plan.job("plan", environment).summary
        assert f"#### + `biz_1-{environment}/vip` create" in summary
    comment = loop.comment(plan, pr)
    assert comment.result("comment") == "success", comment.job("comment").log
    if NODE:
        body = loop.api.comment(pr.number)
        assert body.startswith("<!-- pfsync-plan -->\n### staging\n")
        assert "### production\n" in body
        assert "`biz_1-production/vip` create" in body
    else:
        print("node is not installed: the comment step was stood in; the plans were checked")

    seen: list[Approval] = []

    def approve(approval: Approval) -> bool:
        seen.append(approval)
        return True

    run = loop.apply(loop.merge(pr), approver=approve)
    for job_id in ("apply-staging", "apply-production"):
        assert run.result(job_id) == "success", run.job(job_id).log
    assert [(a.job_id, a.environment) for a in seen] == [("apply-production", "production")]
    assert (loop.posts("staging"), loop.posts("production")) == (2, 2)
    for environment in ENVIRONMENTS:
        ids = {t["name"]: t["id"] for t in loop.sandboxes[environment].triggers()}
        assert loop.records(environment) == {
            f"biz_1-{environment}/vip": ids["VIP upgrade"],
            f"biz_1-{environment}/welcome-series": ids["Welcome series"],
        }
