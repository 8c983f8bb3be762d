"""`Moved` declarations: checked offline by validate, planned against the lockfile (carried out,
done, nothing to act on, conflict), and their schema shipped for editors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest
from project_helpers import (
    API_URL,
    LINEAGE,
    NOT_A_REPOSITORY,
    lockfile,
    manifest,
    manifest_yaml,
    record,
    update_entry,
    write_project,
)

from conftest import REPO, RunPfsync
from pfsync.errors import DeclarationConflict
from pfsync.models import IMPORT, MOVED, NOT_CREATED, REMOVED, Declaration
from pfsync.plan.planner import PlanEntry, create_plan
from pfsync.plan.render.json_document import PlanReport
from pfsync.plan.render.markdown import render_markdown
from pfsync.state.declared import carry_out
from pfsync.state.lockfile import save_lockfile


def moved(old: str, new: str, line: int = 2, file: str = "triggers/moves.yaml") -> Declaration:
    return Declaration(MOVED, "biz_1", old, file, line, to=new)


def moved_yaml(old: str, new: str, business: str | None = None) -> str:
    lines = ["---", "apiVersion: pfsync/v1", "kind: Moved"]
    if business:
        lines.append(f"business: {business}")
    return "\n".join([*lines, f"from: {old}", f"to: {new}"]) + "\n"


def actions(entries: Iterable[PlanEntry]) -> list[tuple[str, str]]:
    return [(entry.address, entry.action) for entry in entries]


# validate


def test_validate_refuses_each_bad_moved_with_its_place(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = write_project(
        tmp_path,
        {
            "welcome.yaml": manifest_yaml("welcome", "Welcome") + moved_yaml("hello", "welcom"),
            "more.yaml": (
                "apiVersion: pfsync/v1\nkind: Moved\nfrom: a\nto: welcome\nfrm: x\n"
                + moved_yaml("b", "c")
                + moved_yaml("c", "b")
                + moved_yaml("welcome", "welcome")
                + "---\napiVersion: pfsync/v1\nkind: Movd\n"
                + moved_yaml("z", "welcome")
            ),
        },
    )
    run = run_pfsync("validate", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        'triggers/more.yaml:5:1: unknown field "frm" (did you mean "from"?) [$.frm]\n'
        "triggers/more.yaml:8:1: the Moved declarations biz_1/b → biz_1/c → biz_1/b make a "
        "cycle (a chain of Moved ends at a key a trigger declares; delete the one that goes "
        "back) [$.to]\n"
        "triggers/more.yaml:18:1: biz_1/welcome is still declared (at triggers/welcome.yaml:3); "
        "the `from` of a Moved is the old key, which no trigger declares any more (rename the "
        "key in that manifest, or delete this Moved) [$.from]\n"
        "triggers/more.yaml:18:1: the Moved declarations biz_1/welcome → biz_1/welcome make a "
        "cycle (a chain of Moved ends at a key a trigger declares; delete the one that goes "
        "back) [$.to]\n"
        'triggers/more.yaml:23:7: unknown kind "Movd" (did you mean Moved?) (a document\'s '
        "kind is one of Trigger, Moved, Removed, Import, NotCreated) [$.kind]\n"
        "triggers/more.yaml:26:1: two declarations for biz_1/welcome: here and at "
        "triggers/more.yaml:18 (each address takes one declaration at a time; delete one of "
        "them) [$.to]\n"
        "triggers/welcome.yaml:12:1: no trigger declares biz_1/welcom, the `to` of this Moved "
        "(did you mean welcome?) [$.to]\n",
        "7 problem(s) found.\n",
    )


def test_a_chain_of_moved_validates_and_a_named_file_is_checked_against_every_trigger(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = write_project(
        tmp_path,
        {
            "welcome.yaml": manifest_yaml("welcome", "Welcome"),
            "moves.yaml": moved_yaml("hello", "hi").removeprefix("---\n")
            + moved_yaml("hi", "welcome"),
        },
    )
    run = run_pfsync("validate", "triggers/moves.yaml", cwd=root)
    assert (run.code, run.out, run.err) == (0, "", "0 trigger(s) valid.\n")
    run = run_pfsync("validate", cwd=root)
    assert (run.code, run.out, run.err) == (0, "", "1 trigger(s) valid.\n")


def test_the_moved_schema_is_printed_and_shipped_beside_the_manifest_schema(
    run_pfsync: RunPfsync,
) -> None:
    run = run_pfsync("schema", "--name", "moved")
    shipped = json.loads((REPO / "schemas" / "moved.schema.json").read_text(encoding="utf-8"))
    assert (run.code, json.loads(run.out), run.err) == (0, shipped, "")
    assert shipped["properties"]["kind"] == {
        "description": "What the document declares",
        "const": "Moved",
    }


# plan


def test_a_moved_from_a_recorded_key_is_carried_over_and_nothing_is_sent() -> None:
    state = lockfile(old=record("trg_o", "A"))
    plan = create_plan([manifest("new", "A")], state, API_URL, declarations=[moved("old", "new")])
    assert actions(plan.entries) == [("biz_1/new", "moved")]
    (entry,) = plan.entries
    assert (entry.old_id, entry.source, entry.reason) == (
        "trg_o",
        "triggers/moves.yaml:2",
        "from biz_1/old",
    )
    assert entry.remedy == (
        "The record of biz_1/old (trigger trg_o) becomes the record of biz_1/new; nothing is "
        "sent to Pocketflows."
    )
    assert (plan.has_changes, plan.needs_person, plan.exit_code(True), plan.to_apply) == (
        True,
        False,
        2,
        [],
    )
    assert plan.carried == (moved("old", "new"),)


def test_a_moved_and_an_edit_together_move_the_record_and_show_the_update() -> None:
    state = lockfile(old=record("trg_o", "A"))
    plan = create_plan([manifest("new", "B")], state, API_URL, declarations=[moved("old", "new")])
    assert actions(plan.entries) == [("biz_1/new", "moved"), ("biz_1/new", "update")]
    assert plan.exit_code(True) == 3


def test_a_moved_already_carried_out_is_done_and_may_be_deleted() -> None:
    state = lockfile(new=record("trg_o", "A"))
    plan = create_plan([manifest("new", "A")], state, API_URL, declarations=[moved("old", "new")])
    assert actions(plan.entries) == [("biz_1/new", "no-op")]
    assert plan.entries[0].remedy == (
        "Moved biz_1/old → biz_1/new is done (biz_1/old is not recorded any more; its record, "
        "trigger trg_o, has moved); this declaration may be deleted."
    )
    assert (plan.has_changes, plan.exit_code(True), plan.carried) == (False, 0, ())


def test_a_moved_whose_from_was_never_recorded_leaves_the_new_key_a_create() -> None:
    plan = create_plan([manifest("new", "A")], None, API_URL, declarations=[moved("old", "new")])
    assert actions(plan.entries) == [("biz_1/new", "no-op"), ("biz_1/new", "create")]
    assert plan.entries[0].remedy == (
        "Moved biz_1/old → biz_1/new: nothing to act on, biz_1/old is not recorded here; "
        "biz_1/new is planned as usual."
    )
    assert plan.exit_code(True) == 2


def test_a_moved_with_both_keys_recorded_is_a_located_conflict() -> None:
    state = lockfile(old=record("trg_o", "A"), new=record("trg_n", "A"))
    with pytest.raises(DeclarationConflict) as raised:
        create_plan([manifest("new", "A")], state, API_URL, declarations=[moved("old", "new")])
    assert str(raised.value) == (
        "triggers/moves.yaml:2:1: Moved biz_1/old → biz_1/new conflicts with the lockfile: both "
        "are recorded (biz_1/old: trigger trg_o; biz_1/new: trigger trg_n), so the record of "
        "biz_1/old cannot become that of biz_1/new (look in Pocketflows: forget the one that "
        "does not exist any more (`pfsync state rm biz_1/old` or `pfsync state rm biz_1/new`), "
        "or delete this Moved) [$.to]"
    )


def test_a_chain_is_carried_out_in_order_wherever_the_record_is() -> None:
    chain = [moved("b", "c", line=7), moved("a", "b", line=2)]  # declared in any order
    for recorded_at, expected in (
        ("a", [("biz_1/b", "moved"), ("biz_1/c", "moved")]),
        ("b", [("biz_1/b", "no-op"), ("biz_1/c", "moved")]),
        ("c", [("biz_1/b", "no-op"), ("biz_1/c", "no-op")]),
    ):
        state = lockfile(**{recorded_at: record("trg_1", "A")})
        plan = create_plan([manifest("c", "A")], state, API_URL, declarations=chain)
        assert actions(plan.entries) == expected, recorded_at
        carried = carry_out(state, chain, "2026-03-01T00:00:00Z").lockfile
        assert carried is not None
        assert {a: r.id for a, r in carried.triggers.items()} == {"biz_1/c": "trg_1"}


def test_a_target_plans_only_the_declarations_naming_it() -> None:
    state = lockfile(old=record("trg_o", "A"), other=record("trg_x", "X"))
    declarations = [moved("old", "new"), moved("other", "renamed")]
    manifests = [manifest("new", "A"), manifest("renamed", "X")]
    plan = create_plan(manifests, state, API_URL, ["biz_1/new"], declarations=declarations)
    assert actions(plan.entries) == [("biz_1/new", "moved")]
    assert plan.carried == (moved("old", "new"),)


def test_a_target_at_the_end_of_a_chain_moves_the_record_along_the_whole_chain() -> None:
    # a → b → c with a recorded: targeting c must not create c while a's trigger exists.
    chain = [moved("a", "b", line=2), moved("b", "c", line=7)]
    state = lockfile(a=record("trg_1", "A"))
    plan = create_plan([manifest("c", "A")], state, API_URL, ["biz_1/c"], declarations=chain)
    assert plan.to_apply == []
    assert plan.carried == tuple(chain)


def test_carrying_out_twice_is_carrying_out_once() -> None:
    state = lockfile(old=record("trg_o", "A"))
    once = carry_out(state, [moved("old", "new")], "2026-03-01T00:00:00Z").lockfile
    assert once is not None
    twice = carry_out(once, [moved("old", "new")], "2026-03-02T00:00:00Z").lockfile
    assert twice == once
    (entry,) = once.triggers["biz_1/new"].history
    assert (entry.id, entry.reason, entry.moved_from, entry.declared_by) == (
        "trg_o",
        "moved",
        "biz_1/old",
        "triggers/moves.yaml:2",
    )


def test_the_markdown_comment_offers_the_moved_in_a_yaml_block() -> None:
    plan = create_plan(
        [manifest("new", "A")],
        lockfile(old=record("trg_o", "A")),
        API_URL,
        default_business="biz_1",
    )
    comment = render_markdown(PlanReport(plan, "pfsync.lock"))
    assert (
        comment.count("```yaml\n---\napiVersion: pfsync/v1\nkind: Moved\nfrom: old\nto: new\n```\n")
        == 2
    )


# plan and apply with the file store


def test_plan_exits_1_on_a_conflict_and_apply_sends_nothing(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = write_project(
        tmp_path,
        {
            "new.yaml": manifest_yaml("new", "A") + moved_yaml("old", "new"),
        },
    )
    state = replace(
        lockfile(old=record("trg_o", "A"), new=record("trg_n", "A")), serial=0, lineage=LINEAGE
    )
    save_lockfile(root / "pfsync.lock", None, state)
    conflict = (
        "triggers/new.yaml:12:1: Moved biz_1/old → biz_1/new conflicts with the lockfile: both "
        "are recorded (biz_1/old: trigger trg_o; biz_1/new: trigger trg_n), so the record of "
        "biz_1/old cannot become that of biz_1/new (look in Pocketflows: forget the one that "
        "does not exist any more (`pfsync state rm biz_1/old` or `pfsync state rm biz_1/new`), "
        "or delete this Moved) [$.to]\n"
    )
    run = run_pfsync("plan", "--detailed-exitcode", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        "",
        conflict + "Error: 1 problem(s) in the manifests; fix them (see `pfsync validate`) "
        "and run again.\n",
    )
    before = (root / "pfsync.lock").read_bytes()
    run = run_pfsync(
        "apply", "--auto-approve", cwd=root, env={"PFSYNC_USERNAME": "u", "PFSYNC_PASSWORD": "p"}
    )
    assert (run.code, run.out, run.err) == (1, "", "Error: " + conflict)
    assert (root / "pfsync.lock").read_bytes() == before


def test_a_saved_plan_carries_its_moved_and_is_stale_when_the_declarations_change(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = write_project(tmp_path, {"new.yaml": manifest_yaml("new", "A")})
    save_lockfile(root / "pfsync.lock", None, replace(lockfile(old=record("trg_o", "A")), serial=0))
    credentials = {"PFSYNC_USERNAME": "u", "PFSYNC_PASSWORD": "p"}
    assert run_pfsync("plan", "--out", "plan.json", cwd=root).code == 0
    (root / "triggers" / "moves.yaml").write_text(moved_yaml("old", "new"))
    stale = run_pfsync("apply", "plan.json", cwd=root, env=credentials)
    assert (stale.code, stale.out, stale.err) == (
        1,
        "",
        "Error: the plan plan.json is stale: the declarations (Moved, Import, Removed, "
        "NotCreated) changed since the plan was saved. Make a new plan and review it: "
        "`pfsync plan --out plan.json` (in CI, re-run the job that made the plan); nothing was "
        "sent\n",
    )
    assert run_pfsync("plan", "--out", "plan.json", cwd=root).code == 0
    run = run_pfsync("apply", "plan.json", cwd=root, env=credentials)
    assert (run.code, run.err) == (
        0,
        "biz_1/new: moved from biz_1/old (trg_o, triggers/moves.yaml:3); nothing was sent\n"
        "Apply: 0 created, 0 failed, 0 uncertain, 1 moved. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n",
    ), run
    data = json.loads((root / "pfsync.lock").read_text(encoding="utf-8"))
    assert (data["serial"], sorted(data["triggers"])) == (2, ["biz_1/new"])


def test_a_saved_plan_is_stale_when_a_declaration_names_another_id_on_the_same_line(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    # The reviewer approved "import trg_approved"; the same line naming another id afterwards
    # must not be carried out under that approval.
    root = write_project(tmp_path, {"hand.yaml": manifest_yaml("hand", "H")})
    save_lockfile(root / "pfsync.lock", None, replace(lockfile(), serial=0))
    found = root / "triggers" / "found.yaml"
    found.write_text("apiVersion: pfsync/v1\nkind: Import\nkey: hand\nid: trg_approved\n")
    assert run_pfsync("plan", "--out", "plan.json", cwd=root).code == 0
    found.write_text("apiVersion: pfsync/v1\nkind: Import\nkey: hand\nid: trg_other\n")
    assert_refused_as_stale(root, run_pfsync)


def assert_refused_as_stale(root: Path, run_pfsync: RunPfsync) -> None:
    """`apply plan.json` refuses the saved plan, its declarations changed, and writes nothing."""
    before = (root / "pfsync.lock").read_bytes()
    credentials = {"PFSYNC_USERNAME": "u", "PFSYNC_PASSWORD": "p"}
    stale = run_pfsync("apply", "plan.json", cwd=root, env=credentials)
    assert (stale.code, stale.out, stale.err) == (
        1,
        "",
        "Error: the plan plan.json is stale: the declarations (Moved, Import, Removed, "
        "NotCreated) changed since the plan was saved. Make a new plan and review it: "
        "`pfsync plan --out plan.json` (in CI, re-run the job that made the plan); nothing was "
        "sent\n",
    )
    assert (root / "pfsync.lock").read_bytes() == before


def test_the_declaration_the_text_plan_offers_works_as_copied_from_the_terminal(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    # A person selects the lines under "paste:" as the terminal shows them and pastes them at
    # the end of a manifest file that already holds a document.
    root = write_project(tmp_path, {"kept.yaml": manifest_yaml("kept", "K")})
    recorded = lockfile(kept=record("trg_k", "K"), gone=record("trg_g", "G"))
    save_lockfile(root / "pfsync.lock", None, replace(recorded, serial=0, lineage=LINEAGE))
    run = run_pfsync("plan", cwd=root)
    lines = run.out.splitlines()
    start = lines.index("    paste:") + 1
    copied = lines[start : lines.index("", start)]
    kept = root / "triggers" / "kept.yaml"
    kept.write_text(kept.read_text(encoding="utf-8") + "\n".join(copied) + "\n")
    run = run_pfsync("plan", "--detailed-exitcode", cwd=root)
    assert (run.code, run.err) == (2, ""), run
    assert "x biz_1/gone  forget  triggers/kept.yaml:" in run.out


# Removed


def removed(key: str, trigger_id: str, environment: str | None = None) -> Declaration:
    return Declaration(
        REMOVED,
        "biz_1",
        key,
        "triggers/gone.yaml",
        2,
        trigger_id=trigger_id,
        environment=environment,
    )


def test_a_removed_naming_the_recorded_id_forgets_it_and_keeps_the_id_in_history() -> None:
    state = lockfile(gone=record("trg_g", "G"))
    plan = create_plan([], state, API_URL, declarations=[removed("gone", "trg_g")])
    assert actions(plan.entries) == [("biz_1/gone", "forget")]
    assert plan.entries[0].remedy == (
        "The record forgets trigger trg_g of biz_1/gone (its id is kept in the history); nothing "
        "is sent to Pocketflows, where it stays as a person left it."
    )
    assert (plan.exit_code(True), plan.to_apply) == (2, [])
    after = carry_out(state, plan.carried, "2026-03-01T00:00:00Z").lockfile
    assert after is not None and after.triggers == {}
    (entry,) = after.forgotten["biz_1/gone"]
    assert (entry.id, entry.reason, entry.declared_by) == (
        "trg_g",
        "removed",
        "triggers/gone.yaml:2",
    )
    again = create_plan([], after, API_URL, declarations=[removed("gone", "trg_g")])
    assert actions(again.entries) == [("biz_1/gone", "no-op")]
    assert again.entries[0].remedy == (
        "Removed biz_1/gone (trigger trg_g) is done; this declaration may be deleted."
    )
    nothing = create_plan([], None, API_URL, declarations=[removed("gone", "trg_g")])
    assert nothing.entries[0].remedy == (
        "Removed biz_1/gone (trigger trg_g): nothing to act on, biz_1/gone is not recorded here."
    )


def test_a_removed_of_a_declared_key_settles_only_a_replaced_trigger() -> None:
    state = lockfile(kept=record("trg_k", "K"))
    with pytest.raises(DeclarationConflict) as raised:
        create_plan(
            [manifest("kept", "K")], state, API_URL, declarations=[removed("kept", "trg_k")]
        )
    assert str(raised.value) == (
        "triggers/gone.yaml:2:1: Removed biz_1/kept names its current trigger trg_k, but a "
        "trigger manifest still declares biz_1/kept: forgetting it would create it again "
        "(delete that trigger's manifest in the same change, or this declaration (a Removed of "
        "a declared key settles only a trigger its current one replaced)) [$.key]"
    )


def test_a_removed_naming_another_id_is_refused_at_plan_time() -> None:
    with pytest.raises(DeclarationConflict) as raised:
        create_plan(
            [],
            lockfile(gone=record("trg_g", "G")),
            API_URL,
            declarations=[removed("gone", "trg_x")],
        )
    assert str(raised.value) == (
        "triggers/gone.yaml:2:1: Removed biz_1/gone names trigger trg_x, but the lockfile records "
        "trigger trg_g for biz_1/gone (a Removed forgets exactly the trigger it names: check the "
        "id in Pocketflows and with `pfsync state show biz_1/gone`) [$.id]"
    )


def test_a_removed_settles_a_replaced_trigger_that_state_list_shows_still_active() -> None:
    from pfsync.state.render import list_text
    from pfsync.state.trigger_records import HistoryEntry

    replaced = HistoryEntry("trg_old", "2026-02-01T00:00:00Z", "replaced", "created", 0)
    state = lockfile(kept=replace(record("trg_new", "K", revision=1), history=(replaced,)))
    assert list_text(state) == (
        "ADDRESS     ID       ORIGIN   REVISION  FILE             NOTE\n"
        "biz_1/kept  trg_new  created  1         triggers/x.yaml  replaced, still active: trg_old\n"
    )
    manifests = [manifest("kept", "K", revision=1)]
    plan = create_plan(manifests, state, API_URL, declarations=[removed("kept", "trg_old")])
    assert actions(plan.entries) == [("biz_1/kept", "forget")]
    after = carry_out(state, plan.carried, "2026-03-01T00:00:00Z").lockfile
    assert after is not None and after.triggers["biz_1/kept"].id == "trg_new"
    assert after.triggers["biz_1/kept"].replaced_still_active() == []
    assert list_text(after).splitlines()[1].rstrip().endswith("triggers/x.yaml")
    again = create_plan(manifests, after, API_URL, declarations=[removed("kept", "trg_old")])
    assert actions(again.entries) == [("biz_1/kept", "no-op")]


def test_removed_names_its_environment_when_pfsync_yaml_has_environments(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = write_project(tmp_path, {"a.yaml": manifest_yaml("a", "A")})
    (root / "pfsync.yaml").write_text(
        "environments:\n"
        "  staging: {business: biz_s, lockfile: staging.lock}\n"
        "  production: {business: biz_p, lockfile: production.lock}\n"
    )
    (root / "triggers" / "gone.yaml").write_text(
        "apiVersion: pfsync/v1\nkind: Removed\nkey: gone\nid: trg_1\n"
        "---\napiVersion: pfsync/v1\nkind: Removed\nkey: gone\nid: trg_2\nenvironment: stagin\n"
        "---\napiVersion: pfsync/v1\nkind: Removed\nkey: old\nid: trg_4\nenvironment: staging\n"
        "---\napiVersion: pfsync/v1\nkind: Removed\nkey: old\nid: trg_5\nenvironment: production\n"
    )
    run = run_pfsync("validate", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        "triggers/gone.yaml:2:1: this Removed names no environment, and pfsync.yaml defines "
        "several (ids differ per environment) (add `environment:` with one of production, "
        "staging) [$.environment]\n"
        'triggers/gone.yaml:10:14: unknown environment "stagin" (did you mean staging?) (the '
        "environments of pfsync.yaml are production, staging) [$.environment]\n",
        "2 problem(s) found.\n",
    )


# Import


def imported(key: str, trigger_id: str) -> Declaration:
    return Declaration(IMPORT, "biz_1", key, "triggers/found.yaml", 2, trigger_id=trigger_id)


def test_an_import_records_an_existing_trigger_for_a_key_not_recorded() -> None:
    manifests = [manifest("hand", "H")]
    plan = create_plan(manifests, lockfile(), API_URL, declarations=[imported("hand", "trg_h")])
    assert actions(plan.entries) == [("biz_1/hand", "import")]
    assert plan.entries[0].remedy == (
        "Trigger trg_h becomes the record of biz_1/hand (origin imported, with this manifest's "
        "body); nothing is sent to Pocketflows."
    )
    assert (plan.exit_code(True), plan.to_apply) == (2, [])
    after = carry_out(
        lockfile(), plan.carried, "2026-03-01T00:00:00Z", {m.address: m for m in manifests}
    ).lockfile
    assert after is not None
    record_ = after.triggers["biz_1/hand"]
    assert (record_.id, record_.origin, record_.digest) == (
        "trg_h",
        "imported",
        manifests[0].digest,
    )
    again = create_plan(manifests, after, API_URL, declarations=[imported("hand", "trg_h")])
    assert actions(again.entries) == [("biz_1/hand", "no-op")]
    assert again.entries[0].remedy == (
        "Import biz_1/hand (trigger trg_h) is done; this declaration may be deleted."
    )


def test_an_import_settles_an_uncertain_create_and_acknowledges_a_hand_edit() -> None:
    from test_planner import pending_create

    manifests = [manifest("a", "A")]
    uncertain = replace(lockfile(), pending={"biz_1/a": pending_create()})
    plan = create_plan(manifests, uncertain, API_URL, declarations=[imported("a", "trg_found")])
    assert actions(plan.entries) == [("biz_1/a", "import")]
    declared = {m.address: m for m in manifests}
    after = carry_out(uncertain, plan.carried, "2026-03-01T00:00:00Z", declared).lockfile
    assert after is not None and after.pending == {}
    assert after.triggers["biz_1/a"].id == "trg_found"

    edited = lockfile(a=record("trg_a", "Edited by hand"))
    plan = create_plan(manifests, edited, API_URL, declarations=[imported("a", "trg_a")])
    assert actions(plan.entries) == [("biz_1/a", "no-op"), ("biz_1/a", "update")]
    acknowledging = replace(imported("a", "trg_a"), acknowledges=manifests[0].digest)
    plan = create_plan(manifests, edited, API_URL, declarations=[acknowledging])
    assert actions(plan.entries) == [("biz_1/a", "import")]
    after = carry_out(edited, plan.carried, "2026-03-01T00:00:00Z", declared).lockfile
    assert after is not None
    (overwritten,) = after.triggers["biz_1/a"].history
    assert (overwritten.id, overwritten.reason, overwritten.declared_by) == (
        "trg_a",
        "overwritten",
        "triggers/found.yaml:2",
    )


def test_an_import_naming_another_id_than_the_recorded_one_is_refused() -> None:
    with pytest.raises(DeclarationConflict) as raised:
        create_plan(
            [manifest("a", "A")],
            lockfile(a=record("trg_a", "A")),
            API_URL,
            declarations=[imported("a", "trg_other")],
        )
    assert str(raised.value) == (
        "triggers/found.yaml:2:1: Import biz_1/a names trigger trg_other, but the lockfile "
        "records trigger trg_a for biz_1/a (an Import records a trigger for a key that is not "
        "recorded or is uncertain, or acknowledges the recorded trigger; check the id in "
        "Pocketflows and with `pfsync state show biz_1/a`) [$.id]"
    )


def test_validate_refuses_an_import_of_a_key_no_trigger_declares(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = write_project(
        tmp_path,
        {
            "welcome.yaml": manifest_yaml("welcome", "Welcome")
            + '---\napiVersion: pfsync/v1\nkind: Import\nkey: welcom\nid: ""\n'
            + "---\napiVersion: pfsync/v1\nkind: Import\nkey: welcom\nid: trg_1\n"
        },
    )
    run = run_pfsync("validate", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        'triggers/welcome.yaml:14:5: "" does not match ^[^\\s]{1,200}$ [$.id]\n'
        "triggers/welcome.yaml:17:1: no trigger declares biz_1/welcom, the `key` of this Import "
        "(did you mean welcome?) [$.key]\n",
        "2 problem(s) found.\n",
    )


def import_yaml(key: str, trigger_id: str, acknowledges: str | None = None) -> str:
    text = f"apiVersion: pfsync/v1\nkind: Import\nkey: {key}\nid: {trigger_id}\n"
    return text + (f"acknowledges: {acknowledges}\n" if acknowledges else "")


CREDENTIALS = {"PFSYNC_USERNAME": "u", "PFSYNC_PASSWORD": "p"}


def update_plan(import_line: int, old: str, new: str, planned_from: str = NOT_A_REPOSITORY) -> str:
    """The text plan of an edit of biz_1/hand (recorded as trg_h) beside its Import, done
    (apply shows it without `planned_from`, the line only `plan` adds)."""
    return (
        "Business: biz_1\n"
        "API: https://api.pocketflows.com\n"
        f"Lockfile: pfsync.lock (serial {1 if old == 'H' else 2})\n" + planned_from + "\n"
        f"  biz_1/hand  no-op  triggers/found.yaml:{import_line}  (trigger trg_h)\n"
        "    note: Import biz_1/hand (trigger trg_h) is done; this declaration may be deleted.\n"
        "\n"
        + update_entry("hand", "trg_h", old, new, manifest("hand", new).digest)
        + "Plan: 0 to create, 0 to replace. Needs a person: 1 update, 0 delete, 0 uncertain. "
        "1 unchanged.\n"
    )


def edited_project(root: Path, files: dict[str, str] | None = None) -> Path:
    """biz_1/hand recorded as trg_h with the body named "H", its manifest edited to "H2"."""
    write_project(root, {"hand.yaml": manifest_yaml("hand", "H2"), **(files or {})})
    recorded = replace(lockfile(hand=record("trg_h", "H")), serial=0)
    save_lockfile(root / "pfsync.lock", None, recorded)
    return root


NEEDS_A_PERSON = (
    "Apply: 0 created, 0 failed, 0 uncertain. Needs a person: 1 update, 0 delete, 0 uncertain.\n"
)


@pytest.mark.parametrize("acknowledged", [None, "H"], ids=["without", "of-the-older-body"])
def test_an_import_carried_out_and_kept_lets_a_later_edit_plan_as_an_update(
    tmp_path: Path, run_pfsync: RunPfsync, acknowledged: str | None
) -> None:
    # The Import was carried out (the record holds its id with the manifest's body then) and
    # kept, which is harmless: a later edit of the manifest is an update a person must make,
    # never the acknowledgement of an edit nobody made in Pocketflows.
    digest = manifest("hand", acknowledged).digest if acknowledged else None
    root = edited_project(tmp_path, {"found.yaml": import_yaml("hand", "trg_h", digest)})
    before = (root / "pfsync.lock").read_bytes()
    run = run_pfsync("plan", "--detailed-exitcode", cwd=root)
    assert (run.code, run.out, run.err) == (3, update_plan(2, "H", "H2"), "")
    applied = run_pfsync("apply", "--auto-approve", cwd=root, env=CREDENTIALS)
    assert (applied.code, applied.out, applied.err) == (
        3,
        update_plan(2, "H", "H2", planned_from=""),
        NEEDS_A_PERSON,
    )
    assert (root / "pfsync.lock").read_bytes() == before


def test_the_import_the_update_remedy_offers_acknowledges_exactly_the_edited_body(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = edited_project(tmp_path)
    edited = manifest("hand", "H2").digest
    markdown = run_pfsync("plan", "--format", "markdown", cwd=root)
    assert f"\nid: trg_h\nacknowledges: {edited}\n" in markdown.out, markdown
    document = json.loads(run_pfsync("plan", "--format", "json", cwd=root).out)
    (update,) = document["entries"]
    assert update["paste"].endswith(f"\nid: trg_h\nacknowledges: {edited}\n"), update
    run = run_pfsync("plan", cwd=root)
    lines = run.out.splitlines()
    start = lines.index("    paste:") + 1
    copied = lines[start : lines.index("", start)]
    (root / "triggers" / "found.yaml").write_text("\n".join(copied) + "\n")
    run = run_pfsync("plan", "--detailed-exitcode", cwd=root)
    imported_plan = (
        "Business: biz_1\n"
        "API: https://api.pocketflows.com\n"
        "Lockfile: pfsync.lock (serial 1)\n" + NOT_A_REPOSITORY + "\n"
        "<= biz_1/hand  import  triggers/found.yaml:3  (trigger trg_h)\n"
        "    note: Trigger trg_h becomes the record of biz_1/hand (origin imported, with this "
        "manifest's body); nothing is sent to Pocketflows.\n"
        "\n"
        "Plan: 0 to create, 0 to replace, 1 to import. Needs a person: 0 update, 0 delete, "
        "0 uncertain. 0 unchanged.\n"
    )
    assert (run.code, run.out, run.err) == (2, imported_plan, "")
    applied = run_pfsync("apply", "--auto-approve", cwd=root, env=CREDENTIALS)
    assert (applied.code, applied.out, applied.err) == (
        0,
        imported_plan.replace(NOT_A_REPOSITORY, ""),
        "biz_1/hand: imported trigger trg_h (triggers/found.yaml:3); nothing was sent\n"
        "Apply: 0 created, 0 failed, 0 uncertain, 1 imported. Needs a person: 0 update, "
        "0 delete, 0 uncertain.\n",
    )
    data = json.loads((root / "pfsync.lock").read_text(encoding="utf-8"))
    hand = data["triggers"]["biz_1/hand"]
    assert (hand["id"], hand["digest"]) == ("trg_h", edited)
    assert run_pfsync("plan", "--detailed-exitcode", cwd=root).code == 0
    (root / "triggers" / "hand.yaml").write_text(manifest_yaml("hand", "H3"))
    run = run_pfsync("plan", "--detailed-exitcode", cwd=root)
    assert (run.code, run.out, run.err) == (3, update_plan(3, "H2", "H3"), "")


def test_an_import_of_a_key_not_recorded_acknowledging_another_body_is_refused() -> None:
    # It would record the manifest's body as the trigger's, while it says the trigger has
    # another: neither recorded (the trigger's body is not known) nor ignored (a create).
    declaration = replace(imported("hand", "trg_h"), acknowledges=manifest("hand", "Old").digest)
    with pytest.raises(DeclarationConflict) as raised:
        create_plan([manifest("hand", "H")], lockfile(), API_URL, declarations=[declaration])
    assert str(raised.value) == (
        f"triggers/found.yaml:2:1: Import biz_1/hand acknowledges the body "
        f"{manifest('hand', 'Old').digest}, but the manifest declares "
        f"{manifest('hand', 'H').digest} now: it was edited since the Import was written (an "
        "Import records the manifest's body as trigger trg_h's: check the trigger in "
        "Pocketflows, then set `acknowledges` to the manifest's digest or delete that line) "
        "[$.acknowledges]"
    )
    acknowledged = replace(declaration, acknowledges=manifest("hand", "H").digest)
    plan = create_plan([manifest("hand", "H")], lockfile(), API_URL, declarations=[acknowledged])
    assert actions(plan.entries) == [("biz_1/hand", "import")]


def test_a_saved_plan_is_stale_when_an_import_acknowledges_another_body(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = edited_project(tmp_path)
    found = root / "triggers" / "found.yaml"
    found.write_text(import_yaml("hand", "trg_h", manifest("hand", "H2").digest))
    assert run_pfsync("plan", "--out", "plan.json", cwd=root).code == 0
    found.write_text(import_yaml("hand", "trg_h", manifest("hand", "Other").digest))
    assert_refused_as_stale(root, run_pfsync)


# NotCreated


def test_validate_refuses_a_not_created_of_a_key_no_trigger_declares(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    # Sent once more, it would create a trigger no manifest wants any more (and pfsync cannot
    # delete it): an uncertain create of a key no longer declared is settled by `state rm`.
    intent = "11111111-2222-4333-8444-555555555555"
    root = write_project(
        tmp_path,
        {
            "welcome.yaml": manifest_yaml("welcome", "Welcome")
            + f"---\napiVersion: pfsync/v1\nkind: NotCreated\nkey: welcom\nintent: {intent}\n"
        },
    )
    run = run_pfsync("validate", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        "triggers/welcome.yaml:12:1: no trigger declares biz_1/welcom, the `key` of this "
        "NotCreated (did you mean welcome?) [$.key]\n",
        "1 problem(s) found.\n",
    )


def not_created(key: str, intent: str) -> Declaration:
    return Declaration(NOT_CREATED, "biz_1", key, "triggers/lost.yaml", 2, intent=intent)


def test_a_not_created_sends_the_uncertain_create_once_more_and_only_once() -> None:
    from test_planner import pending_create

    intent = "11111111-2222-4333-8444-555555555555"
    manifests = [manifest("a", "A")]
    uncertain = replace(lockfile(), pending={"biz_1/a": pending_create()})
    plan = create_plan(manifests, uncertain, API_URL, declarations=[not_created("a", intent)])
    assert actions(plan.entries) == [("biz_1/a", "resend")]
    assert plan.entries[0].remedy == (
        "The create of biz_1/a started at 2026-02-01T00:00:00Z is sent once more, with its "
        f"original body and Idempotency-Key {intent} (a person found it is not in Pocketflows); "
        "it is recorded first, like any create."
    )
    assert (plan.exit_code(True), plan.needs_person) == (2, False)
    assert [e.desired for e in plan.to_apply] == [uncertain.pending["biz_1/a"].trigger]

    # Sent once, and its outcome unknown again: never sent a third time by the declaration.
    after = carry_out(uncertain, plan.carried, "2026-03-01T00:00:00Z").lockfile
    assert after is not None
    (noted,) = after.forgotten["biz_1/a"]
    assert (noted.reason, noted.intent, noted.declared_by) == (
        "resent",
        intent,
        "triggers/lost.yaml:2",
    )
    again = create_plan(manifests, after, API_URL, declarations=[not_created("a", intent)])
    assert actions(again.entries) == [("biz_1/a", "no-op"), ("biz_1/a", "uncertain")]
    assert again.to_apply == [] and again.exit_code(True) == 3
    assert again.entries[0].remedy == (
        f"NotCreated biz_1/a (Idempotency-Key {intent}) was carried out: the create was sent "
        "once more, and its outcome is unknown again, so it is not sent a third time; this "
        "declaration may be deleted."
    )
    assert not again.entries[0].recorded  # no trigger is recorded ("trigger id unknown")
    # The uncertain create's remedy no longer offers that NotCreated: it would do nothing.
    left = again.entries[1]
    assert left.paste is not None and "NotCreated" not in left.paste
    assert left.remedy == (
        "A create of biz_1/a was started at 2026-02-01T00:00:00Z (Idempotency-Key "
        f"{intent}) and its outcome is unknown; pfsync will not send it again by itself. It "
        "was sent once more for a NotCreated already, so another NotCreated does nothing. Look "
        "for the trigger in Pocketflows: if it exists, paste the Import below into a manifest "
        "file with its id (or run `pfsync state import biz_1/a ID`); if not, run "
        "`pfsync state rm biz_1/a`, and the next plan creates it anew."
    )


def test_a_not_created_naming_another_intent_is_refused() -> None:
    from test_planner import pending_create

    uncertain = replace(lockfile(), pending={"biz_1/a": pending_create()})
    other = "99999999-2222-4333-8444-555555555555"
    with pytest.raises(DeclarationConflict) as raised:
        create_plan(
            [manifest("a", "A")], uncertain, API_URL, declarations=[not_created("a", other)]
        )
    assert str(raised.value) == (
        f"triggers/lost.yaml:2:1: NotCreated biz_1/a names the create with Idempotency-Key "
        f"{other}, but the uncertain create of biz_1/a has Idempotency-Key "
        "11111111-2222-4333-8444-555555555555 (a NotCreated sends again exactly the create it "
        "names: copy the Idempotency-Key from the plan or from `pfsync state show biz_1/a`) "
        "[$.intent]"
    )


def test_two_declarations_of_any_kinds_for_one_address_are_refused(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = write_project(tmp_path, {"a.yaml": manifest_yaml("a", "A")})
    (root / "triggers" / "repairs.yaml").write_text(
        "apiVersion: pfsync/v1\nkind: Import\nkey: a\nid: trg_1\n"
        "---\napiVersion: pfsync/v1\nkind: Moved\nfrom: old\nto: a\n"
        "---\napiVersion: pfsync/v1\nkind: Removed\nkey: old\nid: trg_2\n"
    )
    run = run_pfsync("validate", cwd=root)
    assert (run.code, run.out, run.err) == (
        1,
        "triggers/repairs.yaml:7:1: two declarations for biz_1/a: here and at "
        "triggers/repairs.yaml:2 (each address takes one declaration at a time; delete one of "
        "them) [$.to]\n"
        "triggers/repairs.yaml:12:1: two declarations for biz_1/old: here and at "
        "triggers/repairs.yaml:7 (each address takes one declaration at a time; delete one of "
        "them) [$.key]\n",
        "2 problem(s) found.\n",
    )


def test_a_not_created_re_send_uncertain_again_is_not_told_to_declare_a_not_created() -> None:
    from pfsync.apply.applier import ItemResult
    from pfsync.apply.outcome import describe_result

    result = ItemResult("biz_1/a", "uncertain", "read timeout")
    assert describe_result(result, resent=True) == (
        "biz_1/a: uncertain: read timeout — it was sent once more for a NotCreated, so another "
        "NotCreated does nothing: look for it in Pocketflows, then declare an Import (found) as "
        "`pfsync plan` prints it, or run `pfsync state import biz_1/a ID`, or "
        "`pfsync state rm biz_1/a` (not found)"
    )
