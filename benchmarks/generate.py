"""Realistic pfsync manifests for the benchmarks, the same shape as `examples/triggers`.

Deterministic (seeded): every run of the benchmark measures the same files. Field sizes vary as
in real repositories: short and long names, optional filters, metadata mappings, one to five
steps, excluded-customer lists from empty to a few dozen ids, a second business for some.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

EVENTS = (
    "pde_signup",
    "pde_cart_abandoned",
    "pde_order_shipped",
    "pde_newsletter_signup",
    "pde_inactive_90d",
    "pde_birthday",
    "pde_tier_changed",
    "pde_review_requested",
)
WORDS = [
    "welcome",
    "series",
    "cart",
    "reminder",
    "delivery",
    "update",
    "newsletter",
    "opt-in",
    "win",
    "back",
    "birthday",
    "greeting",
    "VIP",
    "tier",
    "reached",
    "loyalty",
    "points",
    "expiring",
    "review",
    "request",
    "survey",
    "follow-up",
    "onboarding",
    "day",
    "trial",
    "ending",
    "upgrade",
    "offer",
    "seasonal",
    "campaign",
    "restock",
    "alert",
    "price",
    "drop",
    "referral",
    "bonus",
]
HEADER = "# yaml-language-server: $schema=../../schemas/manifest.schema.json\n"
BUSINESS = "biz_bench"


def _quote(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid double-quoted YAML scalar


def manifest_text(rng: random.Random, index: int, prefix: str = "t") -> str:
    """One manifest document (YAML text), varied in size and in the fields it uses."""
    key = f"{prefix}-{index:05d}-" + "-".join(rng.sample(WORDS, rng.randint(1, 3))).lower()
    lines = [HEADER]
    if rng.random() < 0.3:
        lines.append(
            f"# Owner: team-{rng.randint(1, 20)}. Reviewed in PR #{rng.randint(1, 9999)}.\n"
        )
    lines += ["apiVersion: pfsync/v1\n", "kind: Trigger\n", f"key: {key}\n"]
    if rng.random() < 0.1:
        lines.append(f"business: {BUSINESS}_eu\n")
    if rng.random() < 0.05:
        lines.append(f"revision: {rng.randint(0, 3)}\n")
    name = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 12))).capitalize()
    lines += [
        "spec:\n",
        f"  name: {_quote(name)}\n",
        f"  project_defined_event: {rng.choice(EVENTS)}\n",
    ]
    roll = rng.random()
    if roll < 0.4:
        clauses = [
            f"customer.{rng.choice(('country', 'tier', 'locale'))} == '{rng.choice(WORDS)}'"
            for _ in range(rng.randint(1, 4))
        ]
        lines.append(f"  filter: {_quote(' AND '.join(clauses))}\n")
    elif roll < 0.5:
        lines.append("  filter: null\n")
    if rng.random() < 0.3:
        lines.append(f"  attributed_revenue: {rng.randint(0, 100000) / 10}\n")
    if rng.random() < 0.3:
        lines.append("  metadata:\n")
        for n in range(rng.randint(1, 6)):
            lines.append(f"    field_{n}: {_quote(rng.choice(WORDS) * rng.randint(1, 4))}\n")
    lines.append("  steps:\n")
    for n in range(rng.randint(1, 5)):
        if rng.random() < 0.7:
            lines.append("    - type: email\n")
            lines.append(f"      email_template_id: et_{key[:40]}_{n}\n")
            if rng.random() < 0.2:
                lines.append(f"      custom_step_id: cs_gift_{n}\n")
        else:
            lines.append("    - type: custom\n")
            lines.append(f"      custom_step_id: cs_{rng.choice(WORDS)}_{n}\n")
    if rng.random() < 0.7:
        lines.append(f"  email_address: ea_{rng.choice(WORDS)}\n")
    if rng.random() < 0.2:
        lines.append(f"  phone_number: {'null' if rng.random() < 0.5 else 'pn_sender'}\n")
    customers = rng.choice((0, 0, 1, 2, 5, 20, 60))
    if customers:
        ids = ", ".join(f"cus_{rng.randint(1, 10**8)}" for _ in range(customers))
        lines.append(f"  excluded_customers: [{ids}]\n")
    return "".join(lines)


def write_repository(
    root: Path, count: int, *, multi_document: bool, seed: int = 12, split: bool = False
) -> list[Path]:
    """A GitOps repository at `root` declaring `count` triggers; returns its manifest files.

    `multi_document`: about one file in ten holds two to four documents (`---` separated), as
    in `examples/triggers/lifecycle.yaml`; otherwise one document per file (what
    check-jsonschema can read). `split`: the first half of the triggers goes under
    `triggers/a/`, the second under `triggers/b/`, so the first half can be applied alone.
    """
    rng = random.Random(seed)
    (root / "triggers").mkdir(parents=True, exist_ok=True)
    (root / "pfsync.yaml").write_text(
        f"business: {BUSINESS}\n"
        "api_url: http://127.0.0.1:9/\n"  # replaced through PFSYNC_API_URL when applying
        'manifests: ["triggers/**/*.yaml"]\n'
        "lockfile: pfsync.lock\n"
    )
    files = []
    index = 0
    while index < count:
        documents = 1
        if multi_document and rng.random() < 0.1:
            documents = min(rng.randint(2, 4), count - index)
        half = "a" if index < count // 2 else "b"
        folder = root / "triggers" / (half if split else "") / f"team-{index // 500:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        texts = [manifest_text(rng, index + n) for n in range(documents)]
        path = folder / f"trigger-{index:05d}.yaml"
        path.write_text("---\n".join(texts))
        files.append(path)
        index += documents
    return files
