"""`pfsync state list/show/rm/mv/import` end to end (whole stdout and stderr)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from project_helpers import (
    NOT_A_REPOSITORY,
    body,
    manifest_yaml,
    read_json,
    update_entry,
    write_project,
)

from conftest import RunPfsync
from git_helpers import git
from pfsync.config import load_config
from pfsync.models import DesiredTrigger
from pfsync.state.journal import Journal
from pfsync.state.journal_records import Created, Pending, Uncertain
from pfsync.state.lockfile import read_lockfile
from pfsync.state.stores import lost_lockfile
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


def header(serial: int, target: str = "") -> str:
    """The first lines of `pfsync plan` in the `project`."""
    return (
        "Business: biz_1\n"
        "API: https://api.pocketflows.com\n"
        f"Lockfile: pfsync.lock (serial {serial})\n"
        + NOT_A_REPOSITORY
        + (f"Targets: {target}\n" if target else "")
        + "\n"
    )


def body_lines(name: str) -> str:
    """The plan's lines for the body `manifest_yaml(key, name)` declares."""
    return (
        f'      $.spec.name: "{name}"\n'
        '      $.spec.project_defined_event: "pde_signup"\n'
        '      $.spec.steps[0].type: "email"\n'
        '      $.spec.steps[0].email_template_id: "et_1"\n'
    )


CREATE_GAMMA = "+ biz_1/gamma  create  triggers/gamma.yaml:3\n" + body_lines("Gamma") + "\n"


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


def imported_row(key: str, name: str) -> dict[str, object]:
    """`state list --format json`'s row for a trigger the `project` fixture imported."""
    return {
        "address": f"biz_1/{key}",
        "id": f"trg_{key}",
        "origin": "imported",
        "status": None,
        "created_at": None,
        "revision": 0,
        "file": f"triggers/{key}.yaml",
        "digest": body_digest(body(name)),
        "history": 0,
        "replaced_still_active": [],
        "uncertain": None,
    }


def test_list_text(project: Path, run_pfsync: RunPfsync) -> None:
    run = run_pfsync("state", "list", cwd=project)
    assert (run.code, run.out, run.err) == (
        0,
        "ADDRESS      ID         ORIGIN    REVISION  FILE                 NOTE\n"
        "biz_1/alpha  trg_alpha  imported  0         triggers/alpha.yaml\n"
        "biz_1/beta   trg_beta   imported  0         triggers/beta.yaml\n",
        "",
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
    assert (run.code, json.loads(run.out), run.err) == (
        0,
        {
            "format_version": 1,
            "lockfile": {
                "path": "pfsync.lock",
                "exists": True,
                "lineage": lineage(project),
                "serial": 2,
                "api_url": "https://api.pocketflows.com",
                "journal_unfolded": True,
            },
            "addresses": [
                imported_row("alpha", "Alpha"),
                imported_row("beta", "Beta"),
                {
                    "address": "biz_1/gamma",
                    "id": None,
                    "origin": None,
                    "status": None,
                    "created_at": None,
                    "revision": None,
                    "file": None,
                    "digest": None,
                    "history": 0,
                    "replaced_still_active": [],
                    "uncertain": {
                        "idempotency_key": KEY,
                        "started_at": "2026-02-01T00:00:00Z",
                        "reason": "HTTP 504",
                        "replaces": None,
                        "revision": 0,
                        "file": "triggers/gamma.yaml",
                        "digest": body_digest(body("Gamma")),
                    },
                },
            ],
        },
        "",
    )
    assert (project / "pfsync.lock").read_bytes() == before
    assert (project / "pfsync.lock.journal").exists()


def test_show_text_and_json(project: Path, run_pfsync: RunPfsync) -> None:
    run = run_pfsync("state", "show", "biz_1/alpha", cwd=project)
    assert (run.code, run.out, run.err) == (
        0,
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
        "history: (none)\n",
        "",
    )
    run = run_pfsync("state", "show", "biz_1/alpha", "--format", "json", cwd=project)
    assert (run.code, json.loads(run.out), run.err) == (
        0,
        {
            "format_version": 1,
            "address": "biz_1/alpha",
            "trigger": {
                "id": "trg_alpha",
                "origin": "imported",
                "created_at": None,
                "status": None,
                "revision": 0,
                "body": body("Alpha"),
                "digest": body_digest(body("Alpha")),
                "file": "triggers/alpha.yaml",
                "history": [],
            },
            "history": [],
            "uncertain": None,
        },
        "",
    )


def test_show_unknown_address(project: Path, run_pfsync: RunPfsync) -> None:
    run = run_pfsync("state", "show", "biz_1/gamma", cwd=project)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: biz_1/gamma is not in the lockfile (`pfsync state list` shows it)\n",
    )


