"""`--after PREV`: an environment receives only the creates PREV's record holds as created from
the same manifest document (before values are substituted), decided from records alone."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from project_helpers import NOT_A_REPOSITORY, manifest, record

from apply_helpers import posts
from conftest import RunPfsync
from fixtures_sandbox import MakeSandbox
from pfsync.config import load_config
from pfsync.errors import PlanError
from pfsync.manifests.load import load_manifests
from pfsync.plan.after import Declared, Record, hold_back, previous_record
from pfsync.plan.planner import create_plan
from pfsync.plan.render.json_document import PlanReport
from pfsync.plan.saved import load_saved_plan, save_plan
from pfsync.state.lockfile import Lockfile

LINEAGE = "0f0e0d0c-0b0a-4908-8706-050403020100"
# Production's first apply, sending only the creates staging's record holds.
APPLY_PRODUCTION_AFTER_STAGING = (
    "-e",
    "production",
    "apply",
    "--after",
    "staging",
    "--auto-approve",
    "--new-lockfile",
)
MANIFEST = """\
apiVersion: pfsync/v1
kind: Trigger
key: {key}
spec:
  name: {name}
  project_defined_event: pde_signup
  steps:
    - type: email
      email_template_id: ${{values.template}}
"""


def write_repo(root: Path, staging_url: str, production_url: str) -> Path:
    """Two environments, each with its own API, lockfile and template value."""
    root.mkdir()
    (root / "pfsync.yaml").write_text(
        "business: biz_1\n"
        "environments:\n"
        "  staging:\n"
        f"    api_url: {staging_url}\n"
        "    lockfile: staging.lock\n"
        "    values: {template: et_stg}\n"
        "  production:\n"
        f"    api_url: {production_url}\n"
        "    lockfile: production.lock\n"
        "    values: {template: et_prd}\n",
        encoding="utf-8",
    )
    (root / "triggers").mkdir()
    write_manifest(root, "alpha", "Alpha")
    write_manifest(root, "beta", "Beta")
    return root


def write_manifest(root: Path, key: str, name: str) -> None:
    text = MANIFEST.format(key=key, name=name)
    (root / "triggers" / f"{key}.yaml").write_text(text, encoding="utf-8")


# -- the document digest ---------------------------------------------------------------------


def test_a_document_digest_is_the_manifest_as_written_whatever_each_environment_substitutes(
    tmp_path: Path,
) -> None:
    root = write_repo(tmp_path / "repo", "https://s.example.test", "https://p.example.test")

    def loaded(environment: str) -> dict[str, tuple[str, str | None]]:
        config = load_config(cwd=root, environment=environment, no_cache=True)
        triggers = load_manifests(config, cwd=root).manifests
        return {t.address: (t.digest, t.document_digest) for t in triggers}

    staging, production = loaded("staging"), loaded("production")
    assert staging["biz_1/alpha"][0] != production["biz_1/alpha"][0]  # et_stg, et_prd
    assert staging["biz_1/alpha"][1] == production["biz_1/alpha"][1]
    assert staging["biz_1/alpha"][1] != staging["biz_1/beta"][1]
    write_manifest(root, "alpha", "Alpha B")
    assert loaded("staging")["biz_1/alpha"][1] != staging["biz_1/alpha"][1]
    # What YAML reads alike is the same document: comments, quoting and layout do not count.
    (root / "triggers" / "alpha.yaml").write_text(
        "# edited\n" + MANIFEST.format(key="alpha", name='"Alpha"  # quoted'),
        encoding="utf-8",
    )
    assert loaded("staging")["biz_1/alpha"][1] == staging["biz_1/alpha"][1]


# -- the filter ------------------------------------------------------------------------------


def documented(name: str, key: str, document: str | None) -> Lockfile:
    """A lockfile of environment `name` recording `key` created from `document`."""
    created = dataclasses.replace(record("trg_1", key, key=key), document_digest=document)
    return Lockfile(
        LINEAGE, 3, "https://s.example.test", {f"biz_1/{key}": created}, environment=name
    )


def held(plan_record: Record, *triggers: str) -> list[tuple[str, str]]:
    """(address, why) of each create `--after` holds back, for creates of `triggers`."""
    manifests = [
        dataclasses.replace(manifest(key, key), document_digest=f"doc-{key}") for key in triggers
    ]
    plan = hold_back(create_plan(manifests, None, "https://p.example.test"), plan_record)
    assert plan.after == "staging"
    kept = [entry.address for entry in plan.entries]
    assert sorted(kept + [h.entry.address for h in plan.held_back]) == sorted(
        f"biz_1/{key}" for key in triggers
    )
    return [(h.entry.address, h.why) for h in plan.held_back]


def test_only_a_create_prev_holds_from_the_same_document_is_kept() -> None:
    same = Record("staging", documented("staging", "alpha", "doc-alpha"))
    assert held(same, "alpha") == []
    other = Record("staging", documented("staging", "alpha", "doc-alpha-before"))
    assert held(other, "alpha") == [
        ("biz_1/alpha", "applied to staging from another version of the manifest")
    ]
    unknown = Record("staging", documented("staging", "alpha", None))
    assert held(unknown, "alpha") == [
        (
            "biz_1/alpha",
            "staging records it without the manifest version it came from (imported, or "
            "created by an older pfsync)",
        )
    ]
    assert held(same, "alpha", "beta") == [("biz_1/beta", "not yet applied to staging")]


def test_a_create_prev_does_not_declare_at_all_is_sent_and_said_so() -> None:
    # staging declares alpha (the document it holds), beta (another version of it) and, under
    # the key delta, the very document production declares as epsilon; gamma is production's
    # alone. Only gamma cannot be promoted through staging: it is created directly.
    declared = Declared(
        documents=frozenset({"doc-alpha", "doc-beta-staging", "doc-epsilon"}),
        keys=frozenset({"alpha", "beta", "delta"}),
    )
    prev = Record(
        "staging", documented("staging", "alpha", "doc-alpha"), declared=declared,
        receiving="production",
    )  # fmt: skip
    manifests = [
        dataclasses.replace(manifest(key, key), document_digest=f"doc-{key}")
        for key in ("alpha", "beta", "delta", "epsilon", "gamma")
    ]
    plan = hold_back(create_plan(manifests, None, "https://p.example.test"), prev)
    assert [entry.address for entry in plan.to_apply] == ["biz_1/alpha", "biz_1/gamma"]
    assert [(h.entry.address, h.why) for h in plan.held_back] == [
        ("biz_1/beta", "not yet applied to staging"),
        ("biz_1/delta", "not yet applied to staging"),
        ("biz_1/epsilon", "not yet applied to staging"),
    ]
    assert [(d.entry.address, d.why) for d in plan.not_declared] == [
        ("biz_1/gamma", "not declared for staging: created directly in production")
    ]
    assert (plan.has_changes, plan.exit_code(detailed=True)) == (True, 2)
    # Without staging's manifests (they did not load), every create is staging's, as before.
    unknown = dataclasses.replace(prev, declared=None)
    plan = hold_back(create_plan(manifests, None, "https://p.example.test"), unknown)
    assert [entry.address for entry in plan.to_apply] == ["biz_1/alpha"]
    assert plan.not_declared == ()


def test_a_held_back_create_is_no_change_and_the_saved_plan_keeps_the_filter(
    tmp_path: Path,
) -> None:
    manifests = [dataclasses.replace(manifest("beta", "beta"), document_digest="doc-beta")]
    plan = hold_back(
        create_plan(manifests, None, "https://p.example.test"),
        Record("staging", documented("staging", "alpha", "doc-alpha")),
    )
    assert (plan.to_apply, plan.has_changes, plan.exit_code(detailed=True)) == ([], False, 0)
    saved = tmp_path / "plan.json"
    save_plan(saved, PlanReport(plan, "production.lock", environment="production"))
    document = json.loads(saved.read_text(encoding="utf-8"))
    assert document["after"] == {
        "environment": "staging",
        "held_back": [
            {
                "address": "biz_1/beta",
                "action": "create",
                "source": "triggers/beta.yaml:3",
                "reason": "not yet applied to staging",
            }
        ],
        "not_declared": [],
    }
    loaded = load_saved_plan(saved)
    assert (loaded.after, loaded.held_back) == (
        "staging",
        {"biz_1/beta": "not yet applied to staging"},
    )


@pytest.mark.parametrize(
    ("environment", "after", "message"),
    [
        (
            "production",
            "prod",
            "--after prod: pfsync.yaml defines no such environment; its environments are "
            "production, staging",
        ),
        (
            "production",
            "production",
            "--after production names the environment being planned: name the environment "
            "before it (the one this environment's creates must already be in)",
        ),
        (
            "production",
            "staging",
            "--after staging: environment staging has no record yet (staging.lock does not "
            "exist): apply staging first; nothing was sent",
        ),
    ],
)
def test_prev_must_be_another_environment_with_a_record(
    tmp_path: Path, environment: str, after: str, message: str
) -> None:
    root = write_repo(tmp_path / "repo", "https://s.example.test", "https://p.example.test")
    config = load_config(cwd=root, environment=environment)
    with pytest.raises(PlanError) as raised:
        previous_record(config, after)
    assert str(raised.value) == message


def test_what_prev_declares_is_read_from_its_own_manifests_and_unknown_when_they_do_not_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pfsync.state.lockfile import save_lockfile

    root = write_repo(tmp_path / "repo", "https://s.example.test", "https://p.example.test")
    save_lockfile(root / "staging.lock", None, Lockfile.new("https://s.example.test", "staging"))
    monkeypatch.chdir(root)
    config = load_config(cwd=root, environment="production")
    # Production's documents are staging's: their digests are taken before values are substituted.
    documents = {t.document_digest or "" for t in load_manifests(config, cwd=root).manifests}
    prev = previous_record(config, "staging")
    assert (prev.declared, prev.receiving, prev.warnings) == (
        Declared(frozenset(documents), frozenset({"alpha", "beta"})),
        "production",
        (),
    )
    # A value staging lacks: its manifests do not load, so nothing counts as undeclared.
    (root / "triggers" / "beta.yaml").write_text(
        MANIFEST.format(key="beta", name="${values.missing}"), encoding="utf-8"
    )
    prev = previous_record(config, "staging")
    assert (prev.declared, prev.warnings) == (
        None,
        (
            "--after staging: the manifests of environment staging do not load (`pfsync -e "
            "staging validate` says why), so every create staging's record does not hold is "
            "held back",
        ),
    )


def test_the_comment_lists_what_prev_does_not_declare_under_its_own_heading() -> None:
    from pfsync.plan.render.markdown import render_markdown

    manifests = [
        dataclasses.replace(manifest(key, key), document_digest=f"doc-{key}")
        for key in ("beta", "gamma")
    ]
    declared = Declared(frozenset({"doc-beta"}), frozenset({"beta"}))
    plan = hold_back(
        create_plan(manifests, None, "https://p.example.test"),
        Record("staging", documented("staging", "alpha", "doc-alpha"), (), declared, "production"),
    )
    report = PlanReport(plan, "production.lock", environment="production")
    markdown = render_markdown(report)
    assert markdown.split("\n\n")[2:4] == [
        "1 create is held back by --after `staging`: not sent, and not counted above (listed "
        "below).",
        "1 create is not declared for `staging` at all: not held back by --after, created "
        "directly (listed below).",
    ]
    assert markdown.endswith(
        "<details><summary>= 1 held back by --after `staging` (not sent)</summary>\n"
        "\n"
        "- `biz_1/beta` create · source `triggers/beta.yaml:3`: not yet applied to staging\n"
        "\n"
        "</details>\n"
        "\n"
        "<details><summary>+ 1 not declared for `staging` (sent)</summary>\n"
        "\n"
        "- `biz_1/gamma` create · source `triggers/gamma.yaml:3`: not declared for staging: "
        "created directly in production\n"
        "\n"
        "</details>\n"
        "\n"
    )


# -- end to end: the installed pfsync against two sandboxes -----------------------------------


# production's text plan before its first apply, up to its first entry (the API as <URL>)
PRODUCTION_HEADER = (
    "Environment: production\n"
    "Business: biz_1\n"
    "API: <URL>\n"
    "Lockfile: production.lock does not exist yet: every declared trigger is a create.\n"
    + NOT_A_REPOSITORY
    + "\n"
)


def test_production_gets_nothing_for_an_address_staging_created_from_another_body(
    tmp_path: Path, make_sandbox: MakeSandbox, run_pfsync: RunPfsync
) -> None:
    staging, production = make_sandbox(), make_sandbox()
    root = write_repo(tmp_path / "repo", staging.url, production.url)
    env = {"PFSYNC_USERNAME": "sandbox", "PFSYNC_PASSWORD": "sandbox"}
    first = run_pfsync(
        "-e", "staging", "apply", "--auto-approve", "--new-lockfile", "--target", "biz_1/alpha",
        cwd=root, env=env,
    )  # fmt: skip
    assert first.code == 0, first
    write_manifest(root, "alpha", "Alpha B")  # main now has body B; staging has A
    write_manifest(root, "gamma", "Gamma")  # not in staging at all

    planned = run_pfsync("-e", "production", "plan", "--after", "staging", cwd=root)
    assert planned.normalised(URL=production.url) == (
        0,
        PRODUCTION_HEADER + "Held back by --after staging (not sent; not counted as changes):\n"
        "  biz_1/alpha  create  triggers/alpha.yaml:3: applied to staging from another "
        "version of the manifest\n"
        "  biz_1/beta  create  triggers/beta.yaml:3: not yet applied to staging\n"
        "  biz_1/gamma  create  triggers/gamma.yaml:3: not yet applied to staging\n"
        "\n"
        "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "0 unchanged.\n",
        "",
    )
    detailed = run_pfsync(
        "-e", "production", "plan", "--after", "staging", "--detailed-exitcode", cwd=root
    )
    assert detailed.code == 0, detailed
    applied = run_pfsync(*APPLY_PRODUCTION_AFTER_STAGING, cwd=root, env=env)
    assert (applied.code, applied.err) == (
        0,
        "Apply (production): 0 created, 0 failed, 0 uncertain. Needs a person: 0 update, "
        "0 delete, 0 uncertain. Held back by --after staging: 3 (not sent).\n",
    )
    assert posts(production) == []

    # Staging receives body B and beta; then production gets exactly those two, as staging has
    # them, and still not gamma.
    write_manifest(root, "gamma", "Gamma")
    (root / "triggers" / "gamma.yaml").unlink()
    again = run_pfsync("-e", "staging", "apply", "--auto-approve", cwd=root, env=env)
    assert again.code == 3, again  # alpha is an update in staging: a person's
    assert sorted(t["name"] for t in staging.triggers("biz_1")) == ["Alpha", "Beta"]
    assert len(posts(staging)) == 2
    write_manifest(root, "gamma", "Gamma")
    promoted = run_pfsync(
        "-e", "production", "plan", "--after", "staging", "--out", "plan.json",
        cwd=root,
    )  # fmt: skip
    assert promoted.code == 0, promoted
    assert promoted.err == (
        "Saved the plan to plan.json; apply it with `pfsync -e production apply plan.json`.\n"
    )
    applied = run_pfsync("-e", "production", "apply", "plan.json", cwd=root, env=env)
    assert applied.normalised() == (
        0,
        applied.out,
        "biz_1/beta: created <ID>\n"
        "Apply (production): 1 created, 0 failed, 0 uncertain. Needs a person: 0 update, "
        "0 delete, 0 uncertain. Held back by --after staging: 2 (not sent).\n",
    )
    assert [t["name"] for t in production.triggers("biz_1")] == ["Beta"]
    assert len(posts(production)) == 1
    recorded = json.loads((root / "production.lock").read_text(encoding="utf-8"))["triggers"]
    assert sorted(recorded) == ["biz_1/beta"]
    assert recorded["biz_1/beta"]["body"]["steps"][0]["email_template_id"] == "et_prd"
    # Through the journal into each record: the same document, whatever each one's values.
    in_staging = json.loads((root / "staging.lock").read_text(encoding="utf-8"))["triggers"]
    assert recorded["biz_1/beta"]["document_digest"].startswith("sha256:")
    assert recorded["biz_1/beta"]["document_digest"] == in_staging["biz_1/beta"]["document_digest"]


def test_an_unreadable_prev_record_sends_nothing(
    tmp_path: Path, make_sandbox: MakeSandbox, run_pfsync: RunPfsync
) -> None:
    production = make_sandbox()
    root = write_repo(tmp_path / "repo", "https://s.example.test", production.url)
    (root / "staging.lock").write_text("{", encoding="utf-8")
    env = {"PFSYNC_USERNAME": "sandbox", "PFSYNC_PASSWORD": "sandbox"}
    applied = run_pfsync(*APPLY_PRODUCTION_AFTER_STAGING, cwd=root, env=env)
    assert (applied.code, applied.out, applied.err) == (
        1,
        "",
        "Error: --after staging: cannot read the record of environment staging: the lockfile "
        "staging.lock is not valid JSON (Expecting property name enclosed in double quotes "
        "at line 1, column 2). pfsync never overwrites a lockfile it "
        "cannot trust: restore it from git (git checkout -- staging.lock) or repair it, then "
        "run again; nothing was sent\n",
    )
    assert posts(production) == []
    assert not (root / "production.lock").exists()


def test_an_uncertain_create_found_and_imported_keeps_the_document_it_was_created_from() -> None:
    from pfsync.state.changes import record_import
    from pfsync.state.trigger_records import PendingCreate

    sent = dataclasses.replace(manifest("alpha", "alpha"), document_digest="doc-alpha")
    pending = PendingCreate(sent, LINEAGE, "2026-01-01T00:00:00Z", "read timeout")
    lockfile = Lockfile(LINEAGE, 3, "https://s.example.test", pending={sent.address: pending})

    def imported(name: str) -> str | None:
        spec = manifest("alpha", name).body
        after = record_import(lockfile, sent.address, "trg_1", spec, 0, "t.yaml", "now", False)
        return after.triggers[sent.address].document_digest

    assert imported("alpha") == "doc-alpha"  # the body that create sent: promotable
    assert imported("edited since") is None  # another body: not what was created


def test_the_pull_request_comment_says_what_is_held_back_and_why() -> None:
    from pfsync.plan.render.markdown import render_markdown

    manifests = [dataclasses.replace(manifest("beta", "beta"), document_digest="doc-beta")]
    plan = hold_back(
        create_plan(manifests, None, "https://p.example.test"),
        Record("staging", documented("staging", "alpha", "doc-alpha")),
    )
    report = PlanReport(plan, "production.lock", environment="production")
    assert render_markdown(report) == (
        "**Plan: 0 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "0 unchanged.**\n"
        "\n"
        "Environment `production` · Business `biz_1` · API `https://p.example.test` · lockfile "
        "`production.lock` does not exist yet\n"
        "\n"
        "1 create is held back by --after `staging`: not sent, and not counted above (listed "
        "below).\n"
        "\n"
        "<details><summary>= 1 held back by --after `staging` (not sent)</summary>\n"
        "\n"
        "- `biz_1/beta` create · source `triggers/beta.yaml:3`: not yet applied to staging\n"
        "\n"
        "</details>\n"
        "\n"
    )


def created(key: str, name: str, folder: str) -> str:
    """The text plan's create of `key` in production, and a blank line."""
    return (
        f"+ biz_1/{key}  create  {folder}/{key}.yaml:3\n"
        f'      $.spec.name: "{name}"\n'
        '      $.spec.project_defined_event: "pde_signup"\n'
        '      $.spec.steps[0].type: "email"\n'
        '      $.spec.steps[0].email_template_id: "et_prd"\n'
        "\n"
    )


