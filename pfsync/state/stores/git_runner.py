"""Running git for the git store: each command bounded in time, under pfsync's identity.

Apart from the store (`pfsync.state.stores.git`) because how git is run changes for other
reasons than what the store reads and writes: timeouts, killing a late command with every
process it started, the author pfsync commits as, and the redaction of git's messages.

Only the real `git` executable is used, with the user's own credentials (a CI checkout's token or
a deploy key): pfsync never asks for them. git's messages are redacted before they are shown: any
URL's `user:token@`, and wherever they appear (a remote's `ERR` line may echo them), the
credentials the repository's git configuration holds in remote URLs, `insteadOf` rewrites and
`http.extraHeader` Authorization headers, plain and in Base64.

The commands of one store operation that talk to the remote (a fetch, a push, the fetch after a
rejected push) share one deadline, and a command still running at it is killed with every
process it started (git runs in its own session: the whole process group, so a
`git-remote-http` waiting on a remote that never answers does not linger). The local commands
around them (milliseconds each) are bounded one by one.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pfsync.config import DEFAULT_STORE_TIMEOUT
from pfsync.errors import StoreError
from pfsync.support.textsafety import Secrets, escape, login_forms

AUTHOR = "pfsync"
AUTHOR_EMAIL = "pfsync@localhost"
KILL_WAIT_SECONDS = 5.0  # for a killed git's pipes to close
_CREDENTIALS_IN_URL = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/\s@]+@")
# The git settings that can hold a credential (keys as `git config` prints them, lower case).
_CREDENTIAL_SETTINGS = r"^(remote\..*\.(push)?url|url\..*\.(push)?insteadof|http\..*extraheader)$"
_NO_SECRETS = Secrets()


def redact(text: str, secrets: Secrets = _NO_SECRETS) -> str:
    """git's message without `secrets` and credentials in URLs, its unsafe characters escaped."""
    return escape(_CREDENTIALS_IN_URL.sub(r"\1***@", secrets.redact(text)))


def configured_credentials(listing: str) -> list[str]:
    """The credentials in `git config -z --get-regexp` output of URLs and extra headers."""
    values: list[str] = []
    for entry in listing.split("\0"):
        key, _, value = entry.partition("\n")
        name = key.rpartition(".")[2]
        if name in ("url", "pushurl"):
            values += _url_credentials(value)
        elif name in ("insteadof", "pushinsteadof"):  # url.<base>.insteadof: the base is used
            values += _url_credentials(key.removeprefix("url.")[: -len(name) - 1])
        elif name == "extraheader":
            values += _header_credentials(value)
    return values


def _url_credentials(url: str) -> list[str]:
    """The user, the password, the pair and its Base64, as written and percent-decoded.

    Only a URL with a password counts: a user name alone (`ssh://git@host`) is not a secret,
    and hiding `git` would garble git's messages.
    """
    try:
        userinfo, at, _ = urlsplit(url).netloc.rpartition("@")
    except ValueError:
        return []
    user, colon, password = userinfo.partition(":")
    if not (at and colon and password):
        return []
    logins = {(user, password), (unquote(user), unquote(password))}
    return [form for u, p in logins for form in (u, *login_forms(u, p))]


def _header_credentials(header: str) -> list[str]:
    """An `Authorization: Basic|Bearer …` header's credential, and a Basic one's parts."""
    name, _, value = header.partition(":")
    scheme, _, credential = value.strip().partition(" ")
    credential = credential.strip()
    if name.strip().lower() != "authorization" or not credential:
        return []
    if scheme.lower() != "basic":
        return [credential]
    try:
        user, colon, password = base64.b64decode(credential, validate=True).decode().partition(":")
    except ValueError:  # not Base64, or not UTF-8 (both are ValueErrors)
        return [credential]
    return [credential, *((user, *login_forms(user, password)) if colon else ())]


def _git_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",  # never wait for a password on a CI runner
            "LC_ALL": "C",  # messages in English, so rejections can be told apart
            "GIT_AUTHOR_NAME": AUTHOR,
            "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
            "GIT_COMMITTER_NAME": AUTHOR,
            "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        }
    )
    return env


@dataclass(frozen=True)
class GitResult:
    """One git command's exit code and output (`Git.failure` words a failure)."""

    code: int
    out: str
    err: str