def test_rm_moves_the_id_to_history(project: Path, run_pfsync: RunPfsync) -> None:
    run = run_pfsync("state", "rm", "biz_1/alpha", "biz_1/beta", cwd=project)
    assert (run.code, run.out, run.err) == (
        0,
        "Removed biz_1/alpha from the lockfile; trigger trg_alpha moved to its history. Nothing "
        "was deleted in Pocketflows: deactivate the trigger there if it should stop running.\n"
        "Removed biz_1/beta from the lockfile; trigger trg_beta moved to its history. Nothing "
        "was deleted in Pocketflows: deactivate the trigger there if it should stop running.\n",
        "",
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
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: 'not-an-address' is not an address; an address is BUSINESS/KEY, e.g. "
        "biz_123/welcome\n",
    )
    assert (project / "pfsync.lock").read_bytes() == before


def test_rm_settles_an_uncertain_create_after_folding_the_journal(
    project: Path, run_pfsync: RunPfsync
) -> None:
    uncertain_gamma(project)
    run = run_pfsync("state", "rm", "biz_1/gamma", cwd=project)
    assert (run.code, run.out, run.err) == (
        0,
        "Settled biz_1/gamma: the uncertain create is forgotten. Nothing was changed in "
        "Pocketflows.\n",
        "",
    )
    assert not (project / "pfsync.lock.journal").exists()
    data = read_json(project / "pfsync.lock")
    assert data["pending"] == {} and data["serial"] == 4  # 3: the fold, 4: the rm
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=project)
    assert (plan.code, plan.out, plan.err) == (
        2,
        header(4) + CREATE_GAMMA + "Plan: 1 to create, 0 to replace. Needs a person: 0 update, "
        "0 delete, 0 uncertain. 2 unchanged.\n",
        "",
    )


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


MOVED_ALPHA = (
    "    paste:\n---\napiVersion: pfsync/v1\nkind: Moved\nfrom: alpha\nto: alpha-renamed\n"
)