def test_production_creates_directly_what_staging_never_declares(
    tmp_path: Path,
    make_sandbox: MakeSandbox,
    run_pfsync: RunPfsync,
    run_pfsync_subprocess: RunPfsync,
) -> None:
    # The layout docs/environments.md recommends: only production's globs include only/production/.
    staging, production = make_sandbox(), make_sandbox()
    root = write_repo(tmp_path / "repo", staging.url, production.url)
    config = (root / "pfsync.yaml").read_text(encoding="utf-8")
    (root / "pfsync.yaml").write_text(
        config.replace(
            "    lockfile: production.lock\n",
            "    lockfile: production.lock\n"
            '    manifests: ["triggers/**/*.yaml", "only/production/**/*.yaml"]\n',
        ),
        encoding="utf-8",
    )
    (root / "only" / "production").mkdir(parents=True)
    (root / "only" / "production" / "gamma.yaml").write_text(
        MANIFEST.format(key="gamma", name="Gamma"), encoding="utf-8"
    )
    env = {"PFSYNC_USERNAME": "sandbox", "PFSYNC_PASSWORD": "sandbox"}
    first = run_pfsync(
        "-e", "staging", "apply", "--auto-approve", "--new-lockfile", cwd=root, env=env
    )
    assert first.code == 0, first
    write_manifest(root, "delta", "Delta")  # shared, and not yet in staging: held back

    planned = run_pfsync_subprocess(
        "-e", "production", "plan", "--after", "staging", "--out", "plan.json", cwd=root
    )
    assert planned.normalised(URL=production.url) == (
        0,
        PRODUCTION_HEADER
        + created("alpha", "Alpha", "triggers")
        + created("beta", "Beta", "triggers")
        + created("gamma", "Gamma", "only/production")
        + "Held back by --after staging (not sent; not counted as changes):\n"
        "  biz_1/delta  create  triggers/delta.yaml:3: not yet applied to staging\n"
        "\n"
        "Not held back by --after staging (staging's manifests do not declare it):\n"
        "  biz_1/gamma  create  only/production/gamma.yaml:3: not declared for staging: "
        "created directly in production\n"
        "\n"
        "Plan: 3 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "0 unchanged.\n",
        "Saved the plan to plan.json; apply it with `pfsync -e production apply plan.json`.\n",
    )
    saved = json.loads((root / "plan.json").read_text(encoding="utf-8"))["after"]
    assert saved["not_declared"] == [
        {
            "address": "biz_1/gamma",
            "action": "create",
            "source": "only/production/gamma.yaml:3",
            "reason": "not declared for staging: created directly in production",
        }
    ]
    applied = run_pfsync_subprocess(
        "-e", "production", "apply", "plan.json", "--new-lockfile", "--parallelism", "1",
        "--summary", "summary.md", cwd=root, env=env,
    )  # fmt: skip
    assert applied.normalised() == (
        0,
        applied.out,
        "biz_1/alpha: created <ID>\n"
        "biz_1/beta: created <ID>\n"
        "biz_1/gamma: created <ID>\n"
        "Apply (production): 3 created, 0 failed, 0 uncertain. Needs a person: 0 update, "
        "0 delete, 0 uncertain. Held back by --after staging: 1 (not sent). Not declared for "
        "staging: 1 (created directly).\n",
    )
    assert (
        (root / "summary.md")
        .read_text(encoding="utf-8")
        .endswith(
            "#### Held back by --after `staging` (not sent)\n"
            "\n"
            "- `biz_1/delta` create · source `triggers/delta.yaml:3`: not yet applied to staging\n"
            "\n"
            "#### Not declared for `staging` (sent directly)\n"
            "\n"
            "- `biz_1/gamma` create · source `only/production/gamma.yaml:3`: not declared for "
            "staging: created directly in production\n"
            "\n"
        )
    )
    assert sorted(t["name"] for t in production.triggers("biz_1")) == ["Alpha", "Beta", "Gamma"]
    assert len(posts(production)) == 3
    assert len(posts(staging)) == 2


