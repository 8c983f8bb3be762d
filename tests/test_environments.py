"""Environments: one repository, several Pocketflows businesses, per-environment values.

Config resolution and `${values.NAME}` substitution are tested in this process; the flow with
two sandboxes (one per environment) and every refusal runs the installed CLI over loopback.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from project_helpers import NOT_A_REPOSITORY, init_example_create

from conftest import RunPfsync
from fixtures_sandbox import MakeSandbox
from pfsync.config import load_config
from pfsync.errors import ConfigError, ConfigInvalid
from pfsync.manifests.load import load_file, load_manifests
from pfsync.manifests.results import Declaring
from pfsync.support.diagnostics import Diagnostic

CONFIG = """\
business: biz_default
api_url: https://api.example.test
values:
  sender: ea_shared
  revenue: 10
environments:
  staging:
    business: biz_stg
    lockfile: state/staging.lock
    values: {template: et_stg}
  production:
    business: biz_prd
    api_url: https://prod.example.test
    lockfile: state/production.lock
    manifests: ["prod/**/*.yaml", "triggers/**/*.yaml"]
    state: {store: git, branch: main}
    values: {template: et_prd, sender: ea_prd}
"""

MANIFEST = """\
apiVersion: pfsync/v1
kind: Trigger
key: welcome
spec:
  name: "Welcome ($${not a value})"
  project_defined_event: pde_signup
  attributed_revenue: ${values.revenue}
  steps:
    - type: email
      email_template_id: ${values.template}
  email_address: "from ${values.sender}"