def test_mv_resolves_a_renamed_key(project: Path, run_pfsync: RunPfsync) -> None:
    (project / "triggers" / "alpha.yaml").write_text(
        manifest_yaml("alpha-renamed", "Alpha"), encoding="utf-8"
    )
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=project)
    assert (plan.code, plan.out, plan.err) == (
        3,
        header(2) + "- biz_1/alpha  delete  triggers/alpha.yaml  (trigger trg_alpha)\n"
        "    remedy: This looks like its key renamed to biz_1/alpha-renamed: paste the Moved "
        "below into a manifest file, so the plan shows the move and apply carries the record "
        "over without sending anything (or run `pfsync state mv biz_1/alpha "
        "biz_1/alpha-renamed`). If it was not renamed: Pocketflows has no delete endpoint, so "
        "pfsync cannot remove this trigger; deactivate trigger trg_alpha in Pocketflows, then "
        "run `pfsync state rm biz_1/alpha`.\n" + MOVED_ALPHA + "\n"
        "+ biz_1/alpha-renamed  create  triggers/alpha.yaml:3\n"
        + body_lines("Alpha")
        + "    note: If this is biz_1/alpha with its key renamed, paste the Moved below into a "
        "manifest file instead of creating a second trigger: apply then carries the record over "
        "without sending anything (or run `pfsync state mv biz_1/alpha biz_1/alpha-renamed`).\n"
        + MOVED_ALPHA
        + "\n"
        + CREATE_GAMMA
        + "Plan: 2 to create, 0 to replace. Needs a person: 0 update, 1 delete, 0 uncertain. "
        "1 unchanged.\n",
        "",
    )
    run = run_pfsync("state", "mv", "biz_1/alpha", "biz_1/alpha-renamed", cwd=project)
    assert (run.code, run.out, run.err) == (
        0,
        "Moved biz_1/alpha to biz_1/alpha-renamed. Nothing was changed in Pocketflows.\n",
        "",
    )
    plan = run_pfsync("plan", "--detailed-exitcode", "--target", "biz_1/alpha-renamed", cwd=project)
    assert (plan.code, plan.out, plan.err) == (
        0,
        header(3, target="biz_1/alpha-renamed")
        + "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "1 unchanged.\n",
        "",
    )


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
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=project)
    assert (plan.code, plan.out, plan.err) == (
        3,
        header(2)
        + update_entry(
            "alpha", "trg_alpha", "Alpha", "Alpha edited", body_digest(body("Alpha edited"))
        )
        + CREATE_GAMMA
        + "Plan: 1 to create, 0 to replace. Needs a person: 1 update, 0 delete, 0 uncertain. "
        "1 unchanged.\n",
        "",
    )
    run = run_pfsync("state", "import", "biz_1/alpha", "trg_alpha", "--force", cwd=project)
    assert (run.code, run.out, run.err) == (
        0,
        "Imported trigger trg_alpha as biz_1/alpha (triggers/alpha.yaml:3).\n"
        "The earlier trigger trg_alpha moved to its history.\n",
        "",
    )
    record = read_json(project / "pfsync.lock")["triggers"]["biz_1/alpha"]
    assert record["body"]["name"] == "Alpha edited"
    assert [(h["id"], h["reason"]) for h in record["history"]] == [("trg_alpha", "overwritten")]
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=project)
    assert (plan.code, plan.out, plan.err) == (
        2,
        header(3) + CREATE_GAMMA + "Plan: 1 to create, 0 to replace. Needs a person: 0 update, "
        "0 delete, 0 uncertain. 2 unchanged.\n",
        "",
    )


def test_import_settles_an_uncertain_create(project: Path, run_pfsync: RunPfsync) -> None:
    uncertain_gamma(project)
    run = run_pfsync("state", "import", "biz_1/gamma", "trg_found", cwd=project)
    assert (run.code, run.out, run.err) == (
        0,
        "Imported trigger trg_found as biz_1/gamma (triggers/gamma.yaml:3).\n"
        "The uncertain create of this address is settled.\n",
        "",
    )
    data = read_json(project / "pfsync.lock")
    assert data["pending"] == {} and data["triggers"]["biz_1/gamma"]["id"] == "trg_found"
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=project)
    assert (plan.code, plan.out, plan.err) == (
        0,
        header(4) + "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 0 delete, "
        "0 uncertain. 3 unchanged.\n",
        "",
    )


def test_import_records_several_pairs_in_one_change(project: Path, run_pfsync: RunPfsync) -> None:
    serial = read_json(project / "pfsync.lock")["serial"]
    run = run_pfsync(
        "state", "import", "biz_1/gamma", "trg_gamma", "biz_1/alpha", "trg_alpha", "--force",
        cwd=project,
    )  # fmt: skip
    assert (run.code, run.out, run.err) == (
        0,
        "Imported trigger trg_gamma as biz_1/gamma (triggers/gamma.yaml:3).\n"
        "Imported trigger trg_alpha as biz_1/alpha (triggers/alpha.yaml:3).\n"
        "The earlier trigger trg_alpha moved to its history.\n",
        "",
    )
    data = read_json(project / "pfsync.lock")
    assert data["serial"] == serial + 1  # one change
    assert {a: r["id"] for a, r in data["triggers"].items()} == {
        "biz_1/alpha": "trg_alpha",
        "biz_1/beta": "trg_beta",
        "biz_1/gamma": "trg_gamma",
    }


