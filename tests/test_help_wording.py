"""Help texts that say what is true: `--sandbox` with environments, `sandbox --help`'s example
run as written, and what `-v` adds to `plan`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from conftest import LOOPBACK_URL, RunPfsync, clean_env, pfsync_executable

SERVER_EXAMPLE = "pfsync sandbox --port 8787 &"


def option_help(screen: str, option: str) -> str:
    """The text of one option in a --help screen, with its wrapping undone."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(option))
    text = [lines[start].strip()[len(option) :]]
    for line in lines[start + 1 :]:
        if not line.startswith(" " * 10) or line.strip().startswith("-"):
            break
        text.append(line.strip())
    return " ".join(" ".join(text).split())


def test_sandbox_option_of_state_commands_names_the_lockfile_with_and_without_environments(
    run_pfsync: RunPfsync,
) -> None:
    for command in (["state", "list"], ["state", "rm"], ["state", "import"]):
        run = run_pfsync(*command, "--help")
        assert (run.code, run.err) == (0, "")
        assert option_help(run.out, "--sandbox") == (
            "Use sandbox mode's lockfile, as `apply --sandbox` keeps it: .pfsync/pfsync.lock, or "
            ".pfsync/env/NAME/pfsync.lock in environment NAME. The real lockfile is neither "
            "read nor changed."
        )
    group = run_pfsync("state", "--help")
    assert "(.pfsync/pfsync.lock, or .pfsync/env/NAME/pfsync.lock with -e NAME)" in " ".join(
        group.out.split()
    )


def sandbox_examples(screen: str) -> list[str]:
    """The example block that tries the server from a new repository, continuations joined."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == SERVER_EXAMPLE)
    block: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            break
        if block and block[-1].endswith("\\"):
            block[-1] = block[-1][:-1] + line.strip()
        else:
            block.append(line.strip())
    return block


def test_the_sandbox_help_example_runs_as_written(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    # Run where `pfsync init` made a repository (with its placeholder business, environments
    # and lockfile for the real API): the example must not depend on it.
    assert run_pfsync("init", "--env", "staging", "--env", "production", cwd=tmp_path).code == 0
    screen = run_pfsync("sandbox", "--help").out
    server_line, *commands = sandbox_examples(screen)
    assert server_line == SERVER_EXAMPLE and commands, screen
    server = subprocess.Popen(
        [pfsync_executable(), "sandbox", "--port", "0"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()  # its first line, once it listens
        assert LOOPBACK_URL.fullmatch(url), url
        port = url.rsplit(":", 1)[1]
        script = "\n".join(c.replace("8787", port) for c in commands)
        env = clean_env({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
        run = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=30)
    assert run.returncode == 0, run.stderr
    assert re.search(r"^Apply: 1 created, 0 failed", run.stderr, re.M), run.stderr


def test_verbose_plan_names_the_state_it_read_and_what_is_unchanged(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    assert run_pfsync("init", "shop", "--business", "biz_shop", cwd=tmp_path).code == 0
    shop = tmp_path / "shop"
    assert run_pfsync("apply", "--sandbox", "--auto-approve", cwd=shop).code == 0
    quiet = run_pfsync("plan", "--sandbox", cwd=shop)
    verbose = run_pfsync("-v", "plan", "--sandbox", cwd=shop)
    assert verbose.normalised() == (
        0,
        quiet.out,
        "State: .pfsync/pfsync.lock (file store), serial 2, lineage <UUID>\n"
        "Unchanged: biz_shop/welcome-series (triggers/welcome-series.yaml:4)\n",
    )
    fresh = tmp_path / "fresh"
    assert run_pfsync("init", "fresh", "--business", "biz_new", cwd=tmp_path).code == 0
    first = run_pfsync("plan", "-v", cwd=fresh)
    lineage = json.loads((fresh / "pfsync.lock").read_text())["lineage"]
    assert (first.code, first.err) == (
        0,
        f"State: pfsync.lock (file store), serial 1, lineage {lineage}\nUnchanged: none\n",
    )
