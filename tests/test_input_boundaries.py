"""Input boundaries: hostile ids and keys, URLs with credentials, symlinks out of the repository.

Business ids and keys become a URL path segment and part of every address, so anything that could
traverse or inject (`../x`, `a/b`, `%2F`, `?`, `#`, spaces, control characters, a trailing newline)
is rejected by `validate` at its exact line and column; the client still escapes the business as
one segment, so every request goes to `/businesses/{id}/triggers`. An API URL carrying a user
name or password is refused by every command that records or uses it, without echoing it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from apply_helpers import make_repo, manifest_text
from conftest import REPO, RunPfsync
from fixtures_sandbox import MakeSandbox
from pfsync.apply.client import PocketflowsClient, trigger_url

HOSTILE = {
    "dotdot": ('"../x"', '"../x"'),
    "dot": ('".."', '".."'),
    "slash": ('"a/b"', '"a/b"'),
    "percent": ('"a%2Fb"', '"a%2Fb"'),
    "query": ('"a?b"', '"a?b"'),
    "fragment": ('"a#b"', '"a#b"'),
    "space": ('"a b"', '"a b"'),
    "control": ('"a\\x01b"', '"a\\u0001b"'),
    "escape": ('"a\\x1b[2Jb"', '"a\\u001b[2Jb"'),
    "bidi": ('"a\\u202eb"', '"a\\u202eb"'),
}
KEY_PATTERN = "^[a-z0-9][a-z0-9._-]{0,99}$"
BUSINESS_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"
KEY_HINT = "a key is 1-100 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
BUSINESS_HINT = (
    "a business id is 1-128 characters of A-Z, a-z, 0-9, '.', '_', '~', '-', starting with a "
    "letter or digit"
)
SPEC = "spec:\n  name: n\n  project_defined_event: p\n  steps: []\n"


def test_hostile_keys_and_business_ids_are_rejected_at_their_place(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    (tmp_path / "pfsync.yaml").write_text("business: biz_1\n")
    triggers = tmp_path / "triggers"
    triggers.mkdir()
    expected = []
    for name, (written, shown) in sorted(HOSTILE.items()):
        (triggers / f"b-{name}.yaml").write_text(
            f"apiVersion: pfsync/v1\nkind: Trigger\nkey: ok\nbusiness: {written}\n{SPEC}"
        )
        (triggers / f"k-{name}.yaml").write_text(
            f"apiVersion: pfsync/v1\nkind: Trigger\nkey: {written}\n{SPEC}"
        )
        expected.append(
            f"triggers/b-{name}.yaml:4:11: {shown} does not match {BUSINESS_PATTERN} "
            f"({BUSINESS_HINT}) [$.business]\n"
        )
        expected.append(
            f"triggers/k-{name}.yaml:3:6: {shown} does not match {KEY_PATTERN} "
            f"({KEY_HINT}) [$.key]\n"
        )
    # A trailing newline passes JSON Schema's `$` (Python's re); pfsync checks exactly.
    (triggers / "b-newline.yaml").write_text(
        f'apiVersion: pfsync/v1\nkind: Trigger\nkey: nl\nbusiness: "biz\\n"\n{SPEC}'
    )
    (triggers / "k-newline.yaml").write_text(
        f'apiVersion: pfsync/v1\nkind: Trigger\nkey: "abc\\n"\n{SPEC}'
    )
    expected.append(
        f'triggers/b-newline.yaml:4:11: "biz\\n" is not a valid business ({BUSINESS_HINT}) '
        "[$.business]\n"
    )
    expected.append(
        f'triggers/k-newline.yaml:3:6: "abc\\n" is not a valid key ({KEY_HINT}) [$.key]\n'
    )
    run = run_pfsync("validate", cwd=tmp_path)
    assert run.code == 1, run
    assert run.out == "".join(sorted(expected))
    # plan refuses the same manifests rather than plan requests to odd URLs.
    plan = run_pfsync("plan", cwd=tmp_path)
    assert plan.code == 1 and plan.out == "", plan
    assert 'triggers/k-dotdot.yaml:3:6: "../x" does not match' in plan.err


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_the_client_escapes_any_business_as_one_segment(business: str) -> None:
    url = httpx.URL(trigger_url("https://api.example.test/v1", business))
    raw = url.raw_path.decode("ascii")
    assert raw.startswith("/v1/businesses/") and raw.endswith("/triggers")
    segment = raw[len("/v1/businesses/") : -len("/triggers")]
    assert "/" not in segment and "?" not in segment and "#" not in segment
    assert unquote(segment) == business
    assert (url.host, url.query, url.fragment) == ("api.example.test", b"", "")


def test_requests_go_exactly_to_the_business_path(
    run_pfsync: RunPfsync, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    business = "Biz.9~x_-y"  # every character the business pattern allows
    repo = make_repo(tmp_path, 2, business=business)
    run = run_pfsync(
        "apply", "--auto-approve", "--new-lockfile", cwd=repo, env=sandbox.environment()
    )
    assert run.code == 0, run
    paths = {r["path"] for r in sandbox.requests()}
    assert paths == {f"/businesses/{business}/triggers"}
    assert len(sandbox.triggers(business)) == 2


def test_mock_transport_sees_one_escaped_segment() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "trg_1"})

    with PocketflowsClient(
        "https://api.example.test", "u", "p", transport=httpx.MockTransport(handler)
    ) as client:
        client.create_trigger("../a b?c#d%2F", {"name": "n"}, "k")
    assert seen[0].url.raw_path == b"/businesses/..%2Fa%20b%3Fc%23d%252F/triggers"


CREDENTIAL_URL = "https://deploy:hunter2-Sentinel@api.example.com"
REFUSAL = (
    "Error: the API URL contains a user name or password; remove them from the URL and set "
    "PFSYNC_USERNAME and PFSYNC_PASSWORD instead\n"
)


def test_api_url_with_credentials_is_refused_without_echo(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    by_env = make_repo(tmp_path / "env", 1)
    by_file = make_repo(tmp_path / "file", 1)
    (by_file / "pfsync.yaml").write_text(f"business: biz_e2e\napi_url: {CREDENTIAL_URL}\n")
    commands = [
        ("plan",),
        ("plan", "--format", "json"),
        ("apply", "--auto-approve", "--new-lockfile"),
        ("state", "list"),
        ("state", "show", "biz_e2e/t000"),
        ("state", "import", "biz_e2e/t000", "trg_1"),  # was: wrote the URL into a new lockfile
        ("state", "rm", "biz_e2e/t000"),
    ]
    credentials = {"PFSYNC_USERNAME": "u", "PFSYNC_PASSWORD": "p"}
    for repo, env in ((by_env, {"PFSYNC_API_URL": CREDENTIAL_URL}), (by_file, {})):
        for command in commands:
            run = run_pfsync(*command, cwd=repo, env={**env, **credentials})
            assert (run.code, run.out, run.err) == (1, "", REFUSAL), (command, run)
        assert not (repo / "pfsync.lock").exists()


def test_regression_state_commands_refuse_a_credential_url_beside_a_lockfile(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    # Was: `state list` named the configured URL, credentials included, in its API URL mismatch.
    repo = make_repo(tmp_path, 1)
    imported = run_pfsync(
        "state", "import", "biz_e2e/t000", "trg_1", cwd=repo,
        env={"PFSYNC_API_URL": "https://api.example.com"},
    )  # fmt: skip
    assert imported.code == 0, imported
    before = (repo / "pfsync.lock").read_bytes()
    for command in (("state", "list"), ("state", "mv", "biz_e2e/t000", "biz_e2e/t001")):
        run = run_pfsync(*command, cwd=repo, env={"PFSYNC_API_URL": CREDENTIAL_URL})
        assert (run.code, run.err) == (1, REFUSAL), run
        assert "hunter2" not in run.out + run.err
    assert (repo / "pfsync.lock").read_bytes() == before


def test_a_linked_directory_outside_the_repository_is_reported_not_followed(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / "triggers").mkdir(parents=True)
    (repo / "pfsync.yaml").write_text("business: b\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(REPO / "examples" / "triggers" / "welcome-series.yaml", elsewhere / "w.yaml")
    (repo / "triggers" / "mine.yaml").write_text(manifest_text("mine"))
    os.symlink(elsewhere, repo / "triggers" / "linked")
    problem = "triggers/linked:1:1: symbolic link points outside the repository; not followed [$]\n"
    run = run_pfsync("validate", cwd=repo)
    assert (run.code, run.out) == (1, problem), run
    plan = run_pfsync("plan", cwd=repo)
    assert plan.code == 1 and problem in plan.err, plan


def test_regression_dot_segments_are_escaped() -> None:
    # Was: "." and ".." went out as dot segments, which URL normalisation resolves away
    # (`/businesses/../triggers` is `/triggers`). Validation rejects such ids; the client holds
    # its own line too. Found by test_the_client_escapes_any_business_as_one_segment.
    for business, segment in ((".", "%2E"), ("..", "%2E%2E")):
        url = httpx.URL(trigger_url("https://api.example.test", business))
        assert url.raw_path == f"/businesses/{segment}/triggers".encode()
