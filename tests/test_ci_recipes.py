"""The CI recipes in examples/ci: schemas, zizmor and actionlint (all offline), and their safety
settings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO

CI = REPO / "examples" / "ci"
WORKFLOWS = CI / "github" / ".github" / "workflows"
GITLAB = CI / "gitlab" / ".gitlab-ci.yml"
BIN = Path(sys.executable).parent
CHECKER = BIN / "check-jsonschema"

# A release tag or a full commit of pfsync's repository; never a bare (unpinned) install.
PIP_SPEC = re.compile(
    r"pfsync @ git\+https://github\.com/pocketflows-tools/pfsync@(v\d+\.\d+\.\d+|[0-9a-f]{40})"
)
# owner/repo[/path]@<40-hex commit> # v<version>
PINNED_USES = re.compile(
    r"^\s*(- )?uses: [\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d+\.\d+\.\d+$"
)


def workflow(name: str) -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean true.
    return {"on" if key is True else str(key): value for key, value in loaded.items()}


def all_workflows() -> list[Path]:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["pfsync-apply.yml", "pfsync-comment.yml", "pfsync-plan.yml"]
    return files


def steps_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in document["jobs"].values() for step in job["steps"]]


def gitlab() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(GITLAB.read_text())
    return document


@pytest.mark.parametrize(
    ("schema", "files"),
    [
        ("vendor.github-workflows", sorted(WORKFLOWS.glob("*.yml"))),
        ("vendor.gitlab-ci", [GITLAB]),
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


def test_zizmor_finds_nothing_offline() -> None:
    # --offline: no GitHub API calls; --no-config: only the inline ignore comments count.
    proc = subprocess.run(
        [
            str(BIN / "zizmor"),
            "--offline",
            "--no-config",
            "--no-progress",
            "--format",
            "json",
            *map(str, all_workflows()),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert (proc.returncode, proc.stdout.strip()) == (0, "[]"), proc.stdout + proc.stderr
    assert " WARN " not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr


def test_zizmor_ignores_are_only_the_two_justified_ones() -> None:
    ignores = {
        path.name: re.findall(r"# zizmor: ignore\[([\w-]+)\] \S.*$", path.read_text(), re.M)
        for path in all_workflows()
    }
    assert ignores == {
        "pfsync-apply.yml": ["artipacked"],
        "pfsync-comment.yml": ["dangerous-triggers"],
        "pfsync-plan.yml": [],
    }
    # Every action is pinned by commit, so no zizmor configuration (unpinned-uses policy) exists.
    assert not list(CI.rglob("zizmor.y*ml"))


def test_actionlint_finds_nothing() -> None:
    proc = subprocess.run(
        [str(BIN / "actionlint"), "-no-color", *map(str, all_workflows())],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_every_action_is_pinned_by_commit_with_its_version() -> None:
    for path in all_workflows():
        lines = [line for line in path.read_text().splitlines() if "uses:" in line]
        assert lines, path
        for line in lines:
            assert PINNED_USES.match(line), f"{path.name}: {line.strip()}"
        assert len(lines) == sum(1 for s in steps_of(workflow(path.name)) if "uses" in s)


def test_no_expression_is_expanded_inside_a_script() -> None:
    for path in all_workflows():
        for step in steps_of(workflow(path.name)):
            assert "${{" not in step.get("run", ""), (path.name, step)
            assert "${{" not in step.get("with", {}).get("script", ""), (path.name, step)


def test_least_permissions() -> None:
    expected = {
        "pfsync-plan.yml": {"plan": {"contents": "read"}},
        "pfsync-comment.yml": {"comment": {"actions": "read", "pull-requests": "write"}},
        "pfsync-apply.yml": {"apply": {"contents": "write"}},
    }
    for path in all_workflows():
        document = workflow(path.name)
        assert document["permissions"] == {}, path.name
        jobs = {name: job["permissions"] for name, job in document["jobs"].items()}
        assert jobs == expected[path.name]


def checkouts(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in steps_of(document) if s.get("uses", "").startswith("actions/checkout@")]


def test_credentials_persist_only_where_pfsync_pushes() -> None:
    [plan_checkout] = checkouts(workflow("pfsync-plan.yml"))
    assert plan_checkout["with"] == {"fetch-depth": 0, "persist-credentials": False}
    assert checkouts(workflow("pfsync-comment.yml")) == []
    [apply_checkout] = checkouts(workflow("pfsync-apply.yml"))
    assert apply_checkout["with"]["persist-credentials"] is True
    assert (
        "persist-credentials: true # zizmor: ignore[artipacked]"
        in (WORKFLOWS / "pfsync-apply.yml").read_text()
    )


def test_apply_workflow_keeps_its_safety_settings_and_leaves_the_push_to_pfsync() -> None:
    apply = workflow("pfsync-apply.yml")
    assert apply["on"] == {"push": {"branches": ["main"]}}
    assert apply["concurrency"] == {"group": "pfsync-apply", "cancel-in-progress": False}
    job = apply["jobs"]["apply"]
    assert job["environment"] == "pfsync"
    steps = job["steps"]
    assert steps[0]["with"]["ref"] == "${{ github.ref_name }}"
    assert steps[0]["with"]["fetch-depth"] == 0
    runs = [step["run"] for step in steps if "run" in step]
    assert runs == ['python -m pip install "$PFSYNC_PIP_SPEC"', "pfsync apply --auto-approve"]
    for run in runs:
        assert "git push" not in run and "git commit" not in run
    # The lockfile lives in git now: nothing in this job uploads anything.
    assert not [s for s in steps if "upload-artifact" in s.get("uses", "")]
    assert [s.get("if") for s in steps] == [None] * len(steps)
    apply_step = steps[-1]
    assert apply_step["env"] == {
        "PFSYNC_USERNAME": "${{ secrets.PFSYNC_USERNAME }}",
        "PFSYNC_PASSWORD": "${{ secrets.PFSYNC_PASSWORD }}",
    }


def test_plan_workflow_uses_no_secrets_and_keeps_the_base_plan() -> None:
    plan = workflow("pfsync-plan.yml")
    assert "secrets" not in str(plan)
    assert plan["on"] == {"pull_request": None}
    runs = "\n".join(s.get("run", "") for s in steps_of(plan))
    assert "pfsync validate --format github" in runs
    assert 'pfsync -C "$RUNNER_TEMP/base" plan --format json' in runs
    assert "--detailed-exitcode" in runs and '--base-plan "$RUNNER_TEMP/base-plan.json"' in runs
    [upload] = [s for s in steps_of(plan) if "upload-artifact" in s.get("uses", "")]
    assert upload["with"]["name"] == "pfsync-plan"
    assert upload["with"]["path"].splitlines() == [
        "${{ runner.temp }}/pfsync-plan/plan.md",
        "${{ runner.temp }}/pfsync-plan/pr-number.txt",
    ]
    [fail] = [s for s in steps_of(plan) if "exit 1" in s.get("run", "")]
    assert fail["if"] == "steps.plan.outputs.code != '0' && steps.plan.outputs.code != '2'"


def test_comment_workflow_treats_the_artifact_as_data() -> None:
    comment = workflow("pfsync-comment.yml")
    assert comment["on"] == {"workflow_run": {"workflows": ["pfsync plan"], "types": ["completed"]}}
    text = (WORKFLOWS / "pfsync-comment.yml").read_text()
    assert "secrets." not in text
    [download, post] = steps_of(comment)
    assert download["uses"].startswith("actions/download-artifact@")
    assert download["with"]["path"] == "${{ runner.temp }}/pfsync-plan"
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    assert post["uses"].startswith("actions/github-script@")
    script = post["with"]["script"]
    assert "/^[0-9]{1,10}$/.test(number)" in script
    assert "pr.head.sha !== run.head_sha" in script
    for forbidden in ("eval(", "Function(", "child_process", "exec(", "execSync", "require(file"):
        assert forbidden not in script


def test_pfsync_is_installed_pinned_from_its_repository() -> None:
    installing = ["pfsync-apply.yml", "pfsync-plan.yml"]
    specs = [workflow(name)["env"]["PFSYNC_PIP_SPEC"] for name in installing]
    specs.append(gitlab()["variables"]["PFSYNC_PIP_SPEC"])
    for spec in specs:
        assert PIP_SPEC.fullmatch(spec), spec
    assert "pip" not in (WORKFLOWS / "pfsync-comment.yml").read_text()
    for path in [*(WORKFLOWS / name for name in installing), GITLAB]:
        text = path.read_text()
        assert "pip install pfsync" not in text and "pip install --quiet pfsync" not in text
        installs = [line for line in text.splitlines() if "pip install" in line]
        assert installs and all(line.endswith('"$PFSYNC_PIP_SPEC"') for line in installs)
        assert "README" in text  # the comment saying where to find the repository to pin


def test_gitlab_recipe() -> None:
    document = gitlab()
    plan, apply = document["pfsync-plan"], document["pfsync-apply"]
    assert plan["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert "PFSYNC_" not in "\n".join(plan["script"]).replace("$PFSYNC_PIP_SPEC", "")
    assert any("--base-plan /tmp/base-plan.json" in line for line in plan["script"])
    assert apply["rules"] == [
        {"if": '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "push"'}
    ]
    assert (apply["resource_group"], apply["interruptible"]) == ("pfsync-apply", False)
    assert "artifacts" not in apply
    script = apply["script"]
    assert script[:2] == [
        '[ -n "$PFSYNC_PUSH_TOKEN" ] || { echo "PFSYNC_PUSH_TOKEN is not set"; exit 1; }',
        'git remote set-url origin "https://oauth2:${PFSYNC_PUSH_TOKEN}@${CI_SERVER_HOST}/'
        '${CI_PROJECT_PATH}.git"',
    ]
    assert script[-1] == "pfsync apply --auto-approve"
    for line in [*script, *document["default"]["before_script"]]:
        assert "git push" not in line and "git commit" not in line


def test_pre_commit_hook_definition() -> None:
    [hook] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "pfsync-validate"
    assert hook["entry"] == "pfsync validate"
    pattern = re.compile(hook["files"])
    assert pattern.search("triggers/a.yaml") and pattern.search("x/triggers/b/c.yml")
    assert not pattern.search("pfsync.yaml")


def test_pre_commit_accepts_the_hook_manifest() -> None:
    pre_commit = BIN / "pre-commit"
    proc = subprocess.run(
        [str(pre_commit), "validate-manifest", str(REPO / ".pre-commit-hooks.yaml")],
        capture_output=True,
        text=True,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
