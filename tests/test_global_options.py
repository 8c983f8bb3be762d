"""Global options are accepted before or after the command name (`pfsync plan -v`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apply_helpers import make_repo
from conftest import RunPfsync
from pfsync.cli import hoist_global_options


@pytest.mark.parametrize(
    ("after", "before"),
    [
        (["plan", "-v"], ["-v", "plan"]),
        (["plan", "-vv", "--no-color"], ["-vv", "--no-color", "plan"]),
        (["state", "list", "-q"], ["-q", "state", "list"]),
        (["plan", "-C", "repo", "--format", "json"], ["-C", "repo", "plan", "--format", "json"]),
        (["validate", "--config=x.yaml", "a.yaml"], ["--config=x.yaml", "validate", "a.yaml"]),
        (["-C", "d", "plan", "--quiet"], ["-C", "d", "--quiet", "plan"]),
        (["plan", "--", "-v"], ["plan", "--", "-v"]),
        (["--help"], ["--help"]),
    ],
)
def test_hoist_global_options(after: list[str], before: list[str]) -> None:
    assert hoist_global_options(after) == before


def test_plan_dash_v_is_pfsync_dash_v_plan(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, 2)
    after = run_pfsync("plan", "-v", "--no-color", cwd=repo)
    before = run_pfsync("-v", "--no-color", "plan", cwd=repo)
    assert after.code == 0, after
    assert (after.code, after.out, after.err) == (before.code, before.out, before.err)
    quiet = run_pfsync("validate", "-q", cwd=repo)
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
