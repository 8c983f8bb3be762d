"""The manifest cache `.pfsync/cache/` makes runs faster and never changes an answer.

The property test edits a repository at random (change, rename, delete, a duplicate address,
a touch without change, a syntax error, other values or another environment) and after every
edit compares validate and plan with the cache against the same commands without it, byte for
byte. The unit tests cover the cases a random walk meets rarely: a change within one mtime
tick, a corrupt or tampered cache, two processes writing it at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import marshal
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import RunPfsync, clean_env, pfsync_executable, run_in_process, run_pfsync_anyhow
from pfsync.config import load_config
from pfsync.manifests.cache import ManifestCache, cache_dir
from pfsync.manifests.load import load_manifests
from pfsync.manifests.results import Declaring
from pfsync.manifests.seal import seal

CONFIG = """\
business: biz_1
values: {template: et_a}
environments:
  staging: {lockfile: staging.lock, values: {sender: ea_stg}}
  production: {business: biz_2, lockfile: production.lock, values: {sender: ea_prd}}
"""


def manifest(key: str, name: str, template: str = "${values.template}") -> str:
    return (
        "apiVersion: pfsync/v1\nkind: Trigger\n"
        f"key: {key}\nspec:\n  name: {json.dumps(name)}\n  project_defined_event: pde_x\n"
        f"  steps:\n    - type: email\n      email_template_id: {template}\n"
        "  email_address: ${values.sender}\n"
    )


def repository(root: Path, count: int = 5) -> Path:
    (root / "triggers").mkdir(parents=True)
    (root / "pfsync.yaml").write_text(CONFIG)
    for n in range(count):
        (root / "triggers" / f"t{n}.yaml").write_text(manifest(f"t{n}", f"Trigger {n}"))
    return root


def outputs(root: Path, *argv: str) -> tuple[tuple[int, str], tuple[int, str]]:
    """`pfsync ARGV` with the cache (twice: building it, then reusing it) and without it."""
    cached = run_in_process(list(argv), root)
    again = run_in_process(list(argv), root)
    assert again == cached, argv
    return cached, run_in_process(["--no-cache", *argv], root)


EDIT_KINDS = [
    "change",
    "same-size-change",
    "rename",
    "delete",
    "add",
    "duplicate",
    "touch",
    "break",
    "values",
    "environment-business",
]


def edit_and_compare(root: Path, edits: list[tuple[str, int]]) -> None:
    """Make each edit, then compare validate and plan with and without the cache."""
    counter = 100
    for edit, pick in edits:
        files = sorted((root / "triggers").glob("*.yaml"))
        target = files[pick % len(files)] if files else None
        counter += 1
        if edit == "change" and target:
            target.write_text(manifest(target.stem, f"Changed {counter}"))
        elif edit == "same-size-change" and target:
            # Same size, same mtime: only the bytes tell (the cache was written just now).
            text, stat = target.read_text(), target.stat()
            target.write_text(text.replace('"Trigger', '"Tr1gger').replace('"Chang', '"Ch4ng'))
            os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        elif edit == "rename" and target:
            target.rename(target.with_name(f"renamed{counter}.yaml"))
        elif edit == "delete" and target:
            target.unlink()
        elif edit == "add":
            (root / "triggers" / f"n{counter}.yaml").write_text(manifest(f"n{counter}", "New"))
        elif edit == "duplicate" and target:
            (root / "triggers" / f"d{counter}.yaml").write_text(target.read_text())
        elif edit == "touch" and target:
            os.utime(target)
        elif edit == "break" and target:
            target.write_text(target.read_text() + "  bad: [unclosed\n")
        elif edit == "values":
            config = (root / "pfsync.yaml").read_text()
            (root / "pfsync.yaml").write_text(config.replace("et_", f"et_{counter}_", 1))
        elif edit == "environment-business":
            config = (root / "pfsync.yaml").read_text()
            (root / "pfsync.yaml").write_text(config.replace("business: biz_", "business: bz_"))
        for argv in (
            ("validate",),
            ("-e", "staging", "validate"),
            ("-e", "production", "plan"),
            ("-e", "staging", "plan", "--format", "json"),
        ):
            cached, uncached = outputs(root, *argv)
            assert cached == uncached, (edits, argv)
        if target is not None and target.exists():
            named = ("-e", "staging", "validate", str(target))
            cached, uncached = outputs(root, *named)
            assert cached == uncached, (edits, named)


def test_every_kind_of_edit_in_turn_leaves_cached_and_uncached_runs_equal(
    tmp_path: Path,
) -> None:
    # Those that leave the manifests valid first, so plan still shows every body after them.
    order = sorted(EDIT_KINDS, key=lambda kind: kind in ("duplicate", "break"))
    edit_and_compare(repository(tmp_path / "repo"), [(kind, 3) for kind in order])


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(EDIT_KINDS), st.integers(0, 20)), min_size=1, max_size=6
    )
)
def test_cached_and_uncached_runs_give_the_same_output_after_any_edits(
    edits: list[tuple[str, int]],
) -> None:
    # A folder of its own per example (a function-scoped tmp_path would be shared by them all),
    # removed when the example ends.
    with tempfile.TemporaryDirectory() as folder:
        edit_and_compare(repository(Path(folder) / "repo"), edits)


def test_a_file_changed_within_one_mtime_tick_is_read_again(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    config = load_config(cwd=root, environ={}, environment="staging")
    first = load_manifests(config, cwd=root)
    target = root / "triggers" / "t0.yaml"
    stat = target.stat()
    target.write_text(target.read_text().replace("Trigger 0", "Trigger X"))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_size == stat.st_size
    second = load_manifests(config, cwd=root)
    names = {m.key: m.body["name"] for m in second.manifests}
    assert names["t0"] == "Trigger X"
    assert first.manifests[0].body["name"] == "Trigger 0"


def decoded(name: str, content: bytes) -> dict[str, Any]:
    """A cache file's content: the index is JSON, the bodies are marshalled."""
    document = marshal.loads(content) if name.startswith("bodies-") else json.loads(content)
    assert isinstance(document, dict)
    return document


