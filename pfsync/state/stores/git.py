"""The `git` store: the lockfile committed on a branch of a remote, written by `git push`.

How git itself is run (time limits, the process-group kill, pfsync's identity, the redaction of
git's messages) is `pfsync.state.stores.git_runner`; this module is what the store reads and
writes with it.

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
remote share one deadline (`Git.operation`), so a read whose fetch timed out can still fall
back to the last fetched tip.
"""

from __future__ import annotations

import os
import random
import shlex
import tempfile
import time
from pathlib import Path, PurePosixPath

from pfsync.config import DEFAULT_STORE_TIMEOUT
from pfsync.errors import LockfileError, StoreConflict, StoreError
from pfsync.state.lockfile import Lockfile, parse_lockfile
from pfsync.state.stores.base import Snapshot
from pfsync.state.stores.git_runner import Git, repository_top

ABSENT = "absent"
MAX_REBASES = 20


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
