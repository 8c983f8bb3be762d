"""`pfsync plan` end to end, through the installed command (no credentials, no network)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from project_helpers import (
    DRAFTS,
    NOT_A_REPOSITORY,
    body,
    manifest_yaml,
    read_json,
    update_entry,
    write_project,
)

from conftest import RunPfsync
from pfsync.models import DesiredTrigger
from pfsync.schemas import LOCKFILE, validator
from pfsync.support.canonical import body_digest


def three_triggers(tmp_path: Path) -> Path:
    return write_project(
        tmp_path,
        {
            "alpha.yaml": manifest_yaml("alpha", "Alpha"),
            "beta.yaml": manifest_yaml("beta", "Beta"),
            "gamma.yaml": manifest_yaml("gamma", "Gamma"),
        },
    )


def create_entry(key: str, name: str, file: str = "") -> str:
    return (
        f"+ biz_1/{key}  create  triggers/{file or key + '.yaml'}:3\n"
        f'      $.spec.name: "{name}"\n'
        '      $.spec.project_defined_event: "pde_signup"\n'
        '      $.spec.steps[0].type: "email"\n'
        '      $.spec.steps[0].email_template_id: "et_1"\n'
        "\n"
    )


PLAN_3_CREATES = (
    "Business: biz_1\n"
    "API: https://api.pocketflows.com\n"
    "Lockfile: pfsync.lock does not exist yet: every declared trigger is a create.\n"
    + NOT_A_REPOSITORY
    + "\n"
    + create_entry("alpha", "Alpha")
    + create_entry("beta", "Beta")
    + create_entry("gamma", "Gamma")
    + "Plan: 3 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
    "0 unchanged.\n"
)
HEADER_SERIAL_3 = (
    "Business: biz_1\nAPI: https://api.pocketflows.com\nLockfile: pfsync.lock (serial 3)\n"
    + NOT_A_REPOSITORY
)
NOTHING_TO_DO = (
    HEADER_SERIAL_3 + "\n"
    "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
    "3 unchanged.\n"
)


def removed_paste(key: str, trigger_id: str) -> str:
    """The `Removed` a remedy offers to paste, as the text plan shows it."""
    return f"    paste:\n---\napiVersion: pfsync/v1\nkind: Removed\nkey: {key}\nid: {trigger_id}\n"


def test_done_when_scenario(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    root = three_triggers(tmp_path)
    lock = root / "pfsync.lock"

    # Three creates, exit 2, nothing written but the local manifest cache (ignored by git).
    run = run_pfsync("plan", "--detailed-exitcode", cwd=root)
    assert (run.code, run.out, run.err) == (2, PLAN_3_CREATES, "")
    assert sorted(p.name for p in root.iterdir()) == [".pfsync", "pfsync.yaml", "triggers"]
    assert sorted(p.name for p in (root / ".pfsync").iterdir()) == [".gitignore", "cache"]

    # Import all three: nothing to do, exit 0.
    for n, key in enumerate(("alpha", "beta", "gamma")):
        run = run_pfsync("state", "import", f"biz_1/{key}", f"trg_{key}", cwd=root)
        expected = f"Imported trigger trg_{key} as biz_1/{key} (triggers/{key}.yaml:3).\n"
        if n == 0:
            expected += "Created the lockfile pfsync.lock (serial 1); commit it.\n"
        assert (run.code, run.out, run.err) == (0, expected, ""), run
    run = run_pfsync("plan", "--detailed-exitcode", cwd=root)
    assert (run.code, run.out, run.err) == (0, NOTHING_TO_DO, "")

    # The lockfile: valid, sorted, trailing newline, byte-identical after a no-op command.
    text = lock.read_text(encoding="utf-8")
    data = json.loads(text)
    assert validator(LOCKFILE).is_valid(data)
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    before = lock.read_bytes()
    run = run_pfsync("state", "mv", "biz_1/nothing", "biz_1/else", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: biz_1/nothing is not in the lockfile; nothing to move\n",
    )
    run = run_pfsync("state", "list", cwd=root)
    assert (run.code, run.out, run.err) == (
        0,
        "ADDRESS      ID         ORIGIN    REVISION  FILE                 NOTE\n"
        "biz_1/alpha  trg_alpha  imported  0         triggers/alpha.yaml\n"
        "biz_1/beta   trg_beta   imported  0         triggers/beta.yaml\n"
        "biz_1/gamma  trg_gamma  imported  0         triggers/gamma.yaml\n",
        "",
    )
    run = run_pfsync("plan", cwd=root)
    assert (run.code, run.out, run.err) == (0, NOTHING_TO_DO, "")
    assert lock.read_bytes() == before

    # Editing `name`: an update with the before → after diff, exit 3.
    alpha = root / "triggers" / "alpha.yaml"
    alpha.write_text(manifest_yaml("alpha", "Alpha v2"), encoding="utf-8")
    run = run_pfsync("plan", "--detailed-exitcode", cwd=root)
    assert (run.code, run.out, run.err) == (
        3,
        HEADER_SERIAL_3
        + "\n"
        + update_entry("alpha", "trg_alpha", "Alpha", "Alpha v2", body_digest(body("Alpha v2")))
        + "Plan: 0 to create, 0 to replace. Needs a person: 1 update, 0 delete, 0 uncertain. "
        "2 unchanged.\n",
        "",
    )

    # Raising its revision: a replace (exit 2: apply can do it).
    alpha.write_text(manifest_yaml("alpha", "Alpha v2", revision=1), encoding="utf-8")
    run = run_pfsync("plan", "--detailed-exitcode", cwd=root)
    assert (run.code, run.out, run.err) == (
        2,
        HEADER_SERIAL_3 + "\n"
        "-/+ biz_1/alpha  replace  triggers/alpha.yaml:3  (trigger trg_alpha; revision raised "
        "from 0 to 1)\n"
        '      $.spec.name: "Alpha v2"\n'
        '      $.spec.project_defined_event: "pde_signup"\n'
        '      $.spec.steps[0].type: "email"\n'
        '      $.spec.steps[0].email_template_id: "et_1"\n'
        "    note: A new draft trigger is created for biz_1/alpha; the old trigger trg_alpha "
        "stays active in Pocketflows until a person deactivates it; then paste the Removed "
        "below into a manifest file, so the record stops listing it as still active.\n"
        + removed_paste("alpha", "trg_alpha")
        + "\n"
        "Plan: 0 to create, 1 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "2 unchanged.\n",
        "",
    )
    alpha.write_text(manifest_yaml("alpha", "Alpha"), encoding="utf-8")

    # Deleting a manifest: a delete whose remedy names the trigger id and `state rm`.
    (root / "triggers" / "gamma.yaml").unlink()
    run = run_pfsync("plan", "--detailed-exitcode", cwd=root)
    assert (run.code, run.out, run.err) == (
        3,
        HEADER_SERIAL_3 + "\n"
        "- biz_1/gamma  delete  triggers/gamma.yaml  (trigger trg_gamma)\n"
        "    remedy: Pocketflows has no delete endpoint, so pfsync cannot remove this trigger. "
        "Deactivate trigger trg_gamma in Pocketflows, then paste the Removed below into a "
        "manifest file, so that apply forgets it once reviewed (or run "
        "`pfsync state rm biz_1/gamma`). If its key was renamed, declare a Moved (from: the old "
        "key, to: the new one) instead, or run `pfsync state mv biz_1/gamma NEW_ADDRESS`.\n"
        + removed_paste("gamma", "trg_gamma")
        + "\n"
        "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 1 delete, 0 uncertain. "
        "2 unchanged.\n",
        "",
    )

    # Reformatting without changing values: still no-op.
    (root / "triggers" / "beta.yaml").write_text(
        "# the beta trigger, reformatted\n"
        'kind: "Trigger"\n'
        "apiVersion: pfsync/v1\n"
        "key: 'beta'\n"
        "spec: {steps: [{email_template_id: et_1, type: email}],\n"
        '       project_defined_event: "pde_signup", name: Beta}\n',
        encoding="utf-8",
    )
    run = run_pfsync("plan", "--detailed-exitcode", "--target", "biz_1/beta", cwd=root)
    assert (run.code, run.out, run.err) == (
        0,
        HEADER_SERIAL_3 + "Targets: biz_1/beta\n"
        "\n"
        "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "1 unchanged.\n",
        "",
    )
    assert lock.read_bytes() == before


def test_without_detailed_exitcode_success_is_0(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    run = run_pfsync("plan", cwd=three_triggers(tmp_path))
    assert (run.code, run.out, run.err) == (0, PLAN_3_CREATES, "")


def test_json_format(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    root = write_project(tmp_path, {"a.yaml": manifest_yaml("alpha", "Alpha")})
    run = run_pfsync("plan", "--format", "json", cwd=root)
    assert (run.code, run.err) == (0, ""), run
    assert json.loads(run.out) == {
        "format_version": 2,
        "environment": None,
        "api_url": "https://api.pocketflows.com",
        "businesses": ["biz_1"],
        "lockfile": {
            "path": "pfsync.lock",
            "exists": False,
            "lineage": None,
            "serial": None,
            "api_url": None,
            "journal_unfolded": False,
        },
        "planned_from": {
            "git_repository": False,
            "commit": None,
            "commit_short": None,
            "uncommitted_changes": [],
            "base": None,
            "state": {
                "store": "file",
                "where": "pfsync.lock",
                "path": "pfsync.lock",
                "lineage": None,
                "serial": None,
                "version": None,
                "stale": False,
                "stale_reason": None,
            },
            "sandbox": False,
            "created_status": "draft",
            "activation": DRAFTS,
        },
        "targets": [],
        "replace": [],
        "summary": {
            "create": 1,
            "replace": 0,
            "resend": 0,
            "moved": 0,
            "import": 0,
            "forget": 0,
            "update": 0,
            "delete": 0,
            "uncertain": 0,
            "no-op": 0,
            "changes": True,
            "needs_person": False,
            "text": "Plan: 1 to create, 0 to replace. Needs a person: 0 update, 0 delete, "
            "0 uncertain. 0 unchanged.",
        },
        "entries": [
            {
                "address": "biz_1/alpha",
                "business": "biz_1",
                "key": "alpha",
                "action": "create",
                "source": "triggers/a.yaml:3",
                "file": "triggers/a.yaml",
                "revision": 0,
                "trigger_id": None,
                "reason": None,
                "body": {
                    "name": "Alpha",
                    "project_defined_event": "pde_signup",
                    "steps": [{"type": "email", "email_template_id": "et_1"}],
                },
                "diff": [],
                "remedy": None,
                "paste": None,
                "declaration": None,
            }
        ],
    }


def test_markdown_format(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    root = write_project(tmp_path, {"a.yaml": manifest_yaml("alpha", "Alpha")})
    run = run_pfsync("plan", "--format", "markdown", cwd=root)
    assert (run.code, run.out, run.err) == (
        0,
        "**Planned from** not a git repository · state `pfsync.lock` (no lockfile yet)\n"
        "\n"
        f"{DRAFTS}\n"
        "\n"
        "**Plan: 1 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "0 unchanged.**\n"
        "\n"
        "Business `biz_1` · API `https://api.pocketflows.com` · lockfile `pfsync.lock` does not "
        "exist yet\n"
        "\n"
        "<details><summary>+ 1 to create</summary>\n"
        "\n"
        "#### + `biz_1/alpha` create\n"
        "\n"
        "source `triggers/a.yaml:3`\n"
        "\n"
        "```json\n"
        "{\n"
        '  "name": "Alpha",\n'
        '  "project_defined_event": "pde_signup",\n'
        '  "steps": [\n'
        "    {\n"
        '      "type": "email",\n'
        '      "email_template_id": "et_1"\n'
        "    }\n"
        "  ]\n"
        "}\n"
        "```\n"
        "\n"
        "</details>\n"
        "\n",
        "",
    )


def test_out_saves_the_plan_with_digests(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    from pfsync.plan.saved import load_saved_plan

    root = write_project(tmp_path, {"a.yaml": manifest_yaml("alpha", "Alpha")})
    run = run_pfsync("plan", "--out", "plan.json", cwd=root)
    assert (run.code, run.out, run.err) == (
        0,
        "Business: biz_1\n"
        "API: https://api.pocketflows.com\n"
        "Lockfile: pfsync.lock does not exist yet: every declared trigger is a create.\n"
        + NOT_A_REPOSITORY
        + "\n"
        + create_entry("alpha", "Alpha", file="a.yaml")
        + "Plan: 1 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "0 unchanged.\n",
        "Saved the plan to plan.json; apply it with `pfsync apply plan.json`.\n",
    )
    document = read_json(root / "plan.json")
    assert document["saved_plan"] is True
    assert document["entries"][0]["digest"].startswith("sha256:")
    saved = load_saved_plan(root / "plan.json")
    assert [(e.address, e.action, e.desired.replaces) for e in saved.to_apply] == [
        ("biz_1/alpha", "create", None)
    ]


def test_invalid_manifests_print_diagnostics_and_exit_1(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = write_project(tmp_path, {"a.yaml": manifest_yaml("alpha", "Alpha") + "bogus: 1\n"})
    run = run_pfsync("plan", "--detailed-exitcode", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        'triggers/a.yaml:10:1: unknown field "bogus" (known fields: apiVersion, business, key, '
        "kind, revision, spec) [$.bogus]\n"
        "Error: 1 problem(s) in the manifests; fix them (see `pfsync validate`) and run again.\n",
    )


def test_unknown_target_and_bad_replace_exit_1(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    root = three_triggers(tmp_path)
    run = run_pfsync("plan", "--target", "biz_1/alpah", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: --target biz_1/alpah: no manifest declares it and the lockfile does not record "
        "it (did you mean biz_1/alpha?)\n",
    )
    run = run_pfsync("plan", "--replace", "biz_1/alpha", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: --replace biz_1/alpha: it is not in the lockfile, so there is nothing to "
        "replace (the plan creates it)\n",
    )


def test_corrupt_lockfile_is_reported_and_left_alone(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    root = three_triggers(tmp_path)
    assert run_pfsync("state", "import", "biz_1/alpha", "trg_a", cwd=root).code == 0
    lock = root / "pfsync.lock"
    mangled = lock.read_text(encoding="utf-8")[:-40]
    lock.write_text(mangled, encoding="utf-8")
    # The parser's words in the parentheses are left out: they read "starting at at line 26".
    decoder_words = re.compile(r"(?<=not valid JSON \().*?(?=\)\. )")
    for args in (("plan",), ("state", "import", "biz_1/beta", "trg_b"), ("state", "list")):
        run = run_pfsync(*args, cwd=root)
        assert run.normalised(JSON_ERROR=decoder_words) == (
            1,
            "",
            "Error: the lockfile pfsync.lock is not valid JSON (<JSON_ERROR>). pfsync never "
            "overwrites a lockfile it cannot trust: restore it from git "
            "(git checkout -- pfsync.lock) or repair it, then run again\n",
        )
    assert lock.read_text(encoding="utf-8") == mangled


def test_api_url_mismatch_is_refused(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    root = three_triggers(tmp_path)
    assert run_pfsync("state", "import", "biz_1/alpha", "trg_a", cwd=root).code == 0
    run = run_pfsync("plan", cwd=root, env={"PFSYNC_API_URL": "http://127.0.0.1:8787"})
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: the lockfile pfsync.lock describes the API https://api.pocketflows.com, but the "
        "configured API URL is http://127.0.0.1:8787 (PFSYNC_API_URL or api_url in "
        "pfsync.yaml). Use one lockfile per API: for another API (a staging business, a local "
        "sandbox), add an environment to pfsync.yaml with its own `api_url:` and "
        "`lockfile:`, "
        "and choose it with -e NAME\n",
    )


def test_unfolded_journal_is_read_without_writing(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    from pfsync.state.journal import Journal
    from pfsync.state.journal_records import Pending
    from pfsync.state.lockfile import read_lockfile

    root = three_triggers(tmp_path)
    assert run_pfsync("state", "import", "biz_1/alpha", "trg_a", cwd=root).code == 0
    state = read_lockfile(root / "pfsync.lock")
    assert state is not None
    journal_path = root / "pfsync.lock.journal"
    with Journal.open(journal_path, state) as journal:
        journal.append(
            Pending(
                DesiredTrigger.at_address(
                    "biz_1/beta", {"name": "Beta"}, "sha256:" + "0" * 64, 0, "triggers/beta.yaml"
                ),
                "11111111-2222-4333-8444-555555555555",
                "2026-02-01T00:00:00Z",
            )
        )
    journal_bytes = journal_path.read_bytes()
    lock_bytes = (root / "pfsync.lock").read_bytes()
    run = run_pfsync("plan", "--detailed-exitcode", cwd=root)
    assert (run.code, run.out, run.err) == (
        3,
        "Business: biz_1\n"
        "API: https://api.pocketflows.com\n"
        "Lockfile: pfsync.lock (serial 1)\n"
        + NOT_A_REPOSITORY
        + "Journal: an interrupted apply left a journal; its records are included here and the "
        "next state-changing command folds it into the lockfile.\n"
        "\n"
        "? biz_1/beta  uncertain  triggers/beta.yaml:3\n"
        "    remedy: A create of biz_1/beta was started at 2026-02-01T00:00:00Z (Idempotency-Key "
        "11111111-2222-4333-8444-555555555555) and its outcome is unknown; pfsync will not send "
        "it again by itself. Look for the trigger in Pocketflows: if it exists, paste the Import "
        "below into a manifest file with its id (or run `pfsync state import biz_1/beta ID`); "
        "if not, paste the NotCreated below instead, and apply sends the create once more with "
        "its original Idempotency-Key (or run `pfsync state rm biz_1/beta`, and the next plan "
        "creates it anew).\n"
        "    paste:\n"
        "---\n"
        "apiVersion: pfsync/v1\n"
        "kind: Import\n"
        "key: beta\n"
        'id: ""  # the id of the trigger found in Pocketflows\n'
        "---\n"
        "apiVersion: pfsync/v1\n"
        "kind: NotCreated\n"
        "key: beta\n"
        "intent: 11111111-2222-4333-8444-555555555555\n"
        "\n"
        + create_entry("gamma", "Gamma")
        + "Plan: 1 to create, 0 to replace. Needs a person: 0 update, 0 delete, 1 uncertain. "
        "1 unchanged.\n",
        "",
    )
    assert journal_path.read_bytes() == journal_bytes
    assert (root / "pfsync.lock").read_bytes() == lock_bytes
