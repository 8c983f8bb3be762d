"""The state layer's advice works as pasted, in an environments repository whose state is in git.

A staging apply refused by a lock a dead run left names `state unlock LOCK_ID` with the run's
own -C, --config and -e; pasted, it removes that lock, and its advice (plan, state import,
state rm) names them too. Run in process: the parser that reads a printed command checks it.
"""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path

import pytest
from test_printed_commands import Run, check_command, printed_commands

from apply_helpers import BUSINESS, manifest_text
from conftest import run_in_process
from git_helpers import git, remote_lockfile
from pfsync.state.ci_job import CiJob
from pfsync.state.lockfile import Lockfile
from pfsync.state.stores.lock_records import new_lock

API_URL = "http://127.0.0.1:9"  # never reached: every run here stops before sending
CONFIG = f"""\
api_url: {API_URL}
environments:
  staging:
    business: {BUSINESS}
    lockfile: state/staging.lock
    state: {{store: git, branch: main}}
  production:
    business: biz_prd
    lockfile: state/production.lock
    state: {{store: git, branch: main}}
"""
RUNS = [
    Run("env", ("-e", "staging")),
    Run("dir+config", ("-C", "my repo", "--config", "my repo/pfsync.yaml", "-e", "staging"), True),
]
CREDENTIALS = {"PFSYNC_USERNAME": "u", "PFSYNC_PASSWORD": "p"}


def locked_staging(tmp_path: Path) -> tuple[Path, str]:
    """A clone of a remote whose staging lockfile holds a dead run's lock; the lock's id."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
    repo = tmp_path / "my repo"
    git(tmp_path, "clone", "--quiet", str(remote), str(repo))
    (repo / "triggers").mkdir()
    (repo / "triggers" / "t000.yaml").write_text(manifest_text("t000"))
    (repo / "pfsync.yaml").write_text(CONFIG)
    dead = replace(new_lock("apply"), ci_job=CiJob("github", "7", "apply", 1))
    lockfile = replace(Lockfile.new(API_URL, "staging"), serial=1, lock=dead)
    (repo / "state").mkdir()
    (repo / "state" / "staging.lock").write_text(lockfile.dumps())
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "a staging lockfile a dead run left locked")
    git(repo, "push", "--quiet", "origin", "HEAD:main")
    return repo, dead.id


@pytest.mark.parametrize("run", RUNS, ids=lambda run: run.name)
def test_the_lock_advice_names_the_runs_environment_and_works_as_pasted(
    tmp_path: Path, run: Run
) -> None:
    repo, lock_id = locked_staging(tmp_path)
    where = repo.parent if run.from_parent else repo
    code, output = run_in_process(run.argv("apply", "--auto-approve"), where, CREDENTIALS)
    assert code == 1, output
    (unlock,) = printed_commands(output)
    check_command(unlock, run, known=set())
    assert shlex.split(unlock)[-3:] == ["state", "unlock", lock_id], output

    code, output = run_in_process(shlex.split(unlock)[1:], where)
    assert code == 0, output
    advice = printed_commands(output)
    assert [shlex.split(text)[len(run.before) + 1 :] for text in advice] == [
        ["plan"],
        ["state", "import", "ADDRESS", "ID"],
        ["state", "rm", "ADDRESS"],
    ], output
    for text in advice:
        check_command(text, run, known=set())
    staging = remote_lockfile(repo.parent / "remote.git", "state/staging.lock")
    assert staging is not None and "lock" not in staging