class _Deadline(threading.local):
    at: float | None = None  # time.monotonic() by which this thread's store operation ends


class Git:
    """Runs git in one repository, each command within `timeout` seconds; the commands that
    talk to the remote within one `operation()` share one deadline, `timeout` from its start."""

    def __init__(self, top: Path, timeout: float = DEFAULT_STORE_TIMEOUT) -> None:
        self.top = top
        self.timeout = timeout
        self._deadline = _Deadline()

    @contextlib.contextmanager
    def operation(self) -> Iterator[None]:
        """The remote commands of this block (in this thread) share one deadline: `timeout`
        from now. Inside another operation, the outer one's deadline holds."""
        if self._deadline.at is not None:
            yield
            return
        self._deadline.at = time.monotonic() + self.timeout
        try:
            yield
        finally:
            self._deadline.at = None

    def run(
        self,
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        remote: bool = False,
    ) -> GitResult:
        """Run `git ARGS` (bounded in time; `remote`: a command that talks to the remote, within
        the operation's deadline); never raises for a non-zero exit."""
        deadline = self._deadline.at if remote else None
        left = self.timeout if deadline is None else deadline - time.monotonic()
        late = f"`git {args[0]}` did not finish within {self.timeout:g} s (state.timeout)"
        if left <= 0:
            raise StoreError(late)
        try:
            proc = subprocess.Popen(
                ["git", "-C", str(self.top), *args],
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                env={**_git_environment(), **(env or {})},
                # Out of the terminal's process group: a Ctrl-C is pfsync's to handle (start
                # nothing new, record everything), not a kill of the push that records it.
                # Its own group also lets a timeout kill everything git started.
                start_new_session=True,
            )
        except FileNotFoundError:
            raise StoreError(
                "the git store needs the `git` executable, and it is not on PATH"
            ) from None
        except OSError as exc:  # no memory, no file descriptors: the store cannot be used now
            raise StoreError(f"cannot run git: {exc.strerror or exc}") from None
        try:
            out, err = proc.communicate(input, timeout=left)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            # The pipes close once every process of the group is gone (bounded all the same).
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=KILL_WAIT_SECONDS)
            raise StoreError(late) from None
        except BaseException:  # a signal that stops pfsync: leave no git behind
            _kill_group(proc)
            proc.wait()
            raise
        return GitResult(proc.returncode, out, err)

    def failure(self, result: GitResult) -> str:
        """The last lines git wrote on stderr, on one line, redacted (`redact`, with the
        credentials of this repository's git configuration) and escaped."""
        lines = [line.strip() for line in result.err.splitlines() if line.strip()]
        said = "; ".join(lines[-4:])
        if not said:
            return f"git exited {result.code}"
        try:
            return redact(said, self.credentials)
        except StoreError as exc:  # what git said may hold a credential: not shown
            return f"git's message is not shown: the credentials to hide in it are unknown ({exc})"

    @functools.cached_property
    def credentials(self) -> Secrets:
        """The credentials git's configuration holds (read when first needed: on a failure)."""
        listed = self.run("config", "-z", "--get-regexp", _CREDENTIAL_SETTINGS)
        return Secrets(configured_credentials(listed.out))

    def out(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
        """The stripped stdout of `git ARGS`; StoreError with git's message if it fails."""
        result = self.run(*args, input=input, env=env)
        if result.code != 0:
            raise StoreError(f"`git {args[0]}` failed: {self.failure(result)}")
        return result.out.strip()

    def maybe(self, *args: str) -> str | None:
        """The stripped stdout, or None when git exits non-zero (e.g. a missing ref)."""
        result = self.run(*args)
        return result.out.strip() if result.code == 0 else None


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Kill `proc` and every process it started (its session's group; on Windows, its tree)."""
    if sys.platform == "win32":
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["taskkill", "/F", "/T", "/PID", str(proc.pid)],
                capture_output=True,
                timeout=KILL_WAIT_SECONDS,
            )
        proc.kill()
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def repository_top(directory: Path) -> Path:
    """The top of the work tree containing `directory`; StoreError when there is none."""
    git = Git(directory)
    result = git.run("rev-parse", "--show-toplevel")
    if result.code != 0:
        raise StoreError(
            f"state.store is git, but {directory} is not inside a git repository "
            f"({git.failure(result)})"
        )
    return Path(result.out.strip())
