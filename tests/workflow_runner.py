"""A small GitHub Actions runner for the workflows `pfsync init --ci github` writes.

The scenario tests run the generated workflows as GitHub would, unmodified: read from the commit
the event names, each job once the jobs it `needs:` finished (the jobs and matrix legs that can
start together run at the same time, each in a thread), every `run:` step word for word with
`bash --noprofile --norc -eo pipefail FILE` (`shell: bash`'s defaults), and only the `uses:`
steps stood in for. Nothing here contacts GitHub or any network but loopback.

    runner = WorkflowRunner(origin, tmp_path / "ci", api=FakeGitHub("acme/triggers"),
                            environment_secrets={"staging": {...}}, reviewers={"production"})
    run = runner.run("pfsync-apply.yml", "push", {...}, sha=tip, ref_name="main",
                     approver=lambda approval: True)
    run.result("apply-staging")           success | failure | skipped | cancelled
    run.job("plan", "staging").summary    what the job wrote to $GITHUB_STEP_SUMMARY
    run.job("plan", "staging").log        every step's output, with the stand-ins' notes

Each job runs in a FRESH clone of the bare `origin` (its own workspace, RUNNER_TEMP and HOME), in
a clean environment: PATH starts with this interpreter's bin folder, so `pfsync` is the one under
test; the GITHUB_* variables a runner sets (GITHUB_SERVER_URL is a loopback URL nothing listens
on); RUNNER_TEMP; GITHUB_OUTPUT, GITHUB_ENV and GITHUB_STEP_SUMMARY files read back after each
step; the workflow's, the job's and the step's `env:`. Secrets reach a step only through `env:`
expressions (`secrets.*`), as on GitHub: a job in an environment sees that environment's secrets
over the repository's; a run with `secrets_available=False` (a fork's pull request) sees none.

The stand-ins:

- The step whose `run:` is `python -m pip install "$PFSYNC_PIP_SPEC"` is stood in (matched by
  that exact text, and logged): pfsync is already installed in the interpreter's environment,
  and the spec names GitHub, which a test must not contact.
- actions/checkout: a fresh `git init` with origin's `file://` URL, fetching `ref` (a branch of
  origin: checked out as that branch, tracking it; else a commit, detached) or else the event's
  commit, with `fetch-depth` (0: every branch and tag; else that shallow depth). With
  `persist-credentials: false` origin's push URL is a path that does not exist, so a push fails
  as it would without the token.
- actions/setup-python: nothing (logged).
- actions/upload-artifact / download-artifact: a folder per artifact in the runner's store,
  per run (a path that is a folder is uploaded as its contents); download honours `name`,
  `pattern`, `merge-multiple`, `path` and `run-id`.
- actions/github-script: the script runs with node against the FakeGitHub (tests/fake_github.py)
  when `shutil.which("node")` finds it; without node the step is stood in, and the job's log says
  so ("stood in: node is not installed").

Concurrency: job and workflow `concurrency:` groups are serialised; a job that waits for its group
or for an approval is pending, and a newer pending job of the same group cancels it (as GitHub
does: "Canceling since a higher priority waiting request … exists"). `cancel-in-progress` is not
modelled (the apply recipes never cancel). A job whose `environment:` is in `reviewers` waits for
an approval: the `approver` callback gets an Approval (run, job, environment and the summaries the
run's finished jobs wrote, which is what an approver sees) and returns True to approve. Without
an approver the Approval is queued: take it with `runner.next_approval()` and call `.decide()`.

`runner.kill(run, job)` sends SIGKILL to the process group of the step that job is running (the
runner machine dying); `runner.rerun(run, job)` runs that job and the jobs that need it again in
the same run, with GITHUB_RUN_ATTEMPT one higher, as "Re-run this job" does.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fake_github import FakeGitHub, run_github_script
from workflow_expressions import condition, render

INSTALL_STEP = 'python -m pip install "$PFSYNC_PIP_SPEC"'
SERVER_URL = "http://127.0.0.1:9"  # the discard port: never contacted
JOB_SECONDS = 300.0  # no job of a scenario takes this long; a hung one fails the test
# The runner's own git commands (checkouts): no system configuration, and no `git maintenance
# run --auto` after each fetch into a workspace that lives for one job.
QUIET_GIT = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "maintenance.auto",
    "GIT_CONFIG_VALUE_0": "false",
}
_ANNOTATION = re.compile(r"^::(error|warning|notice)(?: [^:]*)?::(.*)$", re.M)


@dataclass
class Job:
    """One job (or matrix leg) of a run."""

    job_id: str
    leg: str  # the matrix values, joined by ", " ("" without a matrix)
    status: str = "queued"  # queued, pending, waiting, in_progress, success, failure, …
    log: str = ""
    summary: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    attempt: int = 1
    process: subprocess.Popen[str] | None = None

    def annotations(self, kind: str) -> list[str]:
        """The `::KIND::text` workflow commands the job's steps printed."""
        return [text for found, text in _ANNOTATION.findall(self.log) if found == kind]


