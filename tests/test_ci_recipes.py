"""The CI recipes in examples/ci: schemas, zizmor and actionlint (all offline), and their safety
settings, for each layout `pfsync init --ci` writes.

examples/ci/github and examples/ci/gitlab are the environment recipes of examples/ (staging,
then production); examples/ci/one-environment holds those of a repository without environments.
Both are exactly what `pfsync init --ci` writes, and a rendering with awkward environment names
(three of them, one that YAML would read as a boolean, one as a number) is checked as well.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO
from pfsync.scaffold.ci import ci_files

CI = REPO / "examples" / "ci"
ONE = CI / "one-environment"
WORKFLOWS = Path(".github") / "workflows"
GITLAB = Path(".gitlab-ci.yml")
BIN = Path(sys.executable).parent
CHECKER = BIN / "check-jsonschema"
WORKFLOW_NAMES = ["pfsync-apply.yml", "pfsync-comment.yml", "pfsync-plan.yml"]
# Names YAML would read as a boolean (`on`) or a number (`1.0`) unquoted, and one with a dot.
ODD_ENVIRONMENTS = ("dev.eu", "on", "1.0")

# A release tag or a full commit of pfsync's repository; never a bare (unpinned) install.
PIP_SPEC = re.compile(
    r"pfsync @ git\+https://github\.com/pocketflows-tools/pfsync@(v\d+\.\d+\.\d+|[0-9a-f]{40})"
)
# owner/repo[/path]@<40-hex commit> # v<version>
PINNED_USES = re.compile(
    r"^\s*(- )?uses: [\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d+\.\d+\.\d+$"
)


def example_environments() -> list[str]:
    """The environments of examples/pfsync.yaml, in their order (the order of promotion)."""
    config = yaml.safe_load((REPO / "examples" / "pfsync.yaml").read_text())
    return list(config["environments"])


def write(files: dict[str, str], root: Path) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both recipes rendered for ODD_ENVIRONMENTS, as `init --ci` would write them."""
    root = tmp_path_factory.mktemp("odd")
    write(ci_files("github", ODD_ENVIRONMENTS), root / "github")
    write(ci_files("gitlab", ODD_ENVIRONMENTS), root / "gitlab")
    return root


LAYOUTS = ("environments", "one-environment", "odd")


def layout_root(layout: str, odd: Path) -> Path:
    """The folder of a layout's recipes."""
    return {"environments": CI, "one-environment": ONE, "odd": odd}[layout]


@pytest.fixture(params=LAYOUTS)
def recipes(request: pytest.FixtureRequest, odd: Path) -> Path:
    """A folder with github/.github/workflows/*.yml and gitlab/.gitlab-ci.yml."""
    return layout_root(request.param, odd)


def all_workflows(root: Path = CI) -> list[Path]:
    files = sorted((root / "github" / WORKFLOWS).glob("*.yml"))
    assert [f.name for f in files] == WORKFLOW_NAMES
    return files


def workflow(name: str, root: Path = CI) -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((root / "github" / WORKFLOWS / name).read_text())
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean true.
    return {"on" if key is True else str(key): value for key, value in loaded.items()}


def steps_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in document["jobs"].values() for step in job["steps"]]


def gitlab(root: Path = CI) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((root / "gitlab" / GITLAB).read_text())
    return document


def test_the_examples_are_what_init_writes() -> None:
    environments = example_environments()
    assert environments == ["staging", "production"]
    for kind in ("github", "gitlab"):
        for root, layout in ((CI, environments), (ONE, [])):
            folder = root / kind
            on_disk = {
                str(path.relative_to(folder)): path.read_text(encoding="utf-8")
                for path in folder.rglob("*")
                if path.is_file()
            }
            assert on_disk == ci_files(kind, layout), (kind, layout)
    assert sorted(path.name for path in CI.iterdir()) == ["github", "gitlab", "one-environment"]


