"""`pfsync init` and `pfsync schema`."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from project_helpers import NOT_A_REPOSITORY, init_example_create

from conftest import REPO, RunPfsync, clean_env, pfsync_executable
from git_helpers import GIT_ENV, git
from pfsync.sandbox import Sandbox

# `init .` says "Next: cd . && pfsync validate ...": the needless `cd . && ` is left out.


def wrote(directory: str, *ci_files: str, gitignore: str = "created") -> str:
    """What `pfsync init DIRECTORY` lists on stdout (`.` lists bare names)."""
    at = "" if directory == "." else directory + "/"
    files = ["pfsync.yaml", "manifest.schema.json", "triggers/welcome-series.yaml", *ci_files]
    return (
        "".join(f"wrote {at}{name}\n" for name in files)
        + f"wrote {at}pfsync.lock (empty: no trigger created yet)\n"
        + f"{gitignore} {at}.gitignore\n"
    )


def next_steps(directory: str, env: str = "", placeholder: bool = True, ci: bool = False) -> str:
    """What `pfsync init DIRECTORY` says on stderr (no `cd` into the current directory); without
    --business (a `placeholder`), plan is suggested with --sandbox, which runs with it. With
    --`ci` (the git state store, in a new directory) plan needs the repository pushed first."""
    cd = "" if directory == "." else f"cd {directory} && "
    shown_env = f"-e {env} " if env else ""
    if placeholder:
        then = (
            f"pfsync {shown_env}plan --sandbox   (set your business id in pfsync.yaml to plan "
            "against Pocketflows)"
        )
    elif ci:
        then = f"pfsync {shown_env}plan --sandbox"
    else:
        then = f"pfsync {shown_env}plan   (try an apply with `pfsync {shown_env}apply --sandbox`)"
    if not ci:
        return f"\nNext: {cd}pfsync validate && {then}\n"
    kept = "lockfiles" if env else "lockfile"
    return (
        f"\nNext: {cd}git init -b main && pfsync validate && {then}\n"
        f"Before `pfsync {shown_env}plan` against Pocketflows, push this repository to origin's "
        f"main, where the git state store keeps the {kept} (URL: your repository's): git add -A "
        '&& git commit -m "Start pfsync" && git remote add origin URL && git push -u origin main\n'
    )


GITHUB_WORKFLOWS = [
    ".github/workflows/pfsync-apply.yml",
    ".github/workflows/pfsync-comment.yml",
    ".github/workflows/pfsync-plan.yml",
]
GITHUB_SECRETS = (
    "CI: set the secrets PFSYNC_USERNAME and PFSYNC_PASSWORD (environment pfsync) for the "
    'apply job; pin PFSYNC_PIP_SPEC to a pfsync release (see the pfsync docs, "CI recipes").\n'
)


def test_init_then_validate_and_plan_work_without_edits(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    run = run_pfsync("init", "repo", "--business", "biz_new", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        0,
        "wrote repo/pfsync.yaml\n"
        "wrote repo/manifest.schema.json\n"
        "wrote repo/triggers/welcome-series.yaml\n"
        "wrote repo/pfsync.lock (empty: no trigger created yet)\n"
        "created repo/.gitignore\n",
        "\nNext: cd repo && pfsync validate && pfsync plan   (try an apply with "
        "`pfsync apply --sandbox`)\n",
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
    assert (plan.code, plan.out, plan.err) == (
        2,
        "Business: biz_new\n"
        "API: https://api.pocketflows.com\n"
        "Lockfile: pfsync.lock (serial 1)\n"
        + NOT_A_REPOSITORY
        + "\n"
        + init_example_create("biz_new"),
        "",
    )
    lock = json.loads((repo / "pfsync.lock").read_text())
    assert (lock["api_url"], lock["triggers"]) == ("https://api.pocketflows.com", {})


def test_init_refuses_to_overwrite_and_never_replaces_a_lockfile(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    first = run_pfsync("init", ".", cwd=tmp_path)
    assert first.normalised() == (0, wrote("."), next_steps("."))
    lockfile = (tmp_path / "pfsync.lock").read_bytes()
    again = run_pfsync("init", ".", cwd=tmp_path)
    assert (again.code, again.out, again.err) == (
        1,
        "",
        "Error: refusing to overwrite pfsync.yaml, manifest.schema.json, "
        "triggers/welcome-series.yaml in .; pass --force to overwrite\n",
    )
    forced = run_pfsync("init", ".", "--force", cwd=tmp_path)
    assert forced.normalised() == (
        0,
        "wrote pfsync.yaml\n"
        "wrote manifest.schema.json\n"
        "wrote triggers/welcome-series.yaml\n"
        "kept pfsync.lock (an existing lockfile is never overwritten)\n",
        next_steps("."),
    )
    assert (tmp_path / "pfsync.lock").read_bytes() == lockfile


# A business given: without one, init's placeholders would add a warning to every validate.
TWO_ENVIRONMENTS = ("--env", "staging", "--env", "production", "--business", "biz_acme")

GIT_STATE_LINE = (
    "state: {store: git, branch: main}   "
    "# CI pushes the lockfile itself (see the docs on state stores)"
)


def test_init_writes_ci_recipes_with_the_git_state_store(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    import yaml

    run = run_pfsync("init", ".", "--ci", "github", cwd=tmp_path)
    assert run.normalised() == (
        0,
        wrote(".", *GITHUB_WORKFLOWS),
        next_steps(".", ci=True) + GITHUB_SECRETS,
    )
    workflows = sorted(p.name for p in (tmp_path / ".github" / "workflows").iterdir())
    assert workflows == ["pfsync-apply.yml", "pfsync-comment.yml", "pfsync-plan.yml"]
    # Without environments: the one-environment recipes, unchanged.
    recipes = REPO / "examples" / "ci" / "one-environment"
    for name in workflows:
        assert (tmp_path / ".github" / "workflows" / name).read_bytes() == (
            recipes / "github" / ".github" / "workflows" / name
        ).read_bytes()
    # The recipes have no push step: CI's apply pushes the lockfile through the git store.
    config = (tmp_path / "pfsync.yaml").read_text()
    assert config.splitlines()[-1] == GIT_STATE_LINE
    assert yaml.safe_load(config)["state"] == {"store": "git", "branch": "main"}
    run = run_pfsync("init", "gl", "--ci", "gitlab", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        0,
        wrote("gl", ".gitlab-ci.yml"),
        next_steps("gl", ci=True) + "CI: set the variables PFSYNC_USERNAME, PFSYNC_PASSWORD and "
        "PFSYNC_PUSH_TOKEN for the apply job; pin PFSYNC_PIP_SPEC to a pfsync release (see the "
        'pfsync docs, "CI recipes").\n',
    )
    assert (tmp_path / "gl" / ".gitlab-ci.yml").read_bytes() == (
        recipes / "gitlab" / ".gitlab-ci.yml"
    ).read_bytes()
    assert (tmp_path / "gl" / "pfsync.yaml").read_text().splitlines()[-1] == GIT_STATE_LINE


def test_init_without_ci_keeps_the_file_state_store(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    import yaml

    run = run_pfsync("init", ".", cwd=tmp_path)
    assert run.normalised() == (0, wrote("."), next_steps("."))
    assert "state" not in yaml.safe_load((tmp_path / "pfsync.yaml").read_text())
    assert not (tmp_path / ".github").exists()


def test_init_with_ci_then_validate_works(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    run = run_pfsync("init", ".", "--ci", "github", "--business", "biz_acme", cwd=tmp_path)
    assert run.normalised() == (
        0,
        wrote(".", *GITHUB_WORKFLOWS),
        next_steps(".", placeholder=False, ci=True) + GITHUB_SECRETS,
    )
    validate = run_pfsync("validate", cwd=tmp_path)
    assert (validate.code, validate.out, validate.err) == (0, "", "1 trigger(s) valid.\n")


def env_wrote(*ci_files: str, environments: tuple[str, ...] = ("staging", "production")) -> str:
    """What `pfsync init . --env ...` lists on stdout."""
    files = ["pfsync.yaml", "manifest.schema.json", "triggers/welcome-series.yaml", *ci_files]
    return (
        "".join(f"wrote {name}\n" for name in files)
        + "".join(
            f"wrote state/{name}.lock (empty: no trigger created yet)\n" for name in environments
        )
        + "created .gitignore\n"
    )


ENV_NEXT_STEPS = next_steps(".", "staging", placeholder=False, ci=True)
PIN = 'pin PFSYNC_PIP_SPEC to a pfsync release (see the pfsync docs, "CI recipes").\n'


def test_init_with_environments_writes_recipes_that_plan_each_and_promote_in_order(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    import yaml

    run = run_pfsync("init", ".", "--ci", "github", *TWO_ENVIRONMENTS, cwd=tmp_path)
    assert run.normalised() == (
        0,
        env_wrote(*GITHUB_WORKFLOWS),
        ENV_NEXT_STEPS + "CI: each merge is applied to staging at once, then to production once "
        "a reviewer approves it. Set the secrets PFSYNC_USERNAME and PFSYNC_PASSWORD in each "
        "GitHub environment (staging, production), and required reviewers on production; " + PIN,
    )
    # The recipes of examples/, which is the same two-environment layout.
    recipes = REPO / "examples" / "ci" / "github"
    for name in GITHUB_WORKFLOWS:
        assert (tmp_path / name).read_bytes() == (recipes / name).read_bytes(), name
    # One git store for every environment, each with its own lockfile on main.
    config = yaml.safe_load((tmp_path / "pfsync.yaml").read_text())
    assert config["state"] == {"store": "git", "branch": "main"}
    assert GIT_STATE_LINE in (tmp_path / "pfsync.yaml").read_text().splitlines()
    assert [env["lockfile"] for env in config["environments"].values()] == [
        "state/staging.lock",
        "state/production.lock",
    ]
    validate = run_pfsync("validate", cwd=tmp_path)
    assert (validate.code, validate.out, validate.err) == (
        0,
        "",
        "Trigger(s) valid: 1 in production, 1 in staging.\n",
    )


def test_init_with_environments_writes_the_gitlab_recipe(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    run = run_pfsync("init", ".", "--ci", "gitlab", *TWO_ENVIRONMENTS, cwd=tmp_path)
    assert run.normalised() == (
        0,
        env_wrote(".gitlab-ci.yml"),
        ENV_NEXT_STEPS + "CI: each merge is applied to staging at once, then to production once "
        "someone runs its manual job. Set PFSYNC_PUSH_TOKEN, and PFSYNC_USERNAME and "
        "PFSYNC_PASSWORD scoped to each environment (staging, production); make production a "
        "protected environment; " + PIN,
    )
    assert (tmp_path / ".gitlab-ci.yml").read_bytes() == (
        REPO / "examples" / "ci" / "gitlab" / ".gitlab-ci.yml"
    ).read_bytes()
    validate = run_pfsync("validate", cwd=tmp_path)
    assert (validate.code, validate.out, validate.err) == (
        0,
        "",
        "Trigger(s) valid: 1 in production, 1 in staging.\n",
    )


def test_init_promotes_in_the_order_of_env(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    import yaml

    names = ("dev", "staging", "production")
    run = run_pfsync("init", ".", "--ci", "github", *(f"--env={n}" for n in names), cwd=tmp_path)
    assert run.normalised() == (
        0,
        env_wrote(*GITHUB_WORKFLOWS, environments=names),
        next_steps(".", "dev", ci=True)
        + "CI: each merge is applied to dev at once, then to staging and then to production, each "
        "once a reviewer approves it. Set the secrets PFSYNC_USERNAME and PFSYNC_PASSWORD in each "
        "GitHub environment (dev, staging, production), and required reviewers on staging and "
        "production; " + PIN,
    )
    jobs = yaml.safe_load((tmp_path / GITHUB_WORKFLOWS[0]).read_text())["jobs"]
    assert [(job["environment"], job.get("needs")) for job in jobs.values()] == [
        ("dev", None),
        ("staging", "apply-dev"),
        ("production", "apply-staging"),
    ]
    plan = yaml.safe_load((tmp_path / GITHUB_WORKFLOWS[2]).read_text())
    assert plan["jobs"]["plan"]["strategy"]["matrix"] == {"environment": list(names)}


def test_init_refuses_environments_that_would_share_a_ci_job(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    run = run_pfsync(
        "init", ".", "--ci", "gitlab", "--env", "eu.prod", "--env", "eu_prod", cwd=tmp_path
    )
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: the environments eu.prod and eu_prod would share the CI job apply-eu_prod; "
        "rename one of them\n",
    )
    assert list(tmp_path.iterdir()) == []


def test_init_refuses_the_global_env_option_which_selects_rather_than_defines(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    run = run_pfsync("-e", "staging", "init", "repo", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: -e staging before init selects an environment of an existing repository; to "
        "define environments, give them to init: pfsync init repo --env staging\n",
    )
    assert list(tmp_path.iterdir()) == []


def test_the_refusal_of_the_global_env_option_can_be_pasted(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    run = run_pfsync("-e", "staging", "init", "my repo", "--env", "prod", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: -e staging before init selects an environment of an existing repository; to "
        "define environments, give them to init: pfsync init 'my repo' --env prod --env "
        "staging\n",
    )
    assert list(tmp_path.iterdir()) == []


def test_init_rejects_bad_values(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    run = run_pfsync("init", ".", "--api-url", "http://api.example.com", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: refusing plain http:// for 'api.example.com': credentials would cross the "
        "network unencrypted; use https:// (http:// is allowed only for loopback hosts)\n",
    )
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
    assert (trigger.code, json.loads(trigger.out), trigger.err) == (
        0,
        json.loads((REPO / "schemas" / "trigger.schema.json").read_text()),
        "",
    )


def test_init_says_created_for_a_new_gitignore_and_updated_for_an_existing_one(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    fresh = run_pfsync("init", "fresh", cwd=tmp_path)
    assert (fresh.code, fresh.out, fresh.err) == (0, wrote("fresh"), next_steps("fresh"))
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / ".gitignore").write_text("*.pyc\n")
    kept = run_pfsync("init", "kept", cwd=tmp_path)
    assert (kept.code, kept.out, kept.err) == (
        0,
        wrote("kept", gitignore="updated"),
        next_steps("kept"),
    )
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
    assert (run.code, run.out, run.err) == (0, wrote("repo"), next_steps("repo"))
    repo = (tmp_path / "repo").resolve()
    assert schema_path(repo / "triggers" / "welcome-series.yaml") == repo / "manifest.schema.json"
    schema = json.loads((repo / "manifest.schema.json").read_text())
    assert schema == json.loads(run_pfsync("schema").out)


def test_the_example_manifests_point_at_the_repository_schema() -> None:
    manifests = sorted((REPO / "examples" / "triggers").glob("*.yaml"))
    assert manifests
    for manifest in manifests:
        assert schema_path(manifest) == (REPO / "schemas" / "manifest.schema.json").resolve()


def test_the_next_steps_of_init_ci_run_as_printed_in_a_fresh_directory(
    run_pfsync: RunPfsync, tmp_path: Path, sandbox: Sandbox
) -> None:
    # Each command init prints, pasted in order in the directory it made (with a bare
    # repository as the origin the steps ask for): each succeeds, and the plan against the API
    # (the sandbox, as PFSYNC_API_URL) reads the lockfile from origin's main.
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(origin))
    run = run_pfsync("init", "envs", "--ci", "github", *TWO_ENVIRONMENTS, cwd=tmp_path)
    next_line, then_line = run.err.splitlines()[1:3]
    assert (run.code, next_line, then_line) == (
        0,
        "Next: cd envs && git init -b main && pfsync validate && pfsync -e staging plan --sandbox",
        "Before `pfsync -e staging plan` against Pocketflows, push this repository to origin's "
        "main, where the git state store keeps the lockfiles (URL: your repository's): git add "
        '-A && git commit -m "Start pfsync" && git remote add origin URL && git push -u origin '
        "main",
    )
    steps = [
        next_line.removeprefix("Next: "),
        then_line.split("): ", 1)[1].replace(" URL ", f" {shlex.quote(str(origin))} "),
        "pfsync -e staging plan",
    ]
    env = clean_env({**GIT_ENV, "PFSYNC_API_URL": sandbox.url})
    env["PATH"] = str(Path(pfsync_executable()).parent) + os.pathsep + env["PATH"]
    cwd = tmp_path
    for step in steps:
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-c", f"set -euo pipefail\n{step}"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (step, done.stdout, done.stderr)
        cwd = tmp_path / "envs"
    assert "Plan: 1 to create" in done.stdout
    assert git(origin, "ls-tree", "--name-only", "main", "state/") == (
        "state/production.lock\nstate/staging.lock\n"
    )


def test_init_ci_in_an_existing_repository_leaves_its_git_setup_alone(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    # `git init` and `git remote add origin` would only fail or warn in a clone: not suggested.
    git(tmp_path, "init", "--quiet", "-b", "main")
    run = run_pfsync("init", "triggers", "--ci", "github", "--business", "biz_acme", cwd=tmp_path)
    assert run.err.splitlines()[1:3] == [
        "Next: cd triggers && pfsync validate && pfsync plan --sandbox",
        "Before `pfsync plan` against Pocketflows, push this repository to origin's main, where "
        "the git state store keeps the lockfile.",
    ]
