"""Hostile text inside a lockfile (as a server or a hand edit puts it there), through every
command that shows the state: no traceback, no raw control character, no forged line, and JSON
output that reads back exactly.

A trigger id like "x\\n+ biz_x/evil  create" must not add a plan line; "\\x1b]0;title\\x07" must
not set a terminal's title; a lone surrogate ("\\ud800", valid JSON, not UTF-8) must not crash.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apply_helpers import BUSINESS, make_repo, manifest_text, reading_commands
from conftest import UNSAFE_OUTPUT, RunPfsync, run_in_process
from pfsync.models import DesiredTrigger
from pfsync.state.lockfile import Lockfile
from pfsync.state.trigger_records import HistoryEntry, PendingCreate, TriggerRecord
from pfsync.support.canonical import body_digest
from pfsync.support.textsafety import escape, is_safe, json_text, shown_id

API = "http://127.0.0.1:9"
FORGED = "\n+ biz_x/evil  create  triggers/evil.yaml:1"
HOSTILE = [
    "trg_ok" + FORGED,
    "trg\x1b]0;owned\x07\x1b[2J",
    "trg\ud800-\udfff",
    "trg\u202eevil",
    "trg\x85\x9b31m",
    "trg`</details><script>x</script>`|",
    "trg; rm -rf ~",
]


def spec(key: str, name: str | None = None) -> dict[str, Any]:
    return {
        "name": name or f"Trigger {key}",
        "project_defined_event": "pde_signup",
        "steps": [{"type": "email", "email_template_id": f"et_{key}"}],
    }


def hostile_lockfile(values: list[str]) -> Lockfile:
    """t000: recorded with a hostile id and an edited body (update); t001: uncertain with a
    hostile reason and replaced id; t002: recorded, no longer declared (delete); history ids."""
    lockfile = replace(Lockfile.new(API), serial=3)
    triggers = {}
    for n, value in enumerate(values):
        key = f"t{n:03d}"
        body = spec(key, "an older name") if n % 3 == 0 else spec(key)
        history = (HistoryEntry(value, value, "replaced", "created", 0),)
        triggers[f"{BUSINESS}/{key}"] = TriggerRecord(
            value, "created", value, value, 0, body, body_digest(body), value, history
        )
    pending = {
        f"{BUSINESS}/u{n:03d}": PendingCreate(
            DesiredTrigger.at_address(
                f"{BUSINESS}/u{n:03d}",
                spec(f"u{n:03d}"),
                body_digest(spec(f"u{n:03d}")),
                0,
                value,
                value,
            ),
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            value,
            value,
        )
        for n, value in enumerate(values)
    }
    return replace(lockfile, triggers=triggers, pending=pending)


def write_repo(root: Path, values: list[str]) -> Path:
    make_repo(root, 0)
    # Declared: t000… (t000 edited → update) and u000… (uncertain); t00N for the last is not
    # declared when there are three or more values (→ delete).
    declared = [f"t{n:03d}" for n in range(max(1, len(values) - 1))]
    declared += [f"u{n:03d}" for n in range(len(values))]
    for key in declared:
        (root / "triggers" / f"{key}.yaml").write_text(manifest_text(key))
    (root / "pfsync.lock").write_text(hostile_lockfile(values).dumps(), encoding="utf-8")
    return root


def assert_safe(text: str, values: list[str]) -> None:
    assert UNSAFE_OUTPUT.search(text) is None, repr(text)
    for line in text.splitlines():
        assert not line.startswith("+ biz_x/evil"), "a forged plan line"
    for value in values:
        if not is_safe(value):
            assert value not in text


def test_every_state_reader_shows_hostile_text_escaped(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    repo = write_repo(tmp_path, HOSTILE)
    env = {"PFSYNC_API_URL": API}
    commands = [
        ("plan",),
        ("plan", "--format", "markdown"),
        ("plan", "--format", "json"),
        ("plan", "--detailed-exitcode"),
        ("state", "list"),
        ("state", "list", "--format", "json"),
        ("state", "show", f"{BUSINESS}/t000"),
        ("state", "show", f"{BUSINESS}/t001", "--format", "json"),
        ("state", "show", f"{BUSINESS}/u002"),
    ]
    for command in commands:
        run = run_pfsync(*command, cwd=repo, env=env)
        assert run.code == (3 if "--detailed-exitcode" in command else 0), (command, run)
        assert "Traceback" not in run.err
        assert_safe(run.out + run.err, HOSTILE)
        if "json" in command:
            json.loads(run.out)  # exact JSON, whatever the strings
    # The JSON outputs carry the exact strings.
    listed = json.loads(run_pfsync("state", "list", "--format", "json", cwd=repo, env=env).out)
    ids = {row["address"]: row["id"] for row in listed["addresses"]}
    assert [ids[f"{BUSINESS}/t{n:03d}"] for n in range(len(HOSTILE))] == HOSTILE
    # The text plan names each hostile id in its escaped, quoted form.
    plan = run_pfsync("plan", cwd=repo, env=env).out
    assert f"trigger {shown_id(HOSTILE[0])}" in plan
    assert (
        shown_id(HOSTILE[0])
        == "'trg_ok\\x0a+\\x20biz_x/evil\\x20\\x20create\\x20\\x20triggers/evil.yaml:1'"
    )


def test_a_state_command_keeps_hostile_records_exactly(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    """A write (state rm) of a lockfile holding hostile strings keeps them, byte for byte."""
    repo = write_repo(tmp_path, HOSTILE)
    before = json.loads((repo / "pfsync.lock").read_text(encoding="utf-8"))
    run = run_pfsync("state", "rm", f"{BUSINESS}/u000", cwd=repo, env={"PFSYNC_API_URL": API})
    assert run.code == 0, run
    assert_safe(run.out + run.err, HOSTILE)
    after = json.loads((repo / "pfsync.lock").read_text(encoding="utf-8"))
    assert after["triggers"] == before["triggers"]
    assert set(before["pending"]) - set(after["pending"]) == {f"{BUSINESS}/u000"}


ANY_TEXT = st.text(
    alphabet=st.characters(codec=None, categories=None),  # surrogates and controls included
    min_size=1,
    max_size=30,
)


@settings(max_examples=500, deadline=None)
@given(text=ANY_TEXT)
def test_the_escapes_every_reader_uses_make_any_string_safe_and_keep_it(text: str) -> None:
    for shown in (escape(text), shown_id(text)):
        assert UNSAFE_OUTPUT.search(shown) is None, repr(shown)
        assert "\n" not in shown and "\r" not in shown, repr(shown)
    if not is_safe(text):
        assert shown_id(text).startswith("'") and shown_id(text).endswith("'")
    written = json_text({"id": text})
    assert UNSAFE_OUTPUT.search(written) is None, repr(written)
    assert json.loads(written) == {"id": text}


# The escapes are checked on 500 strings above, in microseconds each; this property checks that
# every reader uses them, with 30 strings (each a repository and seven commands), after the
# HOSTILE list has gone through every reader above.
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=ANY_TEXT)
def test_any_string_in_the_lockfile_is_shown_safely(text: str, tmp_path_factory: Any) -> None:
    value = f"Q7{text}Z9"  # markers: the raw value anywhere in the output would be found
    repo = write_repo(tmp_path_factory.mktemp("repo"), [value, "trg_plain", value])
    for argv in reading_commands("u000", "t000"):
        code, output = run_in_process(argv, repo, {"PFSYNC_API_URL": API})
        assert code == 0, (argv, output)
        assert_safe(output, [value])
        if argv == ["state", "list", "--format", "json"]:
            rows = json.loads(output)["addresses"]
            assert {r["address"]: r["id"] for r in rows}[f"{BUSINESS}/t000"] == value
        if argv == ["plan"] and not is_safe(value):
            assert shown_id(value) in output