@pytest.fixture(scope="module")
def schema_results(odd: Path) -> dict[str, dict[str, Any]]:
    """check-jsonschema's JSON report per vendored schema, each run once over the files of
    every layout (a start per schema, not one per schema and layout); each test then asserts
    what the report says about its own files."""
    files = {
        "vendor.github-workflows": [
            path for layout in LAYOUTS for path in all_workflows(layout_root(layout, odd))
        ],
        "vendor.gitlab-ci": [layout_root(layout, odd) / "gitlab" / GITLAB for layout in LAYOUTS],
    }
    results: dict[str, dict[str, Any]] = {}
    for schema, paths in files.items():
        proc = subprocess.run(
            [str(CHECKER), "--output-format", "json", "--builtin-schema", schema, *map(str, paths)],
            capture_output=True,
            text=True,
        )
        report: dict[str, Any] = {"parse_errors": [], **json.loads(proc.stdout)}
        # A failing exit has a reason in the report: a file that does not match, or does not parse.
        problems = report["errors"] + report["parse_errors"]
        assert (proc.returncode == 0) == (report["status"] == "ok") == (not problems), (
            proc.stdout + proc.stderr
        )
        results[schema] = report
    return results


def test_recipes_match_vendored_schemas(
    recipes: Path, schema_results: dict[str, dict[str, Any]]
) -> None:
    for schema, files in [
        ("vendor.github-workflows", all_workflows(recipes)),
        ("vendor.gitlab-ci", [recipes / "gitlab" / GITLAB]),
    ]:
        report = schema_results[schema]
        mine = {str(path) for path in files}
        problems = [
            problem
            for problem in report["errors"] + report["parse_errors"]
            if problem["filename"] in mine
        ]
        assert problems == [], problems


