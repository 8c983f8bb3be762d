"""The test workflow runner's own rules: expressions, step files, concurrency groups and the
order jobs run in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fake_github import FakeGitHub
from workflow_expressions import ExpressionError, condition, render
from workflow_runner import WorkflowRunner, _Groups, _key_values, _matrix_legs, git

CONTEXTS: dict[str, Any] = {
    "github": {"event": {"pull_request": {"number": 7}}, "event_name": "pull_request"},
    "steps": {"plan": {"outputs": {"code": "3"}}},
    "matrix": {"environment": "staging"},
    "secrets": {},
    "job": {"status": "success"},
}


def test_expressions_the_recipes_use() -> None:
    assert render("pfsync-plan-${{ matrix.environment }}", CONTEXTS) == "pfsync-plan-staging"
    assert render("${{ github.event.pull_request.number }}", CONTEXTS) == 7
    assert render("x${{ secrets.PFSYNC_PASSWORD }}y", CONTEXTS) == "xy"
    assert condition("steps.plan.outputs.code != '0' && steps.plan.outputs.code != '2'", CONTEXTS)
    assert not condition("${{ github.event_name == 'push' }}", CONTEXTS)
    assert condition("github.event_name == 'merge_group' || (1 == 1 && !false)", CONTEXTS)
    failed = {**CONTEXTS, "job": {"status": "failure"}}
    assert not condition(None, failed)
    assert not condition("github.event_name == 'pull_request'", failed)
    assert condition("always() && github.event_name == 'pull_request'", failed)
    with pytest.raises(ExpressionError):
        render("${{ format('{0}', 1) }}", CONTEXTS)


def test_step_files_and_matrices() -> None:
    assert _key_values("code=3\nbody<<EOF\na=b\nc\nEOF\nx=\n") == {
        "code": "3",
        "body": "a=b\nc",
        "x": "",
    }
    assert _matrix_legs({"environment": ["staging", "production"]}) == [
        {"environment": "staging"},
        {"environment": "production"},
    ]
    assert _matrix_legs(None) == [{}]


def test_a_newer_pending_job_cancels_the_older_one_of_its_group() -> None:
    groups = _Groups()
    running, older, newer = object(), object(), object()
    groups.queue("apply", running)
    assert groups.acquire("apply", running)
    groups.queue("apply", older)
    groups.queue("apply", newer)
    assert groups.is_cancelled(older) and not groups.is_cancelled(newer)
    assert not groups.acquire("apply", older)
    groups.release("apply")
    assert groups.acquire("apply", newer)


# `first` ends only once both legs of `beside` have started (so the jobs that can start together
# do), and `after` finds what both wrote (so it waits for the jobs it needs).
JOBS = """\
on: push
jobs:
  first:
    runs-on: ubuntu-latest
    steps:
      - run: |
          for _ in $(seq 1000); do
            if [ -e {marks}/beside-staging ] && [ -e {marks}/beside-production ]; then
              touch {marks}/first; exit 0
            fi
            sleep 0.01
          done
          exit 1
  beside:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        environment: [staging, production]
    steps:
      - run: touch {marks}/beside-${{{{ matrix.environment }}}}
  after:
    needs: [first, beside]
    runs-on: ubuntu-latest
    steps:
      - run: ls {marks}
"""


def test_jobs_run_together_unless_one_needs_another(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    origin, desk = tmp_path / "origin.git", tmp_path / "desk"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(origin))
    (desk / ".github" / "workflows").mkdir(parents=True)
    (desk / ".github" / "workflows" / "jobs.yml").write_text(JOBS.format(marks=marks))
    git(desk, "init", "--quiet", "-b", "main")
    git(desk, "add", "-A")
    git(desk, "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "--quiet", "-m", "j")
    git(desk, "push", "--quiet", str(origin), "main")
    runner = WorkflowRunner(origin, tmp_path / "ci", api=FakeGitHub("acme/triggers"))
    tip = git(origin, "rev-parse", "main").strip()
    run = runner.run("jobs.yml", "push", {"after": tip}, sha=tip, ref_name="main")
    assert {job.job_id: job.status for jobs in run.jobs.values() for job in jobs} == {
        "first": "success",
        "beside": "success",
        "after": "success",
    }, {job.job_id: job.log for jobs in run.jobs.values() for job in jobs}
    assert run.job("after").log.splitlines()[1:] == [
        "beside-production",
        "beside-staging",
        "first",
    ]
    # The run's jobs (and so its summary) keep the workflow's order, however the threads ran.
    assert list(run.jobs) == ["first", "beside", "after"]
    assert [job.leg for job in run.jobs["beside"]] == ["staging", "production"]