"""


def project(tmp_path: Path, config: str = CONFIG, manifests: dict[str, str] | None = None) -> Path:
    root = tmp_path / "repo"
    (root / "triggers").mkdir(parents=True)
    (root / "pfsync.yaml").write_text(config)
    for name, text in (manifests or {"welcome.yaml": MANIFEST}).items():
        (root / "triggers" / name).write_text(text)
    return root


# ---------------------------------------------------------------------------------------------
# Config resolution


def test_an_environment_takes_its_own_keys_and_the_others_from_the_top_level(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    staging = load_config(cwd=root, environ={}, environment="staging")
    production = load_config(cwd=root, environ={}, environment="production")
    assert (staging.environment, staging.business, staging.api_url) == (
        "staging",
        "biz_stg",
        "https://api.example.test",
    )
    assert staging.manifests == ("triggers/**/*.yaml",)  # the default, from no level
    assert staging.lockfile == root / "state" / "staging.lock"
    assert staging.state.store == "file"
    assert dict(staging.values) == {"sender": "ea_shared", "revenue": 10, "template": "et_stg"}
    assert (production.business, production.api_url) == ("biz_prd", "https://prod.example.test")
    assert production.manifests == ("prod/**/*.yaml", "triggers/**/*.yaml")
    assert (production.state.store, production.state.branch) == ("git", "main")
    # Values merge name by name: production's sender wins, the shared revenue stays.
    assert dict(production.values) == {"sender": "ea_prd", "revenue": 10, "template": "et_prd"}
    assert staging.environments == production.environments == ("production", "staging")


def test_pfsync_api_url_overrides_the_selected_environment(tmp_path: Path) -> None:
    root = project(tmp_path)
    environ = {"PFSYNC_API_URL": "http://127.0.0.1:9/"}
    config = load_config(cwd=root, environ=environ, environment="production")
    assert config.api_url == "http://127.0.0.1:9"


def test_commands_that_read_state_need_an_environment(tmp_path: Path) -> None:
    root = project(tmp_path)
    with pytest.raises(ConfigError) as refused:
        load_config(cwd=root, environ={}, needs_environment=True)
    assert str(refused.value) == (
        "pfsync.yaml defines the environments production, staging: choose one with -e NAME "
        "(for example -e production)"
    )
    # validate asks for no environment: it then checks each one.
    assert load_config(cwd=root, environ={}).environment is None


def test_an_unknown_environment_and_one_without_environments_are_refused(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    with pytest.raises(ConfigError) as unknown:
        load_config(cwd=root, environ={}, environment="prod")
    assert str(unknown.value) == (
        "-e prod: pfsync.yaml defines no such environment; its environments are production, staging"
    )
    plain = project(tmp_path / "plain", "business: biz_1\n")
    with pytest.raises(ConfigError) as none:
        load_config(cwd=plain, environ={}, environment="staging")
    assert str(none.value) == (
        "-e staging: pfsync.yaml defines no environments; drop -e, or add `environments:` to it"
    )


@pytest.mark.parametrize(
    ("environments", "shared"),
    [
        # The same lockfile path (one of them by default).
        ("  a: {business: b1}\n  b: {business: b2}\n", "pfsync.lock, store file"),
        (
            "  a: {lockfile: x/../one.lock}\n  b: {lockfile: one.lock}\n",
            "one.lock, store file",
        ),
        # The same file on the same branch of the git store.
        (
            "  a: {state: {store: git, branch: main}, lockfile: s.lock}\n"
            "  b: {state: {store: git, branch: main}, lockfile: s.lock}\n",
            "s.lock, store git",
        ),
        # An unset branch is the checked-out one: maybe main.
        (
            "  a: {state: {store: git}, lockfile: s.lock}\n"
            "  b: {state: {store: git, branch: main}, lockfile: s.lock}\n",
            "s.lock, store git",
        ),
        # The git store's lockfile is the working tree's file.
        (
            "  a: {lockfile: s.lock}\n  b: {state: {store: git}, lockfile: s.lock}\n",
            "s.lock, store git",
        ),
        # One environment's lockfile as the other's journal.
        (
            "  a: {lockfile: s.lock}\n  b: {lockfile: s.lock.journal}\n",
            "s.lock.journal, store file",
        ),
        # The same object of the same bucket, whatever else differs (region, batch size).
        (
            "  a: {state: {store: s3, bucket: bkt, key: p.lock, region: eu-west-1}}\n"
            "  b: {state: {store: s3, bucket: bkt, key: p.lock, intent_batch: 8}}\n",
            "pfsync.lock, store s3",
        ),
    ],
)
def test_two_environments_may_not_share_a_lockfile(
    tmp_path: Path, environments: str, shared: str
) -> None:
    root = project(tmp_path, "business: biz_1\nenvironments:\n" + environments)
    with pytest.raises(ConfigError) as refused:
        load_config(cwd=root, environ={}, environment="a")
    assert str(refused.value) == (
        f"the environments a and b share one lockfile ({shared}); give each environment its "
        "own `lockfile:` (or state location), or one would record the other's triggers"
    )


def test_a_git_lockfile_of_the_same_path_on_another_branch_is_another_location(
    tmp_path: Path,
) -> None:
    root = project(
        tmp_path,
        "business: biz_1\nlockfile: s.lock\nenvironments:\n"
        "  a: {state: {store: git, branch: staging}}\n"
        "  b: {state: {store: git, branch: main}}\n",
    )
    assert load_config(cwd=root, environ={}, environment="b").state.branch == "main"


def test_bad_environment_settings_are_located(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "business: biz_1\nenvironments:\n"
        "  staging:\n    bussiness: biz_2\n"
        "  'no spaces': {}\n"
        "  ok:\n    values: {list: [1, 2]}\n",
    )
    with pytest.raises(ConfigInvalid) as invalid:
        load_config(cwd=root, environ={})
    assert [(d.line, d.col, d.message, d.path) for d in invalid.value.diagnostics] == [
        (4, 5, 'unknown field "bussiness"', "$.environments.staging.bussiness"),
        (
            5,
            3,
            'key "no spaces" does not match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$',
            "$.environments",
        ),
        (7, 20, "[1, 2] is not a string or a number or a boolean", "$.environments.ok.values.list"),
    ]


# ---------------------------------------------------------------------------------------------
# Substitution


def declaring(**values: str | int | float | bool) -> Declaring:
    return Declaring("biz_1", values, "staging")


def test_values_are_substituted_whole_with_their_type_and_inside_text(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    result = load_file(path, "m.yaml", declaring(template="et_1", revenue=12.5, sender="ea_1"))
    assert result.diagnostics == []
    [trigger] = result.manifests
    assert trigger.body == {
        "name": "Welcome (${not a value})",
        "project_defined_event": "pde_signup",
        "attributed_revenue": 12.5,
        "steps": [{"type": "email", "email_template_id": "et_1"}],
        "email_address": "from ea_1",
    }


def test_problems_are_located_at_the_scalar_in_any_document_and_name_the_environment(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        MANIFEST
        + "---\n"
        + MANIFEST.replace("key: welcome", "key: second")
        .replace("${values.template}", "${values.templte}")
        .replace('"from ${values.sender}"', '"${sender}"')
        + "---\n"
        + MANIFEST.replace("key: welcome", "key: third").replace(
            "Welcome ($${not a value})", "Welcome ${values.sender"
        )
    )
    result = load_file(path, "m.yaml", declaring(template="et_1", revenue=1, sender="ea_1"))
    assert result.diagnostics == [
        Diagnostic(
            "m.yaml",
            22,
            26,
            "unknown value `templte` in environment staging",
            "$.spec.steps[0].email_template_id",
            "did you mean template?",
        ),
        Diagnostic(
            "m.yaml",
            23,
            18,
            "`${sender}` is not a value reference",
            "$.spec.email_address",
            "write `${values.NAME}` for a value of pfsync.yaml, or `$${` for a literal `${`",
        ),
        Diagnostic(
            "m.yaml",
            29,
            9,
            "`${` is not closed by `}`",
            "$.spec.name",
            "write `$${` for a literal `${`",
        ),
    ]
    assert [m.key for m in result.manifests] == ["welcome"]


def test_a_value_of_the_wrong_type_is_a_schema_error_at_the_manifest_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    result = load_file(path, "m.yaml", declaring(template=7, revenue="lots", sender="ea_1"))
    # Each says where the value came from: the manifest shows only the reference.
    assert [(d.line, d.col, d.message, d.path) for d in sorted(result.diagnostics)] == [
        (
            7,
            23,
            '"lots" is not a number or null (the value of ${values.revenue} in environment '
            "staging)",
            "$.spec.attributed_revenue",
        ),
        (
            10,
            26,
            "7 is not a string (the value of ${values.template} in environment staging)",
            "$.spec.steps[0].email_template_id",
        ),
    ]


def test_without_environments_the_top_level_values_are_used(tmp_path: Path) -> None:
    root = project(
        tmp_path, "business: biz_1\nvalues: {template: et_t, revenue: 3, sender: ea_t}\n"
    )
    config = load_config(cwd=root, environ={})
    loaded = load_manifests(config, cwd=root)
    assert loaded.diagnostics == []
    assert loaded.manifests[0].body["steps"][0]["email_template_id"] == "et_t"


def test_an_unknown_value_without_environments_names_pfsync_yaml(tmp_path: Path) -> None:
    root = project(tmp_path, "business: biz_1\n")
    loaded = load_manifests(load_config(cwd=root, environ={}), cwd=root)
    assert [(d.line, d.message, d.hint) for d in loaded.diagnostics] == [
        (7, "unknown value `revenue` in pfsync.yaml", "the values of pfsync.yaml: none"),
        (10, "unknown value `template` in pfsync.yaml", "the values of pfsync.yaml: none"),
        (11, "unknown value `sender` in pfsync.yaml", "the values of pfsync.yaml: none"),
    ]


# ---------------------------------------------------------------------------------------------
# The installed CLI


def test_validate_checks_every_environment_and_says_which_one_a_problem_is_in(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    config = CONFIG.replace("values: {template: et_stg}", "values: {}")
    root = project(tmp_path, config)
    run = run_pfsync("validate", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        "triggers/welcome.yaml:10:26: unknown value `template` in environment staging (the "
        "values of environment staging: revenue, sender) [$.spec.steps[0].email_template_id]\n",
        "1 problem(s) found.\n",
    )
    only = run_pfsync("-e", "production", "validate", cwd=root)
    assert (only.code, only.out, only.err) == (0, "", "1 trigger(s) valid.\n")
    fixed = run_pfsync("validate", cwd=project(tmp_path / "fixed"))
    assert (fixed.code, fixed.out, fixed.err) == (
        0,
        "",
        "Trigger(s) valid: 1 in production, 1 in staging.\n",
    )


def test_plan_without_an_environment_is_refused(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    root = project(tmp_path)
    run = run_pfsync("plan", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: pfsync.yaml defines the environments production, staging: choose one with -e "
        "NAME (for example -e production)\n",
    )


TWO_SANDBOXES = """\
values: {{sender: ea_shared, revenue: 10}}
environments:
  staging:
    business: biz_stg
    api_url: {staging}
    lockfile: state/staging.lock
    values: {{template: et_stg}}
  production:
    business: biz_prd
    api_url: {production}
    lockfile: state/production.lock
    values: {{template: et_prd}}
