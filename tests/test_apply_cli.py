"""`pfsync apply` end to end: the installed CLI against the real sandbox over loopback."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from apply_helpers import BUSINESS, lock_ids, lock_pending, make_repo, manifest_text, posts
from conftest import LOOPBACK_URL, RunPfsync, normalise
from fixtures_sandbox import MakeSandbox

# pfsync hides the password wherever a server's message repeats it, so with the sandbox's default
# password, "sandbox", its fault messages read "(injected by the ***)"; the tests that compare
# those messages give the sandbox another password.
NOT_A_WORD = "pw-e2e-4242"
LOST = (
    "uncertain: connection lost after sending: RemoteProtocolError (Server disconnected without "
    "sending a response.) — look for it in Pocketflows, then declare an Import (found) or a "
    "NotCreated (not found), as `pfsync plan` prints them, or run `pfsync state import "
    f"{BUSINESS}/t000 ID` or `pfsync state rm {BUSINESS}/t000`"
)
REPLACED = (
    "created <NEW> (replaces <OLD>, which stays active in Pocketflows until a person "
    "deactivates it)"
)
NOTHING_APPLIED = (
    "Apply: 0 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, 0 uncertain.\n"
)
UNCERTAIN_T000 = (
    f"? {BUSINESS}/t000  uncertain  triggers/t000.yaml:3\n"
    f"    remedy: A create of {BUSINESS}/t000 was started at <STARTED> (Idempotency-Key <KEY>) "
    "and its outcome is unknown; pfsync will not send it again by itself. Look for the trigger "
    "in Pocketflows: if it exists, paste the Import below into a manifest file with its id (or "
    f"run `pfsync state import {BUSINESS}/t000 ID`); if not, paste the NotCreated below "
    "instead, and apply sends the create once more with its original Idempotency-Key (or run "
    f"`pfsync state rm {BUSINESS}/t000`, and the next plan creates it anew).\n"
    "    paste:\n"
    "---\n"
    "apiVersion: pfsync/v1\n"
    "kind: Import\n"
    "key: t000\n"
    'id: ""  # the id of the trigger found in Pocketflows\n'
    "---\n"
    "apiVersion: pfsync/v1\n"
    "kind: NotCreated\n"
    "key: t000\n"
    "intent: <KEY>\n"
    "\n"
)


def header(serial: int) -> str:
    """The plan's first lines, against a sandbox at <URL>."""
    return f"Business: {BUSINESS}\nAPI: <URL>\nLockfile: pfsync.lock (serial {serial})\n\n"


def body_lines(key: str, name: str) -> str:
    """The plan's lines for the body `manifest_text(key, name)` declares."""
    return (
        f'      $.spec.name: "{name}"\n'
        '      $.spec.project_defined_event: "pde_signup"\n'
        '      $.spec.steps[0].type: "email"\n'
        f'      $.spec.steps[0].email_template_id: "et_{key}"\n'
    )


def create_entry(key: str) -> str:
    """The plan's entry for a create of `manifest_text(key)`."""
    body = body_lines(key, f"Trigger {key}")
    return f"+ {BUSINESS}/{key}  create  triggers/{key}.yaml:3\n{body}\n"


def replace_entry(key: str, name: str) -> str:
    """The plan's entry for the replace of <OLD> by `manifest_text(key, name, revision=1)`."""
    return (
        f"-/+ {BUSINESS}/{key}  replace  triggers/{key}.yaml:3  (trigger <OLD>; revision raised "
        f"from 0 to 1)\n{body_lines(key, name)}"
        f"    note: A new draft trigger is created for {BUSINESS}/{key}; the old trigger <OLD> "
        "stays active in Pocketflows until a person deactivates it; then paste the Removed "
        "below into a manifest file, so the record stops listing it as still active.\n"
        "    paste:\n"
        "---\n"
        "apiVersion: pfsync/v1\n"
        "kind: Removed\n"
        f"key: {key}\n"
        "id: <OLD>\n"
        "\n"
    )


def in_address_order(text: str) -> str:
    """`text` with its run of progress lines (`BUSINESS/KEY: ...`), which parallel creates
    write in the order they finish, sorted by address."""
    lines = text.splitlines(keepends=True)
    progress = [n for n, line in enumerate(lines) if line.startswith(f"{BUSINESS}/")]
    if progress:
        first, end = progress[0], progress[-1] + 1
        assert progress == list(range(first, end)), text
        lines[first:end] = sorted(lines[first:end])
    return "".join(lines)