@dataclass
class Approval:
    """A job held until a person approves its deployment to `environment`."""

    run: Run
    job_id: str
    environment: str
    summary: str  # the run summary so far (the jobs before it), as the approver sees it
    decided: threading.Event = field(default_factory=threading.Event)
    approved: bool = False

    def decide(self, approved: bool = True) -> None:
        self.approved = approved
        self.decided.set()


@dataclass
class Run:
    """One workflow run: its event and its jobs (a list per job id: one per matrix leg)."""

    run_id: int
    workflow: dict[str, Any]
    event_name: str
    payload: dict[str, Any]
    sha: str
    ref_name: str
    secrets_available: bool
    jobs: dict[str, list[Job]] = field(default_factory=dict)
    artifacts: Path = Path()
    thread: threading.Thread | None = None
    error: BaseException | None = None

    def wait(self, timeout: float = JOB_SECONDS * 3) -> Run:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"run {self.run_id} did not finish"
        if self.error is not None:
            raise self.error
        return self

    def job(self, job_id: str, leg: str = "") -> Job:
        [found] = [job for job in self.jobs[job_id] if job.leg == leg]
        return found

    def result(self, job_id: str) -> str:
        """A job's result as `needs.JOB.result` gives it."""
        statuses = {job.status for job in self.jobs.get(job_id, [])}
        for status in ("cancelled", "failure", "success"):
            if status in statuses:
                return status
        return "skipped"

    def summary(self) -> str:
        """Every job's summary, in needs order (the run's summary page)."""
        return "".join(job.summary for jobs in list(self.jobs.values()) for job in jobs)


