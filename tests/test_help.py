"""Every command's --help has a one-line summary and a real example invocation."""

from __future__ import annotations

import pytest

from conftest import RunPfsync

COMMANDS = [
    [],
    ["validate"],
    ["plan"],
    ["apply"],
    ["sandbox"],
    ["sandbox", "list"],
    ["init"],
    ["schema"],
    ["state"],
    ["state", "list"],
    ["state", "show"],
    ["state", "rm"],
    ["state", "mv"],
    ["state", "import"],
    ["state", "unlock"],
    ["state", "push"],
    ["state", "pull"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "pfsync")
def test_help_has_summary_and_example(run_pfsync: RunPfsync, command: list[str]) -> None:
    run = run_pfsync(*command, "--help")
    assert (run.code, run.err) == (0, "")
    lines = run.out.splitlines()
    assert lines[0].startswith("Usage: pfsync")
    assert lines[1] == "" and lines[2].strip()  # the summary
    examples = [line.strip() for line in lines if line.strip().startswith("pfsync ")]
    assert examples, run.out
    assert all(e.split()[1] in {c for cmd in COMMANDS for c in cmd} | {"-C"} for e in examples)
