"""Which CI run and job this process belongs to, as the CI's environment variables say.

    ci_run_url(environ) -> str | None    the run's web page (GitHub Actions, GitLab CI)
    ci_job(environ) -> CiJob | None      the run, the job and its attempt
    CiJob.takes_over(held) -> bool       whether this job is a later attempt of `held`'s

A lock names its CI job so that a re-run of a killed job can take its own dead lock over without
a person: GitHub re-runs a job (GITHUB_RUN_ATTEMPT + 1) and GitLab retries one (a new, higher
CI_JOB_ID in the same pipeline) only once the earlier attempt has ended, so that attempt holds
the lock no longer. Any other holder may still be running.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Ci = Literal["github", "gitlab"]
_NUMBER = re.compile(r"[0-9]{1,18}")


def ci_run_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """The URL of the CI run this process belongs to, when a known CI says it."""
    github = [environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if all(github):
        return f"{github[0]}/{github[1]}/actions/runs/{github[2]}"
    return environ.get("CI_JOB_URL") or None


@dataclass(frozen=True)
class CiJob:
    """One attempt of one CI job: GitHub's run, job and run attempt; GitLab's pipeline, job
    name and job id (a retry gets a higher id)."""

    ci: Ci
    run: str
    job: str
    attempt: int

    def takes_over(self, held: CiJob) -> bool:
        """Whether this is a later attempt of the very job that `held` was."""
        return (self.ci, self.run, self.job) == (held.ci, held.run, held.job) and (
            self.attempt > held.attempt
        )

    def attempt_words(self) -> str:
        """`attempt 1` (GitHub), `an earlier try (job 4567)` (GitLab knows a try by its job id)."""
        if self.ci == "github":
            return f"attempt {self.attempt}"
        return f"an earlier try (job {self.attempt})"

    def describe(self) -> str:
        """`attempt 1 of job apply in GitHub Actions run 42`."""
        if self.ci == "github":
            return f"attempt {self.attempt} of job {self.job} in GitHub Actions run {self.run}"
        return f"job {self.attempt} ({self.job}) of GitLab pipeline {self.run}"

    def to_json(self) -> dict[str, Any]:
        """The lockfile form."""
        return {"ci": self.ci, "run": self.run, "job": self.job, "attempt": self.attempt}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CiJob:
        """A lock record's `ci_job` (already schema-checked)."""
        return cls(data["ci"], data["run"], data["job"], data["attempt"])


def ci_job(environ: Mapping[str, str] = os.environ) -> CiJob | None:
    """This process's CI job, when GitHub Actions or GitLab CI says all of it."""
    github = [environ.get(k, "") for k in ("GITHUB_RUN_ID", "GITHUB_JOB", "GITHUB_RUN_ATTEMPT")]
    if all(github) and _NUMBER.fullmatch(github[2]):
        return CiJob("github", github[0], github[1], int(github[2]))
    gitlab = [environ.get(k, "") for k in ("CI_PIPELINE_ID", "CI_JOB_NAME", "CI_JOB_ID")]
    if all(gitlab) and _NUMBER.fullmatch(gitlab[2]):
        return CiJob("gitlab", gitlab[0], gitlab[1], int(gitlab[2]))
    return None
