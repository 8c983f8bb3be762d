"""The pull-request loop of a repository `pfsync init --env staging --env production --ci github`
wrote, run by the test workflow runner (tests/workflow_runner.py) against two sandboxes.

loop = Loop.create(tmp_path, staging_sandbox, production_sandbox)
pr = loop.open_pull_request({"triggers/vip.yaml": text})   a branch with a commit, its
                                                             refs/pull/N/head and /merge
plan = loop.plan(pr)                 the plan workflow on the pull request's merge commit
loop.comment(plan)                   the comment workflow after it (workflow_run)
loop.merge(pr) -> tip                a merge commit of the pull request on origin's main
run = loop.apply(tip, approver=…)    the apply workflow of that push
loop.lockfile("staging")             the environment's lockfile on origin's main
loop.posts("staging")                create requests its sandbox received

Each environment's `api_url` in pfsync.yaml points at its sandbox (a team gives each
environment its own API URL there; credentials are each GitHub environment's secrets
PFSYNC_USERNAME and PFSYNC_PASSWORD). Production's environment has required reviewers.
"""

from __future__ import annotations

import functools
import itertools
import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git_helpers
from conftest import clean_env, pfsync_executable
from fake_github import FakeGitHub
from pfsync.sandbox import Sandbox
from workflow_runner import Approval, Run, WorkflowRunner

REPOSITORY = "acme/triggers"
FORK = "someone/triggers"
ENVIRONMENTS = ("staging", "production")


def git(cwd: Path, *args: str) -> str:
    """git_helpers.git, its output stripped."""
    return git_helpers.git(cwd, *args).strip()


def trigger_yaml(key: str, name: str, event: str = "pde_signup") -> str:
    """A manifest with the welcome template value of its environment."""
    return (
        "apiVersion: pfsync/v1\nkind: Trigger\n"
        f"key: {key}\nspec:\n  name: {name}\n  project_defined_event: {event}\n"
        "  steps:\n    - type: email\n      email_template_id: ${values.welcome_template}\n"
    )


@functools.cache
def initialised_project() -> dict[str, bytes]:
    """The files `pfsync init --env staging --env production --ci github` writes, by path; made
    once per test process (each loop writes them into its own desk)."""
    with tempfile.TemporaryDirectory() as temporary:
        desk = Path(temporary) / "desk"
        subprocess.run(
            [pfsync_executable(), "init", str(desk), "--business", "biz_1", "--ci", "github"]
            + [word for name in ENVIRONMENTS for word in ("--env", name)],
            check=True,
            capture_output=True,
            env=clean_env(),
            timeout=60,
        )
        return {
            str(path.relative_to(desk)): path.read_bytes()
            for path in sorted(desk.rglob("*"))
            if path.is_file()
        }


@dataclass
class PullRequest:
    number: int
    branch: str
    head: str
    base: str
    merge: str
    fork: bool

    def payload(self) -> dict[str, Any]:
        repo = FORK if self.fork else REPOSITORY
        return {
            "number": self.number,
            "pull_request": {
                "number": self.number,
                "head": {"sha": self.head, "ref": self.branch, "repo": {"full_name": repo}},
                "base": {"sha": self.base, "ref": "main", "repo": {"full_name": REPOSITORY}},
            },
        }


