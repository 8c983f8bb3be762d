"""A wrong directory is an error, never an empty success (an empty plan in CI looks fine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import RunPfsync

NOT_FOUND = (
    "Error: no pfsync.yaml found in <TMP> or any directory above it. Run pfsync in the "
    "repository that holds it, point to it with -C DIR or --config PATH, or create one with "
    "`pfsync init`\n"
)


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["plan", "--detailed-exitcode"],
        ["apply", "--sandbox", "--auto-approve"],
        ["state", "list"],
    ],
)
def test_a_missing_directory_given_with_dash_c(
    run_pfsync: RunPfsync, tmp_path: Path, command: list[str]
) -> None:
    run = run_pfsync("-C", "/no/such/dir", *command, cwd=tmp_path)
    assert (run.code, run.out, run.err) == (1, "", "Error: -C /no/such/dir: no such directory\n")


@pytest.mark.parametrize(
    "command",
    [["validate"], ["plan", "--detailed-exitcode"], ["state", "list"], ["plan", "--sandbox"]],
)
def test_a_directory_without_pfsync_yaml(
    run_pfsync: RunPfsync, tmp_path: Path, command: list[str]
) -> None:
    run = run_pfsync(*command, cwd=tmp_path)
    assert run.normalised(TMP=tmp_path) == (1, "", NOT_FOUND)


def test_apply_of_a_missing_plan_file_says_so_before_credentials(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    (tmp_path / "pfsync.yaml").write_text("business: biz_1\n")
    run = run_pfsync("apply", "/no/such/plan.json", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Usage: pfsync apply [OPTIONS] [PLANFILE]\n"
        "Try 'pfsync apply --help' for help.\n\n"
        "Error: Invalid value for '[PLANFILE]': File '/no/such/plan.json' does not exist.\n",
    )
