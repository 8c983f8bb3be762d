"""Helpers for plan and state tests: a tmp GitOps repository with pfsync.yaml and manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pfsync.models import DesiredTrigger
from pfsync.state.lockfile import Lockfile
from pfsync.state.trigger_records import TriggerRecord
from pfsync.support.canonical import body_digest

LINEAGE = "0f0e0d0c-0b0a-4908-8706-050403020100"
API_URL = "https://api.pocketflows.com"


def manifest_yaml(
    key: str,
    name: str,
    *,
    revision: int | None = None,
    business: str | None = None,
    event: str = "pde_signup",
) -> str:
    """One manifest document (its `key:` is on line 3)."""
    lines = ["apiVersion: pfsync/v1", "kind: Trigger", f"key: {key}"]
    if business is not None:
        lines.append(f"business: {business}")
    if revision is not None:
        lines.append(f"revision: {revision}")
    lines += [
        "spec:",
        f"  name: {name}",
        f"  project_defined_event: {event}",
        "  steps:",
        "    - type: email",
        "      email_template_id: et_1",
    ]
    return "\n".join(lines) + "\n"


def write_project(root: Path, manifests: dict[str, str], business: str = "biz_1") -> Path:
    """pfsync.yaml and `triggers/<name>` files under `root`; returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pfsync.yaml").write_text(f"business: {business}\n", encoding="utf-8")
    triggers = root / "triggers"
    triggers.mkdir(exist_ok=True)
    for name, text in manifests.items():
        (triggers / name).write_text(text, encoding="utf-8")
    return root


def body(name: str, event: str = "pde_signup") -> dict[str, Any]:
    """The spec `manifest_yaml` declares."""
    return {
        "name": name,
        "project_defined_event": event,
        "steps": [{"type": "email", "email_template_id": "et_1"}],
    }


def manifest(key: str, name: str, revision: int = 0, business: str = "biz_1") -> DesiredTrigger:
    """A validated DesiredTrigger as load_manifests would return it."""
    return DesiredTrigger.declared(business, key, revision, body(name), f"triggers/{key}.yaml", 3)


def record(trigger_id: str | None, name: str, revision: int = 0, key: str = "") -> TriggerRecord:
    """A created trigger record of `body(name)`."""
    spec = body(name)
    return TriggerRecord(
        id=trigger_id,
        origin="created",
        created_at="2026-01-01T00:00:00Z",
        status="draft",
        revision=revision,
        body=spec,
        digest=body_digest(spec),
        file=f"triggers/{key}.yaml" if key else "triggers/x.yaml",
    )


def lockfile(**triggers: TriggerRecord) -> Lockfile:
    """A saved-looking lockfile (serial 3, fixed lineage) with `biz_1/<name>` records."""
    return Lockfile(
        lineage=LINEAGE,
        serial=3,
        api_url=API_URL,
        triggers={f"biz_1/{key.replace('_', '-')}": r for key, r in triggers.items()},
    )


def read_json(path: Path) -> Any:
    """The parsed JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


def init_example_create(business: str) -> str:
    """What a plan shows for the example trigger `pfsync init` writes, a create in `business`."""
    return (
        f"+ {business}/welcome-series  create  triggers/welcome-series.yaml:4\n"
        '      $.spec.name: "Welcome series"\n'
        '      $.spec.project_defined_event: "pde_signup"\n'
        '      $.spec.steps[0].type: "email"\n'
        '      $.spec.steps[0].email_template_id: "et_welcome_1"\n'
        "\n"
        "Plan: 1 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
        "0 unchanged.\n"
    )


DRAFTS = "New triggers start as drafts; a person activates them in Pocketflows."
# The line `plan` adds below the lockfile's in a project outside a git repository (tmp_path).
NOT_A_REPOSITORY = f"Planned from: not a git repository. {DRAFTS}\n"


def update_entry(key: str, trigger_id: str, old: str, new: str, digest: str) -> str:
    """The text plan's entry for a hand-edited name of `biz_1/KEY` (triggers/KEY.yaml:3):
    the diff, the remedy, and the Import to paste that acknowledges the body of `digest`."""
    address = f"biz_1/{key}"
    return (
        f"~ {address}  update  triggers/{key}.yaml:3  (trigger {trigger_id})\n"
        f'      $.spec.name: "{old}" → "{new}"\n'
        "    remedy: Pocketflows has no update endpoint, so pfsync cannot change this trigger. "
        "Revert the manifest, or raise `revision` to create a replacement, or edit trigger "
        f"{trigger_id} in Pocketflows by hand and then acknowledge it: paste the Import below "
        f"into a manifest file (or run `pfsync state import {address} {trigger_id} --force`).\n"
        "    paste:\n"
        "---\n"
        "apiVersion: pfsync/v1\n"
        "kind: Import\n"
        f"key: {key}\n"
        f"id: {trigger_id}\n"
        f"acknowledges: {digest}\n"
        "\n"
    )
