"""Which CI run this process belongs to, as the CI's environment variables say.

ci_run_url(environ) -> str | None    the run's web page (GitHub Actions, GitLab CI)
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def ci_run_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """The URL of the CI run this process belongs to, when a known CI says it."""
    github = [environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if all(github):
        return f"{github[0]}/{github[1]}/actions/runs/{github[2]}"
    return environ.get("CI_JOB_URL") or None