@dataclass
class Loop:
    root: Path
    origin: Path
    desk: Path  # a developer's clone, for pull requests and merges
    runner: WorkflowRunner
    api: FakeGitHub
    sandboxes: dict[str, Sandbox]
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def create(cls, root: Path, staging: Sandbox, production: Sandbox) -> Loop:
        sandboxes = {"staging": staging, "production": production}
        origin = root / "origin.git"
        git(root, "init", "--quiet", "--bare", "-b", "main", str(origin))
        desk = root / "desk"
        for name, content in initialised_project().items():
            (desk / name).parent.mkdir(parents=True, exist_ok=True)
            (desk / name).write_bytes(content)
        config = desk / "pfsync.yaml"
        text = config.read_text()
        for name, sandbox in sandboxes.items():
            text = text.replace(f"  {name}:\n", f"  {name}:\n    api_url: {sandbox.url}\n", 1)
        config.write_text(text)
        git(desk, "init", "--quiet", "-b", "main")
        git(desk, "add", "-A")
        git(desk, "commit", "--quiet", "-m", "Start pfsync")
        git(desk, "remote", "add", "origin", str(origin))
        git(desk, "push", "--quiet", "-u", "origin", "main")
        api = FakeGitHub(REPOSITORY)
        runner = WorkflowRunner(
            origin,
            root / "ci",
            api=api,
            environment_secrets={
                name: {"PFSYNC_USERNAME": box.username, "PFSYNC_PASSWORD": box.password}
                for name, box in sandboxes.items()
            },
            reviewers={"production"},
        )
        return cls(root, origin, desk, runner, api, sandboxes)

    # Pull requests

    def open_pull_request(
        self, files: dict[str, str | None], fork: bool = False, base: str = "main"
    ) -> PullRequest:
        """A branch off origin's `base` with `files` written (None: removed), as GitHub sees it."""
        number = next(self.numbers)
        branch = f"change-{number}"
        git(self.desk, "fetch", "--quiet", "origin")
        git(self.desk, "checkout", "--quiet", "-B", branch, f"origin/{base}")
        for name, text in files.items():
            path = self.desk / name
            if text is None:
                git(self.desk, "rm", "--quiet", name)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            git(self.desk, "add", name)
        git(self.desk, "commit", "--quiet", "-m", f"change #{number}")
        head = git(self.desk, "rev-parse", "HEAD")
        refs = [f"{branch}:refs/pull/{number}/head"] + ([] if fork else [f"{branch}:{branch}"])
        git(self.desk, "push", "--quiet", "origin", *refs)
        pr = PullRequest(number, branch, head, "", "", fork)
        self.refresh(pr, fetched=True)
        return pr

    def refresh(self, pr: PullRequest, fetched: bool = False) -> None:
        """The pull request's merge commit with origin's main now (GitHub's refs/pull/N/merge);
        `fetched`: the desk fetched origin a moment ago (no second fetch)."""
        pr.base, pr.merge = self._merged(pr.head, f"Merge {pr.head} into main", fetched)
        git(self.desk, "push", "--quiet", "--force", "origin", f"HEAD:refs/pull/{pr.number}/merge")
        self.api.pulls[pr.number] = pr.payload()["pull_request"]

    def update_branch(self, pr: PullRequest) -> None:
        """Merge origin's main into the pull request's branch ("Update branch"): a new head."""
        git(self.desk, "fetch", "--quiet", "origin")
        git(self.desk, "checkout", "--quiet", "--detach", pr.head)
        git(self.desk, "merge", "--quiet", "--no-ff", "-m", "Merge main", "origin/main")
        pr.head = git(self.desk, "rev-parse", "HEAD")
        refs = [f"HEAD:refs/pull/{pr.number}/head"] + ([] if pr.fork else [f"HEAD:{pr.branch}"])
        git(self.desk, "push", "--quiet", "--force", "origin", *refs)
        self.refresh(pr, fetched=True)

    def merge_group(self, pr: PullRequest) -> Run:
        """The merge queue's plan of the pull request merged onto origin's main now."""
        base, head = self._merged(pr.head, f"Merge #{pr.number}")
        branch = f"gh-readonly-queue/main/pr-{pr.number}-{base}"
        git(self.desk, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        payload = {
            "merge_group": {
                "head_sha": head,
                "head_ref": f"refs/heads/{branch}",
                "base_sha": base,
                "base_ref": "refs/heads/main",
            }
        }
        return self.runner.run("pfsync-plan.yml", "merge_group", payload, sha=head, ref_name=branch)

    def _merged(self, head: str, message: str, fetched: bool = False) -> tuple[str, str]:
        """Merge `head` onto origin's main now in the desk (detached): (base, merge commit).
        `fetched`: the caller fetched origin just before, so its origin/main is already now's
        (each fetch is a git process that talks to origin, the slowest of the loop's calls)."""
        if not fetched:
            git(self.desk, "fetch", "--quiet", "origin")
        base = git(self.desk, "rev-parse", "origin/main")
        git(self.desk, "checkout", "--quiet", "--detach", base)
        git(self.desk, "merge", "--quiet", "--no-ff", "-m", message, head)
        return base, git(self.desk, "rev-parse", "HEAD")

    def plan(self, pr: PullRequest) -> Run:
        return self.runner.run(
            "pfsync-plan.yml",
            "pull_request",
            pr.payload(),
            sha=pr.merge,
            ref_name=f"{pr.number}/merge",
            secrets_available=not pr.fork,
        )

    def comment(self, plan: Run, pr: PullRequest) -> Run:
        """The comment workflow, triggered by the end of `plan` (from main's workflow file)."""
        failed = any(job.status == "failure" for jobs in plan.jobs.values() for job in jobs)
        payload = {
            "workflow_run": {
                "id": plan.run_id,
                "event": plan.event_name,
                "conclusion": "failure" if failed else "success",
                "head_sha": pr.head,
                "head_branch": pr.branch,
                "head_repository": {"full_name": FORK if pr.fork else REPOSITORY},
                "html_url": f"https://github.invalid/{REPOSITORY}/actions/runs/{plan.run_id}",
            }
        }
        main = git(self.origin, "rev-parse", "main")
        return self.runner.run(
            "pfsync-comment.yml", "workflow_run", payload, sha=main, ref_name="main"
        )

    def merge(self, pr: PullRequest) -> str:
        """Merge the pull request into origin's main (a merge commit); the new tip."""
        _, tip = self._merged(pr.head, f"Merge pull request #{pr.number}")
        git(self.desk, "push", "--quiet", "origin", "HEAD:main")
        return tip

    def start_apply(self, tip: str, approver: Callable[[Approval], bool] | None = None) -> Run:
        payload = {"ref": "refs/heads/main", "after": tip}
        return self.runner.start(
            "pfsync-apply.yml", "push", payload, sha=tip, ref_name="main", approver=approver
        )

    def apply(self, tip: str, approver: Callable[[Approval], bool] | None = None) -> Run:
        return self.start_apply(tip, approver).wait()

    # What happened

    def runner_tip(self) -> str:
        """The commit at origin's main."""
        return git(self.origin, "rev-parse", "main")

    def origin_files(self) -> list[str]:
        """The files on origin's main."""
        return git(self.origin, "ls-tree", "-r", "--name-only", "main").splitlines()

    def lockfile(self, environment: str) -> dict[str, Any]:
        text = git(self.origin, "show", f"main:state/{environment}.lock")
        data: dict[str, Any] = json.loads(text)
        return data

    def records(self, environment: str) -> dict[str, str]:
        """Address → trigger id of the environment's lockfile on origin's main."""
        return {
            address: record["id"]
            for address, record in self.lockfile(environment)["triggers"].items()
        }

    def posts(self, environment: str) -> int:
        return sum(1 for r in self.sandboxes[environment].requests() if r["method"] == "POST")

    def names(self, environment: str) -> list[str]:
        return sorted(t["name"] for t in self.sandboxes[environment].triggers())