"""


def test_the_same_manifests_apply_to_two_environments_with_their_own_values_and_lockfiles(
    tmp_path: Path, run_pfsync: RunPfsync, make_sandbox: MakeSandbox
) -> None:
    staging, production = make_sandbox(), make_sandbox()
    root = project(tmp_path, TWO_SANDBOXES.format(staging=staging.url, production=production.url))
    (root / "state").mkdir()
    env = {"PFSYNC_USERNAME": "sandbox", "PFSYNC_PASSWORD": "sandbox"}
    for name, sandbox in (("staging", staging), ("production", production)):
        run = run_pfsync(
            "-e", name, "apply", "--auto-approve", "--new-lockfile", "-q", cwd=root, env=env
        )
        [trigger] = sandbox.triggers()
        business = "biz_stg" if name == "staging" else "biz_prd"
        assert run.normalised(ID=trigger["id"]) == (
            0,
            "",
            f"{business}/welcome: created <ID>\n"
            f"Apply ({name}): 1 created, 0 failed, 0 uncertain. Needs a person: 0 update, "
            "0 delete, 0 uncertain.\n",
        )
        template = {"staging": "et_stg", "production": "et_prd"}[name]
        assert trigger["steps"][0]["email_template_id"] == template
        lockfile = json.loads((root / "state" / f"{name}.lock").read_text())
        assert lockfile["environment"] == name
        assert list(lockfile["triggers"]) == [f"{business}/welcome"]
    # Each environment is in sync; neither sees the other's trigger.
    for name in ("staging", "production"):
        plan = run_pfsync("-e", name, "plan", "--detailed-exitcode", cwd=root)
        assert plan.code == 0, plan
        assert plan.out.startswith(f"Environment: {name}\n"), plan


def test_the_wrong_environment_is_refused_before_anything_is_sent(
    tmp_path: Path, run_pfsync: RunPfsync, make_sandbox: MakeSandbox
) -> None:
    staging, production = make_sandbox(), make_sandbox()
    root = project(tmp_path, TWO_SANDBOXES.format(staging=staging.url, production=production.url))
    (root / "state").mkdir()
    env = {"PFSYNC_USERNAME": "sandbox", "PFSYNC_PASSWORD": "sandbox"}
    applied = run_pfsync(
        "-e", "production", "apply", "--auto-approve", "--new-lockfile", cwd=root, env=env
    )
    assert applied.code == 0, applied
    # Production's record where staging's should be (a copy, a bad merge): staging refuses it.
    shutil.copy(root / "state" / "production.lock", root / "state" / "staging.lock")
    before = (root / "state" / "staging.lock").read_bytes()
    for args in (("apply", "--auto-approve"), ("plan",), ("state", "list")):
        run = run_pfsync("-e", "staging", *args, cwd=root, env=env)
        assert (run.code, run.out, run.err) == (
            1,
            "",
            "Error: the lockfile state/staging.lock records the triggers of environment "
            "production, but this run is for environment staging. Run with -e production if "
            "that is the environment meant, or check the `lockfile:` of each environment in "
            "pfsync.yaml; nothing was changed\n",
        ), args
    assert staging.requests() == []
    assert (root / "state" / "staging.lock").read_bytes() == before


def test_a_saved_plan_of_one_environment_is_refused_by_another(
    tmp_path: Path, run_pfsync: RunPfsync, make_sandbox: MakeSandbox
) -> None:
    staging, production = make_sandbox(), make_sandbox()
    root = project(tmp_path, TWO_SANDBOXES.format(staging=staging.url, production=production.url))
    (root / "state").mkdir()
    env = {"PFSYNC_USERNAME": "sandbox", "PFSYNC_PASSWORD": "sandbox"}
    saved = run_pfsync("-e", "production", "plan", "--out", "prod.json", cwd=root)
    assert saved.code == 0, saved
    assert json.loads((root / "prod.json").read_text())["environment"] == "production"
    run = run_pfsync("-e", "staging", "apply", "prod.json", "--new-lockfile", cwd=root, env=env)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: the plan prod.json was made for environment production, but this apply is for "
        "environment staging: apply it with `pfsync -e production apply prod.json`, or make a "
        "plan for this environment with `pfsync -e staging plan --out FILE`; nothing was sent\n",
    )
    assert staging.requests() == [] and production.requests() == []
    assert not (root / "state" / "staging.lock").exists()  # refused before one was made


def test_every_plan_format_names_the_environment() -> None:
    from pfsync.plan.planner import create_plan
    from pfsync.plan.render.json_document import PlanReport
    from pfsync.plan.render.text import RENDERERS

    report = PlanReport(
        create_plan([], None, "https://api.example.test"),
        "state/staging.lock",
        environment="staging",
    )
    assert RENDERERS["text"](report).splitlines()[0] == "Environment: staging"
    assert json.loads(RENDERERS["json"](report))["environment"] == "staging"
    assert RENDERERS["markdown"](report).splitlines()[2] == (
        "Environment `staging` · Business (none) · API `https://api.example.test` · lockfile "
        "`state/staging.lock` does not exist yet"
    )


def test_a_trigger_two_environments_would_both_create_is_refused(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    # A literal business in a manifest is the same in every environment at the same API.
    literal = MANIFEST.replace("key: welcome\n", "key: welcome\nbusiness: biz_shared\n")
    config = CONFIG.replace("    api_url: https://prod.example.test\n", "")
    root = project(tmp_path, config, {"welcome.yaml": literal})
    run = run_pfsync("validate", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        "triggers/welcome.yaml:3:1: environments production and staging would each create "
        "biz_shared/welcome (the same business at the same API): two triggers (give each "
        "environment its own business: leave `business:` out of the manifest or write "
        "`business: ${values.NAME}`, and set `business:` per environment) [$.business]\n",
        "1 problem(s) found.\n",
    )
    # At two APIs the same business id is two businesses: nothing is created twice.
    apart = project(tmp_path / "apart", CONFIG, {"welcome.yaml": literal})
    assert run_pfsync("validate", cwd=apart).code == 0


def test_init_with_environments_gives_each_its_own_business_and_validates(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    made = run_pfsync(
        "init", "repo", "--business", "biz_acme", "--env", "stg", "--env", "prd", cwd=tmp_path
    )
    assert made.code == 0, made
    config = (tmp_path / "repo" / "pfsync.yaml").read_text()
    assert "    business: biz_acme-stg  " in config and "    business: biz_acme-prd  " in config
    run = run_pfsync("validate", cwd=tmp_path / "repo")
    assert (run.code, run.out, run.err) == (0, "", "Trigger(s) valid: 1 in prd, 1 in stg.\n")


def test_an_aliased_scalar_container_is_substituted_once(tmp_path: Path) -> None:
    # An alias is the same mapping twice: substituting it once per reference would resolve a
    # literal `$${` the first time and then read the `${` it left as a reference.
    path = tmp_path / "m.yaml"
    path.write_text(
        MANIFEST.replace(
            "  steps:\n    - type: email\n      email_template_id: ${values.template}\n",
            '  steps:\n    - &s {type: email, email_template_id: "$${values.template}"}\n'
            "    - *s\n",
        )
    )
    result = load_file(path, "m.yaml", declaring(template="et_1", revenue=1, sender="ea_1"))
    assert result.diagnostics == []
    literal = {"type": "email", "email_template_id": "${values.template}"}
    assert result.manifests[0].body["steps"] == [literal, literal]


def test_a_reference_written_with_yaml_escapes_is_still_a_reference(tmp_path: Path) -> None:
    # "\x24{…}" is "${…}" once YAML has read it: the same text, the same meaning.
    path = tmp_path / "m.yaml"
    path.write_text(
        "apiVersion: pfsync/v1\nkind: Trigger\nkey: k\nspec:\n  name: n\n"
        "  project_defined_event: pde_x\n  steps: [{type: email, email_template_id: et_1}]\n"
        '  email_address: "from \\x24{values.sender}"\n'
    )
    result = load_file(path, "m.yaml", declaring(sender="ea_1"))
    assert result.diagnostics == []
    assert result.manifests[0].body["email_address"] == "from ea_1"


def test_values_cannot_grow_a_document_past_the_loader_limit(tmp_path: Path) -> None:
    # 306 bytes of YAML and a 50 KB value, repeated by aliases: the loader's limit still holds.
    path = tmp_path / "m.yaml"
    aliases = ", ".join(["*a"] * 30)
    path.write_text(
        "apiVersion: pfsync/v1\nkind: Trigger\nkey: k\nspec:\n  name: n\n"
        f'  metadata: {{a: &a ["${{values.big}}"], b: [{aliases}]}}\n'
    )
    result = load_file(path, "m.yaml", declaring(big="x" * 50_000))
    assert [(d.line, d.col, d.message) for d in result.diagnostics] == [
        (
            1,
            1,
            "with the values of environment staging, the document expands to more than 1 MiB "
            "of JSON, the limit for a document",
        )
    ]
    assert result.manifests == []


def test_one_environment_refuses_a_trigger_another_would_also_create(
    tmp_path: Path, run_pfsync: RunPfsync, make_sandbox: MakeSandbox
) -> None:
    # Both environments inherit one business at one API: whichever applies first, the other
    # would create every trigger a second time. plan and apply of either refuse, nothing sent.
    sandbox = make_sandbox()
    config = TWO_SANDBOXES.format(staging=sandbox.url, production=sandbox.url)
    config = "business: biz_same\n" + config.replace("    business: biz_stg\n", "").replace(
        "    business: biz_prd\n", ""
    )
    root = project(tmp_path, config)
    (root / "state").mkdir()
    env = {"PFSYNC_USERNAME": "sandbox", "PFSYNC_PASSWORD": "sandbox"}
    problem = (
        "triggers/welcome.yaml:3:1: environments production and staging would each create "
        "biz_same/welcome (the same business at the same API): two triggers (give each "
        "environment its own business: leave `business:` out of the manifest or write "
        "`business: ${values.NAME}`, and set `business:` per environment) [$.business]\n"
    )
    for name in ("staging", "production"):
        refused = problem + (
            f"Error: 1 problem(s) in the manifests; fix them (see `pfsync -e {name} validate`) "
            "and run again.\n"
        )
        plan = run_pfsync("-e", name, "plan", cwd=root)
        assert (plan.code, plan.out, plan.err) == (1, "", refused), plan
        apply = run_pfsync(
            "-e", name, "apply", "--auto-approve", "--new-lockfile", cwd=root, env=env
        )
        assert (apply.code, apply.out, apply.err) == (1, "", refused), apply
    assert sandbox.requests() == []


def test_init_writes_environment_names_yaml_would_read_otherwise_as_quoted_keys(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    made = run_pfsync(
        "init", "repo", "--env", "true", "--env", "1.0", "--business", "biz_1", cwd=tmp_path
    )
    assert made.code == 0, made
    run = run_pfsync("validate", cwd=tmp_path / "repo")
    assert (run.code, run.out, run.err) == (0, "", "Trigger(s) valid: 1 in 1.0, 1 in true.\n")


def test_apply_creates_the_folder_of_a_new_lockfile(
    tmp_path: Path, run_pfsync: RunPfsync, make_sandbox: MakeSandbox
) -> None:
    staging, production = make_sandbox(), make_sandbox()
    root = project(tmp_path, TWO_SANDBOXES.format(staging=staging.url, production=production.url))
    env = {"PFSYNC_USERNAME": "sandbox", "PFSYNC_PASSWORD": "sandbox"}
    run = run_pfsync(
        "-e", "staging", "-q", "apply", "--auto-approve", "--new-lockfile", cwd=root, env=env
    )
    assert run.code == 0, run
    assert json.loads((root / "state" / "staging.lock").read_text())["environment"] == "staging"


def test_a_whole_number_revision_written_as_a_float_is_an_integer(tmp_path: Path) -> None:
    # JSON Schema counts 2.0 as an integer; the lockfile and saved plans need the int 2.
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST.replace("key: welcome\n", "key: welcome\nrevision: ${values.rev}\n"))
    result = load_file(path, "m.yaml", declaring(template="t", revenue=1, sender="s", rev=2.0))
    assert result.diagnostics == []
    assert type(result.manifests[0].revision) is int and result.manifests[0].revision == 2


def test_only_errors_about_a_substituted_value_say_where_it_came_from(tmp_path: Path) -> None:
    # An unknown field whose value is a reference: the error is about its name, not the value.
    # An alias repeats one substituted scalar: both errors, at its one place, say so.
    path = tmp_path / "m.yaml"
    path.write_text(
        "apiVersion: pfsync/v1\n"
        "kind: Trigger\n"
        "key: a\n"
        "spec:\n"
        "  name: Welcome\n"
        "  project_defined_event: pde_signup\n"
        "  colour: ${values.title}\n"
        "  steps:\n"
        '    - &s {type: email, email_template_id: "${values.count}"}\n'
        "    - *s\n"
    )
    result = load_file(path, "m.yaml", declaring(title="Hi", count=3))
    assert [(d.line, d.col, d.message, d.path) for d in sorted(result.diagnostics)] == [
        (7, 3, 'unknown field "colour"', "$.spec.colour"),
        (
            9,
            43,
            "3 is not a string (the value of ${values.count} in environment staging)",
            "$.spec.steps[0].email_template_id",
        ),
        (
            9,
            43,
            "3 is not a string (the value of ${values.count} in environment staging)",
            "$.spec.steps[1].email_template_id",
        ),
    ]


def test_an_environment_given_its_own_api_url_after_init_adopts_the_empty_lockfile(
    tmp_path: Path, run_pfsync: RunPfsync, make_sandbox: MakeSandbox
) -> None:
    # init's empty lockfile names the default API; it records nothing, so an `api_url:` set
    # afterwards is adopted (plan accepts it, apply records it) instead of refused.
    sandbox = make_sandbox()
    assert run_pfsync("init", "repo", "--env", "staging", "--env", "production", cwd=tmp_path)
    root = tmp_path / "repo"
    config = root / "pfsync.yaml"
    text = config.read_text()
    edited = text.replace(
        "    business: biz_123-staging ",
        f"    api_url: {sandbox.url}\n    business: biz_acme-staging ",
    )
    assert edited != text
    config.write_text(edited)
    lockfile = root / "state" / "staging.lock"
    assert json.loads(lockfile.read_text())["api_url"] == "https://api.pocketflows.com"
    plan = run_pfsync("-e", "staging", "plan", cwd=root)
    assert (plan.code, plan.out, plan.err) == (
        0,
        "Environment: staging\n"
        "Business: biz_acme-staging\n"
        f"API: {sandbox.url}\n"
        "Lockfile: state/staging.lock (serial 1)\n"
        + NOT_A_REPOSITORY
        + "\n"
        + init_example_create("biz_acme-staging"),
        "",
    )
    env = {"PFSYNC_USERNAME": "sandbox", "PFSYNC_PASSWORD": "sandbox"}
    apply = run_pfsync("-e", "staging", "-q", "apply", "--auto-approve", cwd=root, env=env)
    assert apply.code == 0, apply
    assert json.loads(lockfile.read_text())["api_url"] == sandbox.url
    # Now it records a trigger: another API is refused again, and nothing changes.
    recorded = lockfile.read_bytes()
    moved = {"PFSYNC_API_URL": "http://127.0.0.1:9"}
    refused = run_pfsync("-e", "staging", "plan", cwd=root, env=moved)
    assert (refused.code, refused.out) == (1, "")
    assert "describes the API" in refused.err and "the configured API URL is" in refused.err
    assert lockfile.read_bytes() == recorded
