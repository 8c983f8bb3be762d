"""`pfsync init` and `pfsync schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import REPO, RunPfsync


def test_init_then_validate_and_plan_work_without_edits(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    run = run_pfsync("init", "repo", "--business", "biz_new", cwd=tmp_path)
    assert run.code == 0, run
    assert run.out == (
        "wrote repo/pfsync.yaml\n"
        "wrote repo/manifest.schema.json\n"
        "wrote repo/triggers/welcome-series.yaml\n"
        "wrote repo/pfsync.lock (empty: no trigger created yet)\n"
        "created repo/.gitignore\n"
    )
    repo = tmp_path / "repo"
    assert (repo / ".gitignore").read_text().splitlines()[1:] == [
        "pfsync.lock.journal",
        "pfsync.lock.lck",
        ".pfsync/",
    ]
    validate = run_pfsync("validate", cwd=repo)
    assert (validate.code, validate.out, validate.err) == (0, "", "1 trigger(s) valid.\n")
    plan = run_pfsync("plan", "--detailed-exitcode", cwd=repo)
    assert plan.code == 2, plan
    assert "+ biz_new/welcome-series  create" in plan.out
    lock = json.loads((repo / "pfsync.lock").read_text())
    assert (lock["api_url"], lock["triggers"]) == ("https://api.pocketflows.com", {})


def test_init_refuses_to_overwrite_and_never_replaces_a_lockfile(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    assert run_pfsync("init", ".", cwd=tmp_path).code == 0
    lockfile = (tmp_path / "pfsync.lock").read_bytes()
    again = run_pfsync("init", ".", cwd=tmp_path)
    assert (again.code, again.out) == (1, "")
    assert again.err == (
        "Error: refusing to overwrite pfsync.yaml, manifest.schema.json, "
        "triggers/welcome-series.yaml in .; pass --force to overwrite\n"
    )
    forced = run_pfsync("init", ".", "--force", cwd=tmp_path)
    assert forced.code == 0, forced
    assert "kept pfsync.lock (an existing lockfile is never overwritten)" in forced.out
    assert (tmp_path / "pfsync.lock").read_bytes() == lockfile


GIT_STATE_LINE = (
    "state: {store: git, branch: main}   "
    "# CI pushes the lockfile itself (see the docs on state stores)"
)


def test_init_writes_ci_recipes_with_the_git_state_store(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    import yaml

    run = run_pfsync("init", ".", "--ci", "github", cwd=tmp_path)
    assert run.code == 0, run
    workflows = sorted(p.name for p in (tmp_path / ".github" / "workflows").iterdir())
    assert workflows == ["pfsync-apply.yml", "pfsync-comment.yml", "pfsync-plan.yml"]
    recipes = REPO / "examples" / "ci"
    for name in workflows:
        assert (tmp_path / ".github" / "workflows" / name).read_bytes() == (
            recipes / "github" / ".github" / "workflows" / name
        ).read_bytes()
    # The recipes have no push step: CI's apply pushes the lockfile through the git store.
    config = (tmp_path / "pfsync.yaml").read_text()
    assert config.splitlines()[-1] == GIT_STATE_LINE
    assert yaml.safe_load(config)["state"] == {"store": "git", "branch": "main"}
    assert run.err.splitlines()[-1] == (
        "CI: set the secrets PFSYNC_USERNAME and PFSYNC_PASSWORD (environment pfsync) for the "
        'apply job; pin PFSYNC_PIP_SPEC to a pfsync release (see the pfsync docs, "CI recipes").'
    )
    run = run_pfsync("init", "gl", "--ci", "gitlab", cwd=tmp_path)
    assert run.code == 0, run
    assert (tmp_path / "gl" / ".gitlab-ci.yml").read_bytes() == (
        recipes / "gitlab" / ".gitlab-ci.yml"
    ).read_bytes()
    assert (tmp_path / "gl" / "pfsync.yaml").read_text().splitlines()[-1] == GIT_STATE_LINE
    assert "PFSYNC_PUSH_TOKEN" in run.err.splitlines()[-1]


def test_init_without_ci_keeps_the_file_state_store(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    import yaml

    assert run_pfsync("init", ".", cwd=tmp_path).code == 0
    assert "state" not in yaml.safe_load((tmp_path / "pfsync.yaml").read_text())
    assert not (tmp_path / ".github").exists()


def test_init_with_ci_then_validate_works(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    assert run_pfsync("init", ".", "--ci", "github", cwd=tmp_path).code == 0
    validate = run_pfsync("validate", cwd=tmp_path)
    assert (validate.code, validate.out, validate.err) == (0, "", "1 trigger(s) valid.\n")


def test_init_rejects_bad_values(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    run = run_pfsync("init", ".", "--api-url", "http://api.example.com", cwd=tmp_path)
    assert run.code == 1
    assert "refusing plain http://" in run.err
    assert not (tmp_path / "pfsync.yaml").exists()


def test_schema_prints_a_self_contained_manifest_schema(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    from jsonschema import Draft202012Validator

    run = run_pfsync("schema", cwd=tmp_path)
    assert run.code == 0 and run.err == ""
    schema = json.loads(run.out)
    Draft202012Validator.check_schema(schema)
    assert "$ref" not in json.dumps(schema).replace('"$ref": "#/properties/spec/$defs/step"', "")
    validator = Draft202012Validator(schema)
    good: dict[str, Any] = {
        "apiVersion": "pfsync/v1",
        "kind": "Trigger",
        "key": "k",
        "spec": {"name": "n", "project_defined_event": "p", "steps": [{"type": "email"}]},
    }
    assert validator.is_valid(good)
    bad = {**good, "spec": {**good["spec"], "steps": [{"tipe": "email"}]}}
    assert not validator.is_valid(bad)
    trigger = run_pfsync("schema", "--name", "trigger", cwd=tmp_path)
    assert json.loads(trigger.out) == json.loads(
        (REPO / "schemas" / "trigger.schema.json").read_text()
    )


def test_init_says_created_for_a_new_gitignore_and_updated_for_an_existing_one(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    fresh = run_pfsync("init", "fresh", cwd=tmp_path)
    assert fresh.code == 0, fresh
    assert fresh.out.splitlines()[-1] == "created fresh/.gitignore"
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / ".gitignore").write_text("*.pyc\n")
    kept = run_pfsync("init", "kept", cwd=tmp_path)
    assert kept.code == 0, kept
    assert kept.out.splitlines()[-1] == "updated kept/.gitignore"
    assert (tmp_path / "kept" / ".gitignore").read_text().splitlines()[0] == "*.pyc"


def schema_path(manifest: Path) -> Path:
    """Where a manifest's `# yaml-language-server: $schema=…` first line points."""
    first = manifest.read_text(encoding="utf-8").splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix), (manifest, first)
    return (manifest.parent / first.removeprefix(prefix)).resolve()


def test_the_manifest_init_writes_points_at_the_schema_init_writes(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    run = run_pfsync("init", "repo", cwd=tmp_path)
    assert run.code == 0, run
    repo = (tmp_path / "repo").resolve()
    assert schema_path(repo / "triggers" / "welcome-series.yaml") == repo / "manifest.schema.json"
    schema = json.loads((repo / "manifest.schema.json").read_text())
    assert schema == json.loads(run_pfsync("schema").out)


def test_the_example_manifests_point_at_the_repository_schema() -> None:
    manifests = sorted((REPO / "examples" / "triggers").glob("*.yaml"))
    assert manifests
    for manifest in manifests:
        assert schema_path(manifest) == (REPO / "schemas" / "manifest.schema.json").resolve()