def test_apply_warns_when_prev_manifests_do_not_load_and_holds_back_as_before(
    tmp_path: Path, make_sandbox: MakeSandbox, run_pfsync: RunPfsync
) -> None:
    from pfsync.state.lockfile import save_lockfile

    production = make_sandbox()
    root = write_repo(tmp_path / "repo", "https://s.example.test", production.url)
    save_lockfile(root / "staging.lock", None, Lockfile.new("https://s.example.test", "staging"))
    (root / "pfsync.yaml").write_text(
        (root / "pfsync.yaml")
        .read_text(encoding="utf-8")
        .replace("{template: et_prd}", "{template: et_prd, only: x}"),
        encoding="utf-8",
    )
    (root / "triggers" / "beta.yaml").write_text(
        MANIFEST.format(key="beta", name="${values.only}"), encoding="utf-8"
    )
    env = {"PFSYNC_USERNAME": "sandbox", "PFSYNC_PASSWORD": "sandbox"}
    applied = run_pfsync(*APPLY_PRODUCTION_AFTER_STAGING, cwd=root, env=env)
    assert (applied.code, applied.err) == (
        0,
        "Warning: --after staging: the manifests of environment staging do not load (`pfsync "
        "-e staging validate` says why), so every create staging's record does not hold is held "
        "back\n"
        "Apply (production): 0 created, 0 failed, 0 uncertain. Needs a person: 0 update, "
        "0 delete, 0 uncertain. Held back by --after staging: 2 (not sent).\n",
    )
    assert posts(production) == []
