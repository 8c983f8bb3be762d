"""The planner: every action, and the combinations that matter (pure, no I/O)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from project_helpers import API_URL, body, lockfile, manifest, record

from pfsync.errors import PlanError
from pfsync.models import DesiredTrigger
from pfsync.plan.diff import ABSENT, FieldChange
from pfsync.plan.planner import Plan, create_plan
from pfsync.state.trigger_records import PendingCreate
from pfsync.support.canonical import body_digest


def actions(plan: Plan) -> dict[str, str]:
    return {entry.address: entry.action for entry in plan.entries}


def test_no_lockfile_everything_declared_is_a_create() -> None:
    plan = create_plan([manifest("a", "A"), manifest("b", "B")], None, API_URL)
    assert actions(plan) == {"biz_1/a": "create", "biz_1/b": "create"}
    assert [e.address for e in plan.to_apply] == ["biz_1/a", "biz_1/b"]
    assert plan.exit_code(detailed=True) == 2 and plan.exit_code(detailed=False) == 0
    entry = plan.to_apply[0]
    assert entry.desired == DesiredTrigger(
        "biz_1", "a", body("A"), body_digest(body("A")), 0, "triggers/a.yaml", 3
    )
    assert entry.old_id is None and entry.remedy is None


def test_same_digest_and_revision_is_no_op() -> None:
    plan = create_plan([manifest("a", "A")], lockfile(a=record("trg_a", "A")), API_URL)
    assert actions(plan) == {"biz_1/a": "no-op"}
    assert plan.exit_code(detailed=True) == 0


def test_formatting_only_difference_is_no_op() -> None:
    # Key order and 1 versus 1.0 are formatting: the canonical JSON and the digest are equal.
    recorded = replace(record("trg_a", "A"), body={**body("A"), "attributed_revenue": 10})
    recorded = replace(recorded, digest=body_digest(recorded.body))
    declared = DesiredTrigger.declared(
        "biz_1",
        "a",
        0,
        {"attributed_revenue": 10.0, **dict(reversed(body("A").items()))},
        "triggers/a.yaml",
        3,
    )
    plan = create_plan([declared], lockfile(a=recorded), API_URL)
    assert actions(plan) == {"biz_1/a": "no-op"}


def test_changed_body_is_update_with_field_diff_and_remedy() -> None:
    declared = DesiredTrigger.declared(
        "biz_1",
        "a",
        0,
        {**body("A2"), "steps": [{"type": "sms"}, {"type": "email"}], "filter": None},
        "triggers/a.yaml",
        3,
    )
    plan = create_plan([declared], lockfile(a=record("trg_a", "A")), API_URL)
    (entry,) = plan.entries
    assert entry.action == "update"
    assert entry.diff == (
        FieldChange("$.spec.filter", ABSENT, None),
        FieldChange("$.spec.name", "A", "A2"),
        FieldChange("$.spec.steps[0].email_template_id", "et_1", ABSENT),
        FieldChange("$.spec.steps[0].type", "email", "sms"),
        FieldChange("$.spec.steps[1]", ABSENT, {"type": "email"}),
    )
    assert entry.remedy == (
        "Pocketflows has no update endpoint, so pfsync cannot change this trigger. Revert the "
        "manifest, or raise `revision` to create a replacement, or edit trigger trg_a in "
        "Pocketflows by hand and then acknowledge it: paste the Import below into a manifest "
        "file (or run `pfsync state import biz_1/a trg_a --force`)."
    )
    assert plan.to_apply == [] and plan.exit_code(detailed=True) == 3


def test_null_versus_absent_is_an_update() -> None:
    declared = DesiredTrigger.declared(
        "biz_1", "a", 0, {**body("A"), "filter": None}, "triggers/a.yaml", 3
    )
    plan = create_plan([declared], lockfile(a=record("trg_a", "A")), API_URL)
    assert plan.entries[0].diff == (FieldChange("$.spec.filter", ABSENT, None),)


def test_raised_revision_is_replace_naming_the_old_trigger() -> None:
    plan = create_plan([manifest("a", "A2", revision=1)], lockfile(a=record("trg_a", "A")), API_URL)
    (entry,) = plan.entries
    assert (entry.action, entry.old_id, entry.reason) == (
        "replace",
        "trg_a",
        "revision raised from 0 to 1",
    )
    assert entry.remedy == (
        "A new draft trigger is created for biz_1/a; the old trigger trg_a stays active in "
        "Pocketflows until a person deactivates it; then paste the Removed below into a manifest "
        "file, so the record stops listing it as still active."
    )
    assert entry.paste == (
        "---\napiVersion: pfsync/v1\nkind: Removed\nbusiness: biz_1\nkey: a\nid: trg_a\n"
    )
    assert plan.to_apply == [entry] and plan.exit_code(detailed=True) == 2


def test_lowered_revision_is_an_update() -> None:
    plan = create_plan([manifest("a", "A")], lockfile(a=record("trg_a", "A", revision=2)), API_URL)
    (entry,) = plan.entries
    assert entry.action == "update"
    assert entry.diff == (FieldChange("$.revision", 2, 0),)


def test_replace_flag_replaces_an_unchanged_trigger() -> None:
    plan = create_plan(
        [manifest("a", "A")], lockfile(a=record("trg_a", "A")), API_URL, replace=["biz_1/a"]
    )
    assert actions(plan) == {"biz_1/a": "replace"}
    assert plan.entries[0].reason == "requested with --replace"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (
            "biz_1/gone",
            "--replace biz_1/gone: no manifest declares it (a replace creates a new trigger "
            "from the address's manifest)",
        ),
        (
            "biz_1/b",
            "--replace biz_1/b: it is not in the lockfile, so there is nothing to replace (the "
            "plan creates it)",
        ),
    ],
)
def test_replace_refuses_undeclared_or_unrecorded(address: str, message: str) -> None:
    state = lockfile(a=record("trg_a", "A"), gone=record("trg_g", "G"))
    with pytest.raises(PlanError) as info:
        create_plan([manifest("a", "A"), manifest("b", "B")], state, API_URL, replace=[address])
    assert str(info.value) == message


def test_undeclared_record_is_delete_with_remedy() -> None:
    plan = create_plan([], lockfile(a=record("trg_a", "A", key="a")), API_URL)
    (entry,) = plan.entries
    assert (entry.action, entry.source, entry.old_id) == ("delete", "triggers/a.yaml", "trg_a")
    assert entry.remedy == (
        "Pocketflows has no delete endpoint, so pfsync cannot remove this trigger. Deactivate "
        "trigger trg_a in Pocketflows, then paste the Removed below into a manifest file, so "
        "that apply forgets it once reviewed (or run `pfsync state rm biz_1/a`). If its key was "
        "renamed, declare a Moved (from: the old key, to: the new one) instead, or run "
        "`pfsync state mv biz_1/a NEW_ADDRESS`."
    )


def test_renamed_key_is_delete_plus_create_offering_the_moved_first_then_state_mv() -> None:
    plan = create_plan(
        [manifest("new", "A")],
        lockfile(old=record("trg_o", "A")),
        API_URL,
        default_business="biz_1",
    )
    assert actions(plan) == {"biz_1/new": "create", "biz_1/old": "delete"}
    create, delete = plan.entries
    moved = "---\napiVersion: pfsync/v1\nkind: Moved\nfrom: old\nto: new\n"
    assert (delete.paste, create.paste) == (moved, moved)
    assert delete.remedy == (
        "This looks like its key renamed to biz_1/new: paste the Moved below into a manifest "
        "file, so the plan shows the move and apply carries the record over without sending "
        "anything (or run `pfsync state mv biz_1/old biz_1/new`). If it was not renamed: "
        "Pocketflows has no delete endpoint, so pfsync cannot remove this trigger; deactivate "
        "trigger trg_o in Pocketflows, then run `pfsync state rm biz_1/old`."
    )
    assert create.remedy == (
        "If this is biz_1/old with its key renamed, paste the Moved below into a manifest file "
        "instead of creating a second trigger: apply then carries the record over without "
        "sending anything (or run `pfsync state mv biz_1/old biz_1/new`)."
    )
    # Another business than the configured one is named in the declaration.
    plan = create_plan([manifest("new", "A")], lockfile(old=record("trg_o", "A")), API_URL)
    assert plan.entries[0].paste == (
        "---\napiVersion: pfsync/v1\nkind: Moved\nbusiness: biz_1\nfrom: old\nto: new\n"
    )


def test_unknown_id_is_said_in_remedies() -> None:
    plan = create_plan([], lockfile(a=record(None, "A")), API_URL)
    assert plan.entries[0].remedy is not None
    assert "Deactivate trigger ID in Pocketflows" in plan.entries[0].remedy
    assert plan.entries[0].remedy.endswith(
        "(Its id was not returned when it was created: find the trigger in Pocketflows to "
        "learn it.)"
    )


def pending_create(replaces: str | None = None) -> PendingCreate:
    return PendingCreate(
        DesiredTrigger.at_address(
            "biz_1/a", body("A"), body_digest(body("A")), 0, "triggers/a.yaml", replaces
        ),
        "11111111-2222-4333-8444-555555555555",
        "2026-02-01T00:00:00Z",
        "HTTP 504",
    )


def test_pending_create_is_uncertain_with_remedy() -> None:
    state = replace(lockfile(), pending={"biz_1/a": pending_create()})
    plan = create_plan([manifest("a", "A")], state, API_URL)
    (entry,) = plan.entries
    assert (entry.action, entry.reason) == ("uncertain", "HTTP 504")
    assert entry.remedy == (
        "A create of biz_1/a was started at 2026-02-01T00:00:00Z (Idempotency-Key "
        "11111111-2222-4333-8444-555555555555) and its outcome is unknown; pfsync will not send "
        "it again by itself. Look for the trigger in Pocketflows: if it exists, paste the Import "
        "below into a manifest file with its id (or run `pfsync state import biz_1/a ID`); if "
        "not, paste the NotCreated below instead, and apply sends the create once more with its "
        "original Idempotency-Key (or run `pfsync state rm biz_1/a`, and the next plan creates "
        "it anew)."
    )
    assert plan.to_apply == [] and plan.exit_code(detailed=True) == 3


def test_pending_replace_is_uncertain_even_with_a_record() -> None:
    state = replace(lockfile(a=record("trg_a", "A")), pending={"biz_1/a": pending_create("trg_a")})
    plan = create_plan([manifest("a", "A", revision=1)], state, API_URL)
    assert actions(plan) == {"biz_1/a": "uncertain"}
    assert plan.entries[0].remedy is not None
    assert plan.entries[0].remedy.endswith(
        "If it was not created, trigger trg_a stays the record of biz_1/a."
    )
    with pytest.raises(PlanError, match="a create of it has an unknown outcome"):
        create_plan([manifest("a", "A")], state, API_URL, replace=["biz_1/a"])


def test_undeclared_pending_is_uncertain() -> None:
    state = replace(lockfile(), pending={"biz_1/a": pending_create()})
    plan = create_plan([], state, API_URL)
    assert actions(plan) == {"biz_1/a": "uncertain"}
    assert plan.entries[0].source == "triggers/a.yaml"


def test_targets_limit_the_plan() -> None:
    state = lockfile(a=record("trg_a", "A"), gone=record("trg_g", "G"))
    manifests = [manifest("a", "A2"), manifest("b", "B")]
    plan = create_plan(manifests, state, API_URL, targets=["biz_1/b", "biz_1/gone"])
    assert actions(plan) == {"biz_1/b": "create", "biz_1/gone": "delete"}
    assert plan.targets == ("biz_1/b", "biz_1/gone")


def test_unknown_target_is_refused_with_a_suggestion() -> None:
    with pytest.raises(PlanError) as info:
        create_plan([manifest("welcome", "A")], None, API_URL, targets=["biz_1/welcom"])
    assert str(info.value) == (
        "--target biz_1/welcom: no manifest declares it and the lockfile does not record it "
        "(did you mean biz_1/welcome?)"
    )


def test_replace_outside_targets_is_refused() -> None:
    state = lockfile(a=record("trg_a", "A"))
    with pytest.raises(PlanError, match="--replace biz_1/a is not among the --target"):
        create_plan(
            [manifest("a", "A"), manifest("b", "B")], state, API_URL, ["biz_1/b"], ["biz_1/a"]
        )


def test_all_actions_together_count_and_summarise() -> None:
    from pfsync.plan.planner import summary_line

    state = replace(
        lockfile(
            same=record("t1", "S"),
            edited=record("t2", "E"),
            bumped=record("t3", "R"),
            gone=record("t4", "G"),
        ),
        pending={"biz_1/maybe": pending_create()},
    )
    manifests = [
        manifest("same", "S"),
        manifest("edited", "E2"),
        manifest("bumped", "R", revision=1),
        manifest("fresh", "F"),
        manifest("maybe", "A"),
    ]
    plan = create_plan(manifests, state, API_URL)
    assert plan.counts == {
        "create": 1,
        "replace": 1,
        "resend": 0,
        "moved": 0,
        "import": 0,
        "forget": 0,
        "update": 1,
        "delete": 1,
        "uncertain": 1,
        "no-op": 1,
    }
    assert summary_line(plan.counts) == (
        "Plan: 1 to create, 1 to replace. Needs a person: 1 update, 1 delete, 1 uncertain. "
        "1 unchanged."
    )
    assert [e.address for e in plan.to_apply] == ["biz_1/bumped", "biz_1/fresh"]
    assert plan.needs_person and plan.has_changes and plan.exit_code(detailed=True) == 3


def test_planner_does_not_import_deepdiff_until_needed() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pfsync.cli, pfsync.plan.planner, pfsync.plan.render.text; "
        "print('deepdiff' in sys.modules, 'httpx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False"
