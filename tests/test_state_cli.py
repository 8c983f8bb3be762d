"""`pfsync state list/show/rm/mv/import` end to end (whole stdout and stderr)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from project_helpers import body, manifest_yaml, read_json, write_project

from conftest import RunPfsync
from pfsync.models import DesiredTrigger
from pfsync.state.journal import Journal
from pfsync.state.journal_records import Created, Pending, Uncertain
from pfsync.state.lockfile import read_lockfile
from pfsync.support.canonical import body_digest

KEY = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def project(tmp_path: Path, run_pfsync: RunPfsync) -> Path:
    """Three declared triggers; alpha and beta imported (serial 2)."""
    root = write_project(
        tmp_path,
        {
            "alpha.yaml": manifest_yaml("alpha", "Alpha"),
            "beta.yaml": manifest_yaml("beta", "Beta"),
            "gamma.yaml": manifest_yaml("gamma", "Gamma"),
        },
    )
    for key in ("alpha", "beta"):
        assert run_pfsync("state", "import", f"biz_1/{key}", f"trg_{key}", cwd=root).code == 0
    return root


def lineage(root: Path) -> str:
    return str(read_json(root / "pfsync.lock")["lineage"])


def uncertain_gamma(root: Path, outcome: str = "uncertain") -> None:
    """Leave a journal as a crashed apply would: gamma's create started, outcome unknown."""
    state = read_lockfile(root / "pfsync.lock")
    assert state is not None
    with Journal.open(root / "pfsync.lock.journal", state) as journal:
        journal.append(
            Pending(
                DesiredTrigger.at_address(
                    "biz_1/gamma",
                    body("Gamma"),
                    body_digest(body("Gamma")),
                    0,
                    "triggers/gamma.yaml",
                ),
                KEY,
                "2026-02-01T00:00:00Z",
            )
        )
        if outcome == "uncertain":
            journal.append(Uncertain("biz_1/gamma", KEY, "HTTP 504", "2026-02-01T00:00:01Z"))
        elif outcome == "created":
            journal.append(
                Created("biz_1/gamma", KEY, "trg_gamma", "2026-02-01T00:00:01Z", "draft")
            )


def test_list_text(project: Path, run_pfsync: RunPfsync) -> None:
    run = run_pfsync("state", "list", cwd=project)
    assert (run.code, run.err) == (0, "")
    assert run.out == (
        "ADDRESS      ID         ORIGIN    REVISION  FILE                 NOTE\n"
        "biz_1/alpha  trg_alpha  imported  0         triggers/alpha.yaml\n"
        "biz_1/beta   trg_beta   imported  0         triggers/beta.yaml\n"
    )


def test_list_without_lockfile(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    root = write_project(tmp_path, {})
    run = run_pfsync("state", "list", cwd=root)
    assert (run.code, run.out, run.err) == (
        0,
        "",
        "No lockfile at pfsync.lock yet: nothing is recorded.\n",
    )


def test_list_json_reads_an_unfolded_journal_without_writing(
    project: Path, run_pfsync: RunPfsync
) -> None:
    uncertain_gamma(project)
    before = (project / "pfsync.lock").read_bytes()
    run = run_pfsync("state", "list", "--format", "json", cwd=project)
    assert (run.code, run.err) == (0, "")
    document = json.loads(run.out)
    assert document["lockfile"] == {
        "path": "pfsync.lock",
        "exists": True,
        "lineage": lineage(project),
        "serial": 2,
        "api_url": "https://api.pocketflows.com",
        "journal_unfolded": True,
    }
    rows = {row["address"]: row for row in document["addresses"]}
    assert sorted(rows) == ["biz_1/alpha", "biz_1/beta", "biz_1/gamma"]
    assert rows["biz_1/gamma"]["id"] is None
    assert rows["biz_1/gamma"]["uncertain"]["reason"] == "HTTP 504"
    assert rows["biz_1/alpha"]["uncertain"] is None
    assert (project / "pfsync.lock").read_bytes() == before
    assert (project / "pfsync.lock.journal").exists()


def test_show_text_and_json(project: Path, run_pfsync: RunPfsync) -> None:
    run = run_pfsync("state", "show", "biz_1/alpha", cwd=project)
    assert (run.code, run.err) == (0, "")
    assert run.out == (
        "address: biz_1/alpha\n"
        "id: trg_alpha\n"
        "origin: imported\n"
        "created_at: -\n"
        "status: -\n"
        "revision: 0\n"
        "file: triggers/alpha.yaml\n"
        f"digest: {body_digest(body('Alpha'))}\n"
        "body:\n"
        "  {\n"
        '    "name": "Alpha",\n'
        '    "project_defined_event": "pde_signup",\n'
        '    "steps": [\n'
        "      {\n"
        '        "email_template_id": "et_1",\n'
        '        "type": "email"\n'
        "      }\n"
        "    ]\n"
        "  }\n"
        "history: (none)\n"
    )
    run = run_pfsync("state", "show", "biz_1/alpha", "--format", "json", cwd=project)
    document = json.loads(run.out)
    assert document["trigger"]["id"] == "trg_alpha" and document["uncertain"] is None


def test_show_unknown_address(project: Path, run_pfsync: RunPfsync) -> None:
    run = run_pfsync("state", "show", "biz_1/gamma", cwd=project)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: biz_1/gamma is not in the lockfile (`pfsync state list` shows it)\n",
    )