class _Groups:
    """Concurrency groups: one running job each; a newer pending job cancels an older one."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.running: dict[str, object] = {}
        self.pending: dict[str, object] = {}
        self.cancelled: set[int] = set()

    def queue(self, group: str, ticket: object) -> None:
        with self.changed:
            older = self.pending.get(group)
            if older is not None:
                self.cancelled.add(id(older))
            self.pending[group] = ticket
            self.changed.notify_all()

    def is_cancelled(self, ticket: object) -> bool:
        with self.changed:
            return id(ticket) in self.cancelled

    def acquire(self, group: str, ticket: object) -> bool:
        """Wait until `group` is free and take it; False when a newer job cancelled `ticket`."""
        with self.changed:
            self.changed.wait_for(
                lambda: id(ticket) in self.cancelled or group not in self.running, JOB_SECONDS
            )
            if id(ticket) in self.cancelled:
                return False
            assert group not in self.running, f"concurrency group {group} never freed"
            self.running[group] = ticket
            if self.pending.get(group) is ticket:
                del self.pending[group]
            return True

    def release(self, group: str) -> None:
        with self.changed:
            del self.running[group]
            self.changed.notify_all()


class WorkflowRunner:
    """Runs workflows of the repository in the bare `origin`; see the module docstring."""

    def __init__(
        self,
        origin: Path,
        work: Path,
        *,
        api: FakeGitHub,
        secrets: dict[str, str] | None = None,
        environment_secrets: dict[str, dict[str, str]] | None = None,
        reviewers: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        self.origin = origin
        self.work = work
        self.api = api
        self.secrets = secrets or {}
        self.environment_secrets = environment_secrets or {}
        self.reviewers = set(reviewers)
        self.groups = _Groups()
        self.approvals: queue.Queue[Approval] = queue.Queue()
        self.runs: list[Run] = []
        self._ids = itertools.count(1001)
        self._jobs = itertools.count(1)
        self._lock = threading.Lock()
        git(origin, "config", "uploadpack.allowAnySHA1InWant", "true")
        # GitHub's repositories never run gc in the pusher's sight; each push here would start
        # `git gc --auto` just to find it has nothing to do.
        git(origin, "config", "receive.autogc", "false")
        work.mkdir(parents=True, exist_ok=True)

    # Runs

    def start(
        self,
        workflow: str,
        event_name: str,
        payload: dict[str, Any],
        *,
        sha: str,
        ref_name: str,
        secrets_available: bool = True,
        approver: Callable[[Approval], bool] | None = None,
        workflow_sha: str | None = None,
    ) -> Run:
        """Start `workflow` (a file name under .github/workflows, read at `workflow_sha` or
        `sha`) for an event; the run goes on in a thread (Run.wait)."""
        text = git(self.origin, "show", f"{workflow_sha or sha}:.github/workflows/{workflow}")
        document = yaml.safe_load(text)
        document = {"on" if key is True else str(key): value for key, value in document.items()}
        with self._lock:
            run_id = next(self._ids)
        run = Run(run_id, document, event_name, payload, sha, ref_name, secrets_available)
        run.artifacts = self.work / "artifacts" / str(run_id)
        run.artifacts.mkdir(parents=True)
        self.runs.append(run)
        run.thread = threading.Thread(
            target=self._run_all, args=(run, approver), name=f"run-{run_id}", daemon=True
        )
        run.thread.start()
        return run

    def run(self, workflow: str, event_name: str, payload: dict[str, Any], **options: Any) -> Run:
        """`start`, then wait for the run to finish."""
        return self.start(workflow, event_name, payload, **options).wait()

    def rerun(
        self, run: Run, job_id: str, approver: Callable[[Approval], bool] | None = None
    ) -> Run:
        """Re-run a job of a finished run and the jobs that need it, as GitHub's "Re-run this
        job" does (GITHUB_RUN_ATTEMPT one higher); waits for them."""
        attempt = max(job.attempt for jobs in run.jobs.values() for job in jobs) + 1
        jobs = run.workflow["jobs"]
        again = [job_id]
        for other in _needs_order(jobs):
            if set(again) & set(_listed(jobs[other].get("needs"))):
                again.append(other)
        self._run_jobs(run, again, approver, attempt)
        return run

    def next_approval(self, timeout: float = JOB_SECONDS) -> Approval:
        """The next approval a job waits for (AssertionError once no run could ask for one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self.approvals.get(timeout=0.05)
            except queue.Empty:
                alive = [run for run in self.runs if run.thread and run.thread.is_alive()]
                if not alive and self.approvals.empty():
                    raise AssertionError(
                        "no job waits for an approval: every run finished"
                    ) from None
        raise AssertionError(f"no approval was asked for within {timeout} s")

    def kill(self, run: Run, job_id: str) -> None:
        """SIGKILL the process group of the step `job_id` is running."""
        [process] = [job.process for job in run.jobs[job_id] if job.process is not None]
        os.killpg(process.pid, signal.SIGKILL)

    def _run_all(self, run: Run, approver: Callable[[Approval], bool] | None) -> None:
        try:
            group = self._group(run.workflow.get("concurrency"), self._contexts(run, {}, {}))
            ticket = object()
            if group:
                self.groups.queue(group, ticket)
                if not self.groups.acquire(group, ticket):
                    return
            try:
                self._run_jobs(run, _needs_order(run.workflow["jobs"]), approver, attempt=1)
            finally:
                if group:
                    self.groups.release(group)
        except BaseException as error:  # shown by Run.wait in the test's thread
            run.error = error

    # Jobs

    def _run_jobs(
        self,
        run: Run,
        job_ids: list[str],
        approver: Callable[[Approval], bool] | None,
        attempt: int,
    ) -> None:
        """Run `job_ids` (in needs order) as GitHub does: each job once the jobs it needs have
        finished, and every job (and matrix leg) that can start at the same time, each in its
        own thread. A job's entry in `run.jobs` is made when it starts, in needs order, so the
        run's summary keeps one order however the threads interleave."""
        jobs = run.workflow["jobs"]
        waiting = list(job_ids)
        running: dict[str, int] = {}  # job id -> its legs not finished yet
        finished: queue.Queue[tuple[str, BaseException | None]] = queue.Queue()
        error: BaseException | None = None
        while waiting or running:
            ready = [
                job_id
                for job_id in waiting
                if not any(n in waiting or n in running for n in _listed(jobs[job_id].get("needs")))
            ]
            for job_id in ready if error is None else []:
                waiting.remove(job_id)
                legs = self._start_job(run, job_id, attempt)
                running[job_id] = len(legs)
                for job, contexts in legs:
                    threading.Thread(
                        target=self._leg_thread,
                        args=(run, job, contexts, approver, finished),
                        name=f"run-{run.run_id}-{job_id}",
                        daemon=True,
                    ).start()
            for job_id in [job_id for job_id, count in running.items() if count == 0]:
                del running[job_id]
            if error is not None and not running:
                raise error
            if not running:
                continue
            job_id, raised = finished.get(timeout=JOB_SECONDS * 3)
            running[job_id] -= 1
            error = error or raised

    def _leg_thread(
        self,
        run: Run,
        job: Job,
        contexts: dict[str, Any],
        approver: Callable[[Approval], bool] | None,
        finished: queue.Queue[tuple[str, BaseException | None]],
    ) -> None:
        raised: BaseException | None = None
        try:
            self._run_leg(run, job, run.workflow["jobs"][job.job_id], contexts, approver)
        except BaseException as error:  # raised again by _run_jobs, in the run's thread
            raised = error
        finished.put((job.job_id, raised))

    def _start_job(self, run: Run, job_id: str, attempt: int) -> list[tuple[Job, dict[str, Any]]]:
        """Make the job's entry in `run.jobs`, a Job per matrix leg; the legs to run, each with
        its contexts (none when the job's `if:` skips it)."""
        spec = run.workflow["jobs"][job_id]
        needs = _listed(spec.get("needs"))
        needs_context = {
            need: {"result": run.result(need), "outputs": _outputs(run, need)} for need in needs
        }
        status = "success" if all(run.result(n) == "success" for n in needs) else "failure"
        contexts = self._contexts(run, {}, needs_context, status=status)
        legs = _matrix_legs(render(spec.get("strategy", {}).get("matrix"), contexts))
        run.jobs[job_id] = [
            Job(job_id, ", ".join(map(str, leg.values())), attempt=attempt) for leg in legs
        ]
        if not condition(spec.get("if"), contexts):
            for job in run.jobs[job_id]:
                job.status = "skipped"
            return []
        return [
            (job, self._contexts(run, leg, needs_context))
            for job, leg in zip(run.jobs[job_id], legs, strict=True)
        ]

    def _run_leg(
        self,
        run: Run,
        job: Job,
        spec: dict[str, Any],
        contexts: dict[str, Any],
        approver: Callable[[Approval], bool] | None,
    ) -> None:
        environment = render(spec.get("environment"), contexts)
        if isinstance(environment, dict):
            environment = environment.get("name")
        if environment and run.secrets_available:
            contexts["secrets"] = {
                **contexts["secrets"],
                **self.environment_secrets.get(str(environment), {}),
            }
        group = self._group(spec.get("concurrency"), contexts)
        ticket = object()
        job.status = "pending"
        if group:
            self.groups.queue(group, ticket)
        if environment in self.reviewers and not self._approved(
            run, job, str(environment), approver, ticket
        ):
            return
        if group and not self.groups.acquire(group, ticket):
            job.status = "cancelled"
            job.log += f"Canceling since a higher priority waiting request for {group} exists\n"
            return
        try:
            job.status = "in_progress"
            job.status = self._steps(run, job, spec, contexts)
        finally:
            if group:
                self.groups.release(group)

    def _approved(
        self,
        run: Run,
        job: Job,
        environment: str,
        approver: Callable[[Approval], bool] | None,
        ticket: object,
    ) -> bool:
        job.status = "waiting"
        approval = Approval(run, job.job_id, environment, run.summary())
        if approver is not None:
            approval.decide(approver(approval))
        else:
            self.approvals.put(approval)
            while not approval.decided.wait(0.05):
                if self.groups.is_cancelled(ticket):
                    break
        if self.groups.is_cancelled(ticket):
            job.status = "cancelled"
            job.log += f"Canceling since a higher priority waiting request for {environment}\n"
            return False
        if not approval.approved:
            job.status = "failure"
            job.log += f"The deployment to {environment} was rejected\n"
            return False
        return True

    def _steps(self, run: Run, job: Job, spec: dict[str, Any], contexts: dict[str, Any]) -> str:
        number = next(self._jobs)
        home = self.work / f"job-{number}"
        workspace, temp = home / "workspace", home / "temp"
        for folder in (workspace, temp, home / "home", home / "files"):
            folder.mkdir(parents=True)
        contexts["runner"] = {"temp": str(temp), "os": "Linux"}
        exported: dict[str, str] = {}
        steps: dict[str, Any] = {}
        contexts["steps"] = steps
        status = "success"
        base = {
            **self._github_environ(run, job, workspace, home),
            "RUNNER_TEMP": str(temp),
            "RUNNER_OS": "Linux",
        }
        workflow_env = {k: str(v) for k, v in render(run.workflow.get("env", {}), contexts).items()}
        job_env = {k: str(v) for k, v in render(spec.get("env", {}), contexts).items()}
        for index, step in enumerate(spec["steps"]):
            contexts["job"] = {"status": status}
            contexts["env"] = {**workflow_env, **job_env, **exported}
            title = step.get("name") or step.get("uses") or step.get("run", "").split("\n")[0]
            if not condition(step.get("if"), contexts):
                job.log += f"--- {title}: skipped\n"
                continue
            step_env = {k: str(v) for k, v in render(step.get("env", {}), contexts).items()}
            files = {
                name: home / "files" / f"{index}-{name.lower()}"
                for name in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY", "GITHUB_PATH")
            }
            for path in files.values():
                path.touch()
            environ = {
                **base,
                **workflow_env,
                **job_env,
                **exported,
                **step_env,
                **{k: str(v) for k, v in files.items()},
            }
            job.log += f"--- {title}\n"
            if "uses" in step:
                code, output = self._uses(run, step, contexts, environ, workspace, home)
            else:
                code, output = self._bash(job, render(step["run"], contexts), environ, workspace)
            job.log += output
            outputs = _key_values(files["GITHUB_OUTPUT"].read_text())
            exported.update(_key_values(files["GITHUB_ENV"].read_text()))
            job.summary += files["GITHUB_STEP_SUMMARY"].read_text()
            outcome = "success" if code == 0 else "failure"
            if code != 0:
                job.log += f"--- {title}: exit {code}\n"
                status = "failure"
            if "id" in step:
                steps[step["id"]] = {"outputs": outputs, "outcome": outcome, "conclusion": outcome}
        job.outputs = {k: str(v) for k, v in render(spec.get("outputs", {}), contexts).items()}
        return status

    def _bash(self, job: Job, script: str, environ: dict[str, str], cwd: Path) -> tuple[int, str]:
        if script.strip() == INSTALL_STEP:
            return 0, "stood in: pfsync under test is already on PATH\n"
        path = Path(environ["RUNNER_TEMP"]).parent / "files" / f"step-{os.urandom(4).hex()}.sh"
        path.write_text(script)
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)],
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a process group of its own, for runner.kill
        )
        job.process = process
        try:
            output, _ = process.communicate(timeout=JOB_SECONDS)
        finally:
            job.process = None
        return process.returncode, output

    # Stand-ins for the actions

    def _uses(
        self,
        run: Run,
        step: dict[str, Any],
        contexts: dict[str, Any],
        environ: dict[str, str],
        workspace: Path,
        home: Path,
    ) -> tuple[int, str]:
        action = step["uses"].split("@")[0]
        given = {k: render(v, contexts) for k, v in (step.get("with") or {}).items()}
        if action == "actions/checkout":
            return self._checkout(run, given, workspace)
        if action == "actions/setup-python":
            return 0, "stood in: the test's Python is on PATH\n"
        if action == "actions/upload-artifact":
            return self._upload(run, given, workspace)
        if action == "actions/download-artifact":
            return self._download(run, given, workspace)
        if action == "actions/github-script":
            if shutil.which("node") is None:
                return 0, "stood in: node is not installed; the comment was not posted\n"
            work = home / "github-script"
            work.mkdir()
            return run_github_script(
                given["script"], self.api, run.event_name, run.payload, environ, work
            )
        raise AssertionError(f"the runner has no stand-in for {step['uses']}")

    def _checkout(self, run: Run, given: dict[str, Any], workspace: Path) -> tuple[int, str]:
        ref = str(given.get("ref") or run.sha)
        depth = int(given.get("fetch-depth", 1))
        git(workspace, "init", "--quiet", "-b", "checkout-init")  # unborn: it leaves no branch
        git(workspace, "remote", "add", "origin", self.origin.as_uri())
        branch = _has_branch(self.origin, ref)
        if depth == 0:
            every_ref = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
            git(workspace, "fetch", "--quiet", "origin", *every_ref, *([] if branch else [ref]))
        else:
            source = f"+refs/heads/{ref}:refs/remotes/origin/{ref}" if branch else ref
            git(workspace, "fetch", "--quiet", f"--depth={depth}", "origin", source)
        if branch:
            git(workspace, "checkout", "--quiet", "-B", ref, f"refs/remotes/origin/{ref}")
        else:
            git(workspace, "checkout", "--quiet", "--detach", "FETCH_HEAD" if depth else ref)
        if str(given.get("persist-credentials", True)).lower() == "false":
            git(workspace, "remote", "set-url", "--push", "origin", "/no-credentials/origin.git")
        head = git(workspace, "rev-parse", "HEAD").strip()
        return 0, f"stood in: checked out {ref} ({head}), fetch-depth {depth}\n"

    def _upload(self, run: Run, given: dict[str, Any], workspace: Path) -> tuple[int, str]:
        target = run.artifacts / str(given["name"])
        for line in str(given["path"]).splitlines():
            source = workspace / line.strip()
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            elif source.is_file():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / source.name)
            elif given.get("if-no-files-found", "warn") == "error":
                return 1, f"::error::No files were found with the provided path: {line}\n"
        return 0, f"stood in: uploaded artifact {given['name']}\n"

    def _download(self, run: Run, given: dict[str, Any], workspace: Path) -> tuple[int, str]:
        source_run = run
        if given.get("run-id"):
            [source_run] = [r for r in self.runs if r.run_id == int(given["run-id"])]
        destination = workspace / str(given.get("path") or ".")
        if given.get("name"):
            found = [source_run.artifacts / str(given["name"])]
            if not found[0].is_dir():
                return 1, f"::error::Artifact not found: {given['name']}\n"
        else:
            pattern = re.escape(str(given.get("pattern", "*"))).replace(r"\*", ".*")
            found = sorted(
                p for p in source_run.artifacts.iterdir() if re.fullmatch(pattern, p.name)
            )
        merge = given.get("name") or given.get("merge-multiple") in (True, "true")
        for artifact in found:
            shutil.copytree(
                artifact, destination if merge else destination / artifact.name, dirs_exist_ok=True
            )
        return 0, f"stood in: downloaded {', '.join(p.name for p in found) or 'nothing'}\n"

    # Contexts and environment

    def _contexts(
        self,
        run: Run,
        matrix: dict[str, Any],
        needs: dict[str, Any],
        status: str = "success",
    ) -> dict[str, Any]:
        secrets = {**self.secrets} if run.secrets_available else {}
        return {
            "github": {
                "event": run.payload,
                "event_name": run.event_name,
                "sha": run.sha,
                "ref": f"refs/heads/{run.ref_name}",
                "ref_name": run.ref_name,
                "repository": self.api.repository,
                "run_id": str(run.run_id),
                "token": "fake-github-token",
                "server_url": SERVER_URL,
            },
            "matrix": matrix,
            "needs": needs,
            "secrets": {**secrets, "GITHUB_TOKEN": "fake-github-token"},
            "vars": {},
            "inputs": {},
            "job": {"status": status},
            "runner": {"temp": "", "os": "Linux"},
        }

    def _group(self, spec: Any, contexts: dict[str, Any]) -> str:
        if not spec:
            return ""
        group = spec.get("group") if isinstance(spec, dict) else spec
        return str(render(group, contexts)).strip()

    def _github_environ(self, run: Run, job: Job, workspace: Path, home: Path) -> dict[str, str]:
        event_path = home / "event.json"
        event_path.write_text(json.dumps(run.payload))
        return {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(home / "home"),
            "LANG": "C.UTF-8",
            "TMPDIR": tempfile.gettempdir(),
            "XDG_CACHE_HOME": str(home / "home" / ".cache"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_RUN_ID": str(run.run_id),
            "GITHUB_RUN_NUMBER": str(run.run_id - 1000),
            "GITHUB_RUN_ATTEMPT": str(job.attempt),
            "GITHUB_JOB": job.job_id,
            "GITHUB_SHA": run.sha,
            "GITHUB_REF": f"refs/heads/{run.ref_name}",
            "GITHUB_REF_NAME": run.ref_name,
            "GITHUB_EVENT_NAME": run.event_name,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_REPOSITORY": self.api.repository,
            "GITHUB_SERVER_URL": SERVER_URL,
            "GITHUB_API_URL": SERVER_URL,
            "GITHUB_WORKSPACE": str(workspace),
        }


def git(cwd: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **QUIET_GIT},
        timeout=60,
    )
    assert proc.returncode == 0 or not check, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def _has_branch(origin: Path, ref: str) -> bool:
    found = subprocess.run(
        ["git", "--git-dir", str(origin), "rev-parse", "--verify", "--quiet", f"refs/heads/{ref}"],
        capture_output=True,
        timeout=60,
    )
    return found.returncode == 0


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _needs_order(jobs: dict[str, Any]) -> list[str]:
    """The job ids in an order that puts each after what it needs (YAML order otherwise)."""
    order: list[str] = []
    while len(order) < len(jobs):
        ready = [
            job_id
            for job_id, spec in jobs.items()
            if job_id not in order and all(n in order for n in _listed(spec.get("needs")))
        ]
        assert ready, f"a cycle in needs: {jobs.keys() - set(order)}"
        order.append(ready[0])
    return order


def _matrix_legs(matrix: Any) -> list[dict[str, Any]]:
    if not matrix:
        return [{}]
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]


def _outputs(run: Run, job_id: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for job in run.jobs.get(job_id, []):
        merged.update(job.outputs)
    return merged


def _key_values(text: str) -> dict[str, str]:
    """The NAME=value and NAME<<DELIMITER lines of a GITHUB_OUTPUT or GITHUB_ENV file."""
    found: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            held: list[str] = []
            for item in lines:
                if item == delimiter:
                    break
                held.append(item)
            found[name] = "\n".join(held)
        elif "=" in line:
            name, value = line.split("=", 1)
            found[name] = value
    return found