def summary(create: int = 0, replace: int = 0, uncertain: int = 0, unchanged: int = 0) -> str:
    """The plan's last line."""
    return (
        f"Plan: {create} to create, {replace} to replace. Needs a person: 0 update, 0 delete, "
        f"{uncertain} uncertain. {unchanged} unchanged.\n"
    )


def test_full_apply_then_nothing_to_do(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 3)
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=sandbox.environment()
    )
    assert run.code == 0, run
    remote = {t["id"]: t for t in sandbox.triggers(BUSINESS)}
    ids = lock_ids(repo)
    assert sorted(ids.values()) == sorted(remote)
    code, out, err = run.normalised(URL=sandbox.url, **{key[-4:]: ids[key] for key in ids})
    assert (code, out, in_address_order(err)) == (
        0,
        header(1)
        + create_entry("t000")
        + create_entry("t001")
        + create_entry("t002")
        + summary(create=3),
        f"{BUSINESS}/t000: created <t000>\n"
        f"{BUSINESS}/t001: created <t001>\n"
        f"{BUSINESS}/t002: created <t002>\n"
        "Apply: 3 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n",
    )
    before = (repo / "pfsync.lock").read_bytes()
    assert not (repo / "pfsync.lock.journal").exists()

    again = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert again.normalised(URL=sandbox.url) == (
        0,
        header(2) + summary(unchanged=3),
        NOTHING_APPLIED,
    )
    assert (repo / "pfsync.lock").read_bytes() == before
    assert len(posts(sandbox)) == 3


def test_refuses_without_lockfile(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 1)
    run = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert (run.code, run.out) == (1, "")
    # The lockfile's path is left out: it is shown absolute here, unlike in other messages.
    assert run.err.startswith("Error: there is no lockfile at ")
    assert run.err.endswith(
        "pfsync.lock: it is the only record of which triggers exist, and applying without it "
        "would create every trigger again. If it was lost, restore it from git (git checkout -- "
        "pfsync.lock). If this is the first apply of this repository, run again with "
        "--new-lockfile\n"
    )
    assert posts(sandbox) == [] and not (repo / "pfsync.lock").exists()


def test_non_interactive_needs_auto_approve(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 1)
    run = run_pfsync("apply", "--new-lockfile", cwd=repo, env=sandbox.environment())
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: apply needs confirmation, and this is not an interactive terminal: run "
        "`pfsync plan`, review it, then `pfsync apply --auto-approve` (or apply a saved plan). "
        "Nothing was sent.\n",
    )
    assert posts(sandbox) == []


