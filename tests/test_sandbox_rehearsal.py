"""Rehearsing the recovery workflows in sandbox mode, end to end with the installed CLI.

`state … --sandbox` works on sandbox mode's lockfile (`.pfsync/pfsync.lock`), `pfsync sandbox
list` shows what the in-process sandbox holds, and `apply --sandbox --sandbox-faults` makes the
uncertain creates to practise on; the real `pfsync.lock` is never created or touched. Also: the
standalone `pfsync sandbox` takes its credentials from PFSYNC_USERNAME/PFSYNC_PASSWORD.
Whole outputs are compared, with generated ids, timestamps, keys and ports normalised.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
from pathlib import Path

import pytest

from apply_helpers import BUSINESS, create_entry, make_repo, manifest_text
from conftest import Run, RunPfsync, clean_env, pfsync_executable
from fixtures_sandbox import http_client, trigger_body

SANDBOX_NOTE = "Sandbox mode: using .pfsync/pfsync.lock, never the real lockfile.\n"
SANDBOX_HINT = (
    "Sandbox mode: `pfsync sandbox list` shows what the sandbox holds (where you would look in "
    "Pocketflows).\n"
)
NOT_COPIED = (
    "Error: sandbox mode's lockfile .pfsync/pfsync.lock records the triggers of the in-process "
    "sandbox, which exist nowhere else: it is not copied to or from a state store. Nothing was "
    "changed; to start the rehearsal over, delete .pfsync/\n"
)
VALID_FAULTS = (
    "valid: lose-response=FRACTION, fail=FRACTION, latency-ms=MS, rate-limit=PER_SECOND, "
    "seed=INTEGER, idempotency-keys=on|off (comma-separated, e.g. lose-response=0.3,seed=1)"
)


class Normalise:
    """Replace generated values by stable placeholders of the same width, ids consistently."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def id_of(self, placeholder: str) -> str:
        """The real id behind `placeholder`."""
        return next(real for real, shown in self.ids.items() if shown == placeholder)

    def _id(self, match: re.Match[str]) -> str:
        return self.ids.setdefault(match.group(), f"trg_{len(self.ids) + 1:024d}")

    def __call__(self, text: str) -> str:
        text = re.sub(r"trg_[0-9a-f]{24}", self._id, text)
        text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "YYYY-MM-DDTHH:MM:SS.mmmZ", text)
        text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "YYYY-MM-DDTHH:MM:SSZ", text)
        text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", text)
        return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)

    def run(self, run: Run) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) normalised."""
        return run.code, self(run.out), self(run.err)


SANDBOX_SOURCE = (
    "Planned from: not a git repository. Sandbox mode: new triggers go to the local sandbox "
    "(.pfsync/), not Pocketflows.\n"
)


def plan_text(serial: int, entries: str, summary: str, planned_from: str = SANDBOX_SOURCE) -> str:
    """`plan --sandbox` output around `entries` (`apply --sandbox` shows it without the line
    `planned_from` that only `plan` adds)."""
    lockfile = f"Lockfile: .pfsync/pfsync.lock (serial {serial})\n{planned_from}"
    return f"Business: {BUSINESS}\nAPI: sandbox:.pfsync\n{lockfile}\n" + entries + summary + "\n"


def listing(*rows: tuple[str, str]) -> str:
    """`sandbox list` text for (id placeholder, name) rows of BUSINESS."""
    table = [("BUSINESS", "ID", "NAME", "STATUS", "CREATED_AT")]
    table += [(BUSINESS, i, n, "draft", "YYYY-MM-DDTHH:MM:SS.mmmZ") for i, n in rows]
    widths = [max(len(row[c]) for row in table) for c in range(5)]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in table
    )


def top_level(root: Path) -> list[str]:
    return sorted(os.listdir(root))


def test_the_recovery_workflows_can_be_rehearsed_in_sandbox_mode(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    root = make_repo(tmp_path / "repo", 2)
    n = Normalise()
    untouched = [".pfsync", "pfsync.yaml", "triggers"]

    # 1. Create two triggers in the sandbox; `sandbox list` is where a person would look.
    applied = n.run(
        run_pfsync("apply", "--sandbox", "--auto-approve", "--parallelism", "1", cwd=root)
    )
    assert applied == (
        0,
        plan_text(
            1,
            create_entry("t000") + create_entry("t001"),
            "Plan: 2 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
            "0 unchanged.",
            planned_from="",
        ),
        "Sandbox: in-process Pocketflows API at http://127.0.0.1:PORT\n"
        f"{BUSINESS}/t000: created trg_000000000000000000000001\n"
        f"{BUSINESS}/t001: created trg_000000000000000000000002\n"
        "Apply: 2 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n",
    )
    listed = n.run(run_pfsync("sandbox", "list", cwd=root))
    assert listed == (
        0,
        listing(
            ("trg_000000000000000000000001", "Trigger t000"),
            ("trg_000000000000000000000002", "Trigger t001"),
        ),
        "",
    )
    assert top_level(root) == untouched

    # 2. A deleted manifest: the plan names the remedy; `state rm --sandbox` forgets it.
    (root / "triggers" / "t001.yaml").unlink()
    planned = n.run(run_pfsync("plan", "--sandbox", cwd=root))
    assert planned == (
        0,
        plan_text(
            2,
            f"- {BUSINESS}/t001  delete  triggers/t001.yaml  "
            "(trigger trg_000000000000000000000002)\n"
            "    remedy: Pocketflows has no delete endpoint, so pfsync cannot remove this trigger. "
            "Deactivate trigger trg_000000000000000000000002 in Pocketflows, then paste the "
            "Removed below into a manifest file, so that apply forgets it once reviewed (or run "
            f"`pfsync state rm --sandbox {BUSINESS}/t001`). If its key was renamed, declare a "
            "Moved (from: the old key, to: the new one) instead, or run "
            f"`pfsync state mv --sandbox {BUSINESS}/t001 NEW_ADDRESS`.\n"
            "    paste:\n"
            "---\n"
            "apiVersion: pfsync/v1\n"
            "kind: Removed\n"
            "key: t001\n"
            "id: trg_000000000000000000000002\n\n",
            "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 1 delete, 0 uncertain. "
            "1 unchanged.",
        ),
        "",
    )
    removed = n.run(run_pfsync("state", "rm", "--sandbox", f"{BUSINESS}/t001", cwd=root))
    assert removed == (
        0,
        f"Removed {BUSINESS}/t001 from the lockfile; trigger trg_000000000000000000000002 moved "
        "to its history. Nothing was deleted in Pocketflows: deactivate the trigger there if it "
        "should stop running.\n",
        SANDBOX_NOTE,
    )

    # 3. A renamed key: `state mv --sandbox`, and the plan has nothing left to do.
    (root / "triggers" / "t000.yaml").write_text(
        manifest_text("t000").replace("key: t000", "key: welcome")
    )
    moved = n.run(
        run_pfsync("state", "mv", "--sandbox", f"{BUSINESS}/t000", f"{BUSINESS}/welcome", cwd=root)
    )
    assert moved == (
        0,
        f"Moved {BUSINESS}/t000 to {BUSINESS}/welcome. Nothing was changed in Pocketflows.\n",
        SANDBOX_NOTE,
    )
    in_sync = n.run(run_pfsync("plan", "--sandbox", "--detailed-exitcode", cwd=root))
    assert in_sync == (
        0,
        plan_text(
            4,
            "",
            "Plan: 0 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
            "1 unchanged.",
        ),
        "",
    )

    # 4. A lost response: the create happened, the record is uncertain; `sandbox list` shows the
    # trigger, and `state import --sandbox` settles it.
    (root / "triggers" / "t002.yaml").write_text(manifest_text("t002"))
    lost = n.run(
        run_pfsync(
            "apply", "--sandbox", "--auto-approve", "--sandbox-faults", "lose-response=1", cwd=root
        )
    )
    assert lost[0] == 3, lost
    assert lost[2].startswith(
        "Sandbox: in-process Pocketflows API at http://127.0.0.1:PORT, faults: lose-response=1\n"
        f"{BUSINESS}/t002: uncertain: "
    )
    assert lost[2].endswith(
        f"`pfsync state import --sandbox {BUSINESS}/t002 ID` or "
        f"`pfsync state rm --sandbox {BUSINESS}/t002`\n"
        "Apply: 0 created, 0 failed, 1 uncertain. Needs a person: 0 update, 0 delete, "
        "1 uncertain.\n" + SANDBOX_HINT
    )
    as_json = run_pfsync("sandbox", "list", "--format", "json", cwd=root)
    assert (as_json.code, as_json.err) == (0, ""), as_json
    document = json.loads(as_json.out)
    assert n(as_json.out) == (
        json.dumps(
            {
                "format_version": 1,
                "data_file": ".pfsync/sandbox-data.json",
                "triggers": [
                    {
                        "business": BUSINESS,
                        "id": f"trg_{i:024d}",
                        "name": f"Trigger t00{i - 1}",
                        "status": "draft",
                        "created_at": "YYYY-MM-DDTHH:MM:SS.mmmZ",
                    }
                    for i in (1, 2, 3)
                ],
            },
            indent=2,
        )
        + "\n"
    )
    found = document["triggers"][2]["id"]
    assert found == n.id_of("trg_000000000000000000000003")
    unsure = run_pfsync("plan", "--sandbox", "--detailed-exitcode", cwd=root)
    assert unsure.code == 3, unsure
    assert f"? {BUSINESS}/t002  uncertain" in unsure.out
    imported = n.run(
        run_pfsync("state", "import", "--sandbox", f"{BUSINESS}/t002", found, cwd=root)
    )
    assert imported == (
        0,
        f"Imported trigger trg_000000000000000000000003 as {BUSINESS}/t002 "
        "(triggers/t002.yaml:3).\nThe uncertain create of this address is settled.\n",
        SANDBOX_NOTE,
    )

    # 5. A 500: uncertain too, but nothing was stored; `state rm --sandbox` settles it.
    (root / "triggers" / "t003.yaml").write_text(manifest_text("t003"))
    failed = n.run(
        run_pfsync("apply", "--sandbox", "--auto-approve", "--sandbox-faults", "fail=1", cwd=root)
    )
    assert failed[0] == 3, failed
    assert failed[2].startswith(
        "Sandbox: in-process Pocketflows API at http://127.0.0.1:PORT, faults: fail=1\n"
        f"{BUSINESS}/t003: uncertain: HTTP 500"
    )
    assert n.run(run_pfsync("sandbox", "list", "--business", BUSINESS, cwd=root)) == (
        0,
        listing(*((f"trg_{i:024d}", f"Trigger t00{i - 1}") for i in (1, 2, 3))),
        "",
    )
    settled = n.run(run_pfsync("state", "rm", "--sandbox", f"{BUSINESS}/t003", cwd=root))
    assert settled == (
        0,
        f"Settled {BUSINESS}/t003: the uncertain create is forgotten. Nothing was changed in "
        "Pocketflows.\n",
        SANDBOX_NOTE,
    )

    # 6. Without faults, the create goes through and everything is in sync.
    again = run_pfsync("apply", "--sandbox", "--auto-approve", cwd=root)
    assert again.code == 0, again
    done = n.run(run_pfsync("plan", "--sandbox", "--detailed-exitcode", cwd=root))
    assert done[0] == 0 and done[1].endswith(" 3 unchanged.\n"), done
    assert top_level(root) == untouched


def test_state_sandbox_reads_the_sandbox_lockfile_not_the_real_one(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    root = make_repo(tmp_path / "repo", 1)
    assert run_pfsync("apply", "--sandbox", "--auto-approve", cwd=root).code == 0
    n = Normalise()

    real = run_pfsync("state", "list", cwd=root)
    assert (real.code, real.out, real.err) == (
        0,
        "",
        "No lockfile at pfsync.lock yet: nothing is recorded.\n",
    )
    sandboxed = n.run(run_pfsync("state", "list", "--sandbox", cwd=root))
    assert sandboxed == (
        0,
        "ADDRESS       ID                            ORIGIN   REVISION  FILE                NOTE\n"
        f"{BUSINESS}/t000  trg_000000000000000000000001  created  0         triggers/t000.yaml\n",
        SANDBOX_NOTE,
    )
    shown = n.run(run_pfsync("state", "show", "--sandbox", f"{BUSINESS}/t000", cwd=root))
    assert shown[0] == 0 and shown[1].startswith(
        f"address: {BUSINESS}/t000\nid: trg_000000000000000000000001\norigin: created\n"
    ), shown
    missing = run_pfsync("state", "show", f"{BUSINESS}/t000", cwd=root)
    assert (missing.code, missing.out, missing.err) == (
        1,
        "",
        f"Error: {BUSINESS}/t000 is not in the lockfile (`pfsync state list` shows it)\n",
    )

    # A real lockfile is never changed by sandbox state commands, nor the sandbox's by real ones.
    assert run_pfsync("state", "import", f"{BUSINESS}/t000", "trg_real", cwd=root).code == 0
    real_bytes = (root / "pfsync.lock").read_bytes()
    real_mtime = (root / "pfsync.lock").stat().st_mtime_ns
    assert run_pfsync("state", "rm", "--sandbox", f"{BUSINESS}/t000", cwd=root).code == 0
    assert (root / "pfsync.lock").read_bytes() == real_bytes
    assert (root / "pfsync.lock").stat().st_mtime_ns == real_mtime
    real_list = run_pfsync("state", "list", "--format", "json", cwd=root)
    assert [a["id"] for a in json.loads(real_list.out)["addresses"]] == ["trg_real"]
    sandbox_list = run_pfsync("state", "list", "--sandbox", "--format", "json", cwd=root)
    sandbox_document = json.loads(sandbox_list.out)
    assert sandbox_document["lockfile"]["path"] == ".pfsync/pfsync.lock"
    assert sandbox_document["addresses"] == []  # forgotten: only `state show` has its history


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["push", "--to", "file:/tmp/x.lock"],
            SANDBOX_NOTE + NOT_COPIED,
        ),
        (
            ["pull"],
            SANDBOX_NOTE + NOT_COPIED,
        ),
        (
            ["unlock", "5f0c6c2e-8d7a-4d0e-9c53-2b1f3f1d9a10"],
            SANDBOX_NOTE + "Error: the file store keeps no lock record: its lock (an flock on "
            "pfsync.lock.lck) is released by the operating system when the holding process "
            "exits, so there is nothing to unlock\n",
        ),
        (
            ["rm", f"{BUSINESS}/t000"],
            SANDBOX_NOTE + "Error: there is no sandbox lockfile at .pfsync/pfsync.lock yet, so "
            "there is nothing to remove: `pfsync apply --sandbox` starts one\n",
        ),
        (
            ["mv", f"{BUSINESS}/t000", f"{BUSINESS}/t001"],
            SANDBOX_NOTE + "Error: there is no sandbox lockfile at .pfsync/pfsync.lock yet, so "
            "there is nothing to move: `pfsync apply --sandbox` starts one\n",
        ),
    ],
    ids=["push", "pull", "unlock", "rm", "mv"],
)
def test_state_sandbox_refusals(
    run_pfsync: RunPfsync, tmp_path: Path, args: list[str], message: str
) -> None:
    root = make_repo(tmp_path / "repo", 1)
    result = run_pfsync("state", args[0], "--sandbox", *args[1:], cwd=root)
    assert (result.code, result.out, result.err) == (1, "", message)
    assert top_level(root) == ["pfsync.yaml", "triggers"]


def test_state_import_sandbox_starts_the_sandbox_lockfile(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    root = make_repo(tmp_path / "repo", 1)
    result = run_pfsync("state", "import", "--sandbox", f"{BUSINESS}/t000", "trg_byhand", cwd=root)
    assert (result.code, result.out, result.err) == (
        0,
        f"Imported trigger trg_byhand as {BUSINESS}/t000 (triggers/t000.yaml:3).\n"
        "Created the sandbox lockfile .pfsync/pfsync.lock (serial 1).\n",
        SANDBOX_NOTE,
    )
    assert (root / ".pfsync" / ".gitignore").read_text().endswith("\n*\n")
    assert top_level(root) == [".pfsync", "pfsync.yaml", "triggers"]


def test_sandbox_list_when_the_sandbox_holds_nothing(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", 1)
    empty = run_pfsync("sandbox", "list", cwd=root)
    assert (empty.code, empty.out, empty.err) == (
        0,
        "",
        "The sandbox holds no triggers yet (.pfsync/sandbox-data.json does not exist): "
        "`pfsync apply --sandbox` creates them.\n",
    )
    as_json = run_pfsync("sandbox", "list", "--format", "json", cwd=root)
    assert (as_json.code, as_json.err) == (0, "")
    assert json.loads(as_json.out) == {
        "format_version": 1,
        "data_file": ".pfsync/sandbox-data.json",
        "triggers": [],
    }
    assert run_pfsync("apply", "--sandbox", "--auto-approve", cwd=root).code == 0
    other = run_pfsync("sandbox", "list", "--business", "biz_other", cwd=root)
    assert (other.code, other.out, other.err) == (
        0,
        "",
        "The sandbox holds no triggers of business biz_other.\n",
    )
    assert top_level(root) == [".pfsync", "pfsync.yaml", "triggers"]


def test_sandbox_group_keeps_serving_options_apart(run_pfsync: RunPfsync) -> None:
    mixed = run_pfsync("sandbox", "--port", "0", "list")
    assert (mixed.code, mixed.out) == (1, "")
    assert mixed.err.endswith(
        "Error: --port serves the sandbox; it cannot be combined with `sandbox list`.\n"
    )
    for args in (["sandbox", "--help"], ["sandbox", "list", "--help"]):
        helped = run_pfsync(*args)
        assert (helped.code, helped.err) == (0, "")
        assert helped.out.startswith(f"Usage: pfsync {' '.join(args[:-1])} [OPTIONS]")
    assert "pfsync sandbox list" in run_pfsync("sandbox", "--help").out
    assert "  pfsync sandbox list --format json" in run_pfsync("sandbox", "list", "--help").out
    assert "--sandbox-faults" in run_pfsync("apply", "--help").out


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("los-response=1", "unknown fault 'los-response'"),
        ("lose-response=2", "lose-response must be a fraction from 0 to 1, not '2'"),
        ("fail=x", "fail must be a fraction from 0 to 1, not 'x'"),
        ("latency-ms=-5", "latency-ms must be a number of milliseconds >= 0, not '-5'"),
        ("rate-limit=0", "rate-limit must be a number of requests per second > 0, not '0'"),
        ("seed=1.5", "seed must be an integer, not '1.5'"),
        ("idempotency-keys=maybe", "idempotency-keys must be on or off, not 'maybe'"),
        ("lose-response", "lose-response needs a value, e.g. lose-response=0.3"),
        ("fail=0.1,fail=0.2", "fail is given twice"),
        ("", "no faults given"),
    ],
)
def test_bad_sandbox_faults_are_usage_errors(
    run_pfsync: RunPfsync, tmp_path: Path, spec: str, problem: str
) -> None:
    root = make_repo(tmp_path / "repo", 1)
    result = run_pfsync("apply", "--sandbox", "--auto-approve", "--sandbox-faults", spec, cwd=root)
    assert (result.code, result.out, result.err) == (
        1,
        "",
        "Usage: pfsync apply [OPTIONS] [PLANFILE]\n"
        "Try 'pfsync apply --help' for help.\n\n"
        f"Error: Invalid value for '--sandbox-faults': {problem}; {VALID_FAULTS}\n",
    )
    assert top_level(root) == ["pfsync.yaml", "triggers"]


def test_sandbox_faults_need_sandbox(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", 1)
    result = run_pfsync("apply", "--auto-approve", "--sandbox-faults", "fail=1", cwd=root)
    assert (result.code, result.out, result.err) == (
        1,
        "",
        "Usage: pfsync apply [OPTIONS] [PLANFILE]\n"
        "Try 'pfsync apply --help' for help.\n\n"
        "Error: --sandbox-faults needs --sandbox: faults are injected only into the in-process "
        "sandbox. Nothing was sent.\n",
    )


def _serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [pfsync_executable(), "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(env),
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        assert selector.select(10), "pfsync sandbox printed nothing"
    return proc, proc.stdout.readline().rstrip("\n")


@pytest.mark.parametrize(
    ("env", "args", "works", "refused", "said"),
    [
        (
            {"PFSYNC_USERNAME": "ops", "PFSYNC_PASSWORD": "env-s3cret-pw"},
            [],
            ("ops", "env-s3cret-pw"),
            ("sandbox", "sandbox"),
            "(user 'ops' from PFSYNC_USERNAME, password from PFSYNC_PASSWORD)",
        ),
        (
            {"PFSYNC_USERNAME": "ops", "PFSYNC_PASSWORD": "env-s3cret-pw"},
            ["--username", "flag-user", "--password", "flag-s3cret-pw"],
            ("flag-user", "flag-s3cret-pw"),
            ("ops", "env-s3cret-pw"),
            "(user 'flag-user' from --username, password from --password)",
        ),
        (
            {"PFSYNC_PASSWORD": "env-s3cret-pw"},
            [],
            ("sandbox", "env-s3cret-pw"),
            ("sandbox", "sandbox"),
            "(user 'sandbox' by default, password from PFSYNC_PASSWORD)",
        ),
        (
            {},
            [],
            ("sandbox", "sandbox"),
            ("sandbox", "wrong"),
            "(user 'sandbox' by default, password by default)",
        ),
    ],
    ids=["environment", "flags-win", "mixed", "defaults"],
)
def test_standalone_sandbox_credentials(
    env: dict[str, str],
    args: list[str],
    works: tuple[str, str],
    refused: tuple[str, str],
    said: str,
) -> None:
    proc, url = _serve(env, *args)
    try:
        with http_client() as client:
            path = url + "/businesses/biz_1/triggers"
            assert client.post(path, json=trigger_body(), auth=works).status_code == 200
            assert client.post(path, json=trigger_body(), auth=refused).status_code == 401
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out == ""
    note = (
        "Note: --password is visible to other users of this machine (ps); set PFSYNC_PASSWORD "
        "instead.\n"
        if "--password" in args
        else ""
    )
    assert err == (f"Sandbox Pocketflows API at {url} {said}; SIGINT or SIGTERM stops it.\n" + note)
    assert "s3cret" not in out + err
