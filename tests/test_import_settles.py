"""`state import` settling an uncertain create: the record keeps the manifest document the create
was sent from when the body found is the one sent, so `--after` promotes it like any create
(the printed remedy after a killed apply left every recovered trigger held back from production
for good: "recorded without the manifest version it came from")."""

from __future__ import annotations

from dataclasses import replace

from project_helpers import lockfile, manifest

from pfsync.models import DesiredTrigger
from pfsync.state.changes import record_import
from pfsync.state.trigger_records import PendingCreate

AT = "2026-02-01T00:00:00Z"


def sent(name: str) -> DesiredTrigger:
    return replace(manifest("alpha", name), document_digest="sha256:doc-alpha")


def settled(sent_name: str, found_name: str) -> str | None:
    pending = PendingCreate(sent(sent_name), "intent-1", AT, "HTTP 504")
    before = replace(lockfile(), pending={"biz_1/alpha": pending})
    found = manifest("alpha", found_name)
    after = record_import(before, "biz_1/alpha", "trg_1", found.body, 0, found.file, AT, False)
    assert after.pending == {}
    return after.triggers["biz_1/alpha"].document_digest


def test_the_create_that_was_sent_keeps_its_manifest_document() -> None:
    assert settled("Alpha", "Alpha") == "sha256:doc-alpha"


def test_another_body_is_not_what_was_sent() -> None:
    assert settled("Alpha", "Alpha edited") is None


def test_an_import_without_a_pending_create_names_no_document() -> None:
    found = manifest("alpha", "Alpha")
    after = record_import(lockfile(), "biz_1/alpha", "trg_1", found.body, 0, found.file, AT, False)
    assert after.triggers["biz_1/alpha"].document_digest is None
