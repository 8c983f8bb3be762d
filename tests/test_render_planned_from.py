"""What a plan says it was planned from (commit, base, state read, drafts): whole outputs of
each format's header, for the stores, a stale read, sandbox mode and outside text; the
checkout's commit and uncommitted changes read from a real git repository; the workflow
annotation of a stale read."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from project_helpers import API_URL, LINEAGE, lockfile, manifest, record

from git_helpers import git
from pfsync.config import load_config
from pfsync.plan.checkout import planned_from
from pfsync.plan.planner import create_plan
from pfsync.plan.render.json_document import PlanReport
from pfsync.plan.render.markdown import MAX_CHARS
from pfsync.plan.render.planned_from import PlannedFrom
from pfsync.plan.render.text import RENDERERS
from pfsync.plan.run import workflow_annotations
from pfsync.state.access import StateView
from pfsync.support.invocation import Invocation

COMMIT = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
STATE_COMMIT = "c0ffee0123456789abcdef0123456789abcdef01"
SUMMARY = "Plan: 1 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain."
DRAFTS = "New triggers start as drafts; a person activates them in Pocketflows."
STALE_REASON = (
    "cannot fetch origin/main: fatal: unable to access 'https://git.example.test/acme.git/': "
    "Could not resolve host: git.example.test; using the lockfile of the last fetched "
    "origin/main, which may be out of date"
)
GIT_READ = PlannedFrom(
    repository=True,
    commit=COMMIT,
    uncommitted=(),
    store="git",
    where="pfsync.lock on origin/main",
    location={"remote": "origin", "branch": "main", "path": "pfsync.lock"},
    version=STATE_COMMIT,
)
CREATE_ENTRY = (
    "+ biz_1/fresh  create  triggers/fresh.yaml:3\n"
    '      $.spec.name: "Fresh"\n'
    '      $.spec.project_defined_event: "pde_signup"\n'
    '      $.spec.steps[0].type: "email"\n'
    '      $.spec.steps[0].email_template_id: "et_1"\n'
)


def report(source: PlannedFrom, where: str = "pfsync.lock on origin/main") -> PlanReport:
    """A plan of one create against a lockfile of serial 3 that records one trigger."""
    state = lockfile(same=record("trg_same", "Same", key="same"))
    plan = create_plan([manifest("same", "Same"), manifest("fresh", "Fresh")], state, API_URL)
    return PlanReport(plan, where, planned_from=source)


def test_text_names_the_commit_the_state_version_and_drafts() -> None:
    assert RENDERERS["text"](report(GIT_READ)) == (
        "Business: biz_1\n"
        f"API: {API_URL}\n"
        "Lockfile: pfsync.lock on origin/main (serial 3, commit c0ffee012345)\n"
        f"Planned from: commit 1a2b3c4d5e6f. {DRAFTS}\n"
        "\n"
        f"{CREATE_ENTRY}"
        "\n"
        f"{SUMMARY} 1 unchanged.\n"
    )


def test_markdown_says_it_before_the_summary_and_warns_of_a_stale_lockfile() -> None:
    stale = replace(GIT_READ, stale=(STALE_REASON,), base_plan="base.json", base_commit=None)
    output = RENDERERS["markdown"](report(stale))
    head = output[: output.index("<details>")]
    assert head == (
        "**Planned from** commit `1a2b3c4d5e6f` (base unknown) · state "
        f"`pfsync.lock on origin/main` (serial 3, commit `c0ffee012345`, lineage `{LINEAGE}`)\n"
        "\n"
        "> [!CAUTION]\n"
        f"> The lockfile may be stale: `{STALE_REASON}`. This plan was made from that copy; run "
        "it again once the store can be read.\n"
        "\n"
        f"{DRAFTS}\n"
        "\n"
        f"**{SUMMARY} 1 unchanged.**\n"
        "\n"
        f"Business `biz_1` · API `{API_URL}` · lockfile `pfsync.lock on origin/main` serial 3\n"
        "\n"
    )


def test_text_warns_of_a_stale_lockfile_in_its_header() -> None:
    stale = replace(GIT_READ, stale=(STALE_REASON,))
    lines = RENDERERS["text"](report(stale)).splitlines()
    assert lines[3:5] == [
        f"Planned from: commit 1a2b3c4d5e6f. {DRAFTS}",
        f"Warning: The lockfile may be stale: {STALE_REASON}. This plan was made from that copy; "
        "run it again once the store can be read.",
    ]


def test_json_carries_everything_under_planned_from() -> None:
    source = replace(
        GIT_READ,
        uncommitted=("pfsync.yaml", "triggers/fresh.yaml"),
        stale=(STALE_REASON,),
        base_plan="base.json",
        base_commit="9f8e7d6c5b4a39281706f5e4d3c2b1a098f7e6d5",
    )
    document = json.loads(RENDERERS["json"](report(source)))
    assert document["format_version"] == 2
    assert document["planned_from"] == {
        "git_repository": True,
        "commit": COMMIT,
        "commit_short": "1a2b3c4d5e6f",
        "uncommitted_changes": ["pfsync.yaml", "triggers/fresh.yaml"],
        "base": {"plan": "base.json", "commit": "9f8e7d6c5b4a39281706f5e4d3c2b1a098f7e6d5"},
        "state": {
            "store": "git",
            "where": "pfsync.lock on origin/main",
            "remote": "origin",
            "branch": "main",
            "path": "pfsync.lock",
            "lineage": LINEAGE,
            "serial": 3,
            "version": STATE_COMMIT,
            "stale": True,
            "stale_reason": STALE_REASON,
        },
        "sandbox": False,
        "created_status": "draft",
        "activation": DRAFTS,
    }


def test_the_s3_and_file_stores_and_sandbox_mode() -> None:
    s3 = PlannedFrom(
        repository=False,
        commit=None,
        uncommitted=(),
        store="s3",
        where="s3://acme-pfsync/production/pfsync.lock",
        location={"bucket": "acme-pfsync", "key": "production/pfsync.lock"},
        version="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
    )
    text = RENDERERS["text"](report(s3, s3.where)).splitlines()
    assert text[2:4] == [
        "Lockfile: s3://acme-pfsync/production/pfsync.lock (serial 3, version "
        "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY)",
        f"Planned from: not a git repository. {DRAFTS}",
    ]
    state = json.loads(RENDERERS["json"](report(s3, s3.where)))["planned_from"]["state"]
    assert (state["bucket"], state["key"]) == ("acme-pfsync", "production/pfsync.lock")
    sandbox = PlannedFrom(
        repository=True,
        commit=None,
        uncommitted=("triggers/fresh.yaml",),
        store="file",
        where=".pfsync/pfsync.lock",
        location={"path": ".pfsync/pfsync.lock"},
        sandbox=True,
    )
    text = RENDERERS["text"](report(sandbox, sandbox.where)).splitlines()
    assert text[2:4] == [
        "Lockfile: .pfsync/pfsync.lock (serial 3)",
        "Planned from: no commit yet with uncommitted changes to triggers/fresh.yaml. Sandbox "
        "mode: new triggers go to the local sandbox (.pfsync/), not Pocketflows.",
    ]


def test_outside_text_is_escaped_and_long_lists_are_cut() -> None:
    odd = "triggers/`odd`\x1b[31m|.yaml"
    source = replace(
        GIT_READ,
        where="pfsync.lock on origin/feat`x`\u202e",
        uncommitted=(odd, *(f"triggers/t{i}.yaml" for i in range(6))),
    )
    first = RENDERERS["markdown"](report(source, source.where)).splitlines()[0]
    assert first == (
        "**Planned from** commit `1a2b3c4d5e6f` with uncommitted changes to "
        "``triggers/`odd`\\x1b[31m\\|.yaml``, `triggers/t0.yaml`, `triggers/t1.yaml`, "
        "`triggers/t2.yaml`, `triggers/t3.yaml` and 2 more · state "
        "``pfsync.lock on origin/feat`x`\\u202e`` (serial 3, commit `c0ffee012345`, lineage "
        f"`{LINEAGE}`)"
    )
    text = RENDERERS["text"](report(source, source.where)).splitlines()
    assert text[3] == (
        "Planned from: commit 1a2b3c4d5e6f with uncommitted changes to "
        "triggers/`odd`\\x1b[31m|.yaml, triggers/t0.yaml, triggers/t1.yaml, triggers/t2.yaml, "
        f"triggers/t3.yaml and 2 more. {DRAFTS}"
    )


def test_a_cut_comment_keeps_its_whole_header() -> None:
    manifests = [manifest(f"trigger-{i:05d}", f"Trigger number {i}") for i in range(5000)]
    stale = replace(GIT_READ, stale=(STALE_REASON,))
    output = RENDERERS["markdown"](
        PlanReport(create_plan(manifests, None, API_URL), "x", planned_from=stale)
    )
    assert len(output) <= MAX_CHARS
    assert output.startswith(
        "**Planned from** commit `1a2b3c4d5e6f` · state `pfsync.lock on origin/main` (no lockfile "
        "yet)\n\n> [!CAUTION]\n"
    )
    assert "more entries are not shown" in output
    assert output.endswith("Run `pfsync plan` for the whole plan.*\n")


def test_a_cut_comment_names_the_command_that_shows_the_whole_plan_as_invoked() -> None:
    manifests = [manifest(f"trigger-{i:05d}", f"Trigger number {i}") for i in range(5000)]
    long_directory = "repos/" + "nested/" * 200 + "shop's"
    invocation = Invocation(environment="staging", directory=long_directory)
    report = PlanReport(
        create_plan(manifests, None, API_URL), "x", planned_from=GIT_READ, invocation=invocation
    )
    output = RENDERERS["markdown"](report)
    assert len(output) <= MAX_CHARS
    assert output.endswith(
        f"Run `pfsync -C 'repos/{'nested/' * 200}shop'\"'\"'s' -e staging plan` for the whole "
        "plan.*\n"
    )
    after = replace(report, plan=replace(report.plan, after="staging"))
    assert RENDERERS["markdown"](after).endswith(
        "-e staging plan --after staging` for the whole plan.*\n"
    )


def test_a_stale_read_is_a_workflow_warning_escaped_as_github_requires() -> None:
    # `%` and the title's `:` are encoded; control characters are shown as escapes first, as
    # everywhere pfsync prints outside text, so no raw CR or LF could end the command early.
    reason = "cannot fetch origin/main: 100% gone,\r\nreally"
    stale = replace(GIT_READ, stale=(reason,))
    staging = replace(report(stale), environment="staging")
    assert workflow_annotations(staging) == [
        "::warning title=pfsync plan (staging)%3A the lockfile may be stale::The lockfile may be "
        "stale: cannot fetch origin/main: 100%25 gone,\\r\\nreally. This plan was made from "
        "that copy; run it again once the store can be read\n"
    ]
    assert workflow_annotations(report(GIT_READ)) == []


def test_the_checkout_names_head_and_its_uncommitted_manifests(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "triggers").mkdir(parents=True)
    (root / "pfsync.yaml").write_text('business: biz_1\nmanifests: ["triggers/*.yaml"]\n')
    (root / "triggers" / "a.yaml").write_text("a\n")
    (root / "triggers" / "b.yaml").write_text("b\n")
    (root / "notes.md").write_text("not a manifest\n")
    config = load_config(directory=str(root), cwd=root)
    view = StateView(None, False, location={"path": "pfsync.lock"})
    assert planned_from(config, view) == PlannedFrom(
        False, None, (), "file", "pfsync.lock", {"path": "pfsync.lock"}
    )
    git(root, "init", "--quiet", "-b", "main")
    assert planned_from(config, view).uncommitted == (
        "pfsync.yaml",
        "triggers/a.yaml",
        "triggers/b.yaml",
    )
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "first")
    head = git(root, "rev-parse", "HEAD").strip()
    (root / "notes.md").write_text("still not a manifest\n")
    (root / "triggers" / "b.yaml").unlink()
    (root / "triggers" / "c.yaml").write_text("c\n")
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"planned_from": {"commit": "9f8e7d6c"}}))
    source = planned_from(config, view, str(base))
    assert (source.repository, source.commit, source.uncommitted) == (
        True,
        head,
        ("triggers/b.yaml", "triggers/c.yaml"),
    )
    assert (source.base_plan, source.base_commit) == (str(base), "9f8e7d6c")
    missing = planned_from(config, view, str(tmp_path / "none.json"))  # the base had no plan
    assert (missing.base_plan, missing.base_commit) == (None, None)
    older = tmp_path / "older.json"
    older.write_text(json.dumps({"format_version": 2, "entries": []}))  # made before plans said
    assert planned_from(config, view, str(older)).base_commit is None
