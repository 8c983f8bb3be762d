"""`plan --base-plan`: a pull request fails only for what it introduces itself."""

from __future__ import annotations

from pathlib import Path

from project_helpers import NOT_A_REPOSITORY

from apply_helpers import BUSINESS, make_repo, manifest_text
from conftest import RunPfsync


def _repo_with_a_delete_on_main(run_pfsync: RunPfsync, root: Path) -> Path:
    repo = make_repo(root, 3)
    for n in range(3):
        run = run_pfsync("state", "import", f"{BUSINESS}/t{n:03d}", f"trg_{n}", cwd=repo)
        assert run.code == 0, run
    (repo / "triggers" / "t002.yaml").unlink()  # main already has an unresolved delete
    base = run_pfsync("plan", "--format", "json", cwd=repo)
    assert base.code == 0, base
    (root / "base.json").write_text(base.out)
    return repo


def test_existing_delete_does_not_fail_an_unrelated_change(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    repo = _repo_with_a_delete_on_main(run_pfsync, tmp_path)
    (repo / "triggers" / "t009.yaml").write_text(manifest_text("t009"))
    run = run_pfsync(
        "plan", "--detailed-exitcode", "--base-plan", str(tmp_path / "base.json"), cwd=repo
    )
    assert run.code == 2, run
    assert run.err == (
        "What needs a person was already in the base plan; not counted against this change.\n"
    )
    plain = run_pfsync("plan", "--detailed-exitcode", cwd=repo)
    assert plain.code == 3


def test_an_introduced_update_fails(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    repo = _repo_with_a_delete_on_main(run_pfsync, tmp_path)
    (repo / "triggers" / "t000.yaml").write_text(manifest_text("t000", "Edited"))
    run = run_pfsync(
        "plan", "--detailed-exitcode", "--base-plan", str(tmp_path / "base.json"), cwd=repo
    )
    assert (run.code, run.err) == (3, "")


def test_missing_base_plan_counts_everything(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    repo = _repo_with_a_delete_on_main(run_pfsync, tmp_path)
    run = run_pfsync(
        "plan", "--detailed-exitcode", "--base-plan", str(tmp_path / "none.json"), cwd=repo
    )
    # The base branch had no plan: the delete on main counts against this change, as without
    # --base-plan, and nothing is said about a base plan.
    assert (run.code, run.out, run.err) == (
        3,
        "Business: biz_e2e\n"
        "API: https://api.pocketflows.com\n"
        "Lockfile: pfsync.lock (serial 3)\n" + NOT_A_REPOSITORY + "\n"
        "- biz_e2e/t002  delete  triggers/t002.yaml  (trigger trg_2)\n"
        "    remedy: Pocketflows has no delete endpoint, so pfsync cannot remove this trigger. "
        "Deactivate trigger trg_2 in Pocketflows, then paste the Removed below into a manifest "
        "file, so that apply forgets it once reviewed (or run `pfsync state rm biz_e2e/t002`). "
        "If its key was renamed, declare a Moved (from: the old key, to: the new one) instead, "
        "or run `pfsync state mv biz_e2e/t002 NEW_ADDRESS`.\n"
        "    paste:\n"
        "---\n"
        "apiVersion: pfsync/v1\n"
        "kind: Removed\n"
        "key: t002\n"
        "id: trg_2\n"
        "\n"
        "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 1 delete, 0 uncertain. "
        "2 unchanged.\n",
        "",
    )
    plain = run_pfsync("plan", "--detailed-exitcode", cwd=repo)
    assert plain == run
