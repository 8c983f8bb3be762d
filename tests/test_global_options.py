"""Global options are accepted before or after the command name (`pfsync plan -v`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from project_helpers import NOT_A_REPOSITORY

from apply_helpers import make_repo
from conftest import RunPfsync
from pfsync.cli import hoist_global_options

PLAN_OF_TWO = (
    "Business: biz_e2e\n"
    "API: https://api.pocketflows.com\n"
    "Lockfile: pfsync.lock does not exist yet: every declared trigger is a create.\n"
    + NOT_A_REPOSITORY
    + "\n"
    + "".join(
        f"+ biz_e2e/{key}  create  triggers/{key}.yaml:3\n"
        f'      $.spec.name: "Trigger {key}"\n'
        '      $.spec.project_defined_event: "pde_signup"\n'
        '      $.spec.steps[0].type: "email"\n'
        f'      $.spec.steps[0].email_template_id: "et_{key}"\n'
        "\n"
        for key in ("t000", "t001")
    )
    + "Plan: 2 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
    "0 unchanged.\n"
)


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
        (["plan", "-e", "staging", "--no-cache"], ["-e", "staging", "--no-cache", "plan"]),
        (["plan", "-estaging"], ["-estaging", "plan"]),
        (["state", "list", "--env=prod"], ["--env=prod", "state", "list"]),
        # init's --env defines environments: it stays init's.
        (["init", "d", "--env", "a", "-e", "b"], ["init", "d", "--env", "a", "-e", "b"]),
        (["init", "d", "-ea"], ["init", "d", "-ea"]),
        (["--help"], ["--help"]),
        # Short flags given together, the last of them taking a value.
        (["plan", "-qe", "staging"], ["-qe", "staging", "plan"]),
        (["plan", "-qestaging", "--no-cache"], ["-qestaging", "--no-cache", "plan"]),
        (["validate", "-vvC", "d", "a.yaml"], ["-vvC", "d", "validate", "a.yaml"]),
        (["-qe", "staging", "plan", "-v"], ["-qe", "staging", "-v", "plan"]),
        # …but for init's own -e, which stays init's.
        (["init", "d", "-qe", "a"], ["-q", "init", "d", "-e", "a"]),
        (["init", "d", "-vqea"], ["-vq", "init", "d", "-ea"]),
    ],
)
def test_hoist_global_options(after: list[str], before: list[str]) -> None:
    assert hoist_global_options(after) == before


def test_plan_dash_v_is_pfsync_dash_v_plan(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, 2)
    after = run_pfsync("plan", "-v", "--no-color", cwd=repo)
    before = run_pfsync("-v", "--no-color", "plan", cwd=repo)
    # -v adds the state read (no lockfile yet) and the unchanged addresses (none) on stderr.
    verbose = "State: pfsync.lock (file store), not written yet\nUnchanged: none\n"
    assert (after.code, after.out, after.err) == (0, PLAN_OF_TWO, verbose)
    assert (before.code, before.out, before.err) == (0, PLAN_OF_TWO, verbose)
    quiet = run_pfsync("validate", "-q", cwd=repo)
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")