def test_a_corrupt_or_damaged_cache_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    config = load_config(cwd=root, environ={}, environment="staging")
    expected = load_manifests(config, cwd=root, other_environments=False)
    [index] = cache_dir(config).glob("manifests-*.json")
    [bodies] = cache_dir(config).glob("bodies-*.json")
    for path in (index, bodies):
        good = path.read_bytes()
        checksum, _, content = good.partition(b"\n")
        damaged = content.replace(b"Trigger 1", b"Trigger 9")  # the checksum no longer holds
        for garbage in (b"{", b"[]", checksum + b"\n{}", checksum + b"\n" + damaged, b"\x00"):
            path.write_bytes(garbage)
            assert load_manifests(config, cwd=root, other_environments=False) == expected, (
                path.name,
                garbage[:80],
            )
            rebuilt = decoded(path.name, path.read_bytes().partition(b"\n")[2])
            rebuilt.pop("written_ns", None)  # the time of the rebuild
            before = decoded(path.name, content)
            assert rebuilt == {k: v for k, v in before.items() if k != "written_ns"}


def test_the_cache_depends_on_the_environment_and_its_values(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    staging = load_config(cwd=root, environ={}, environment="staging")
    production = load_config(cwd=root, environ={}, environment="production")
    assert load_manifests(staging, cwd=root).manifests[0].body["email_address"] == "ea_stg"
    assert load_manifests(production, cwd=root).manifests[0].body["email_address"] == "ea_prd"
    assert len(list(cache_dir(staging).glob("manifests-*.json"))) == 2
    cache = ManifestCache.open(staging, Declaring.of(staging))
    assert len(cache.files) == 5


def test_no_cache_and_the_environment_variable_leave_no_cache(
    tmp_path: Path, run_pfsync: RunPfsync
) -> None:
    root = repository(tmp_path / "repo")
    run = run_pfsync("--no-cache", "validate", cwd=root)
    assert (run.code, run.out, run.err) == (
        0,
        "",
        "Trigger(s) valid: 5 in production, 5 in staging.\n",
    )
    off = run_pfsync("validate", cwd=root, env={"PFSYNC_NO_CACHE": "1"})
    assert (off.code, off.out, off.err) == (
        0,
        "",
        "Trigger(s) valid: 5 in production, 5 in staging.\n",
    )
    assert not (root / ".pfsync").exists()
    on = run_pfsync("validate", cwd=root)
    assert on.code == 0
    assert (root / ".pfsync" / ".gitignore").read_text().endswith("\n*\n")
    assert len(list((root / ".pfsync" / "cache").glob("manifests-*.json"))) == 2
    # validate needs no bodies and writes none (the first plan adds them)
    assert list((root / ".pfsync" / "cache").glob("bodies-*.json")) == []


def test_cache_clear_removes_it(tmp_path: Path, run_pfsync: RunPfsync) -> None:
    root = repository(tmp_path / "repo")
    assert run_pfsync("validate", cwd=root).code == 0
    cleared = run_pfsync("cache", "clear", cwd=root)
    assert (cleared.code, cleared.out, cleared.err) == (
        0,
        "",
        "Removed the manifest cache .pfsync/cache/ (2 file(s)).\n",
    )
    again = run_pfsync("cache", "clear", cwd=root)
    assert (again.code, again.out, again.err) == (
        0,
        "",
        "No manifest cache at .pfsync/cache/; nothing to remove.\n",
    )


def test_concurrent_runs_never_corrupt_the_cache(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo", count=60)
    argv = ["-e", "staging", "plan", "--format", "json"]
    command = [pfsync_executable(), *argv]
    # Round 0: four runs build the cache from nothing at once. Round 1: four runs find it stale
    # for some files and rewrite it at once. A third round would be round 1 again.
    for round_ in range(2):
        for n in range(0, 60, 7):  # something to write each round
            (root / "triggers" / f"t{n}.yaml").write_text(manifest(f"t{n}", f"R{round_}"))
        # The answer without the cache, in this process: the runs that race are the processes.
        expected = run_pfsync_anyhow("--no-cache", *argv, cwd=root)
        runs = [
            subprocess.Popen(
                command,
                cwd=root,
                env=clean_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for proc in runs:
            out, err = proc.communicate(timeout=60)
            assert (proc.returncode, out, err) == (expected.code, expected.out, expected.err)
    for path in (root / ".pfsync" / "cache").glob("*"):
        assert path.name.startswith(("manifests-", "bodies-")), path.name
        checksum, _, content = path.read_bytes().partition(b"\n")
        assert checksum == seal(content)
        decoded(path.name, content)
    assert sys.executable


def test_a_cache_this_machine_did_not_write_is_never_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cache committed in a pull request (written under another key) could forge the bodies
    # plan shows: well-formed, with a checksum of its own, it is still ignored and rebuilt.
    root = repository(tmp_path / "repo")
    config = load_config(cwd=root, environ={}, environment="staging")
    expected = load_manifests(config, cwd=root, other_environments=False)
    [bodies] = cache_dir(config).glob("bodies-*.json")
    content = bodies.read_bytes().partition(b"\n")[2].replace(b"Trigger 1", b"Forged 1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))
    bodies.write_bytes(seal(content) + b"\n" + content)  # sealed under another key
    monkeypatch.undo()
    assert load_manifests(config, cwd=root, other_environments=False) == expected


def test_the_cache_key_is_the_one_under_the_xdg_cache_home_of_the_moment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long-lived caller of pfsync.cli.main (this test suite, an editor) may run it under
    # another XDG_CACHE_HOME each time: each run seals with the key kept there.
    sealed = {}
    for name in ("one", "two", "one"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / name))
        sealed[name] = seal(b"content")
        key = bytes.fromhex((tmp_path / name / "pfsync" / "cache-key").read_text())
        assert sealed[name] == hmac.new(key, b"content", hashlib.sha256).hexdigest().encode()
    assert sealed["one"] != sealed["two"]
