"""The plan renderers: whole outputs compared with golden files, and the markdown size limit.

Regenerate the golden files after an intended change with PFSYNC_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from project_helpers import API_URL, body, lockfile, manifest, record

from pfsync.models import MOVED, Declaration, DesiredTrigger
from pfsync.plan.planner import create_plan
from pfsync.plan.render import FORMATS
from pfsync.plan.render.json_document import PlanReport
from pfsync.plan.render.markdown import MAX_CHARS
from pfsync.plan.render.planned_from import PlannedFrom
from pfsync.plan.render.text import RENDERERS, leaf_lines
from pfsync.state.trigger_records import PendingCreate
from pfsync.support.canonical import body_digest
from pfsync.support.diagnostics import json_path
from pfsync.support.textsafety import is_safe, json_text

GOLDEN = Path(__file__).parent / "data" / "golden"
SUFFIX = {"text": "txt", "json": "json", "markdown": "md"}


def every_action_report(color: bool = False) -> PlanReport:
    pending = PendingCreate(
        DesiredTrigger.at_address(
            "biz_1/maybe", body("Maybe"), body_digest(body("Maybe")), 0, "triggers/maybe.yaml"
        ),
        "11111111-2222-4333-8444-555555555555",
        "2026-02-01T00:00:00Z",
        "HTTP 504 Gateway Timeout",
    )
    state = replace(
        lockfile(
            same=record("trg_same", "Same", key="same"),
            edited=record("trg_edited", "Edited", key="edited"),
            bumped=record("trg_bumped", "Bumped", key="bumped"),
            gone=record("trg_gone", "Gone", key="gone"),
            old_name=record("trg_renamed", "Renamed", key="old-name"),
        ),
        pending={"biz_1/maybe": pending},
    )
    declarations = [
        # carried out: the record of old-name becomes new-name's
        Declaration(MOVED, "biz_1", "old-name", "triggers/moves.yaml", 2, to="new-name"),
        # done before: "earlier" is not recorded any more, "same" is
        Declaration(MOVED, "biz_1", "earlier", "triggers/moves.yaml", 7, to="same"),
    ]
    edited = DesiredTrigger.declared(
        "biz_1", "edited", 0, {**body("Edited (v2)"), "filter": "a|b`c"}, "triggers/edited.yaml", 3
    )
    manifests = [
        manifest("same", "Same"),
        edited,
        manifest("bumped", "Bumped", revision=1),
        manifest("fresh", "Fresh"),
        manifest("maybe", "Maybe"),
        manifest("new-name", "Renamed"),
    ]
    plan = create_plan(manifests, state, API_URL, declarations=declarations)
    return PlanReport(plan, "pfsync.lock on origin/main", color=color, planned_from=PLANNED_FROM)


# A plan of a pull request's commit against a git store, with its base branch's plan.
PLANNED_FROM = PlannedFrom(
    repository=True,
    commit="1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
    uncommitted=(),
    store="git",
    where="pfsync.lock on origin/main",
    location={"remote": "origin", "branch": "main", "path": "pfsync.lock"},
    version="c0ffee0123456789abcdef0123456789abcdef01",
    base_plan="base-plan.json",
    base_commit="9f8e7d6c5b4a39281706f5e4d3c2b1a098f7e6d5",
)


def test_the_command_line_offers_every_renderer() -> None:
    assert tuple(RENDERERS) == FORMATS


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_golden_output(name: str) -> None:
    output = RENDERERS[name](every_action_report())
    golden = GOLDEN / f"every-action.{SUFFIX[name]}"
    if os.environ.get("PFSYNC_UPDATE_GOLDEN"):
        golden.write_text(output, encoding="utf-8")
    assert output == golden.read_text(encoding="utf-8")


def test_text_colour_only_when_asked() -> None:
    plain = RENDERERS["text"](every_action_report())
    coloured = RENDERERS["text"](every_action_report(color=True))
    assert "\x1b[" not in plain
    assert "\x1b[32m\x1b[1m+ biz_1/fresh  create  triggers/fresh.yaml:3\x1b[0m" in coloured


def test_no_lockfile_header_and_empty_plan() -> None:
    report = PlanReport(create_plan([], None, API_URL), "pfsync.lock")
    assert RENDERERS["text"](report) == (
        "Business: (none declared or recorded)\n"
        "API: https://api.pocketflows.com\n"
        "Lockfile: pfsync.lock does not exist yet: every declared trigger is a create.\n"
        "\n"
        "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "0 unchanged.\n"
    )


def test_json_is_versioned_and_round_trips() -> None:
    document = json.loads(RENDERERS["json"](every_action_report()))
    assert document["format_version"] == 2
    assert document["summary"]["create"] == 1
    assert {e["action"] for e in document["entries"]} == {
        "create",
        "replace",
        "moved",
        "update",
        "delete",
        "uncertain",
        "no-op",
    }
    assert "digest" not in document["entries"][0]


def test_markdown_for_5000_creates_fits_a_comment_and_starts_with_the_summary() -> None:
    manifests = [manifest(f"trigger-{i:05d}", f"Trigger number {i}") for i in range(5000)]
    report = PlanReport(create_plan(manifests, None, API_URL), "pfsync.lock")
    output = RENDERERS["markdown"](report)
    assert len(output) <= MAX_CHARS
    assert output.startswith(
        "**Plan: 5000 to create, 0 to replace. Needs a person: 0 update, 0 delete, "
        "0 uncertain. 0 unchanged.**\n"
    )
    shown = output.count("#### + ")
    assert 0 < shown < 5000
    assert output.endswith(
        f"*{5000 - shown} more entries are not shown: a pull-request comment holds at most "
        "65,536 characters. Run `pfsync plan` for the whole plan.*\n"
    )
    assert output.count("<details>") == output.count("</details>") == 1


def test_markdown_puts_what_needs_a_person_first_when_truncating() -> None:
    manifests = [manifest(f"new-{i:05d}", f"New {i}") for i in range(3000)]
    state = lockfile(**{f"old_{i}": record(f"trg_{i}", f"Old {i}") for i in range(3)})
    report = PlanReport(create_plan(manifests, state, API_URL), "pfsync.lock")
    output = RENDERERS["markdown"](report)
    assert len(output) <= MAX_CHARS
    assert output.index("to delete by hand<") < output.index("to create<")
    assert output.count("#### - ") == 3


# Any text, lone surrogates, controls and bidirectional overrides included.
ANY_TEXT = st.text(alphabet=st.characters(codec=None, categories=None), max_size=8)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=20,
)


def one_line_per_leaf(value: object, path: tuple[str | int, ...]) -> list[str]:
    """What a create shows, written the plain way: each leaf's path, then the leaf alone made
    JSON and safe."""
    if isinstance(value, dict) and value:
        return [line for k, v in value.items() for line in one_line_per_leaf(v, (*path, k))]
    if isinstance(value, list) and value:
        return [line for i, v in enumerate(value) for line in one_line_per_leaf(v, (*path, i))]
    return [f"      {json_path(path)}: {json_text(value)}"]


@settings(max_examples=300, deadline=None)
@given(body=JSON_VALUES)
def test_a_creates_lines_are_each_leaf_made_safe_one_at_a_time(body: object) -> None:
    # The renderer makes a whole body's lines safe at once; that must be the same text.
    shown = leaf_lines(body, ("spec",))
    assert shown == "\n".join(one_line_per_leaf(body, ("spec",)))
    assert all(is_safe(line) for line in shown.split("\n"))
