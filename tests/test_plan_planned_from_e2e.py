"""End to end (the installed `pfsync`): a plan in a git-store repository says what it planned
from: the checkout's commit and uncommitted manifests, the lockfile read from origin (serial,
lineage, the state branch's commit), its base plan's commit; and when origin cannot be read, the
plan made from the last fetched copy warns that the lockfile may be stale, in the comment and,
on GitHub Actions only, as a workflow annotation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from apply_helpers import BUSINESS, manifest_text
from conftest import RunPfsync
from fixtures_sandbox import MakeSandbox
from git_helpers import clone, git, make_remote

DRAFTS = "New triggers start as drafts; a person activates them in Pocketflows."
SUMMARY = "Plan: 1 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain."


def test_a_plan_names_its_commit_and_the_state_it_read_from_origin_or_warns_it_is_stale(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    env = {"PFSYNC_API_URL": sandbox.url}
    remote = make_remote(tmp_path, 1)
    pull_request = clone(remote, tmp_path / "pull-request")  # cloned before the apply
    applied = run_pfsync(
        "apply",
        "--auto-approve",
        "--new-lockfile",
        cwd=clone(remote, tmp_path / "main"),
        env=sandbox.environment(),
    )
    assert applied.code == 0, applied
    head = git(pull_request, "rev-parse", "HEAD").strip()
    state = git(remote, "rev-parse", "main").strip()
    recorded = json.loads(git(remote, "show", "main:pfsync.lock"))
    lineage, serial = recorded["lineage"], recorded["serial"]
    (pull_request / "triggers" / "t001.yaml").write_text(manifest_text("t001"))
    known = {"URL": sandbox.url, "HEAD": head[:12], "STATE": state[:12], "LINEAGE": lineage}

    base = run_pfsync("plan", "--format", "json", "--out", "base.json", cwd=pull_request, env=env)
    assert base.code == 0, base
    planned_from = json.loads(base.out)["planned_from"]
    assert planned_from == {
        "git_repository": True,
        "commit": head,
        "commit_short": head[:12],
        "uncommitted_changes": ["triggers/t001.yaml"],
        "base": None,
        "state": {
            "store": "git",
            "where": "pfsync.lock on origin/main",
            "remote": "origin",
            "branch": "main",
            "path": "pfsync.lock",
            "lineage": lineage,
            "serial": serial,
            "version": state,
            "stale": False,
            "stale_reason": None,
        },
        "sandbox": False,
        "created_status": "draft",
        "activation": DRAFTS,
    }
    saved = json.loads((pull_request / "base.json").read_text())
    assert saved["saved_plan"] and saved["planned_from"] == planned_from

    text = run_pfsync("plan", "--base-plan", "base.json", cwd=pull_request, env=env)
    assert text.normalised(**known)[1].splitlines()[:5] == [
        f"Business: {BUSINESS}",
        "API: <URL>",
        f"Lockfile: pfsync.lock on origin/main (serial {serial}, commit <STATE>)",
        "Planned from: commit <HEAD> with uncommitted changes to triggers/t001.yaml (base "
        f"<HEAD>). {DRAFTS}",
        "",
    ]

    # origin cannot be read: the last fetched copy is planned from, and the comment says so.
    shutil.move(remote, tmp_path / "elsewhere.git")
    stale = run_pfsync("plan", "--format", "markdown", cwd=pull_request, env=env)
    reason = (
        "cannot fetch origin/main: fatal: '<TMP>/remote.git' does not appear to be a git "
        "repository; fatal: Could not read from remote repository.; Please make sure you have the "
        "correct access rights; and the repository exists.; using the lockfile of the last "
        "fetched origin/main, which may be out of date"
    )
    code, out, err = stale.normalised(TMP=tmp_path, **known)
    assert (code, err) == (0, f"Warning: {reason}\n")
    assert out[: out.index("<details>")] == (
        "**Planned from** commit `<HEAD>` with uncommitted changes to `triggers/t001.yaml` · "
        f"state `pfsync.lock on origin/main` (serial {serial}, commit `<STATE>`, lineage "
        "`<LINEAGE>`)\n"
        "\n"
        "> [!CAUTION]\n"
        f"> The lockfile may be stale: `{reason}`. This plan was made from that copy; run it "
        "again once the store can be read.\n"
        "\n"
        f"{DRAFTS}\n"
        "\n"
        f"**{SUMMARY} 1 unchanged.**\n"
        "\n"
        f"Business `{BUSINESS}` · API `<URL>` · lockfile `pfsync.lock on origin/main` serial "
        f"{serial}\n"
        "\n"
    )

    # On GitHub Actions the warning is also an annotation, escaped as workflow commands are.
    actions = run_pfsync(
        "plan", "--format", "markdown", cwd=pull_request, env={**env, "GITHUB_ACTIONS": "true"}
    )
    assert actions.normalised(TMP=tmp_path, **known) == (
        0,
        out,
        f"Warning: {reason}\n"
        "::warning title=pfsync plan%3A the lockfile may be stale::The lockfile may be stale: "
        f"{reason}. This plan was made from that copy; run it again once the store can be "
        "read\n",
    )
