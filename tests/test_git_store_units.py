"""The git store's small parts: redaction of git's messages, and credentials never shown."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from apply_helpers import BUSINESS
from conftest import RunPfsync, clean_env, pfsync_executable
from fixtures_background import wait_until
from fixtures_sandbox import MakeSandbox
from git_helpers import (
    clone,
    echoing_remote,
    git,
    make_remote,
    planned_from,
    remote_lockfile,
    stale_warning,
)
from pfsync.state.stores.git_runner import Git, GitResult, configured_credentials, redact


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            "fatal: unable to access 'https://x-access-token:ghs_SECRET@github.com/o/r.git/'",
            "fatal: unable to access 'https://***@github.com/o/r.git/'",
        ),
        ("To http://oauth2:glpat-SECRET@gitlab.test/o/r.git", "To http://***@gitlab.test/o/r.git"),
        ("ssh://git@example.test/r.git", "ssh://***@example.test/r.git"),
        ("remote: \x1b]0;owned\x07 hello", "remote: \\x1b]0;owned\\x07 hello"),
        ("plain message", "plain message"),
    ],
)
def test_redact(raw: str, shown: str) -> None:
    assert redact(raw) == shown


def test_git_result_message_keeps_the_last_lines_on_one_line(tmp_path: Path) -> None:
    err = "hint: a\nhint: b\n\nremote: token=https://u:SECRET@h/x\n ! [remote rejected] main\n"
    message = Git(tmp_path).failure(GitResult(1, "", err))
    assert "SECRET" not in message
    assert message == ("hint: a; hint: b; remote: token=https://***@h/x; ! [remote rejected] main")


def test_every_credential_the_git_configuration_holds_is_found(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    header = base64.b64encode(b"x-access-token:ghs_HeaderToken1").decode()
    for key, value in [
        ("remote.origin.url", "https://ci:tok%2Fen-one@git.test/r.git"),
        ("remote.origin.pushurl", "https://pusher:push-token-2@git.test/r.git"),
        ("remote.mirror.url", "ssh://git@git.test/r.git"),  # a user name alone: not a secret
        ("url.https://oauth2:rewrite-token-3@git.test/.insteadOf", "https://git.test/"),
        ("http.https://git.test/.extraheader", f"AUTHORIZATION: basic {header}"),
        ("http.extraHeader", "Authorization: Bearer bearer-token-4"),
    ]:
        git(tmp_path, "config", "--add", key, value)
    found = Git(tmp_path).credentials
    said = (
        "tok%2Fen-one tok/en-one push-token-2 rewrite-token-3 ghs_HeaderToken1 bearer-token-4 "
        f"{header} oauth2:rewrite-token-3 ci pusher oauth2 x-access-token git"
    )
    assert found.redact(said) == " ".join(["***"] * 12 + ["git"])
    assert configured_credentials("") == []


def test_a_remote_url_with_a_token_is_never_printed(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    remote = make_remote(tmp_path, 1)
    runner = clone(remote, tmp_path / "runner")
    git(runner, "fetch", "--quiet", "origin")  # a last fetched copy for plan to fall back on
    git(runner, "remote", "set-url", "origin", "http://user:s3cr3t-token@127.0.0.1:9/x.git")
    env = {"PFSYNC_USERNAME": "u", "PFSYNC_PASSWORD": "p", "PFSYNC_API_URL": "http://127.0.0.1:9"}
    plan = run_pfsync("plan", cwd=runner, env=env)
    apply = run_pfsync("apply", "--auto-approve", "--new-lockfile", cwd=runner, env=env)
    assert plan.code == 0, plan
    assert plan.err.startswith("Warning: cannot fetch origin/main: ")
    assert apply.code == 1, apply
    assert apply.err.startswith("Error: cannot fetch origin/main: ")
    for run in (plan, apply):
        assert "s3cr3t-token" not in run.out + run.err


def test_a_remote_that_echoes_the_credentials_is_never_printed(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    """git prints a remote's `ERR` line as it is: the credentials of the remote's URL, plain and
    in Base64, are redacted from it (only git's own rewriting of the URL was before)."""
    remote = make_remote(tmp_path, 1)
    runner = clone(remote, tmp_path / "runner")
    user, token = "ci", "ghp_Echo7Token9"
    pair = f"{user}:{token}"
    basic = base64.b64encode(pair.encode()).decode()
    env = {"PFSYNC_USERNAME": "u", "PFSYNC_PASSWORD": "p", "PFSYNC_API_URL": "http://127.0.0.1:9"}
    with echoing_remote() as url:
        git(runner, "remote", "set-url", "origin", url.replace("http://", f"http://{pair}@"))
        plan = run_pfsync("plan", cwd=runner, env=env)
        apply = run_pfsync("apply", "--auto-approve", "--new-lockfile", cwd=runner, env=env)
    said = "fatal: remote error: denied for *** (Basic ***); user ***"
    assert (plan.code, plan.out, plan.err) == (
        0,
        f"Business: {BUSINESS}\n"
        "API: http://127.0.0.1:9\n"
        "Lockfile: pfsync.lock on origin/main does not exist yet: every declared trigger is a "
        "create.\n"
        + planned_from(runner)
        + stale_warning(
            f"cannot fetch origin/main: {said}; using the lockfile of the last fetched "
            "origin/main, which may be out of date"
        )
        + "\n"
        f"+ {BUSINESS}/t000  create  triggers/t000.yaml:3\n"
        '      $.spec.name: "Trigger t000"\n'
        '      $.spec.project_defined_event: "pde_signup"\n'
        '      $.spec.steps[0].type: "email"\n'
        '      $.spec.steps[0].email_template_id: "et_t000"\n'
        "\n"
        "Plan: 1 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "0 unchanged.\n",
        f"Warning: cannot fetch origin/main: {said}; using the lockfile of the last fetched "
        "origin/main, which may be out of date\n",
    ), plan
    assert (apply.code, apply.out, apply.err) == (
        1,
        "",
        f"Error: cannot fetch origin/main: {said}\n",
    ), apply
    for form in (token, pair, basic, basic.rstrip("=")):
        assert form not in plan.out + plan.err + apply.out + apply.err


def test_ctrl_c_to_the_whole_process_group_still_records_everything(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    """A terminal's Ctrl-C reaches every process of its group: git's pushes must survive it."""
    sandbox = make_sandbox(latency_ms=100)
    remote = make_remote(tmp_path, 30, state="{store: git, intent_batch: 4}")
    runner = clone(remote, tmp_path / "runner")
    # While `hold` exists, a push waits in the remote's hook (having said so in `holding`): the
    # Ctrl-C then lands during a push for sure.
    hold, holding = tmp_path / "hold", tmp_path / "holding"
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        f"#!/bin/sh\nif [ -e '{hold}' ]; then\n  touch '{holding}'\n"
        f"  while [ -e '{hold}' ]; do sleep 0.01; done\nfi\n"
    )
    hook.chmod(0o755)
    proc = subprocess.Popen(
        [pfsync_executable(), "apply", "--auto-approve", "--new-lockfile", "--parallelism", "2"],
        cwd=runner,
        env=clean_env(sandbox.environment()),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    wait_until(lambda: len(sandbox.triggers(BUSINESS)) >= 3, "three creates")
    hold.touch()
    wait_until(holding.exists, "a push of the run to reach the remote")
    os.killpg(proc.pid, signal.SIGINT)
    hold.unlink()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Error" not in err, err  # no push was cut short by the signal
    lockfile = remote_lockfile(remote)
    assert lockfile is not None and "lock" not in lockfile, err
    recorded = {r["id"] for r in lockfile["triggers"].values()}
    assert recorded == {t["id"] for t in sandbox.triggers(BUSINESS)}
    assert lockfile["pending"] == {}
    plan = run_pfsync("plan", "--format", "json", cwd=runner, env={"PFSYNC_API_URL": sandbox.url})
    actions = {e["action"] for e in json.loads(plan.out)["entries"]}
    assert actions <= {"create", "no-op"}


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_at_the_prompt_releases_the_remote_lock(
    make_sandbox: MakeSandbox, tmp_path: Path, signum: int, code: int
) -> None:
    """A CI cancel (SIGTERM) or a closed terminal (SIGHUP) while the lock is held, before any
    create is sent, must not leave the lock for a person to remove."""
    import pty
    import select

    sandbox = make_sandbox()
    remote = make_remote(tmp_path, 2)
    runner = clone(remote, tmp_path / "runner")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [pfsync_executable(), "apply", "--new-lockfile"],
        cwd=runner,
        env=clean_env({**sandbox.environment(), "NO_COLOR": "1"}),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    output = b""
    try:
        for _ in range(600):
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    output += os.read(leader, 4096)
                except OSError:
                    break
            if b"[y/N]" in output:
                break
        assert b"[y/N]" in output, output
        held = remote_lockfile(remote)
        assert held is not None and held["lock"]["pid"] == proc.pid  # the lock is held
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == code
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    released = remote_lockfile(remote)
    assert released is not None and "lock" not in released
    assert sandbox.triggers(BUSINESS) == []  # nothing was sent


def test_a_damaged_lockfile_on_the_branch_is_restored_from_the_branch_history(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    # The advice names the store in use: the branch's history, not `git checkout` of a path
    # that is not in the work tree's branch.
    remote = make_remote(tmp_path, 1)
    seed = clone(remote, tmp_path / "damager")
    (seed / "pfsync.lock").write_text('{"version": 1}\n')
    git(seed, "add", "pfsync.lock")
    git(seed, "commit", "--quiet", "-m", "a damaged lockfile")
    git(seed, "push", "--quiet", "origin", "main")
    runner = clone(remote, tmp_path / "runner")
    plan = run_pfsync("plan", cwd=runner)
    assert plan.code == 1, plan
    assert plan.out == ""
    assert plan.err.startswith("Error: the lockfile pfsync.lock on origin/main fails the lockfile ")
    assert plan.err.endswith(
        ". pfsync never overwrites a lockfile it cannot trust: restore it on origin/main from an "
        "earlier commit (git log origin/main -- :/pfsync.lock) or repair it, then run again\n"
    )