@pytest.fixture(scope="module")
def zizmor_run(odd: Path) -> subprocess.CompletedProcess[str]:
    """zizmor over the workflows of every layout at once (one start, not one per layout)."""
    # --offline: no GitHub API calls; --no-config: only the inline ignore comments count.
    workflows = [path for layout in LAYOUTS for path in all_workflows(layout_root(layout, odd))]
    return subprocess.run(
        [
            str(BIN / "zizmor"),
            "--offline",
            "--no-config",
            "--no-progress",
            "--format",
            "json",
            *map(str, workflows),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


def zizmor_paths(finding: dict[str, Any]) -> set[str]:
    """The workflow files a zizmor finding points into."""
    return {
        location["symbolic"]["key"]["Local"]["verbatim_path"] for location in finding["locations"]
    }


def test_zizmor_finds_nothing_offline(
    recipes: Path, zizmor_run: subprocess.CompletedProcess[str]
) -> None:
    proc = zizmor_run
    findings: list[dict[str, Any]] = json.loads(proc.stdout)
    mine = {str(path) for path in all_workflows(recipes)}
    assert [f for f in findings if zizmor_paths(f) & mine] == [], proc.stdout
    # A failing exit has a reason: a finding (in some layout's files).
    assert proc.returncode == 0 or findings, proc.stdout + proc.stderr
    assert " WARN " not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr


def test_zizmor_ignores_are_only_the_justified_ones(recipes: Path) -> None:
    ignores = {
        path.name: re.findall(r"# zizmor: ignore\[([\w-]+)\] \S.*$", path.read_text(), re.M)
        for path in all_workflows(recipes)
    }
    # One artipacked per apply job: each one's git store pushes with the checkout's token.
    apply_jobs = len(workflow("pfsync-apply.yml", recipes)["jobs"])
    assert ignores == {
        "pfsync-apply.yml": ["artipacked"] * apply_jobs,
        "pfsync-comment.yml": ["dangerous-triggers"],
        "pfsync-plan.yml": [],
    }
    # Every action is pinned by commit, so no zizmor configuration (unpinned-uses policy) exists.
    assert not list(CI.rglob("zizmor.y*ml"))


def test_actionlint_finds_nothing(recipes: Path) -> None:
    proc = subprocess.run(
        [str(BIN / "actionlint"), "-no-color", *map(str, all_workflows(recipes))],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_every_action_is_pinned_by_commit_with_its_version(recipes: Path) -> None:
    for path in all_workflows(recipes):
        lines = [line for line in path.read_text().splitlines() if "uses:" in line]
        assert lines, path
        for line in lines:
            assert PINNED_USES.match(line), f"{path.name}: {line.strip()}"
        assert len(lines) == sum(1 for s in steps_of(workflow(path.name, recipes)) if "uses" in s)


def test_no_expression_is_expanded_inside_a_script(recipes: Path) -> None:
    for path in all_workflows(recipes):
        for step in steps_of(workflow(path.name, recipes)):
            assert "${{" not in step.get("run", ""), (path.name, step)
            assert "${{" not in step.get("with", {}).get("script", ""), (path.name, step)


def test_least_permissions(recipes: Path) -> None:
    apply_jobs = workflow("pfsync-apply.yml", recipes)["jobs"]
    plan_jobs = workflow("pfsync-plan.yml", recipes)["jobs"]
    expected = {
        "pfsync-plan.yml": {name: {"contents": "read"} for name in plan_jobs},
        "pfsync-comment.yml": {"comment": {"actions": "read", "pull-requests": "write"}},
        "pfsync-apply.yml": {name: {"contents": "write"} for name in apply_jobs},
    }
    for path in all_workflows(recipes):
        document = workflow(path.name, recipes)
        assert document["permissions"] == {}, path.name
        jobs = {name: job["permissions"] for name, job in document["jobs"].items()}
        assert jobs == expected[path.name]


def checkouts(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in steps_of(document) if s.get("uses", "").startswith("actions/checkout@")]


def test_credentials_persist_only_where_pfsync_pushes(recipes: Path) -> None:
    plan = workflow("pfsync-plan.yml", recipes)
    assert [c["with"]["persist-credentials"] for c in checkouts(plan)] == [False] * len(
        plan["jobs"]
    )
    assert checkouts(workflow("pfsync-comment.yml", recipes)) == []
    apply = workflow("pfsync-apply.yml", recipes)
    apply_checkouts = checkouts(apply)
    assert len(apply_checkouts) == len(apply["jobs"])
    assert all(c["with"]["persist-credentials"] is True for c in apply_checkouts)
    text = (recipes / "github" / WORKFLOWS / "pfsync-apply.yml").read_text()
    assert text.count("persist-credentials: true # zizmor: ignore[artipacked]") == len(
        apply_checkouts
    )


def test_one_environment_apply_keeps_its_safety_settings_and_leaves_the_push_to_pfsync() -> None:
    apply = workflow("pfsync-apply.yml", ONE)
    assert apply["on"] == {"push": {"branches": ["main"]}}
    assert apply["concurrency"] == {"group": "pfsync-apply", "cancel-in-progress": False}
    job = apply["jobs"]["apply"]
    assert job["environment"] == "pfsync"
    steps = job["steps"]
    # The tip, checked out right before the apply (after the install).
    assert steps[-2]["with"]["ref"] == "${{ github.ref_name }}"
    assert steps[-2]["with"]["fetch-depth"] == 0
    runs = [step["run"] for step in steps if "run" in step]
    assert runs == [
        'python -m pip install "$PFSYNC_PIP_SPEC"',
        'pfsync apply --auto-approve --lock-timeout 900 --summary "$GITHUB_STEP_SUMMARY"',
    ]
    for run in runs:
        assert "git push" not in run and "git commit" not in run
    # The lockfile lives in git now: nothing in this job uploads anything.
    assert not [s for s in steps if "upload-artifact" in s.get("uses", "")]
    assert [s.get("if") for s in steps] == [None] * len(steps)
    assert steps[-1]["env"] == {
        "PFSYNC_USERNAME": "${{ secrets.PFSYNC_USERNAME }}",
        "PFSYNC_PASSWORD": "${{ secrets.PFSYNC_PASSWORD }}",
    }


@pytest.mark.parametrize("layout", ["examples", "odd"])
def test_merges_apply_to_the_first_environment_and_each_next_one_its_approved_saved_plan(
    layout: str, odd: Path
) -> None:
    folder = odd if layout == "odd" else CI
    environments = list(ODD_ENVIRONMENTS) if layout == "odd" else example_environments()
    apply = workflow("pfsync-apply.yml", folder)
    assert apply["on"] == {"push": {"branches": ["main"]}}
    # No workflow-wide queue: a promotion waiting for its approval must not hold up the next
    # merge's apply to the first environment.
    assert "concurrency" not in apply
    jobs = apply["jobs"]
    ids = ["apply-" + name.replace(".", "_") for name in environments]
    assert list(jobs) == ids
    credentials = {
        "PFSYNC_USERNAME": "${{ secrets.PFSYNC_USERNAME }}",
        "PFSYNC_PASSWORD": "${{ secrets.PFSYNC_PASSWORD }}",
    }
    summary = '--lock-timeout 900 --summary "$GITHUB_STEP_SUMMARY"'
    for index, (name, job) in enumerate(zip(environments, jobs.values(), strict=True)):
        # Each apply runs in the GitHub environment of its name: its secrets, its reviewers.
        assert job["environment"] == name
        assert job["concurrency"] == {"group": f"pfsync-apply-{name}", "cancel-in-progress": False}
        assert "if" not in job
        steps = job["steps"]
        assert [s.get("if") for s in steps] == [None] * len(steps)
        names = [s.get("name", s.get("uses", "").split("@")[0]) for s in steps]
        # The tip is checked out right before the apply (after the install), with the token.
        [checkout] = checkouts({"jobs": {name: job}})
        apply_step = next(s for s in steps if s.get("name", "").startswith("Apply "))
        assert steps.index(apply_step) == steps.index(checkout) + 1
        assert checkout["with"]["ref"] == "${{ github.ref_name }}"
        assert checkout["with"]["fetch-depth"] == 0
        assert apply_step["env"] == credentials
        for step in steps:
            assert "git push" not in step.get("run", "") and "git commit" not in step.get("run", "")
            assert "secrets" not in str(step) or step is apply_step
        if index == 0:  # applied on every merge, at once
            assert "needs" not in job
            assert apply_step["run"] == f"pfsync -e {name} apply --auto-approve {summary}"
        else:  # after the one before it, once approved: exactly the saved plan shown
            assert job["needs"] == ids[index - 1]
            artifact = f"pfsync-promotion-{name}"
            [download] = [s for s in steps if "download-artifact" in s.get("uses", "")]
            assert download["with"] == {
                "name": artifact,
                "path": f"${{{{ runner.temp }}}}/{artifact}",
            }
            assert apply_step["run"] == (
                f'pfsync -e {name} apply {summary} "$RUNNER_TEMP/{artifact}/{name}.plan.json"'
            )
        if index + 1 == len(environments):
            assert names[-1] == apply_step["name"]
            continue
        # After its apply, the job saves the next environment's plan (only what this one
        # created from the same manifests), shows it in the run's summary and uploads it.
        following = environments[index + 1]
        plan, upload = steps[-2:]
        assert (
            plan["name"] == f"Plan {following} after {name} (saved, and shown in the run's summary)"
        )
        assert "env" not in plan
        assert f"pfsync -e {following} plan --after {name} --format markdown" in plan["run"]
        assert f'--out "$out/{following}.plan.json"' in plan["run"]
        assert '>> "$GITHUB_STEP_SUMMARY"' in plan["run"]
        assert upload["with"]["name"] == f"pfsync-promotion-{following}"
        assert upload["with"]["path"] == f"${{{{ runner.temp }}}}/pfsync-promotion-{following}"
    # No check trusts commit authors or messages.
    assert "git log" not in str(apply) and "merge-base" not in str(apply)


def test_environment_plans_cover_every_environment_without_secrets() -> None:
    plan = workflow("pfsync-plan.yml")
    assert "secrets" not in str(plan)
    assert plan["on"] == {"pull_request": None, "merge_group": None}
    validate, job = plan["jobs"]["validate"], plan["jobs"]["plan"]
    # Once for every environment, so a problem they share is annotated once.
    assert [s["run"] for s in validate["steps"] if "run" in s][-1] == (
        "pfsync validate --format github"
    )
    assert job["strategy"] == {
        "fail-fast": False,
        "matrix": {"environment": example_environments()},
    }
    assert job["env"] == {"ENVIRONMENT": "${{ matrix.environment }}"}
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert 'pfsync -C "$RUNNER_TEMP/base" -e "$ENVIRONMENT" plan --format json' in runs
    assert 'pfsync -e "$ENVIRONMENT" plan --format markdown --detailed-exitcode' in runs
    assert '--base-plan "$RUNNER_TEMP/base-plan.json"' in runs
    assert 'out="$RUNNER_TEMP/pfsync-plan/$ENVIRONMENT"' in runs
    [upload] = [s for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
    assert upload["if"] == "github.event_name == 'pull_request'"  # the merge queue's: no comment
    assert upload["with"]["name"] == "pfsync-plan-${{ matrix.environment }}"
    assert upload["with"]["path"] == "${{ runner.temp }}/pfsync-plan"
    [fail] = [s for s in job["steps"] if "exit 1" in s.get("run", "")]
    assert fail["if"] == "steps.plan.outputs.code != '0' && steps.plan.outputs.code != '2'"


def test_odd_environment_names_stay_strings(odd: Path) -> None:
    plan = workflow("pfsync-plan.yml", odd)
    assert plan["jobs"]["plan"]["strategy"]["matrix"]["environment"] == list(ODD_ENVIRONMENTS)
    comment = workflow("pfsync-comment.yml", odd)
    [post] = steps_of(comment)[1:]
    assert post["env"]["PLAN_ENVIRONMENTS"] == " ".join(ODD_ENVIRONMENTS)
    document = gitlab(odd)
    assert document["pfsync-plan"]["parallel"]["matrix"] == [
        {"ENVIRONMENT": list(ODD_ENVIRONMENTS)}
    ]
    names = [
        document[f"pfsync-apply-{n.replace('.', '_')}"]["environment"]["name"]
        for n in ODD_ENVIRONMENTS
    ]
    assert names == list(ODD_ENVIRONMENTS)


def test_one_environment_plan_uses_no_secrets_and_keeps_the_base_plan() -> None:
    plan = workflow("pfsync-plan.yml", ONE)
    assert "secrets" not in str(plan)
    assert plan["on"] == {"pull_request": None, "merge_group": None}
    runs = "\n".join(s.get("run", "") for s in steps_of(plan))
    assert "pfsync validate --format github" in runs
    assert 'pfsync -C "$RUNNER_TEMP/base" plan --format json' in runs
    assert "--detailed-exitcode" in runs and '--base-plan "$RUNNER_TEMP/base-plan.json"' in runs
    [upload] = [s for s in steps_of(plan) if "upload-artifact" in s.get("uses", "")]
    assert upload["if"] == "github.event_name == 'pull_request'"  # the merge queue's: no comment
    assert upload["with"]["name"] == "pfsync-plan"
    assert upload["with"]["path"].splitlines() == [
        "${{ runner.temp }}/pfsync-plan/plan.md",
        "${{ runner.temp }}/pfsync-plan/pr-number.txt",
    ]
    [fail] = [s for s in steps_of(plan) if "exit 1" in s.get("run", "")]
    assert fail["if"] == "steps.plan.outputs.code != '0' && steps.plan.outputs.code != '2'"


def test_comment_workflow_treats_the_artifact_as_data(recipes: Path) -> None:
    comment = workflow("pfsync-comment.yml", recipes)
    assert comment["on"] == {"workflow_run": {"workflows": ["pfsync plan"], "types": ["completed"]}}
    text = (recipes / "github" / WORKFLOWS / "pfsync-comment.yml").read_text()
    assert "secrets." not in text
    [download, post] = steps_of(comment)
    assert download["uses"].startswith("actions/download-artifact@")
    assert download["with"]["path"] == "${{ runner.temp }}/pfsync-plan"
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    assert post["uses"].startswith("actions/github-script@")
    script = post["with"]["script"]
    assert "/^[0-9]{1,10}$/.test(number)" in script
    assert "pr.head.sha !== run.head_sha" in script
    assert "c.user.login === 'github-actions[bot]'" in script and "startsWith(marker)" in script
    for forbidden in ("eval(", "Function(", "child_process", "exec(", "execSync", "require(file"):
        assert forbidden not in script
    if recipes != ONE:
        # Every environment's artifact lands in its own folder, however many there are.
        assert download["with"]["pattern"] == "pfsync-plan-*"
        assert download["with"]["merge-multiple"] is True
        assert "isDirectory()" in script and "isFile()" in script


HARNESS = """\
const calls = [];
const notices = [];
const context = {
  repo: { owner: 'o', repo: 'r' },
  payload: { workflow_run: { head_sha: 'abc', html_url: 'https://run' } },
};
const core = { notice: (message) => notices.push(message) };
const github = {
  // Another user's comment with the marker first: only the bot's own one is updated.
  paginate: async () => [
    { id: 1, user: { login: 'someone' }, body: '<!-- pfsync-plan -->\\nforged' },
    { id: 2, user: { login: 'github-actions[bot]' }, body: '<!-- pfsync-plan -->\\nold' },
  ],
  rest: {
    pulls: { get: async () => ({ data: { head: { sha: process.env.HEAD_SHA } } }) },
    issues: {
      listComments: null,
      updateComment: async (request) => calls.push(['update', request]),
      createComment: async (request) => calls.push(['create', request]),
    },
  },
};
(async () => {
SCRIPT
})().then(
  () => console.log(JSON.stringify({ calls, notices })),
  (error) => console.log(JSON.stringify({ error: error.message })),
);
"""


# What each section says about when its environment applies a merge.
FIRST = "Applied to staging when merged, without an approval."
NEXT = (
    "Applied to production after staging, once a reviewer approves the plan shown in the apply "
    "run's summary (only what staging created from the same manifests)."
)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
class TestCommentScript:
    """The environment comment script, run by node on artifacts on disk against a fake API."""

    @staticmethod
    def run(tmp_path: Path, head_sha: str = "abc") -> dict[str, Any]:
        """Run the script on the artifacts in `tmp_path`/plans (ENVIRONMENT/file)."""
        [post] = steps_of(workflow("pfsync-comment.yml"))[1:]
        (tmp_path / "plans").mkdir(exist_ok=True)
        harness = tmp_path / "harness.js"
        harness.write_text(HARNESS.replace("SCRIPT", post["with"]["script"]))
        proc = subprocess.run(
            ["node", str(harness)],
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "PLAN_DIR": str(tmp_path / "plans"),
                "PLAN_ENVIRONMENTS": post["env"]["PLAN_ENVIRONMENTS"],
                "HEAD_SHA": head_sha,
            },
            timeout=60,
        )
        assert (proc.returncode, proc.stderr) == (0, ""), proc.stdout + proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    @staticmethod
    def artifact(tmp_path: Path, environment: str, plan: str, number: str = "7\n") -> None:
        write({"plan.md": plan, "pr-number.txt": number}, tmp_path / "plans" / environment)

    def test_one_section_per_environment_in_the_workflow_order_updating_its_own_comment(
        self, tmp_path: Path
    ) -> None:
        self.artifact(tmp_path, "production", "prod plan\n")
        self.artifact(tmp_path, "staging", "staging plan\n")
        body = (
            f"<!-- pfsync-plan -->\n### staging\n\n*{FIRST}*\n\nstaging plan\n\n"
            f"### production\n\n*{NEXT}*\n\nprod plan\n"
        )
        assert self.run(tmp_path) == {
            "calls": [["update", {"owner": "o", "repo": "r", "comment_id": 2, "body": body}]],
            "notices": [],
        }

    def test_an_environment_without_a_plan_says_so(self, tmp_path: Path) -> None:
        self.artifact(tmp_path, "staging", "s\n")
        [[_, call]] = self.run(tmp_path)["calls"]
        assert call["body"].endswith(
            f"### production\n\n*{NEXT}*\n\n"
            "*No plan: the plan job of production failed; see https://run*\n"
        )

    def test_no_plan_at_all_posts_nothing(self, tmp_path: Path) -> None:
        assert self.run(tmp_path) == {
            "calls": [],
            "notices": ["no plan in the artifacts (the plan jobs failed before planning)"],
        }

    def test_each_section_is_cut_to_its_share_of_the_comment(self, tmp_path: Path) -> None:
        self.artifact(tmp_path, "staging", "s" * 40_000)
        self.artifact(tmp_path, "production", "p" * 20_000)
        [[_, call]] = self.run(tmp_path)["calls"]
        note = "\n\n… truncated; the whole plan: https://run\n"
        assert call["body"] == (
            f"<!-- pfsync-plan -->\n### staging\n\n*{FIRST}*\n\n{'s' * 30_000}{note}\n"
            f"### production\n\n*{NEXT}*\n\n{'p' * 20_000}"
        )

    def test_a_number_that_is_not_digits_stops_it(self, tmp_path: Path) -> None:
        self.artifact(tmp_path, "staging", "s", number="7; rm -rf /")
        assert self.run(tmp_path) == {"error": "staging/pr-number.txt is not a pull-request number"}

    def test_plans_naming_two_pull_requests_stop_it(self, tmp_path: Path) -> None:
        self.artifact(tmp_path, "staging", "s", number="7")
        self.artifact(tmp_path, "production", "p", number="8")
        assert self.run(tmp_path) == {
            "error": "the plans in the artifacts name different pull requests"
        }

    def test_a_symlink_in_the_artifacts_is_not_followed(self, tmp_path: Path) -> None:
        (tmp_path / "secret").write_text("secret")
        folder = tmp_path / "plans" / "staging"
        folder.mkdir(parents=True)
        (folder / "pr-number.txt").write_text("7")
        (folder / "plan.md").symlink_to(tmp_path / "secret")
        error = self.run(tmp_path)["error"]
        assert error.endswith("plan.md in the artifacts: not a file of at most 10485760 bytes")
        (folder / "plan.md").unlink()
        (folder / "plan.md").write_text("s")
        (tmp_path / "plans" / "production").symlink_to(folder)
        assert self.run(tmp_path) == {"error": "production in the artifacts is not a folder"}

    def test_a_plan_of_another_head_commit_is_not_posted(self, tmp_path: Path) -> None:
        self.artifact(tmp_path, "staging", "s")
        assert self.run(tmp_path, head_sha="def") == {
            "calls": [],
            "notices": ["#7 is not at abc (any more); no comment"],
        }


def test_pfsync_is_installed_pinned_from_its_repository(recipes: Path) -> None:
    installing = ["pfsync-apply.yml", "pfsync-plan.yml"]
    specs = [workflow(name, recipes)["env"]["PFSYNC_PIP_SPEC"] for name in installing]
    specs.append(gitlab(recipes)["variables"]["PFSYNC_PIP_SPEC"])
    for spec in specs:
        assert PIP_SPEC.fullmatch(spec), spec
    github = recipes / "github" / WORKFLOWS
    assert "pip" not in (github / "pfsync-comment.yml").read_text()
    for path in [*(github / name for name in installing), recipes / "gitlab" / GITLAB]:
        text = path.read_text()
        assert "pip install pfsync" not in text and "pip install --quiet pfsync" not in text
        installs = [line for line in text.splitlines() if "pip install" in line]
        assert installs and all(line.endswith('"$PFSYNC_PIP_SPEC"') for line in installs)
        assert "README" in text  # the comment saying where to find the repository to pin


MERGE_REQUESTS = [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
DEFAULT_BRANCH_PUSH = '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "push"'
PUSH_TOKEN_LINES = [
    '[ -n "$PFSYNC_PUSH_TOKEN" ] || { echo "PFSYNC_PUSH_TOKEN is not set"; exit 1; }',
    'git remote set-url origin "https://oauth2:${PFSYNC_PUSH_TOKEN}@${CI_SERVER_HOST}/'
    '${CI_PROJECT_PATH}.git"',
]


def test_one_environment_gitlab_recipe() -> None:
    document = gitlab(ONE)
    plan, apply = document["pfsync-plan"], document["pfsync-apply"]
    assert plan["rules"] == MERGE_REQUESTS
    assert "PFSYNC_" not in "\n".join(plan["script"]).replace("$PFSYNC_PIP_SPEC", "")
    assert any("--base-plan /tmp/base-plan.json" in line for line in plan["script"])
    assert apply["rules"] == [{"if": DEFAULT_BRANCH_PUSH}]
    assert (apply["resource_group"], apply["interruptible"]) == ("pfsync-apply", False)
    assert apply["artifacts"]["paths"] == ["apply-summary.md"]
    script = apply["script"]
    assert script[:2] == PUSH_TOKEN_LINES
    assert script[-1] == (
        "pfsync apply --auto-approve --lock-timeout 900 --summary apply-summary.md"
    )
    for line in [*script, *document["default"]["before_script"]]:
        assert "git push" not in line and "git commit" not in line


def test_gitlab_plans_every_environment_and_promotes_by_a_manual_job() -> None:
    document = gitlab()
    environments = example_environments()
    plan = document["pfsync-plan"]
    assert plan["rules"] == MERGE_REQUESTS
    assert plan["parallel"] == {"matrix": [{"ENVIRONMENT": environments}]}
    assert "PFSYNC_" not in "\n".join(plan["script"]).replace("$PFSYNC_PIP_SPEC", "")
    assert plan["script"][0] == 'pfsync -e "$ENVIRONMENT" validate'
    assert any(
        'pfsync -C /tmp/base -e "$ENVIRONMENT" plan --format json' in line
        for line in plan["script"]
    )
    assert any("--base-plan /tmp/base-plan.json" in line for line in plan["script"])
    shared = document[".pfsync-apply"]
    assert shared["interruptible"] is False
    assert shared["artifacts"]["paths"] == ["apply-summary.md"]
    assert shared["before_script"][2:4] == PUSH_TOKEN_LINES
    jobs = {name: job for name, job in document.items() if name.startswith("pfsync-apply-")}
    assert list(jobs) == [f"pfsync-apply-{name}" for name in environments]
    summary = "--lock-timeout 900 --summary apply-summary.md"
    for index, (name, job) in enumerate(zip(environments, jobs.values(), strict=True)):
        assert job["extends"] == ".pfsync-apply"
        # Its environment: its scoped credentials, and (protected) who may run it.
        assert job["environment"] == {"name": name}
        assert job["resource_group"] == f"pfsync-apply-{name}"
        if index == 0:  # applied on every merge, at once
            assert job["rules"] == [{"if": DEFAULT_BRANCH_PUSH}]
            assert "needs" not in job
            assert job["script"] == [f"pfsync -e {name} apply --auto-approve {summary}"]
        else:  # the saved plan of the job before it, when someone runs it; no author check
            previous = environments[index - 1]
            plan = document[f"pfsync-plan-{name}"]
            assert plan["needs"] == [f"pfsync-apply-{previous}"]
            assert plan["rules"] == [{"if": DEFAULT_BRANCH_PUSH}]
            assert plan["script"][-2] == (
                f"pfsync -e {name} plan --after {previous} --format markdown "
                f"--out {name}.plan.json > {name}.plan.md"
            )
            assert plan["artifacts"]["paths"] == [f"{name}.plan.json", f"{name}.plan.md"]
            assert "PFSYNC_" not in "\n".join(plan["script"])
            assert job["rules"] == [{"if": DEFAULT_BRANCH_PUSH, "when": "manual"}]
            assert job["needs"] == [f"pfsync-plan-{name}"]
            assert job["script"] == [f"pfsync -e {name} apply {summary} {name}.plan.json"]
        for line in [*job["script"], *shared["before_script"]]:
            assert "git push" not in line and "git commit" not in line
            assert "git log" not in line and "merge-base" not in line


def test_pre_commit_hook_definition() -> None:
    [hook] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "pfsync-validate"
    assert hook["entry"] == "pfsync validate"
    pattern = re.compile(hook["files"])
    assert pattern.search("triggers/a.yaml") and pattern.search("x/triggers/b/c.yml")
    assert not pattern.search("pfsync.yaml")
