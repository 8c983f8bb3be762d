"""Where `${values.NAME}` applies, what a near-miss looks like, and how each problem is reported.

Values apply in `business:`, `revision:` and under `spec:` only (docs/environments.md);
`$values.NAME` without braces is a located warning; an unknown value is one report however many
environments share it; "did you mean" names only a close name (docs/manifests.md).
"""

from __future__ import annotations

from pathlib import Path

from conftest import RunPfsync
from pfsync.manifests.load import load_file
from pfsync.manifests.results import Declaring
from pfsync.support.diagnostics import Diagnostic

CONFIG = """\
api_url: https://api.example.test
values: {hello_sender: ea_hello}
environments:
  staging:
    business: biz_stg
    lockfile: state/staging.lock
    values: {sms_sender: pn_stg, signup_event: pde_stg}
  production:
    business: biz_prd
    lockfile: state/production.lock
    values: {sms_sender: pn_prd, signup_event: pde_prd}
"""

SMS = """\
apiVersion: pfsync/v1
kind: Trigger
key: delivery-sms
spec:
  name: Out for delivery
  project_defined_event: pde_order_shipped
  steps:
    - type: custom
      custom_step_id: cs_sms
  phone_number: {sender}
"""


def project(tmp_path: Path, sender: str) -> Path:
    root = tmp_path / "repo"
    (root / "triggers").mkdir(parents=True)
    (root / "pfsync.yaml").write_text(CONFIG)
    (root / "triggers" / "sms.yaml").write_text(SMS.replace("{sender}", sender))
    return root


def test_a_value_in_key_is_refused_at_its_place(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        SMS.replace("key: delivery-sms", "key: sms-${values.region}").replace("{sender}", "pn_1")
    )
    result = load_file(path, "m.yaml", Declaring("biz_1", {"region": "eu"}, "staging"))
    assert (result.manifests, result.diagnostics, result.warnings) == (
        [],
        [
            Diagnostic(
                "m.yaml",
                3,
                6,
                "`${values.…}` is not substituted in `key:`",
                "$.key",
                "values apply only in `business:`, `revision:` and under `spec:`; write the key "
                "as it is",
            )
        ],
        [],
    )


def test_values_without_braces_is_a_located_warning_and_the_text_is_kept(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(SMS.replace("{sender}", "$values.sms_sender"))
    result = load_file(path, "m.yaml", Declaring("biz_1", {"sms_sender": "pn_1"}, "staging"))
    assert result.diagnostics == []
    assert [m.body["phone_number"] for m in result.manifests] == ["$values.sms_sender"]
    assert result.warnings == [
        Diagnostic(
            "m.yaml",
            10,
            17,
            "`$values.sms_sender` is not a value reference: it is sent as written",
            "$.spec.phone_number",
            "write `${values.sms_sender}` for the value",
        )
    ]
    root = project(tmp_path, "$values.sms_sender")
    warning = (
        "triggers/sms.yaml:10:17: warning: `$values.sms_sender` is not a value reference: it is "
        "sent as written (write `${values.sms_sender}` for the value) [$.spec.phone_number]\n"
    )
    run = run_pfsync("validate", cwd=root)
    assert (run.code, run.out, run.err) == (
        0,
        warning,
        "Trigger(s) valid: 1 in production, 1 in staging; 1 warning.\n",
    )
    github = run_pfsync("validate", "--format", "github", cwd=root)
    assert (github.code, github.out) == (
        0,
        "::warning file=triggers/sms.yaml,line=10,col=17::`$values.sms_sender` is not a value "
        "reference: it is sent as written (write `${values.sms_sender}` for the value) "
        "[$.spec.phone_number]\n",
    )
    plan = run_pfsync("-e", "staging", "plan", "--sandbox", "--format", "json", cwd=root)
    shown = (
        "Warning: triggers/sms.yaml:10:17: `$values.sms_sender` is not a value reference: it is "
        "sent as written (write `${values.sms_sender}` for the value) [$.spec.phone_number]\n"
    )
    assert (plan.code, plan.err) == (0, shown), plan
    apply = run_pfsync("-e", "staging", "apply", "--sandbox", "--auto-approve", cwd=root)
    assert (apply.code, apply.err.startswith(shown)) == (0, True), apply


def test_an_unknown_value_of_every_environment_is_reported_once(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = project(tmp_path, "${values.vip_revenue}")
    run = run_pfsync("validate", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        "triggers/sms.yaml:10:17: unknown value `vip_revenue` in environments production and "
        "staging (the values of environments production and staging: hello_sender, "
        "signup_event, sms_sender) [$.spec.phone_number]\n",
        "1 problem(s) found.\n",
    )
    near = run_pfsync("validate", cwd=project(tmp_path / "near", "${values.sms_sendr}"))
    assert (near.code, near.out, near.err) == (
        1,
        "triggers/sms.yaml:10:17: unknown value `sms_sendr` in environments production and "
        "staging (did you mean sms_sender?) [$.spec.phone_number]\n",
        "1 problem(s) found.\n",
    )
    # Where the environments' values differ, each one's list is given.
    apart = project(tmp_path / "apart", "${values.vip_revenue}")
    config = apart / "pfsync.yaml"
    config.write_text(config.read_text().replace(", signup_event: pde_prd", ""))
    listed = run_pfsync("validate", cwd=apart)
    assert (listed.code, listed.out) == (
        1,
        "triggers/sms.yaml:10:17: unknown value `vip_revenue` in environments production and "
        "staging (the values of environment production: hello_sender, sms_sender; the values of "
        "environment staging: hello_sender, signup_event, sms_sender) [$.spec.phone_number]\n",
    )
    plan = run_pfsync("-e", "staging", "plan", "--sandbox", cwd=root)
    assert (plan.code, plan.out, plan.err) == (
        1,
        "",
        "triggers/sms.yaml:10:17: unknown value `vip_revenue` in environment staging (the "
        "values of environment staging: hello_sender, signup_event, sms_sender) "
        "[$.spec.phone_number]\n"
        "Error: 1 problem(s) in the manifests; fix them (see `pfsync -e staging validate`) and "
        "run again.\n",
    )


def test_did_you_mean_names_only_a_close_name(tmp_path: Path) -> None:
    from pfsync.support.suggest import closest

    assert closest("vip_revenue", ["signup_event", "sms_sender"]) is None
    assert closest("vip_templat", ["signup_event", "vip_template"]) == "vip_template"
    assert closest("nmae", ["name", "steps"]) == "name"
    path = tmp_path / "m.yaml"
    path.write_text(SMS.replace("{sender}", "${values.vip_revenue}") + "  vip_revenue: 3\n")
    values = {"signup_event": "pde_1", "sms_sender": "pn_1"}
    result = load_file(path, "m.yaml", Declaring("biz_1", values, "staging"))
    assert [(d.line, d.message, d.hint) for d in result.diagnostics] == [
        (
            10,
            "unknown value `vip_revenue` in environment staging",
            "the values of environment staging: signup_event, sms_sender",
        ),
    ]
    path.write_text(SMS.replace("{sender}", "pn_1") + "  vip_revenue: 3\n")
    result = load_file(path, "m.yaml", Declaring("biz_1", values, "staging"))
    [unknown] = result.diagnostics
    assert (unknown.message, unknown.hint is not None and unknown.hint.startswith("known")) == (
        'unknown field "vip_revenue"',
        True,
    )
