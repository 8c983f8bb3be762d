"""The git store's small parts: redaction of git's messages, and credentials never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import RunPfsync
from git_helpers import clone, git, make_remote
from pfsync.stores.git import GitResult, redact


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


def test_git_result_message_keeps_the_last_lines_on_one_line() -> None:
    err = "hint: a\nhint: b\n\nremote: token=https://u:SECRET@h/x\n ! [remote rejected] main\n"
    message = GitResult(1, "", err).message
    assert "SECRET" not in message
    assert message == ("hint: a; hint: b; remote: token=https://***@h/x; ! [remote rejected] main")


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