def test_rm_moves_the_id_to_history(project: Path, run_pfsync: RunPfsync) -> None:
    run = run_pfsync("state", "rm", "biz_1/alpha", "biz_1/beta", cwd=project)
    assert (run.code, run.err) == (0, "")
    assert run.out == (
        "Removed biz_1/alpha from the lockfile; trigger trg_alpha moved to its history. Nothing "
        "was deleted in Pocketflows: deactivate the trigger there if it should stop running.\n"
        "Removed biz_1/beta from the lockfile; trigger trg_beta moved to its history. Nothing "
        "was deleted in Pocketflows: deactivate the trigger there if it should stop running.\n"
    )
    data = read_json(project / "pfsync.lock")
    assert data["triggers"] == {} and data["serial"] == 3
    assert [(h["id"], h["reason"]) for h in data["forgotten"]["biz_1/alpha"]] == [
        ("trg_alpha", "removed")
    ]
    # The address's history comes back with its next record.
    assert run_pfsync("state", "import", "biz_1/alpha", "trg_new", cwd=project).code == 0
    history = read_json(project / "pfsync.lock")["triggers"]["biz_1/alpha"]["history"]
    assert [h["id"] for h in history] == ["trg_alpha"]


def test_rm_refuses_unknown_addresses_and_changes_nothing(
    project: Path, run_pfsync: RunPfsync
) -> None:
    before = (project / "pfsync.lock").read_bytes()
    run = run_pfsync("state", "rm", "biz_1/alpha", "biz_1/nope", cwd=project)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: not in the lockfile: biz_1/nope; nothing was changed (`pfsync state list` "
        "shows what is recorded)\n",
    )
    run = run_pfsync("state", "rm", "not-an-address", cwd=project)
    assert run.err == (
        "Error: 'not-an-address' is not an address; an address is BUSINESS/KEY, e.g. "
        "biz_123/welcome\n"
    )
    assert (project / "pfsync.lock").read_bytes() == before


def test_rm_settles_an_uncertain_create_after_folding_the_journal(
    project: Path, run_pfsync: RunPfsync
) -> None:
    uncertain_gamma(project)
    run = run_pfsync("state", "rm", "biz_1/gamma", cwd=project)
    assert (run.code, run.err) == (0, ""), run
    assert run.out == (
        "Settled biz_1/gamma: the uncertain create is forgotten. Nothing was changed in "
        "Pocketflows.\n"
    )
    assert not (project / "pfsync.lock.journal").exists()
    data = read_json(project / "pfsync.lock")
    assert data["pending"] == {} and data["serial"] == 4  # 3: the fold, 4: the rm
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=project)
    assert plan.code == 2 and "+ biz_1/gamma  create" in plan.out


def test_state_command_folds_a_created_outcome(project: Path, run_pfsync: RunPfsync) -> None:
    uncertain_gamma(project, outcome="created")
    run = run_pfsync("state", "mv", "biz_1/gamma", "biz_1/delta", cwd=project)
    assert (run.code, run.out, run.err) == (
        0,
        "Moved biz_1/gamma to biz_1/delta. Nothing was changed in Pocketflows.\n",
        "",
    )
    data = read_json(project / "pfsync.lock")
    assert data["triggers"]["biz_1/delta"]["id"] == "trg_gamma"
    assert data["triggers"]["biz_1/delta"]["origin"] == "created"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "biz_1/alpha",
            "biz_2/alpha",
            "Error: cannot move biz_1/alpha to biz_2/alpha: a trigger belongs to one business "
            "for good (a different business needs its own trigger)\n",
        ),
        (
            "biz_1/alpha",
            "biz_1/beta",
            "Error: biz_1/beta is already in the lockfile; run `pfsync state rm biz_1/beta` "
            "first if it is really to be forgotten\n",
        ),
        (
            "biz_1/gamma",
            "biz_1/delta",
            "Error: biz_1/gamma is not in the lockfile; nothing to move\n",
        ),
    ],
)
def test_mv_refusals(
    project: Path, run_pfsync: RunPfsync, old: str, new: str, message: str
) -> None:
    before = (project / "pfsync.lock").read_bytes()
    run = run_pfsync("state", "mv", old, new, cwd=project)
    assert (run.code, run.out, run.err) == (1, "", message)
    assert (project / "pfsync.lock").read_bytes() == before


