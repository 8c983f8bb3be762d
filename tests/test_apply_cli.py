"""`pfsync apply` end to end: the installed CLI against the real sandbox over loopback."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from apply_helpers import BUSINESS, lock_ids, lock_pending, make_repo, manifest_text
from conftest import RunPfsync
from fixtures_sandbox import MakeSandbox


def posts(sandbox: object) -> list[dict[str, object]]:
    return [r for r in sandbox.requests() if r["method"] == "POST"]  # type: ignore[attr-defined]


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
    lines = run.err.splitlines()
    assert sorted(lines[:3]) == [
        f"{BUSINESS}/t{n:03d}: created {ids[f'{BUSINESS}/t{n:03d}']}" for n in range(3)
    ]
    assert lines[3:] == [
        "Apply: 3 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, 0 uncertain."
    ]
    assert "Plan: 3 to create" in run.out
    before = (repo / "pfsync.lock").read_bytes()
    assert not (repo / "pfsync.lock.journal").exists()

    again = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert again.code == 0, again
    assert again.err == (
        "Apply: 0 created, 0 failed, 0 uncertain. "
        "Needs a person: 0 update, 0 delete, 0 uncertain.\n"
    )
    assert (repo / "pfsync.lock").read_bytes() == before
    assert len(posts(sandbox)) == 3


def test_refuses_without_lockfile(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 1)
    run = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert run.code == 1
    assert run.out == ""
    assert "there is no lockfile at" in run.err and "restore it from git" in run.err
    assert "--new-lockfile" in run.err
    assert posts(sandbox) == [] and not (repo / "pfsync.lock").exists()


def test_non_interactive_needs_auto_approve(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 1)
    run = run_pfsync("apply", "--new-lockfile", cwd=repo, env=sandbox.environment())
    assert (run.code, run.out) == (1, "")
    assert run.err == (
        "Error: apply needs confirmation, and this is not an interactive terminal: run "
        "`pfsync plan`, review it, then `pfsync apply --auto-approve` (or apply a saved plan). "
        "Nothing was sent.\n"
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
    assert run.code == 1
    assert f"describes the API {first.url}, but the configured API URL is {second.url}" in run.err
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
    assert run.code == 1, run
    assert "the API refused the credentials" in run.err
    assert "check PFSYNC_USERNAME and PFSYNC_PASSWORD" in run.err
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
    assert run.code == 1
    assert run.err.startswith("Error: PFSYNC_USERNAME and PFSYNC_PASSWORD are not set")


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
    assert f"{BUSINESS}/t000: uncertain: connection lost after sending" in run.err
    assert run.err.endswith(
        "Apply: 1 created, 0 failed, 1 uncertain. "
        "Needs a person: 0 update, 0 delete, 1 uncertain.\n"
    )
    assert list(lock_pending(repo)) == [f"{BUSINESS}/t000"]
    again = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert again.code == 3, again
    assert len(posts(sandbox)) == 2  # the uncertain one was not sent again
    # Settle it the way a person would: it exists in the listing, so import it.
    stored = [t for t in sandbox.triggers(BUSINESS) if t["name"] == "Trigger t000"]
    assert len(stored) == 1
    imported = run_pfsync(
        "state", "import", f"{BUSINESS}/t000", stored[0]["id"], cwd=repo, env=sandbox.environment()
    )
    assert imported.code == 0, imported
    final = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert final.code == 0, final
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
    assert run.code == 3, run
    key = lock_pending(repo)[f"{BUSINESS}/t000"]["idempotency_key"]
    retry = run_pfsync(
        "apply", "--auto-approve", "--retry-uncertain", cwd=repo, env=sandbox.environment()
    )
    assert retry.code == 0, retry
    assert len(sandbox.triggers(BUSINESS)) == 1
    assert lock_ids(repo) == {f"{BUSINESS}/t000": sandbox.triggers(BUSINESS)[0]["id"]}
    assert [p["idempotency_key"] for p in posts(sandbox)] == [key, key]


def test_failed_create_exits_1_with_server_message(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 1)
    sandbox.script("422")
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=sandbox.environment()
    )
    assert run.code == 1, run
    assert f"{BUSINESS}/t000: failed: HTTP 422: " in run.err
    assert lock_ids(repo) == {} and lock_pending(repo) == {}
    again = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert again.code == 0 and len(sandbox.triggers(BUSINESS)) == 1


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
    assert (
        f"(replaces {old}, which stays active in Pocketflows until a person deactivates it)"
        in run.err
    )
    history = json.loads((repo / "pfsync.lock").read_text())["triggers"][f"{BUSINESS}/t000"][
        "history"
    ]
    assert [h["id"] for h in history] == [old]


def test_verbose_shows_retries(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    repo = make_repo(tmp_path, 1)
    sandbox.script("503-retry-after", "ok")
    args = ("apply", "--auto-approve", "--new-lockfile")
    run = run_pfsync("-v", *args, cwd=repo, env=sandbox.environment())
    assert run.code == 0, run
    lines = run.err.splitlines()
    assert lines[0].startswith(f"{BUSINESS}/t000: HTTP 503: ")
    assert "; retrying in 1." in lines[0]
    assert lines[0].endswith("s (attempt 2 of 6, same Idempotency-Key)")
    assert lines[1].startswith(f"{BUSINESS}/t000: created trg_")
    sandbox.script("503-retry-after", "ok")
    (repo / "triggers" / "t001.yaml").write_text(manifest_text("t001"))
    quiet = run_pfsync("apply", "--auto-approve", cwd=repo, env=sandbox.environment())
    assert quiet.code == 0 and "retrying" not in quiet.err


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
    code, output = answer_on_a_terminal(["apply", "--sandbox"], repo, "n")
    assert code == 1, output
    assert "Send 2 creates to the sandbox? [y/N]: n\n" in output
    assert "Apply cancelled; nothing was sent." in output
    assert "created" not in output
    first, _ = answer_on_a_terminal(["apply", "--sandbox"], repo, "y")
    assert first == 0
    (repo / "triggers" / "t000.yaml").write_text(manifest_text("t000", revision=1))
    (repo / "triggers" / "t002.yaml").write_text(manifest_text("t002"))
    code, output = answer_on_a_terminal(["apply", "--sandbox"], repo, "y")
    assert code == 0, output
    assert "Send 2 creates to the sandbox (1 replace)? [y/N]: y\n" in output
    assert "Apply: 2 created, 0 failed" in output
