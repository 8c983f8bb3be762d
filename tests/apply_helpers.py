"""Helpers for the end-to-end apply tests: a repository of N manifests in a temporary folder."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conftest import clean_env, pfsync_executable

if TYPE_CHECKING:
    from pfsync.sandbox import Sandbox

BUSINESS = "biz_e2e"


def manifest_text(key: str, name: str | None = None, revision: int = 0) -> str:
    """One valid manifest."""
    return (
        "apiVersion: pfsync/v1\n"
        "kind: Trigger\n"
        f"key: {key}\n"
        f"revision: {revision}\n"
        "spec:\n"
        f"  name: {name or 'Trigger ' + key}\n"
        "  project_defined_event: pde_signup\n"
        "  steps:\n"
        "    - type: email\n"
        f"      email_template_id: et_{key}\n"
    )


def create_entry(key: str) -> str:
    """The plan's entry for a create of `manifest_text(key)`."""
    return (
        f"+ {BUSINESS}/{key}  create  triggers/{key}.yaml:3\n"
        f'      $.spec.name: "Trigger {key}"\n'
        '      $.spec.project_defined_event: "pde_signup"\n'
        '      $.spec.steps[0].type: "email"\n'
        f'      $.spec.steps[0].email_template_id: "et_{key}"\n\n'
    )


def plan_of_creates(
    keys: Sequence[str],
    lockfile: str = "pfsync.lock (serial 1)",
    api: str = "<URL>",
    planned_from: str = "",
) -> str:
    """The whole plan text (stdout) for creates of `manifest_text(key)` for each key, as apply
    shows it; `plan` adds its `planned_from` lines below the lockfile's."""
    entries = "".join(create_entry(key) for key in keys)
    return (
        f"Business: {BUSINESS}\nAPI: {api}\nLockfile: {lockfile}\n{planned_from}\n{entries}"
        f"Plan: {len(keys)} to create, 0 to replace. Needs a person: 0 update, 0 delete, "
        "0 uncertain. 0 unchanged.\n"
    )


def store_lost_err(where: str, read_failure: str, write_failure: str) -> str:
    """The whole stderr (normalised: <ID>, <LOCK>) of an apply of one create, `where`, whose
    store failed after the create was sent: the merge's read failed, then the release."""
    return (
        f"{where}: created <ID>\n"
        f"Error: {read_failure}\n"
        f"NOT RECORDED: {where} was created as <ID>; once the disk or state store is fixed run "
        f"`pfsync state import {where} <ID>`\n"
        "Apply: 1 created, 0 failed, 0 uncertain. Needs a person: 0 update, 0 delete, "
        "0 uncertain.\n"
        f"Error: the state lock <LOCK> could not be released ({write_failure}). Once the store "
        "is reachable, and no pfsync run is active, run `pfsync state unlock <LOCK>`\n"
    )


def reading_commands(*keys: str) -> list[list[str]]:
    """Every command that reads the state and shows it: plan in each format, state list in each,
    and state show of each of `keys` (in BUSINESS)."""
    return [
        ["plan"],
        ["plan", "--format", "markdown"],
        ["plan", "--format", "json"],
        ["state", "list"],
        ["state", "list", "--format", "json"],
        *(["state", "show", f"{BUSINESS}/{key}"] for key in keys),
    ]


def make_repo(root: Path, count: int, business: str = BUSINESS) -> Path:
    """`root` with a pfsync.yaml and `count` manifests t000…; returns root."""
    (root / "triggers").mkdir(parents=True, exist_ok=True)
    (root / "pfsync.yaml").write_text(f"business: {business}\n")
    for n in range(count):
        (root / "triggers" / f"t{n:03d}.yaml").write_text(manifest_text(f"t{n:03d}"))
    return root


def lock_ids(root: Path) -> dict[str, Any]:
    """address → id recorded in the lockfile."""
    data = json.loads((root / "pfsync.lock").read_text())
    return {address: record["id"] for address, record in data["triggers"].items()}


def lock_pending(root: Path) -> dict[str, Any]:
    """address → pending record in the lockfile."""
    data: dict[str, Any] = json.loads((root / "pfsync.lock").read_text())["pending"]
    return data


def start_apply(repo: Path, sandbox: Sandbox, *args: str) -> subprocess.Popen[str]:
    """`pfsync apply --auto-approve ARGS` against `sandbox`, running in the background."""
    return subprocess.Popen(
        [pfsync_executable(), "apply", "--auto-approve", *args],
        cwd=repo,
        env=clean_env(sandbox.environment()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen[str], text: str) -> list[str]:
    """The lines `proc` writes on stderr, up to the first that holds `text`."""
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError("".join(lines))


def posts(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The create requests the sandbox received, oldest first."""
    return [r for r in sandbox.requests() if r["method"] == "POST"]


def sandbox_ids(sandbox: Sandbox) -> dict[str, str]:
    """address -> id of every trigger the sandbox holds; AssertionError on a duplicate."""
    ids: dict[str, str] = {}
    for trigger in sandbox.triggers(BUSINESS):
        where = f"{BUSINESS}/{trigger['name'].removeprefix('Trigger ')}"
        assert where not in ids, f"{where} was created twice"
        ids[where] = trigger["id"]
    return ids


def recorded_ids(lockfile: Mapping[str, Any]) -> dict[str, Any]:
    """address -> id of every trigger a lockfile document records."""
    return {where: record["id"] for where, record in lockfile["triggers"].items()}


def describe_lock(lock: Mapping[str, Any]) -> str:
    """A remote store's lock record as pfsync names its holder (with its CI run and job when it
    ran in CI: the suite's own CI sets their variables)."""
    from pfsync.state.ci_job import CiJob

    job = CiJob.from_json(lock["ci_job"]).describe() if lock.get("ci_job") else None
    about = [part for part in (lock["run_url"], job) if part]
    where = f" ({', '.join(about)})" if about else ""
    return (
        f"{lock['operation']} by pid {lock['pid']} on host {lock['host']} since "
        f"{lock['since']}{where}, lock {lock['id']}"
    )


def held_error(store: str, lock: Mapping[str, Any]) -> str:
    """The whole stderr of a command refused because `lock` is held in `store`."""
    return (
        f"Error: the state lock of {store} is held by {describe_lock(lock)}. Wait "
        "for that run to finish, or pass --lock-timeout SECONDS. If that run is dead (its job "
        f"was killed), a person removes its lock with `pfsync state unlock {lock['id']}`; its "
        "pending creates stay uncertain\n"
    )
