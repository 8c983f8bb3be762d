"""CI runners simulated with real git: separate clones of one bare remote on disk.

remote = make_remote(tmp_path, manifests=5)     a bare repository whose main holds a
                                                 pfsync.yaml with `state: {store: git}` and
                                                 manifests t000… (apply_helpers.manifest_text)
runner = clone(remote, tmp_path / "runner1")    a fresh clone on main: one CI runner
refuse_pushes(remote) / allow_pushes(remote)    a pre-receive hook that declines every push
push_unrelated_commit(remote, tmp_path)          another clone commits a file beside the
                                                 lockfile and pushes it (an ordinary merge)
remote_lockfile(remote) -> dict | None           the lockfile on the remote's main, parsed
remote_log(remote) -> list[str]                  commit subjects on main, newest first
planned_from(checkout) -> str                    the `Planned from:` line of a plan there
stale_warning(reason) -> str                     the header line of a plan from a stale copy
with echoing_remote() as url: ...                an HTTP git remote on loopback that asks for
                                                 Basic credentials, then refuses them with an
                                                 `ERR` line that repeats them, plain and Base64
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from project_helpers import DRAFTS

from apply_helpers import BUSINESS, manifest_text

GIT_ENV = {
    "GIT_AUTHOR_NAME": "tester",
    "GIT_AUTHOR_EMAIL": "tester@localhost",
    "GIT_COMMITTER_NAME": "tester",
    "GIT_COMMITTER_EMAIL": "tester@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git in `cwd` (`env` added to its environment); its stdout (AssertionError with stderr
    when it fails)."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV, **(env or {})},
        timeout=60,
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def make_remote(
    tmp_path: Path, manifests: int, business: str = BUSINESS, state: str = "{store: git}"
) -> Path:
    """A bare remote whose main has a pfsync repository with `manifests` manifests."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
    seed = tmp_path / "seed"
    (seed / "triggers").mkdir(parents=True)
    (seed / "pfsync.yaml").write_text(f"business: {business}\nstate: {state}\n")
    (seed / ".gitignore").write_text("pfsync.lock.journal\npfsync.lock.lck\n.pfsync/\n")
    for n in range(manifests):
        (seed / "triggers" / f"t{n:03d}.yaml").write_text(manifest_text(f"t{n:03d}"))
    # The first commit straight into the bare repository, from the seed folder as a work tree
    # with an index of its own: what a clone, a commit and a push would leave, with two git
    # runs instead of four (a push starts two processes more).
    into_remote = ("--git-dir", str(remote), "--work-tree", str(seed))
    index = {"GIT_INDEX_FILE": str(tmp_path / "seed.index")}
    git(seed, *into_remote, "add", ".", env=index)
    git(seed, *into_remote, "commit", "--quiet", "-m", "manifests", env=index)
    (tmp_path / "seed.index").unlink()
    return remote


def clone(remote: Path, where: Path) -> Path:
    """A fresh clone of the remote's main: one CI runner's checkout."""
    git(where.parent, "clone", "--quiet", "--branch", "main", str(remote), str(where))
    return where


def refuse_pushes(remote: Path, message: str = "protected branch") -> None:
    """Make the remote decline every push (a pre-receive hook)."""
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 1\n")
    hook.chmod(0o755)


def allow_pushes(remote: Path) -> None:
    """Remove the hook that declines pushes."""
    (remote / "hooks" / "pre-receive").unlink(missing_ok=True)


def push_unrelated_commit(remote: Path, tmp_path: Path, name: str = "NOTES.md") -> None:
    """Another clone pushes a commit that does not touch the lockfile."""
    other = tmp_path / f"other-{os.urandom(4).hex()}"
    clone(remote, other)
    (other / name).write_text(f"unrelated {os.urandom(4).hex()}\n")
    git(other, "add", name)
    git(other, "commit", "--quiet", "-m", f"unrelated change to {name}")
    git(other, "push", "--quiet", "origin", "main")


def remote_lockfile(remote: Path, path: str = "pfsync.lock") -> dict[str, Any] | None:
    """The lockfile on the remote's main, or None when there is none."""
    proc = subprocess.run(
        ["git", "--git-dir", str(remote), "show", f"main:{path}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        return None
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def remote_log(remote: Path) -> list[str]:
    """Commit subjects on the remote's main, newest first."""
    return git(remote, "log", "--format=%s", "main").splitlines()


def planned_from(checkout: Path) -> str:
    """The `Planned from:` line of a plan in `checkout`, at its HEAD with nothing uncommitted."""
    return f"Planned from: commit {git(checkout, 'rev-parse', 'HEAD')[:12]}. {DRAFTS}\n"


def stale_warning(reason: str) -> str:
    """The header line of a plan made from the last fetched lockfile, the fetch failing with
    `reason` (git store: `cannot fetch …; using the lockfile of the last fetched …`)."""
    return (
        f"Warning: The lockfile may be stale: {reason}. This plan was made from that copy; run "
        "it again once the store can be read.\n"
    )


def _pkt_line(text: str) -> bytes:
    data = text.encode()
    return f"{len(data) + 4:04x}".encode() + data


class _EchoingGitServer(http.server.BaseHTTPRequestHandler):
    """Smart HTTP's first request (`info/refs`): 401 until credentials come, then an `ERR`
    pkt-line that repeats them, which git prints as `fatal: remote error: …`."""

    def do_GET(self) -> None:
        given = self.headers.get("Authorization", "")
        if not given.startswith("Basic "):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        token = given.removeprefix("Basic ")
        pair = base64.b64decode(token).decode()
        service = "git-receive-pack" if "receive-pack" in self.path else "git-upload-pack"
        body = (
            _pkt_line(f"# service={service}\n")
            + b"0000"
            + _pkt_line(f"ERR denied for {pair} (Basic {token}); user {pair.partition(':')[0]}")
        )
        self.send_response(200)
        self.send_header("Content-Type", f"application/x-{service}-advertisement")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # not on the test's stderr


@contextmanager
def echoing_remote() -> Iterator[str]:
    """The URL (without credentials) of a loopback git remote that echoes the credentials."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoingGitServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/state.git"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
