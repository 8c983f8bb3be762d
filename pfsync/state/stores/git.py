"""The `git` store: the lockfile committed on a branch of a remote, written by `git push`.

Only the real `git` executable is used, with the user's own credentials (a CI checkout's token or
a deploy key): pfsync never asks for them. git's messages are redacted before they are shown: any
URL's `user:token@`, and wherever they appear (a remote's `ERR` line may echo them), the
credentials the repository's git configuration holds in remote URLs, `insteadOf` rewrites and
`http.extraHeader` Authorization headers, plain and in Base64.

A write is a compare-and-swap on the lockfile, not on the whole branch: a commit that changes
only the lockfile is made on the expected tip (with a private index: the working tree and the
checked-out branch are never touched) and pushed without force. When the push is rejected
because others pushed commits that leave the lockfile alone (ordinary merges during an apply),
the commit is remade on the new tip and pushed again; when the lockfile itself changed, the
write fails with StoreConflict. Any other refusal (a protected branch, a hook, no access, no
network) is a StoreError: the caller stops sending.

The version of a snapshot is `<tip commit> <lockfile blob>` (`absent` when the branch has no
lockfile yet).

Every read and write ends within `state.timeout`: the git commands of one that talk to the
remote (a fetch, a push, the fetch after a rejected push) share one deadline, and a command
still running at it is killed with every process it started (git runs in its own session: the
whole process group, so a `git-remote-http` waiting on a remote that never answers does not
linger). The local commands around them (milliseconds each) are bounded one by one, so a read
whose fetch timed out can still fall back to the last fetched tip.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from pfsync.config import DEFAULT_STORE_TIMEOUT
from pfsync.errors import LockfileError, StoreConflict, StoreError
from pfsync.state.lockfile import Lockfile, parse_lockfile
from pfsync.state.stores.base import Snapshot
from pfsync.support.textsafety import Secrets, escape, login_forms

ABSENT = "absent"
AUTHOR = "pfsync"
AUTHOR_EMAIL = "pfsync@localhost"
MAX_REBASES = 20
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


class GitStore:
    """The lockfile at `path` on `remote`/`branch`."""

    def __init__(
        self,
        top: Path,
        path: str,
        remote: str,
        branch: str,
        other_paths: frozenset[str] = frozenset(),
        timeout: float = DEFAULT_STORE_TIMEOUT,
    ) -> None:
        self.git = Git(top, timeout)
        self.path = path
        self.other_paths = other_paths  # the other environments' lockfiles in the repository
        self.remote = remote
        self.branch = branch
        self.tracking_ref = f"refs/remotes/{remote}/{branch}"
        self._git_dir: Path | None = None

    @classmethod
    def for_config(
        cls,
        config: object,
        remote: str | None = None,
        branch: str | None = None,
    ) -> GitStore:
        """The store of `config` (state.remote / state.branch unless given)."""
        from pfsync.config import Config

        assert isinstance(config, Config)
        top = repository_top(config.root)
        path = _in_repository(config.lockfile, top)
        if path is None:
            raise StoreError(f"the lockfile {config.lockfile} is outside the git repository {top}")
        others = {_in_repository(other, top) for other in config.other_lockfiles}
        timeout = config.state.timeout
        git = Git(top, timeout)
        remote = remote or config.state.remote
        if git.maybe("remote", "get-url", remote) is None:
            raise StoreError(
                f"state.store is git, but the repository has no remote {remote!r} "
                "(set state.remote in pfsync.yaml, or add the remote)"
            )
        branch = branch or config.state.branch or git.maybe("symbolic-ref", "--short", "-q", "HEAD")
        if not branch:
            raise StoreError(
                "state.store is git and this checkout is not on a branch (detached HEAD); set "
                "state.branch in pfsync.yaml to the branch that holds the lockfile"
            )
        paths = frozenset(o for o in others if o is not None)
        return cls(top, path, remote, branch, paths, timeout)

    @property
    def description(self) -> str:
        """`pfsync.lock on origin/main`."""
        return f"{self.path} on {self.remote}/{self.branch}"

    def restore_advice(self, which: str = "an earlier commit") -> str:
        """How a person gets the lockfile back on the state branch, from `which` commit."""
        branch = f"{self.remote}/{self.branch}"
        # `:/` names the path from the repository's top, wherever the command is run.
        return (
            f"restore it on {branch} from {which} "
            f"(git log {shlex.quote(branch)} -- {shlex.quote(':/' + self.path)})"
        )

    def fetch(self) -> None:
        """Bring the remote branch into its remote-tracking ref; StoreError if that fails."""
        try:
            result = self.git.run(
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                self.remote,
                f"+refs/heads/{self.branch}:{self.tracking_ref}",
                remote=True,
            )
        except StoreError as exc:
            raise StoreError(f"cannot fetch {self.remote}/{self.branch}: {exc}") from None
        if result.code != 0:
            if "couldn't find remote ref" in result.err:
                raise StoreError(
                    f"the branch {self.branch} does not exist on {self.remote}; push it first "
                    "(the git store commits the lockfile onto an existing branch)"
                )
            raise StoreError(
                f"cannot fetch {self.remote}/{self.branch}: {self.git.failure(result)}"
            )

    def read(self, *, strict: bool = True) -> Snapshot:
        """The lockfile at the remote branch's tip, after a fetch.

        Not strict (plan, state list): when the fetch fails, the last fetched tip is used with a
        warning, so a read-only command still works offline or without credentials.
        """
        with self.git.operation():
            return self._read(strict)

    def _read(self, strict: bool) -> Snapshot:
        warnings: tuple[str, ...] = ()
        try:
            self.fetch()
        except StoreError as exc:
            if strict or self.git.maybe("rev-parse", "--verify", "-q", self.tracking_ref) is None:
                raise
            warnings = (
                f"{exc}; using the lockfile of the last fetched {self.remote}/{self.branch}, "
                "which may be out of date",
            )
        tip = self.git.out("rev-parse", "--verify", f"{self.tracking_ref}^{{commit}}")
        return self._snapshot_at(tip, warnings)

    def read_head(self) -> Snapshot:
        """The lockfile committed at HEAD, without a fetch (what a `--no-push` commit changes)."""
        head = self.git.out("rev-parse", "--verify", "HEAD^{commit}")
        return self._snapshot_at(head)

    def _snapshot_at(self, tip: str, warnings: tuple[str, ...] = ()) -> Snapshot:
        blob = self._blob_at(tip)
        lockfile = None
        if blob != ABSENT:
            result = self.git.run("cat-file", "blob", blob)
            if result.code != 0:
                raise StoreError(f"cannot read {self.description}: {self.git.failure(result)}")
            lockfile = parse_lockfile(result.out, self.description, self.restore_advice())
        location = {"remote": self.remote, "branch": self.branch, "path": self.path}
        return Snapshot(lockfile, f"{tip} {blob}", warnings, location, tip)

    def _blob_at(self, commit: str) -> str:
        blob = self.git.maybe("rev-parse", "--verify", "-q", f"{commit}:{self.path}")
        return blob or ABSENT

    def write(self, lockfile: Lockfile, expected: Snapshot, message: str) -> Snapshot:
        """Commit `lockfile` onto the expected tip and push it (rebased over unrelated commits)."""
        with self.git.operation():
            return self._write(lockfile, expected, message)

    def _write(self, lockfile: Lockfile, expected: Snapshot, message: str) -> Snapshot:
        tip, expected_blob = expected.version.split()
        blob = self.git.out("hash-object", "-w", "--stdin", input=lockfile.dumps())
        for attempt in range(1, MAX_REBASES + 1):
            commit = self._commit_on(tip, blob, message)
            # --no-verify: a developer's pre-push hook (lint, tests) must not block the record.
            try:
                pushed = self.git.run(
                    "push",
                    "--quiet",
                    "--no-verify",
                    self.remote,
                    f"{commit}:refs/heads/{self.branch}",
                    remote=True,
                )
            except StoreError as exc:  # it may have landed: the next write's fetch tells
                raise StoreError(
                    f"cannot push the lockfile to {self.remote}/{self.branch}: {exc}"
                ) from None
            if pushed.code == 0:
                self.git.run("update-ref", self.tracking_ref, commit)
                return Snapshot(lockfile, f"{commit} {blob}")
            self.fetch()
            new_tip = self.git.out("rev-parse", "--verify", f"{self.tracking_ref}^{{commit}}")
            if new_tip == commit:
                return Snapshot(lockfile, f"{commit} {blob}")  # it landed; git's exit lied
            if new_tip == tip:
                raise StoreError(
                    f"git refused to push the lockfile to {self.remote}/{self.branch}: "
                    f"{self.git.failure(pushed)}"
                )
            if self._blob_at(new_tip) != expected_blob:
                raise StoreConflict(
                    f"the lockfile {self.description} changed underneath (now at commit "
                    f"{new_tip[:12]})"
                )
            tip = new_tip  # others pushed commits that leave the lockfile alone: rebase
            time.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))  # a busy branch: back off
        raise StoreError(
            f"gave up pushing the lockfile to {self.remote}/{self.branch} after {MAX_REBASES} "
            "rejections by newer commits"
        )

    def _commit_on(self, parent: str, blob: str, message: str) -> str:
        # The private index lives in the repository's git directory, so one left by a killed
        # run goes away with the checkout instead of piling up in /tmp on a reused runner.
        if self._git_dir is None:
            self._git_dir = Path(self.git.out("rev-parse", "--absolute-git-dir"))
        try:
            scratch = tempfile.TemporaryDirectory(prefix="pfsync-index-", dir=self._git_dir)
        except OSError as exc:
            raise StoreError(f"cannot make a git index: {exc.strerror or exc}") from None
        with scratch as folder:
            env = {"GIT_INDEX_FILE": str(Path(folder) / "index")}
            self.git.out("read-tree", parent, env=env)
            self.git.out(
                "update-index", "--add", "--cacheinfo", f"100644,{blob},{self.path}", env=env
            )
            tree = self.git.out("write-tree", env=env)
        return self.git.out("commit-tree", tree, "-p", parent, "-m", message)

    def require_tip_checkout(self, snapshot: Snapshot) -> None:
        """StoreError unless HEAD is the tip, or behind it only by commits of lockfiles (its
        own, or another environment's: what this one applies from did not change)."""
        tip = snapshot.version.split()[0]
        head = self.git.out("rev-parse", "--verify", "HEAD^{commit}")
        if head == tip:
            return
        behind_only = self.git.run("merge-base", "--is-ancestor", head, tip).code == 0
        names = self.git.out("diff", "--name-only", "-z", "--no-renames", head, tip)
        changed = [name for name in names.split("\0") if name]
        others = set(changed) - {self.path}
        if (
            behind_only
            and others <= self.other_paths
            and all(self._is_lockfile_at(tip, name) for name in others)
        ):
            return
        raise StoreError(
            f"this checkout (commit {head[:12]}) is not the tip of {self.remote}/{self.branch} "
            f"(commit {tip[:12]}); pfsync applies from the tip: pull or check out "
            f"{self.remote}/{self.branch} and run again. Nothing was sent"
        )

    def _is_lockfile_at(self, commit: str, path: str) -> bool:
        """Whether `path` at `commit` is a pfsync lockfile (not, say, a manifest that a
        misconfigured environment names as its lockfile)."""
        result = self.git.run("show", f"{commit}:{path}")
        if result.code != 0:
            return False
        try:
            parse_lockfile(result.out, path)
        except LockfileError:
            return False
        return True

    def commit_locally(self, lockfile: Lockfile, message: str) -> str:
        """Write the lockfile into the work tree and commit it on the current branch (no push).

        Returns the new commit id.
        """
        from pfsync.support.atomic import atomic_write_text

        if self.git.maybe("symbolic-ref", "-q", "HEAD") is None:
            raise StoreError("--no-push makes a commit on the current branch: check one out")
        try:
            atomic_write_text(self.git.top / self.path, lockfile.dumps())
        except OSError as exc:
            raise StoreError(f"cannot write {self.path}: {exc.strerror}") from None
        self.git.out("add", "--", self.path)
        self.git.out("commit", "--quiet", "--no-verify", "-m", message, "--", self.path)
        return self.git.out("rev-parse", "HEAD")


def _in_repository(path: Path, top: Path) -> str | None:
    """`path` relative to the repository's top, with / separators; None when outside it."""
    try:
        return PurePosixPath(
            Path(os.path.realpath(path)).relative_to(os.path.realpath(top))
        ).as_posix()
    except ValueError:
        return None


class CheckedOutLockfile:
    """A git store seen from the checkout, for `--no-push`: HEAD's lockfile, local commits.

    What a pull request proposes is a change of the lockfile its branch holds; its diff is then
    exactly that change, and git reports a conflict if main's lockfile moved meanwhile.
    """

    def __init__(self, store: GitStore) -> None:
        self.store = store

    @property
    def description(self) -> str:
        """`pfsync.lock at HEAD`."""
        return f"{self.store.path} at HEAD"

    def read(self, *, strict: bool = True) -> Snapshot:
        """The lockfile committed at HEAD (no fetch)."""
        return self.store.read_head()

    def write(self, lockfile: Lockfile, expected: Snapshot, message: str) -> Snapshot:
        """Commit `lockfile` on the current branch if HEAD is still where it was read."""
        head = self.store.git.out("rev-parse", "--verify", "HEAD^{commit}")
        if head != expected.version.split()[0]:
            raise StoreConflict("HEAD moved since the lockfile was read; run the command again")
        # No [skip ci]: this commit is proposed in a pull request, whose plan must run.
        commit = self.store.commit_locally(lockfile, message.replace(" [skip ci]", ""))
        return Snapshot(lockfile, f"{commit} {self.store._blob_at(commit)}")

    def require_tip_checkout(self, snapshot: Snapshot) -> None:
        """Nothing to check: HEAD is what this store reads and writes."""