def test_api_url_mismatch_is_refused(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    first, second = make_sandbox(), make_sandbox()
    repo = make_repo(tmp_path, 1)
    assert (
        run_pfsync(
            "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=first.environment()
        ).code
        == 0
    )
    (repo / "triggers" / "t001.yaml").write_text(manifest_text("t001"))
    run = run_pfsync("apply", "--auto-approve", cwd=repo, env=second.environment())
    assert run.normalised(FIRST=first.url, SECOND=second.url) == (
        1,
        "",
        "Error: the lockfile pfsync.lock describes the API <FIRST>, but the configured API URL "
        "is <SECOND> (PFSYNC_API_URL or api_url in pfsync.yaml). Use one lockfile per API: for "
        "another API (a staging business, a local sandbox), add an environment to "
        "pfsync.yaml with its own `api_url:` and `lockfile:`, and choose it with -e NAME\n",
    )
    assert posts(second) == []


def test_wrong_password_stops_and_is_never_shown(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 3)
    secret = "Sentinel-Pw-4242"
    env = {**sandbox.environment(), "PFSYNC_PASSWORD": secret}
    run = run_pfsync(
        "-v", "apply", "--auto-approve", "--new-lockfile", "--parallelism", "1", cwd=repo, env=env
    )
    refused = "authentication required: HTTP Basic with a valid username and password"
    assert run.normalised(URL=sandbox.url) == (
        1,
        header(1)
        + create_entry("t000")
        + create_entry("t001")
        + create_entry("t002")
        + summary(create=3),
        f"{BUSINESS}/t000: failed: HTTP 401: {refused}\n"
        f"Error: the API refused the credentials ({refused}); check PFSYNC_USERNAME and "
        "PFSYNC_PASSWORD. The run stopped; nothing more was sent.\n"
        "Apply: 0 created, 1 failed, 0 uncertain, 2 not sent. Needs a person: 0 update, "
        "0 delete, 0 uncertain.\n",
    )
    encoded = base64.b64encode(f"{sandbox.username}:{secret}".encode()).decode()
    for text in (run.out, run.err, (repo / "pfsync.lock").read_text()):
        assert secret not in text and encoded not in text
    assert len(posts(sandbox)) == 1
    assert lock_ids(repo) == {} and lock_pending(repo) == {}


def test_missing_credentials(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, 1)
    run = run_pfsync(
        "apply",
        "--auto-approve",
        "--new-lockfile",
        cwd=repo,
        env={"PFSYNC_API_URL": "http://127.0.0.1:9"},
    )
    assert (run.code, run.out, run.err) == (
        1,
        "",
        "Error: PFSYNC_USERNAME and PFSYNC_PASSWORD are not set: apply needs the Pocketflows API "
        "credentials in the environment (never in a file or a flag). To try pfsync without "
        "them, use `pfsync apply --sandbox`\n",
    )


def test_uncertain_exits_3_and_is_never_resent(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 2)
    sandbox.script("lose-response", "ok")
    run = run_pfsync(
        "apply",
        "--auto-approve",
        "--new-lockfile",
        "--parallelism",
        "1",
        cwd=repo,
        env=sandbox.environment(),
    )
    assert run.code == 3, run
    assert run.normalised(URL=sandbox.url, T001=lock_ids(repo)[f"{BUSINESS}/t001"]) == (
        3,
        header(1) + create_entry("t000") + create_entry("t001") + summary(create=2),
        f"{BUSINESS}/t000: {LOST}\n"
        f"{BUSINESS}/t001: created <T001>\n"
        "Apply: 1 created, 0 failed, 1 uncertain. Needs a person: 0 update, 0 delete, "
        "1 uncertain.\n",
    )
    pending = lock_pending(repo)
    assert list(pending) == [f"{BUSINESS}/t000"]
    started = pending[f"{BUSINESS}/t000"]
    again = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert again.normalised(
        URL=sandbox.url, KEY=started["idempotency_key"], STARTED=started["started_at"]
    ) == (
        3,
        header(2) + UNCERTAIN_T000 + summary(uncertain=1, unchanged=1),
        "Apply: 0 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "1 uncertain.\n",
    )
    assert len(posts(sandbox)) == 2  # the uncertain one was not sent again
    # Settle it the way a person would: it exists in the listing, so import it.
    stored = [t for t in sandbox.triggers(BUSINESS) if t["name"] == "Trigger t000"]
    assert len(stored) == 1
    imported = run_pfsync(
        "state", "import", f"{BUSINESS}/t000", stored[0]["id"], cwd=repo, env=sandbox.environment()
    )
    assert imported.normalised(T000=stored[0]["id"]) == (
        0,
        f"Imported trigger <T000> as {BUSINESS}/t000 (triggers/t000.yaml:3).\n"
        "The uncertain create of this address is settled.\n",
        "",
    )
    final = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert final.normalised(URL=sandbox.url) == (
        0,
        header(3) + summary(unchanged=2),
        NOTHING_APPLIED,
    )
    assert len(sandbox.triggers(BUSINESS)) == 2


def test_retry_uncertain_with_idempotency_keys_creates_nothing_new(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(idempotency_keys=True)
    repo = make_repo(tmp_path, 1)
    sandbox.script("lose-response")
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=sandbox.environment()
    )
    assert run.normalised(URL=sandbox.url) == (
        3,
        header(1) + create_entry("t000") + summary(create=1),
        f"{BUSINESS}/t000: {LOST}\n"
        "Apply: 0 created, 0 failed, 1 uncertain. Needs a person: 0 update, 0 delete, "
        "1 uncertain.\n",
    )
    key = lock_pending(repo)[f"{BUSINESS}/t000"]["idempotency_key"]
    retry = run_pfsync(
        "apply", "--auto-approve", "--retry-uncertain", cwd=repo, env=sandbox.environment()
    )
    assert retry.code == 0, retry
    # The plan it shows says the uncertain create is sent again, and what that risks.
    assert normalise(retry.out, URL=sandbox.url) == (
        header(2) + f"? {BUSINESS}/t000  uncertain  triggers/t000.yaml:3\n"
        f"    remedy: A create of {BUSINESS}/t000 was started at <TIME> (Idempotency-Key <UUID>) "
        "and its outcome is unknown; --retry-uncertain sends it again now, with the same body "
        "and Idempotency-Key. That is safe only if Pocketflows honours the key (its API "
        "reference does not document it): otherwise it can create a second trigger.\n"
        "\n" + summary(uncertain=1)
    )
    assert normalise(retry.err, T000=lock_ids(repo)[f"{BUSINESS}/t000"]) == (
        f"{BUSINESS}/t000: created <T000>\n"
        "Apply: 1 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n"
    )
    assert len(sandbox.triggers(BUSINESS)) == 1
    assert lock_ids(repo) == {f"{BUSINESS}/t000": sandbox.triggers(BUSINESS)[0]["id"]}
    assert [p["idempotency_key"] for p in posts(sandbox)] == [key, key]


def test_failed_create_exits_1_with_server_message(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(password=NOT_A_WORD)
    repo = make_repo(tmp_path, 1)
    sandbox.script("422")
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=sandbox.environment()
    )
    assert run.normalised(URL=sandbox.url) == (
        1,
        header(1) + create_entry("t000") + summary(create=1),
        f"{BUSINESS}/t000: failed: HTTP 422: Unprocessable Entity (injected by the sandbox): $: "
        "injected validation failure\n"
        "Apply: 0 created, 1 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n",
    )
    assert lock_ids(repo) == {} and lock_pending(repo) == {}
    again = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert again.code == 0, again
    assert again.normalised(URL=sandbox.url, T000=lock_ids(repo)[f"{BUSINESS}/t000"]) == (
        0,
        header(1) + create_entry("t000") + summary(create=1),
        f"{BUSINESS}/t000: created <T000>\n"
        "Apply: 1 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n",
    )
    assert len(sandbox.triggers(BUSINESS)) == 1


def test_replace_creates_a_new_draft_and_keeps_history(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 1)
    assert (
        run_pfsync(
            "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=sandbox.environment()
        ).code
        == 0
    )
    old = lock_ids(repo)[f"{BUSINESS}/t000"]
    (repo / "triggers" / "t000.yaml").write_text(manifest_text("t000", "Renamed", revision=1))
    run = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert run.code == 0, run
    new = lock_ids(repo)[f"{BUSINESS}/t000"]
    assert new != old
    assert run.normalised(URL=sandbox.url, OLD=old, NEW=new) == (
        0,
        header(2) + replace_entry("t000", "Renamed") + summary(replace=1),
        f"{BUSINESS}/t000: {REPLACED}\n"
        "Apply: 1 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n",
    )
    history = json.loads((repo / "pfsync.lock").read_text())["triggers"][f"{BUSINESS}/t000"][
        "history"
    ]
    assert [h["id"] for h in history] == [old]


def test_verbose_shows_retries(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(password=NOT_A_WORD)
    repo = make_repo(tmp_path, 1)
    sandbox.script("503-retry-after", "ok")
    args = ("apply", "--auto-approve", "--new-lockfile")
    run = run_pfsync("-v", *args, cwd=repo, env=sandbox.environment())
    assert run.code == 0, run
    delay = re.search(r"; retrying in (\S+) s ", run.err)
    assert delay and 1.0 <= float(delay[1]) <= 1.5, run  # Retry-After: 1, plus up to 0.5 s
    assert run.normalised(URL=sandbox.url, T000=lock_ids(repo)[f"{BUSINESS}/t000"]) == (
        0,
        header(1) + create_entry("t000") + summary(create=1),
        f"{BUSINESS}/t000: HTTP 503: Service Unavailable (injected by the sandbox); retrying in "
        "<SECONDS> s (attempt 2 of 6, same Idempotency-Key)\n"
        f"{BUSINESS}/t000: created <T000>\n"
        "Apply: 1 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n",
    )
    # Without -v the retry is not shown. The Retry-After is honoured above; this sandbox names
    # 0 s, so that this retry goes at once.
    quiet_sandbox = make_sandbox(password=NOT_A_WORD, retry_after_seconds=0)
    quiet_repo = make_repo(tmp_path / "quiet", 1)
    quiet_sandbox.script("503-retry-after", "ok")
    quiet = run_pfsync(*args, cwd=quiet_repo, env=quiet_sandbox.environment())
    assert quiet.code == 0, quiet
    assert [r["method"] for r in quiet_sandbox.requests()] == ["POST", "POST"]
    t000 = lock_ids(quiet_repo)[f"{BUSINESS}/t000"]
    assert quiet.normalised(URL=quiet_sandbox.url, T000=t000) == (
        0,
        header(1) + create_entry("t000") + summary(create=1),
        f"{BUSINESS}/t000: created <T000>\n"
        "Apply: 1 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n",
    )


def test_confirm_prompt_says_how_many_creates_are_sent_and_where() -> None:
    from pfsync.apply.applier import ApplyItem
    from pfsync.cli.apply import confirm_prompt
    from pfsync.models import DesiredTrigger

    def item(replaces: str | None = None, key: str | None = None) -> ApplyItem:
        return ApplyItem(DesiredTrigger("a", "b", {}, "d", 0, "f.yaml", 0, replaces), key)

    assert confirm_prompt([item()], sandbox=False) == "Send 1 create to Pocketflows?"
    three = [item(), item("trg_old"), item()]
    assert confirm_prompt(three, sandbox=False) == "Send 3 creates to Pocketflows (1 replace)?"
    resent = [item("trg_old"), item(key="k")]
    assert confirm_prompt(resent, sandbox=True) == (
        "Send 2 creates to the sandbox (1 replace, 1 re-sent)?"
    )
    # Only declarations: the record of which environment changes, and that nothing is sent.
    assert confirm_prompt([], sandbox=False, environment="production") == (
        "Carry out the declarations above in the record of environment production (nothing is "
        "sent to Pocketflows)?"
    )
    assert confirm_prompt([], sandbox=True) == (
        "Carry out the declarations above in the record (nothing is sent to the sandbox)?"
    )


def answer_on_a_terminal(args: list[str], cwd: Path, answer: str) -> tuple[int, str]:
    """Run `pfsync ARGS` on a pseudo-terminal, type `answer` at its prompt: (exit code, output)."""
    import os
    import pty
    import select
    import subprocess
    import time

    from conftest import clean_env, pfsync_executable

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [pfsync_executable(), *args],
        cwd=cwd,
        env=clean_env({"NO_COLOR": "1"}),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    output = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if not answered and b"[y/N]" in output:
                os.write(leader, answer.encode() + b"\n")
                answered = True
            if process.poll() is not None and not ready:
                break
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return code, output.decode().replace("\r\n", "\n")


def test_the_terminal_prompt_counts_the_creates_a_yes_sends(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, 2)
    plan = (
        "Sandbox: in-process Pocketflows API at <URL>\n"
        f"Business: {BUSINESS}\n"
        "API: sandbox:.pfsync\n"
        "Lockfile: .pfsync/pfsync.lock (serial 1)\n"
        "\n" + create_entry("t000") + create_entry("t001") + summary(create=2)
    )
    code, output = answer_on_a_terminal(["apply", "--sandbox"], repo, "n")
    assert (code, normalise(output, URL=LOOPBACK_URL)) == (
        1,
        plan + "Send 2 creates to the sandbox? [y/N]: n\nApply cancelled; nothing was sent.\n",
    )
    code, output = answer_on_a_terminal(["apply", "--sandbox"], repo, "y")
    assert code == 0, output
    first = lock_ids(repo / ".pfsync")
    ids = {"T000": first[f"{BUSINESS}/t000"], "T001": first[f"{BUSINESS}/t001"]}
    assert (code, in_address_order(normalise(output, URL=LOOPBACK_URL, **ids))) == (
        0,
        plan + "Send 2 creates to the sandbox? [y/N]: y\n"
        f"{BUSINESS}/t000: created <T000>\n"
        f"{BUSINESS}/t001: created <T001>\n"
        "Apply: 2 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n",
    )
    (repo / "triggers" / "t000.yaml").write_text(manifest_text("t000", revision=1))
    (repo / "triggers" / "t002.yaml").write_text(manifest_text("t002"))
    code, output = answer_on_a_terminal(["apply", "--sandbox"], repo, "y")
    assert code == 0, output
    second = lock_ids(repo / ".pfsync")
    known = {
        "OLD": ids["T000"],
        "NEW": second[f"{BUSINESS}/t000"],
        "T002": second[f"{BUSINESS}/t002"],
    }
    assert (code, in_address_order(normalise(output, URL=LOOPBACK_URL, **known))) == (
        0,
        "Sandbox: in-process Pocketflows API at <URL>\n"
        f"Business: {BUSINESS}\n"
        "API: sandbox:.pfsync\n"
        "Lockfile: .pfsync/pfsync.lock (serial 2)\n"
        "\n"
        + replace_entry("t000", "Trigger t000")
        + create_entry("t002")
        + summary(create=1, replace=1, unchanged=1)
        + "Send 2 creates to the sandbox (1 replace)? [y/N]: y\n"
        f"{BUSINESS}/t000: {REPLACED}\n"
        f"{BUSINESS}/t002: created <T002>\n"
        "Apply: 2 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n",
    )
