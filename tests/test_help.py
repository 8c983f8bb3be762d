"""Every command's --help has a one-line summary and a real example invocation."""

from __future__ import annotations

import pytest

from conftest import RunPfsync

# Command → its usage line, its summary (the first paragraph, unwrapped) and its examples. The
# rest of each screen is click's rendering of the options, which the option tests cover.
HELP = {
    (): (
        "pfsync [OPTIONS] COMMAND [ARGS]...",
        "Keep Pocketflows triggers declared in YAML and make Pocketflows match them.",
        [
            "pfsync validate && pfsync plan && pfsync apply",
            "pfsync -C examples -e staging apply --sandbox --auto-approve",
        ],
    ),
    ("validate",): (
        "pfsync validate [OPTIONS] [PATHS]...",
        "Check manifests (default: the configured ones) without network or credentials.",
        ["pfsync validate", "pfsync validate triggers/welcome.yaml --format github"],
    ),
    ("plan",): (
        "pfsync plan [OPTIONS]",
        "Show what apply would create, and what needs a person (no credentials, no network).",
        [
            "pfsync plan",
            "pfsync plan --format markdown > plan.md",
            "pfsync plan --out plan.json && pfsync apply plan.json",
        ],
    ),
    ("apply",): (
        "pfsync apply [OPTIONS] [PLANFILE]",
        "Create the triggers the plan adds (never a second create for one that may exist).",
        [
            "pfsync apply --sandbox --auto-approve --new-lockfile",
            "pfsync plan --out plan.json && pfsync apply plan.json",
            "PFSYNC_USERNAME=u PFSYNC_PASSWORD=... pfsync apply --auto-approve",
            "pfsync apply --sandbox --auto-approve --sandbox-faults lose-response=0.3,seed=1",
        ],
    ),
    ("sandbox",): (
        "pfsync sandbox [OPTIONS] [COMMAND [ARGS]...]",
        "Serve a local Pocketflows create-trigger API, for trying pfsync and for tests.",
        [
            "pfsync sandbox --port 0",
            "PFSYNC_USERNAME=ops PFSYNC_PASSWORD=... pfsync sandbox --port 8787",
            "pfsync sandbox --latency-ms 50 --rate-limit 100 --seed 1 --data sandbox.json",
            "pfsync sandbox list",
        ],
    ),
    ("sandbox", "list"): (
        "pfsync sandbox list [OPTIONS]",
        "List the triggers the sandbox holds: what you would look up in Pocketflows.",
        [
            "pfsync sandbox list",
            "pfsync sandbox list --format json",
            "pfsync sandbox list --business biz_123",
            "pfsync sandbox list --data sandbox.json",
        ],
    ),
    ("init",): (
        "pfsync init [OPTIONS] [DIRECTORY]",
        "Start a pfsync repository: config, empty lockfile, an example trigger, .gitignore.",
        [
            "pfsync init my-triggers --business biz_123",
            "pfsync init . --ci github",
            "pfsync init my-triggers --env staging --env production",
        ],
    ),
    ("schema",): (
        "pfsync schema [OPTIONS]",
        "Print a JSON Schema (default: the manifest schema, self-contained) for editors and tools.",
        [
            "pfsync schema > manifest.schema.json",
            "pfsync schema --name trigger",
            "pfsync schema --name moved > moved.schema.json",
        ],
    ),
    ("state",): (
        "pfsync state [OPTIONS] COMMAND [ARGS]...",
        "Inspect and repair the lockfile (nothing is sent to Pocketflows).",
        [
            "pfsync state list",
            "pfsync state import biz_123/welcome trg_abc123",
            "pfsync state rm biz_123/old-promo",
            "pfsync state mv biz_123/welcome biz_123/welcome-series",
            "pfsync state rm --sandbox biz_123/old-promo",
        ],
    ),
    ("state", "list"): (
        "pfsync state list [OPTIONS]",
        "List every recorded address: id, origin, revision, file, and any uncertain create.",
        [
            "pfsync state list",
            "pfsync state list --format json",
            "pfsync state list --sandbox",
        ],
    ),
    ("state", "show"): (
        "pfsync state show [OPTIONS] ADDRESS",
        "Show everything the lockfile records for ADDRESS, with its history.",
        ["pfsync state show biz_123/welcome-series"],
    ),
    ("state", "rm"): (
        "pfsync state rm [OPTIONS] ADDRESS...",
        "Forget ADDRESS: its id moves to history; nothing is deleted in Pocketflows.",
        ["pfsync state rm biz_123/old-promo", "pfsync state rm --sandbox biz_123/old-promo"],
    ),
    ("state", "mv"): (
        "pfsync state mv [OPTIONS] OLD NEW",
        "Record that the key of OLD was renamed to NEW (same business only).",
        [
            "pfsync state mv biz_123/welcome biz_123/welcome-series",
            "pfsync state mv --sandbox biz_123/welcome biz_123/welcome-series",
        ],
    ),
    ("state", "import"): (
        "pfsync state import [OPTIONS] (ADDRESS TRIGGER_ID)...",
        "Record an existing trigger TRIGGER_ID for the declared ADDRESS, without any request.",
        [
            "pfsync state import biz_123/welcome-series trg_abc123",
            "pfsync state import biz_123/welcome-series trg_abc123 biz_123/win-back trg_def456",
            "pfsync state import biz_123/welcome-series trg_abc123 --force",
            "pfsync state import --sandbox biz_123/welcome-series trg_abc123",
        ],
    ),
    ("state", "unlock"): (
        "pfsync state unlock [OPTIONS] LOCK_ID",
        "Remove the lock a dead run left in a remote state store (git or s3).",
        ["pfsync state unlock 5f0c6c2e-8d7a-4d0e-9c53-2b1f3f1d9a10"],
    ),
    ("state", "push"): (
        "pfsync state push [OPTIONS]",
        "Copy the local lockfile file into STORE, with its lineage and serial.",
        ["pfsync state push --to git", "pfsync state push --to file:/backup/pfsync.lock"],
    ),
    ("state", "pull"): (
        "pfsync state pull [OPTIONS]",
        "Copy the store's lockfile into the local lockfile file, with its lineage and serial.",
        ["pfsync state pull", "pfsync state pull --from git:origin:main"],
    ),
}
COMMAND_NAMES = {name for command in HELP for name in command}


def outline(text: str) -> tuple[str, str, list[str]]:
    """A help screen's outline: usage, first paragraph (unwrapped) and example lines."""
    usage, blank, *lines = text.splitlines()
    assert blank == "", text
    paragraph = lines[: lines.index("")]
    heading = next(n for n, line in enumerate(lines) if line.strip() in {"Example:", "Examples:"})
    examples = lines[heading + 1 :]
    examples = examples[: examples.index("")]
    return (
        usage.removeprefix("Usage: "),
        " ".join(line.strip() for line in paragraph),
        [line.strip() for line in examples],
    )


@pytest.mark.parametrize("command", HELP, ids=lambda c: " ".join(c) or "pfsync")
def test_help_has_summary_and_example(run_pfsync: RunPfsync, command: tuple[str, ...]) -> None:
    run = run_pfsync(*command, "--help")
    assert (run.code, outline(run.out), run.err) == (0, HELP[command], ""), run
    invocations = [line.strip() for line in run.out.splitlines()]
    invocations = [line for line in invocations if line.startswith("pfsync ")]
    assert invocations, run.out
    assert all(e.split()[1] in COMMAND_NAMES | {"-C"} for e in invocations)
