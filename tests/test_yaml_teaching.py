"""YAML errors that teach (#13 item 5): the usual YAML traps are named, with the fix, in place."""

from __future__ import annotations

from pathlib import Path

from conftest import RunPfsync

HEAD = "apiVersion: pfsync/v1\nkind: Trigger\nkey: t\n"
LATER = "(other problems in this file are not checked until this is fixed)"


def validate(run_pfsync: RunPfsync, tmp_path: Path, text: str) -> str:
    """`pfsync validate` of a repository whose only manifest is triggers/t.yaml with `text`."""
    (tmp_path / "pfsync.yaml").write_text("business: biz_1\n")
    (tmp_path / "triggers").mkdir()
    (tmp_path / "triggers" / "t.yaml").write_text(text)
    run = run_pfsync("validate", cwd=tmp_path)
    assert run.code == 1, run
    assert run.err == f"{run.out.count(chr(10))} problem(s) found.\n", run
    return run.out


def test_a_tab_in_the_indentation_says_use_spaces(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    out = validate(run_pfsync, tmp_path, HEAD + "spec:\n\tname: n\n")
    assert out == (
        "triggers/t.yaml:5:1: YAML syntax error: tabs are not allowed for indentation in YAML; "
        f"use spaces {LATER} [$.spec]\n"
    )


def test_an_unquoted_boolean_or_number_where_a_string_is_expected_says_quote_it(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    spec = "spec:\n  name: yes\n  project_defined_event: 123\n  steps: []\n"
    out = validate(run_pfsync, tmp_path, HEAD + spec)
    assert out == (
        "triggers/t.yaml:5:9: true is not a string (YAML reads yes/no/on/off/true/false as a "
        'boolean; quote it: "yes") [$.spec.name]\n'
        'triggers/t.yaml:6:26: 123 is not a string (YAML reads 123 as a number; quote it: "123") '
        "[$.spec.project_defined_event]\n"
    )


def test_quoted_strings_get_no_quoting_hint(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    spec = 'spec:\n  name: "yes"\n  project_defined_event: p\n  steps: "a"\n'
    out = validate(run_pfsync, tmp_path, HEAD + spec)
    assert out == (
        'triggers/t.yaml:7:10: "a" is not a list (a list item starts with `- `) [$.spec.steps]\n'
    )


def test_steps_given_as_a_mapping_say_expected_a_list_shown_as_json(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    spec = "spec:\n  name: n\n  project_defined_event: p\n  steps:\n    type: email\n"
    out = validate(run_pfsync, tmp_path, HEAD + spec + "    email_template_id: et\n")
    assert out == (
        'triggers/t.yaml:8:5: {"type": "email", "email_template_id": "et"} is not a list '
        "(a list item starts with `- `) [$.spec.steps]\n"
    )


def test_values_are_shown_as_json_not_python(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    text = "apiVersion: pfsync/v2\nkind: Trigger\nkey: t\nrevision: -1\nspec:\n  name: ~\n"
    out = validate(run_pfsync, tmp_path, text + "  project_defined_event: p\n  steps: []\n")
    assert out == (
        'triggers/t.yaml:1:13: must be "pfsync/v1", not "pfsync/v2" [$.apiVersion]\n'
        "triggers/t.yaml:4:11: -1 is less than the minimum of 0 [$.revision]\n"
        'triggers/t.yaml:6:9: null is not a string (YAML reads ~ as null; quote it: "~") '
        "[$.spec.name]\n"
    )


def test_a_key_dedented_to_column_1_is_reported_on_its_own_line(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    spec = "spec:\n  name: n\nproject_defined_event: pde\n  steps: []\n"
    out = validate(run_pfsync, tmp_path, HEAD + spec)
    assert out == (
        'triggers/t.yaml:6:1: YAML syntax error: "project_defined_event" is indented less than '
        f"the keys around it, so line 7 reads as part of its value {LATER} [$]\n"
    )


def test_a_key_indented_too_far_is_reported_at_the_key(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    out = validate(run_pfsync, tmp_path, HEAD + "spec:\n  name: n\n    steps: []\n")
    assert out == (
        'triggers/t.yaml:6:5: YAML syntax error: "steps" is indented more than the key on '
        f"line 5, so it reads as part of that key's value {LATER} [$.spec]\n"
    )


def test_a_syntax_error_says_other_problems_are_not_checked(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    out = validate(run_pfsync, tmp_path, HEAD + "spec:\n  name: [a, b\n")
    assert out == (
        "triggers/t.yaml:6:1: YAML syntax error: did not find expected ',' or ']' (while "
        f"parsing a flow sequence at line 5, column 9) {LATER} [$.spec.name[2]]\n"
    )
