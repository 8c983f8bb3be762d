"""Colour only on a terminal, and never with NO_COLOR or --no-color."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

from apply_helpers import make_repo
from conftest import clean_env, pfsync_executable


def _plan_on_a_tty(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [pfsync_executable(), *args, "plan"],
            cwd=repo,
            env=clean_env(env),
            stdout=follower,
            stderr=subprocess.PIPE,
            timeout=60,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.returncode == 0, proc.stderr
        return b"".join(chunks).decode()
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)


def test_colour_on_a_terminal(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, 1)
    assert "\x1b[" in _plan_on_a_tty(repo)


def test_no_color_environment_on_a_terminal(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, 1)
    output = _plan_on_a_tty(repo, env={"NO_COLOR": "1"})
    assert "Plan: 1 to create" in output
    assert "\x1b" not in output


def test_no_color_flag_on_a_terminal(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, 1)
    output = _plan_on_a_tty(repo, "--no-color")
    assert "Plan: 1 to create" in output
    assert "\x1b" not in output
