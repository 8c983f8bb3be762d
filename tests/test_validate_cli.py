"""`pfsync validate` end to end: the installed CLI on the bad-manifest corpus and the examples."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO, TESTS, RunPfsync

DATA = TESTS / "data"
HINT_KEY = "a key is 1-100 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
HINT_TAG = "only plain YAML values (strings, numbers, booleans, null, lists, mappings) are accepted"
DUPLICATE_B = (
    "bad/duplicate-address-b.yaml:3:1: address biz_test/welcome is declared twice: here and "
    "at bad/duplicate-address-a.yaml:3 (each BUSINESS/KEY must be declared once; "
    "rename one key) [$.key]"
)

# One file per kind of rejection in docs/manifests.md, with the exact line and column expected.
EXPECTED = {
    "bad-key.yaml": 'bad/bad-key.yaml:3:6: "Bad Key" does not match '
    f"^[a-z0-9][a-z0-9._-]{{0,99}}$ ({HINT_KEY}) [$.key]",
    "billion-laughs.yaml": "bad/billion-laughs.yaml:6:4: document expands to more than 1 MiB "
    "of JSON (aliases nested too deeply?) [$.f[3]]",
    "binary.yaml": "bad/binary.yaml:9:11: binary data cannot be carried by JSON "
    "(quote it to make it a string) [$.spec.metadata.blob]",
    "duplicate-key.yaml": 'bad/duplicate-key.yaml:6:3: duplicate key "name" '
    "(first defined at line 5) [$.spec.name]",
    "infinity.yaml": 'bad/infinity.yaml:8:23: ".inf" is not a number JSON can carry '
    "(NaN and infinity are not allowed) [$.spec.attributed_revenue]",
    "missing-required.yaml": 'bad/missing-required.yaml:4:1: missing required field "name" '
    "[$.spec]",
    "non-string-key.yaml": "bad/non-string-key.yaml:9:5: mapping keys must be strings, "
    "not a number (quote the key) [$.spec.metadata]",
    "not-a-mapping.yaml": "bad/not-a-mapping.yaml:1:1: a manifest must be a mapping "
    "(apiVersion, kind, …) [$]",
    "not-utf8.yaml": "bad/not-utf8.yaml:5:13: file is not valid UTF-8 (byte 0xe9) "
    "(save the file as UTF-8) [$]",
    "python-tag.yaml": "bad/python-tag.yaml:5:9: YAML tag !!python/object/apply:os.system "
    f"is not allowed ({HINT_TAG}) [$.spec.name]",
    "second-document.yaml": 'bad/second-document.yaml:16:7: missing required field "type" '
    "[$.spec.steps[0]]",
    "syntax-error.yaml": "bad/syntax-error.yaml:6:24: YAML syntax error: did not find "
    "expected ',' or ']' (while parsing a flow sequence at line 5, column 9) "
    "(other problems in this file are not checked until this is fixed) [$.spec.name[1]]",
    "timestamp.yaml": "bad/timestamp.yaml:9:13: a date or timestamp cannot be carried by JSON "
    "(quote it to make it a string) [$.spec.metadata.launch]",
    "unknown-field.yaml": 'bad/unknown-field.yaml:5:3: unknown field "nmae" '
    '(did you mean "name"?) [$.spec.nmae]',
    "wrong-api-version.yaml": 'bad/wrong-api-version.yaml:1:13: must be "pfsync/v1", '
    'not "pfsync/v2" [$.apiVersion]',
    "wrong-types.yaml": "bad/wrong-types.yaml:5:9: 42 is not a string "
    '(YAML reads 42 as a number; quote it: "42") [$.spec.name]\n'
    'bad/wrong-types.yaml:9:26: ["et"] is not a string [$.spec.steps[0].email_template_id]\n'
    'bad/wrong-types.yaml:10:23: "cus_1" is not a list (a list item starts with `- `) '
    "[$.spec.excluded_customers]",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_rejection_is_located(run_pfsync: RunPfsync, name: str) -> None:
    expected = EXPECTED[name] + "\n"
    run = run_pfsync("validate", f"bad/{name}", cwd=DATA)
    count = expected.count("\n")
    assert (run.code, run.out, run.err) == (1, expected, f"{count} problem(s) found.\n"), run


def test_all_problems_of_all_files_in_one_run_sorted(run_pfsync: RunPfsync) -> None:
    run = run_pfsync("-q", "validate", cwd=DATA)
    # A repeated address is reported once, at its later place, naming the first.
    every = {**EXPECTED, "duplicate-address-b.yaml": DUPLICATE_B}
    expected = "".join(every[name] + "\n" for name in sorted(every))
    assert (run.code, run.out, run.err) == (1, expected, "")


def test_duplicate_address_names_both_places(run_pfsync: RunPfsync) -> None:
    run = run_pfsync(
        "-q", "validate", "bad/duplicate-address-a.yaml", "bad/duplicate-address-b.yaml", cwd=DATA
    )
    assert (run.code, run.out, run.err) == (1, DUPLICATE_B + "\n", "")


def test_naming_one_file_still_checks_addresses_against_all(run_pfsync: RunPfsync) -> None:
    run = run_pfsync("-q", "validate", "bad/duplicate-address-a.yaml", cwd=DATA)
    assert (run.code, run.out, run.err) == (
        1,
        "bad/duplicate-address-a.yaml:3:1: address biz_test/welcome is declared twice: here and "
        "at bad/duplicate-address-b.yaml:3 (each BUSINESS/KEY must be declared once; "
        "rename one key) [$.key]\n",
        "",
    )


def test_no_business_is_an_error(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    shutil.copy(DATA / "no-business.yaml", tmp_path / "t.yaml")
    (tmp_path / "pfsync.yaml").write_text('manifests: ["*.yaml"]\n')
    # An environment variable must never choose a trigger's business (it would create them again).
    run = run_pfsync("validate", cwd=tmp_path, env={"PFSYNC_BUSINESS": "biz_env"})
    assert (run.code, run.out, run.err) == (
        1,
        "t.yaml:3:1: no business for this trigger (set `business:` in the manifest, or a "
        "default `business:` in pfsync.yaml) [$.business]\n",
        "1 problem(s) found.\n",
    )


def test_examples_are_valid_from_an_unrelated_directory(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    run = run_pfsync("validate", str(REPO / "examples" / "triggers"), cwd=tmp_path)
    counts = "7 in production, 7 in staging"
    assert (run.code, run.out, run.err) == (0, "", f"Trigger(s) valid: {counts}.\n")


def test_examples_use_every_api_field() -> None:
    import yaml

    fields: set[str] = set()
    step_fields: set[str] = set()
    step_types: set[str] = set()
    documents = 0
    for path in sorted((REPO / "examples" / "triggers").glob("*.yaml")):
        text = path.read_text()
        assert text.startswith("# yaml-language-server: $schema=../../schemas/manifest.schema.json")
        for doc in yaml.safe_load_all(text):
            documents += 1
            fields |= set(doc["spec"])
            for step in doc["spec"]["steps"]:
                step_fields |= set(step)
                step_types.add(step["type"])
    schema = json.loads((REPO / "schemas" / "trigger-request.schema.json").read_text())
    assert fields == set(schema["properties"])
    assert step_fields == set(schema["$defs"]["step"]["properties"])
    assert {"email", "custom"} <= step_types
    assert documents > len(list((REPO / "examples" / "triggers").glob("*.yaml")))


def test_github_format_one_annotation_per_problem(run_pfsync: RunPfsync) -> None:
    run = run_pfsync("-q", "validate", "--format", "github", "bad/wrong-types.yaml", cwd=DATA)
    assert (run.code, run.out, run.err) == (
        1,
        "::error file=bad/wrong-types.yaml,line=5,col=9::42 is not a string "
        '(YAML reads 42 as a number; quote it: "42") [$.spec.name]\n'
        '::error file=bad/wrong-types.yaml,line=9,col=26::["et"] is not a string '
        "[$.spec.steps[0].email_template_id]\n"
        '::error file=bad/wrong-types.yaml,line=10,col=23::"cus_1" is not a list '
        "(a list item starts with `- `) [$.spec.excluded_customers]\n",
        "",
    )


def test_json_format(run_pfsync: RunPfsync) -> None:
    run = run_pfsync("-q", "validate", "--format", "json", "bad/unknown-field.yaml", cwd=DATA)
    assert (run.code, run.err) == (1, "")
    assert json.loads(run.out) == {
        "format_version": 1,
        "valid": False,
        "problems": [
            {
                "file": "bad/unknown-field.yaml",
                "line": 5,
                "col": 3,
                "path": "$.spec.nmae",
                "message": 'unknown field "nmae"',
                "hint": 'did you mean "name"?',
            }
        ],
        "warnings": [],
    }


def test_usage_errors_exit_1(run_pfsync: RunPfsync) -> None:
    run = run_pfsync("validate", "--format", "yaml", cwd=DATA)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Usage: pfsync validate [OPTIONS] [PATHS]...\n"
        "Try 'pfsync validate --help' for help.\n"
        "\n"
        "Error: Invalid value for '--format': 'yaml' is not one of 'github', 'json', 'text'.\n",
    )


def test_missing_path_is_reported(run_pfsync: RunPfsync) -> None:
    run = run_pfsync("validate", "bad/nope.yaml", cwd=DATA)
    assert (run.code, run.out, run.err) == (
        1,
        "bad/nope.yaml:1:1: no such file or directory [$]\n",
        "1 problem(s) found.\n",
    )


def test_oversized_file_rejected_before_parsing(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    (tmp_path / "pfsync.yaml").write_text("business: b\n")
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.write(b"# " + b"x" * (10 * 1024 * 1024) + b"\n")
    run = run_pfsync("validate", "big.yaml", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        1,
        f"big.yaml:1:1: file is larger than 10 MiB ({big.stat().st_size} bytes); not read "
        "(split it into several manifest files) [$]\n",
        "1 problem(s) found.\n",
    )


def test_deep_nesting_is_a_clean_error(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    (tmp_path / "pfsync.yaml").write_text("business: b\n")
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    run = run_pfsync("validate", "deep.yaml", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        1,
        "deep.yaml:1:1003: YAML syntax error: exceeded maximum nesting depth (while increasing "
        "flow level at line 1, column 1003) (other problems in this file are not checked until "
        "this is fixed) [$.a[0]]\n",
        "1 problem(s) found.\n",
    )


def test_symlink_loop_is_reported_and_ends(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    (tmp_path / "pfsync.yaml").write_text("business: b\n")
    triggers = tmp_path / "triggers"
    triggers.mkdir()
    os.symlink("..", triggers / "loop")
    shutil.copy(REPO / "examples" / "triggers" / "welcome-series.yaml", triggers / "w.yaml")
    run = run_pfsync("validate", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        1,
        "triggers/loop:1:1: symbolic link loop: this directory contains itself; not followed [$]\n",
        "1 problem(s) found.\n",
    )


def test_symlink_outside_repository_is_reported(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "triggers").mkdir(parents=True)
    (repo / "pfsync.yaml").write_text("business: b\n")
    outside = tmp_path / "outside.yaml"
    shutil.copy(REPO / "examples" / "triggers" / "welcome-series.yaml", outside)
    os.symlink(outside, repo / "triggers" / "x.yaml")
    run = run_pfsync("validate", cwd=repo)
    assert (run.code, run.out, run.err) == (
        1,
        "triggers/x.yaml:1:1: symbolic link points outside the repository; not followed [$]\n",
        "1 problem(s) found.\n",
    )


def test_bad_config_gets_located_errors(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    (tmp_path / "pfsync.yaml").write_text("business: b\nmanifets: [x]\nbusiness: c\n")
    run = run_pfsync("validate", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        1,
        'pfsync.yaml:3:1: duplicate key "business" (first defined at line 1) [$.business]\n',
        "The configuration file is invalid; fix it and run again.\n",
    )
    (tmp_path / "pfsync.yaml").write_text("business: b\nmanifets: [x]\n")
    run = run_pfsync("validate", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        1,
        'pfsync.yaml:2:1: unknown field "manifets" (did you mean "manifests"?) [$.manifets]\n',
        "The configuration file is invalid; fix it and run again.\n",
    )


def test_help_and_validate_do_not_import_http_or_diff_libraries(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pfsync.cli import main; "
        "rc = main(sys.argv[1:]); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'deepdiff')); "
        "print('IMPORTED', bad, file=sys.stderr); sys.exit(rc)"
    )
    for args, messages in (
        (["--help"], ""),
        (
            ["validate", str(REPO / "examples" / "triggers")],
            "Trigger(s) valid: 7 in production, 7 in staging.\n",
        ),
    ):
        proc = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path
        )
        assert (proc.returncode, proc.stderr) == (0, messages + "IMPORTED []\n")


def test_large_repositories_load_on_every_core_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pfsync.config import load_config
    from pfsync.manifests.load import PARALLEL_MIN_FILES, load_manifests
    from pfsync.support import workers

    shutil.copytree(DATA / "bad", tmp_path / "triggers" / "bad")
    good = (REPO / "examples" / "triggers" / "welcome-series.yaml").read_text()
    for n in range(PARALLEL_MIN_FILES):
        # Every tenth key repeats an earlier one: duplicate addresses across chunks.
        text = good.replace("key: welcome-series", f"key: t-{n - n % 10 if n % 10 == 9 else n}")
        (tmp_path / "triggers" / f"t{n:04d}.yaml").write_text(text)
    (tmp_path / "pfsync.yaml").write_text('business: biz\nmanifests: ["triggers/**/*.yaml"]\n')
    config = load_config(None, str(tmp_path))

    used = []
    real = workers.map_in_processes

    def spy(function: object, chunks: list[object]) -> object:
        used.append(len(chunks))
        return real(function, chunks)  # type: ignore[arg-type]

    monkeypatch.setattr(workers, "map_in_processes", spy)
    in_workers = load_manifests(config, cwd=tmp_path)
    monkeypatch.setattr(workers, "map_in_processes", lambda function, chunks: None)
    here = load_manifests(config, cwd=tmp_path)

    assert used and used[0] > 1
    assert in_workers == here
    twice = [d for d in here.diagnostics if "biz/t-" in d.message]
    assert len(twice) == len(range(9, PARALLEL_MIN_FILES, 10))
    assert any(d.file == "triggers/bad/not-utf8.yaml" for d in here.diagnostics)


def test_a_huge_value_is_named_without_blaming_aliases(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    # Issue #12: a 9.9 MiB string was reported as "aliases nested too deeply?" (there were none).
    (tmp_path / "pfsync.yaml").write_text("business: b\n")
    huge = "x" * (9 * 1024 * 1024 + 900 * 1024)
    (tmp_path / "big.yaml").write_text(f"apiVersion: pfsync/v1\nkey: big\nspec:\n  name: {huge}\n")
    run = run_pfsync("validate", "big.yaml", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        1,
        "big.yaml:4:9: a value of 9.9 MiB exceeds the 1 MiB limit for a document [$.spec.name]\n",
        "1 problem(s) found.\n",
    )


def test_a_document_over_the_limit_without_aliases_says_so(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    (tmp_path / "pfsync.yaml").write_text("business: b\n")
    items = "".join(f"  - {n:07d}{'y' * 1000}\n" for n in range(1100))
    (tmp_path / "many.yaml").write_text(f"apiVersion: pfsync/v1\nkey: many\nlist:\n{items}")
    run = run_pfsync("validate", "many.yaml", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        1,
        "many.yaml:4:3: document is more than 1 MiB of JSON, the limit for a document "
        "(split it into several documents or files) [$.list[1039]]\n",
        "1 problem(s) found.\n",
    )


def test_each_missing_required_field_is_reported_once(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    (tmp_path / "triggers").mkdir()
    (tmp_path / "pfsync.yaml").write_text("business: biz_1\n")
    (tmp_path / "triggers" / "a.yaml").write_text("apiVersion: pfsync/v1\nkind: Trigger\n")
    run = run_pfsync("validate", cwd=tmp_path)
    assert (run.code, run.out, run.err) == (
        1,
        'triggers/a.yaml:1:1: missing required field "key" [$]\n'
        'triggers/a.yaml:1:1: missing required field "spec" [$]\n',
        "2 problem(s) found.\n",
    )