def test_mv_resolves_a_renamed_key(project: Path, run_pfsync: RunPfsync) -> None:
    (project / "triggers" / "alpha.yaml").write_text(
        manifest_yaml("alpha-renamed", "Alpha"), encoding="utf-8"
    )
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=project)
    assert plan.code == 3
    assert "run `pfsync state mv biz_1/alpha biz_1/alpha-renamed` instead" in plan.out
    run = run_pfsync("state", "mv", "biz_1/alpha", "biz_1/alpha-renamed", cwd=project)
    assert run.code == 0
    plan = run_pfsync("plan", "--detailed-exitcode", "--target", "biz_1/alpha-renamed", cwd=project)
    assert plan.code == 0, plan


def test_import_refuses_an_existing_record_without_force(
    project: Path, run_pfsync: RunPfsync
) -> None:
    run = run_pfsync("state", "import", "biz_1/alpha", "trg_other", cwd=project)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: biz_1/alpha is already recorded (trigger trg_alpha); pass --force to overwrite "
        "the record (its id is kept in the history)\n",
    )


def test_import_force_acknowledges_a_hand_edit(project: Path, run_pfsync: RunPfsync) -> None:
    (project / "triggers" / "alpha.yaml").write_text(
        manifest_yaml("alpha", "Alpha edited"), encoding="utf-8"
    )
    assert run_pfsync("plan", "--detailed-exitcode", cwd=project).code == 3
    run = run_pfsync("state", "import", "biz_1/alpha", "trg_alpha", "--force", cwd=project)
    assert (run.code, run.err) == (0, "")
    assert run.out == (
        "Imported trigger trg_alpha as biz_1/alpha (triggers/alpha.yaml:3).\n"
        "The earlier trigger trg_alpha moved to its history.\n"
    )
    record = read_json(project / "pfsync.lock")["triggers"]["biz_1/alpha"]
    assert record["body"]["name"] == "Alpha edited"
    assert [(h["id"], h["reason"]) for h in record["history"]] == [("trg_alpha", "overwritten")]
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=project)
    assert plan.code == 2  # only gamma's create is left


def test_import_settles_an_uncertain_create(project: Path, run_pfsync: RunPfsync) -> None:
    uncertain_gamma(project)
    run = run_pfsync("state", "import", "biz_1/gamma", "trg_found", cwd=project)
    assert (run.code, run.err) == (0, "")
    assert run.out == (
        "Imported trigger trg_found as biz_1/gamma (triggers/gamma.yaml:3).\n"
        "The uncertain create of this address is settled.\n"
    )
    data = read_json(project / "pfsync.lock")
    assert data["pending"] == {} and data["triggers"]["biz_1/gamma"]["id"] == "trg_found"
    assert run_pfsync("plan", "--detailed-exitcode", cwd=project).code == 0


def test_import_refuses_an_undeclared_address(project: Path, run_pfsync: RunPfsync) -> None:
    run = run_pfsync("state", "import", "biz_1/nope", "trg_1", cwd=project)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: no manifest declares biz_1/nope; `state import` records a declared trigger "
        "with its manifest's body, so add the manifest first\n",
    )


def test_import_refuses_a_bad_trigger_id(project: Path, run_pfsync: RunPfsync) -> None:
    run = run_pfsync("state", "import", "biz_1/gamma", "trg 1", cwd=project)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: 'trg 1' is not a trigger id (no spaces, 1-200 characters)\n",
    )


def test_state_changes_refuse_another_api(project: Path, run_pfsync: RunPfsync) -> None:
    run = run_pfsync(
        "state", "rm", "biz_1/alpha", cwd=project, env={"PFSYNC_API_URL": "https://other.example"}
    )
    assert run.code == 1 and run.err.startswith(
        "Error: the lockfile pfsync.lock describes the API https://api.pocketflows.com, but the "
        "configured API URL is https://other.example"
    )


def test_rm_and_mv_without_lockfile(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    root = write_project(tmp_path, {})
    run = run_pfsync("state", "rm", "biz_1/a", cwd=root)
    assert run.code == 1
    assert run.err == (
        f"Error: there is no lockfile at {root / 'pfsync.lock'}, so there is nothing to remove. "
        "If it was lost, restore it from git\n"
    )
    assert not (root / "pfsync.lock").exists()
