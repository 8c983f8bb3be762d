"""The lockfile: deterministic atomic writes, serial, and refusal of anything untrustworthy."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

import pytest
from project_helpers import API_URL, LINEAGE, lockfile, record

from pfsync.errors import LockfileError
from pfsync.models import DesiredTrigger
from pfsync.schemas import LOCKFILE, validator
from pfsync.state.lock_record import StateLockRecord
from pfsync.state.lockfile import Lockfile, belonging, read_lockfile, require_api_url, save_lockfile
from pfsync.state.trigger_records import HistoryEntry, PendingCreate

if TYPE_CHECKING:
    from pfsync.config import Config


def saved(tmp_path: Path) -> tuple[Path, Lockfile]:
    path = tmp_path / "pfsync.lock"
    state = save_lockfile(path, None, lockfile(welcome=record("trg_1", "Welcome", key="welcome")))
    return path, state


def test_new_lockfile_gets_a_lineage_once_and_serial_1(tmp_path: Path) -> None:
    path = tmp_path / "pfsync.lock"
    first = save_lockfile(path, None, Lockfile.new(API_URL))
    assert first.serial == 1
    assert read_lockfile(path) == first
    again = save_lockfile(path, first, replace(first, triggers={"biz_1/a": record("t", "A")}))
    assert (again.lineage, again.serial) == (first.lineage, 2)


def test_file_is_sorted_indented_with_trailing_newline_and_valid(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert validator(LOCKFILE).is_valid(data)
    assert data["serial"] == 1 and data["lineage"] == LINEAGE and data["version"] == 1
    assert data["triggers"]["biz_1/welcome"]["id"] == "trg_1"
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_unchanged_content_leaves_the_file_byte_identical(tmp_path: Path) -> None:
    path, state = saved(tmp_path)
    before = path.read_bytes()
    inode = os.stat(path).st_ino
    result = save_lockfile(path, state, replace(state, triggers=dict(state.triggers)))
    assert result is state
    assert path.read_bytes() == before
    assert os.stat(path).st_ino == inode  # not even rewritten
    assert [p.name for p in tmp_path.iterdir()] == ["pfsync.lock"]  # no temp file left


def corrupt(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda t: t[: len(t) // 2], "is not valid JSON (Expecting"),
        (lambda t: "", "is empty (truncated?)"),
        (lambda t: t.replace('"serial": 1', '"serial": 1,'), "is not valid JSON"),
        (lambda t: "[]\n", "is not a JSON object"),
        (
            lambda t: t.replace('"origin": "created"', '"origin": "typed"'),
            "fails the lockfile schema ($.triggers['biz_1/welcome'].origin: 'typed' is not one "
            "of ['created', 'imported'])",
        ),
        (
            lambda t: t.replace('"name": "Welcome"', '"name": "Welcome!"'),
            "records a body for the trigger biz_1/welcome that does not match its digest "
            "(edited by hand?)",
        ),
        (
            lambda t: t.replace('"serial": 1', '"serial": 1, "serial": 2'),
            "is not valid JSON (the key 'serial' appears twice in one object)",
        ),
        (lambda t: t.replace('"serial": 1', '"serial": NaN'), "is not valid JSON (NaN is not"),
    ],
)
def test_untrustworthy_lockfile_is_refused_with_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mangle: object, problem: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path, _ = saved(tmp_path)
    assert callable(mangle)
    corrupt(path, mangle(path.read_text(encoding="utf-8")))
    with pytest.raises(LockfileError) as info:
        read_lockfile(path)
    message = str(info.value)
    assert message.startswith("the lockfile pfsync.lock ")
    assert problem in message
    assert message.endswith(
        "pfsync never overwrites a lockfile it cannot trust: restore it from git "
        "(git checkout -- pfsync.lock) or repair it, then run again"
    )


def test_newer_version_asks_for_an_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path, _ = saved(tmp_path)
    corrupt(path, path.read_text(encoding="utf-8").replace('"version": 1', '"version": 2'))
    with pytest.raises(LockfileError) as info:
        read_lockfile(path)
    assert str(info.value) == (
        "the lockfile pfsync.lock has format version 2, written by a newer pfsync; this pfsync "
        "reads version 1. Upgrade pfsync (the file is left untouched)"
    )


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pfsync.lock"
    path.write_bytes(b'{"version": 1, "x": "\xff"}')
    with pytest.raises(LockfileError, match=r"is not UTF-8 \(byte 21\)"):
        read_lockfile(path)


def test_missing_lockfile_reads_as_none(tmp_path: Path) -> None:
    assert read_lockfile(tmp_path / "pfsync.lock") is None


def test_only_an_empty_lockfile_takes_another_configured_api_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `init` writes records no id of any API: it takes the configured URL. Anything
    # recorded (a trigger, a pending create, forgotten history, a lock) keeps it pinned.
    monkeypatch.chdir(tmp_path)
    other = "http://127.0.0.1:8787"
    config = cast("Config", SimpleNamespace(api_url=other, environment=None, lockfile=tmp_path))
    empty = Lockfile.new(API_URL)
    assert belonging(empty, config) == replace(empty, api_url=other)
    assert belonging(None, config) is None
    entry = HistoryEntry(
        id="trg_1", at="2026-01-01T00:00:00Z", reason="removed", origin="created", revision=0
    )
    lock = StateLockRecord(
        id="l1", host="h", pid=1, run_url=None, since="2026-01-01T00:00:00Z", operation="apply"
    )
    pending = PendingCreate(
        trigger=DesiredTrigger("biz_1", "welcome", {}, "", 0, "t.yaml"),
        idempotency_key="k",
        started_at="2026-01-01T00:00:00Z",
        reason="create",
    )
    for recorded in (
        lockfile(welcome=record("trg_1", "Welcome", key="welcome")),
        replace(empty, pending={"biz_1/welcome": pending}),
        replace(empty, forgotten={"biz_1/old": (entry,)}),
        replace(empty, lock=lock),
    ):
        with pytest.raises(LockfileError, match="describes the API"):
            belonging(recorded, config)


def test_api_url_mismatch_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path, state = saved(tmp_path)
    require_api_url(state, API_URL + "/", path)  # a trailing slash is the same API
    require_api_url(None, "http://127.0.0.1:1", path)
    with pytest.raises(LockfileError) as info:
        require_api_url(state, "http://127.0.0.1:8787", path)
    assert str(info.value) == (
        "the lockfile pfsync.lock describes the API https://api.pocketflows.com, but the "
        "configured API URL is http://127.0.0.1:8787 (PFSYNC_API_URL or api_url in "
        "pfsync.yaml). Use one lockfile per API: for another API (a staging business, a local "
        "sandbox), add an environment to pfsync.yaml with its own `api_url:` and "
        "`lockfile:`, "
        "and choose it with -e NAME"
    )


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, state = saved(tmp_path)
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(LockfileError, match="No space left on device; it was not changed"):
        save_lockfile(path, state, replace(state, triggers={}))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["pfsync.lock"]
