"""The CI recipes in examples/ci pass the workflow schemas check-jsonschema vendors (offline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

CI = REPO / "examples" / "ci"
CHECKER = Path(sys.executable).parent / "check-jsonschema"


@pytest.mark.parametrize(
    ("schema", "files"),
    [
        (
            "vendor.github-workflows",
            sorted((CI / "github" / ".github" / "workflows").glob("*.yml")),
        ),
        ("vendor.gitlab-ci", [CI / "gitlab" / ".gitlab-ci.yml"]),
    ],
)
def test_recipes_match_vendored_schemas(schema: str, files: list[Path]) -> None:
    assert files
    proc = subprocess.run(
        [str(CHECKER), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_apply_workflow_keeps_its_safety_settings() -> None:
    import yaml

    workflow = yaml.safe_load(
        (CI / "github" / ".github" / "workflows" / "pfsync-apply.yml").read_text()
    )
    assert workflow["concurrency"] == {"group": "pfsync-apply", "cancel-in-progress": False}
    steps = workflow["jobs"]["apply"]["steps"]
    assert steps[0]["with"]["ref"] == "${{ github.ref_name }}"
    push = next(s for s in steps if s.get("id") == "push")
    assert push["if"] == "always()"
    assert "git push" in push["run"]
    plan = yaml.safe_load((CI / "github" / ".github" / "workflows" / "pfsync-plan.yml").read_text())
    assert "secrets" not in str(plan)


def test_pre_commit_hook_definition() -> None:
    import yaml

    [hook] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "pfsync-validate"
    assert hook["entry"] == "pfsync validate"
    import re

    pattern = re.compile(hook["files"])
    assert pattern.search("triggers/a.yaml") and pattern.search("x/triggers/b/c.yml")
    assert not pattern.search("pfsync.yaml")


def test_pre_commit_accepts_the_hook_manifest() -> None:
    pre_commit = Path(sys.executable).parent / "pre-commit"
    proc = subprocess.run(
        [str(pre_commit), "validate-manifest", str(REPO / ".pre-commit-hooks.yaml")],
        capture_output=True,
        text=True,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
