"""The business ids `pfsync init` writes when it is given none are placeholders, and say so.

`validate` warns at their place in pfsync.yaml; `plan` and `apply` against an API refuse them
before reading any state or credentials; `--sandbox` runs keep working with them (the quickstart
and the tutorial do). One source: init writes `PLACEHOLDER_BUSINESS`, the check recognises it.
"""

from __future__ import annotations

from pathlib import Path

from conftest import RunPfsync

ONE = (
    "pfsync.yaml:2:11: warning: business biz_123 is the placeholder `pfsync init` wrote, not a "
    "Pocketflows business (set the real business id here; until then, plan and apply run only "
    "with --sandbox) [$.business]\n"
)


def test_init_without_a_business_is_flagged_by_validate_and_refused_by_plan_and_apply(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    assert run_pfsync("init", "repo", cwd=tmp_path).code == 0
    repo = tmp_path / "repo"
    validate = run_pfsync("validate", cwd=repo)
    assert (validate.code, validate.out, validate.err) == (
        0,
        ONE,
        "1 trigger(s) valid; 1 warning.\n",
    )
    refused = (
        "Error: business biz_123 is the placeholder `pfsync init` wrote, not a Pocketflows "
        "business: set the real business id in pfsync.yaml (`business`), or run with --sandbox. "
        "Nothing was sent.\n"
    )
    plan = run_pfsync("plan", cwd=repo)
    assert (plan.code, plan.out, plan.err) == (1, "", refused)
    apply = run_pfsync("apply", "--auto-approve", cwd=repo)
    assert (apply.code, apply.out, apply.err) == (1, "", refused)
    sandbox = run_pfsync("plan", "--sandbox", "--detailed-exitcode", cwd=repo)
    assert sandbox.code == 2, sandbox


def test_each_environment_init_made_up_is_flagged_at_its_own_line(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    made = run_pfsync("init", "repo", "--env", "staging", "--env", "production", cwd=tmp_path)
    assert made.code == 0, made
    repo = tmp_path / "repo"
    validate = run_pfsync("validate", cwd=repo)
    hint = "(set the real business id here; until then, plan and apply run only with --sandbox)"
    assert (validate.code, validate.out, validate.err) == (
        0,
        "pfsync.yaml:8:15: warning: business biz_123-staging is the placeholder `pfsync init` "
        f"wrote, not a Pocketflows business {hint} [$.environments.staging.business]\n"
        "pfsync.yaml:13:15: warning: business biz_123-production is the placeholder "
        f"`pfsync init` wrote, not a Pocketflows business {hint} "
        "[$.environments.production.business]\n",
        "Trigger(s) valid: 1 in production, 1 in staging; 2 warnings.\n",
    )
    plan = run_pfsync("-e", "staging", "plan", cwd=repo)
    assert (plan.code, plan.out, plan.err) == (
        1,
        "",
        "Error: business biz_123-staging (environment staging) is the placeholder `pfsync init` "
        "wrote, not a Pocketflows business: set the real business id in pfsync.yaml "
        "(`environments.staging.business`), or run with --sandbox. Nothing was sent.\n",
    )
    sandbox = run_pfsync("-e", "staging", "apply", "--sandbox", "--auto-approve", cwd=repo)
    assert sandbox.code == 0, sandbox


def test_a_business_given_to_init_is_not_a_placeholder(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    made = run_pfsync("init", "repo", "--business", "biz_acme", cwd=tmp_path)
    assert made.code == 0, made
    validate = run_pfsync("validate", cwd=tmp_path / "repo")
    assert (validate.code, validate.out, validate.err) == (0, "", "1 trigger(s) valid.\n")