def test_import_of_several_pairs_records_none_when_one_is_refused(
    project: Path, run_pfsync: RunPfsync
) -> None:
    before = (project / "pfsync.lock").read_bytes()
    run = run_pfsync(
        "state", "import", "biz_1/gamma", "trg_gamma", "biz_1/alpha", "trg_other", cwd=project
    )
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: biz_1/alpha is already recorded (trigger trg_alpha); pass --force to overwrite "
        "the record (its id is kept in the history)\n",
    )
    twice = run_pfsync(
        "state", "import", "biz_1/gamma", "trg_1", "biz_1/gamma", "trg_2", cwd=project
    )
    assert (twice.code, twice.out, twice.err) == (
        1,
        "",
        "Error: biz_1/gamma given more than once; nothing was recorded\n",
    )
    odd = run_pfsync("state", "import", "biz_1/gamma", "trg_1", "biz_1/beta", cwd=project)
    assert (odd.code, odd.out, odd.err) == (
        1,
        "",
        "Usage: pfsync state import [OPTIONS] (ADDRESS TRIGGER_ID)...\n"
        "Try 'pfsync state import --help' for help.\n"
        "\n"
        "Error: state import takes pairs: ADDRESS TRIGGER_ID, repeated\n",
    )
    assert (project / "pfsync.lock").read_bytes() == before


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
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: the lockfile pfsync.lock describes the API https://api.pocketflows.com, but the "
        "configured API URL is https://other.example (PFSYNC_API_URL or api_url in pfsync.yaml). "
        "Use one lockfile per API: for another API (a staging business, a local "
        "sandbox), add an environment to pfsync.yaml with its own `api_url:` and `lockfile:`, "
        "and choose it with -e NAME\n",
    )


def test_rm_and_mv_without_lockfile(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    root = write_project(tmp_path, {})
    run = run_pfsync("state", "rm", "biz_1/a", cwd=root)
    assert run.normalised(TMP=tmp_path) == (
        1,
        "",
        "Error: there is no lockfile at pfsync.lock, so there is nothing to remove. "
        "If it was lost, restore it from git (git checkout -- pfsync.lock)\n",
    )
    assert not (root / "pfsync.lock").exists()


@pytest.mark.parametrize(
    ("state", "location", "advice"),
    [
        (
            "",
            "state/live.lock",
            "restore it from git (git checkout -- state/live.lock)",
        ),
        (
            "state: {store: git, branch: pfsync-state}\n",
            "infra/state/live.lock on origin/pfsync-state",
            "restore it on origin/pfsync-state from the commit before it was removed "
            "(git log origin/pfsync-state -- :/infra/state/live.lock)",
        ),
        (
            "state: {store: git}\n",  # the branch checked out
            "infra/state/live.lock on origin/main",
            "restore it on origin/main from the commit before it was removed "
            "(git log origin/main -- :/infra/state/live.lock)",
        ),
        (
            "state: {store: s3, bucket: team-b1, key: teams/live.lock}\n",
            "s3://team-b1/teams/live.lock",
            "restore an earlier version of s3://team-b1/teams/live.lock (a bucket with "
            "versioning on keeps them)",
        ),
    ],
)
def test_a_lost_lockfile_is_looked_for_and_restored_where_its_store_keeps_it(
    tmp_path: Path, state: str, location: str, advice: str
) -> None:
    # pfsync.yaml in a folder of the repository: git names paths from the repository's top.
    git(tmp_path, "init", "--quiet", "-b", "main")
    git(tmp_path, "remote", "add", "origin", str(tmp_path / "remote.git"))
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "pfsync.yaml").write_text(
        f"business: biz_1\nlockfile: state/live.lock\n{state}", encoding="utf-8"
    )
    config = load_config(str(tmp_path / "infra" / "pfsync.yaml"), check_url=False)
    assert lost_lockfile(config) == (location, advice)
