"""A recorded fake of the few GitHub API calls pfsync's comment workflow makes, and the node
harness that runs an `actions/github-script` script against it.

api = FakeGitHub("acme/triggers")
api.pulls[7] = {"number": 7, "head": {"sha": …, "ref": …, "repo": {"full_name": …}}, …}
api.comments[7] -> [{"id": 1, "user": {"login": "github-actions[bot]"}, "body": "…"}]
api.calls       -> every call, e.g. ("pulls.get", {...}), ("issues.createComment", {...})
api.comment(7)  -> the body of the bot's comment on #7 (AssertionError unless exactly one)
run_github_script(script, api, payload, environ, cwd) -> (exit code, output)
                  runs `script` with node: `github` (rest.pulls.get, rest.issues.listComments,
                  createComment, updateComment, paginate), `context` (repo, payload, eventName)
                  and `core` (info, notice, warning, error, setFailed) are given; the calls are
                  applied to `api` afterwards, in order. Only when shutil.which("node") finds
                  node: the runner stands the step in otherwise.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

BOT = "github-actions[bot]"

HARNESS = """\
const fs = require('fs');
const state = JSON.parse(fs.readFileSync(process.env.FAKE_GITHUB_STATE, 'utf8'));
const calls = [];
let nextId = state.next_id;
const found = (what) => { const e = new Error(`Not Found: ${what}`); e.status = 404; throw e; };
const github = {
  rest: {
    pulls: {
      get: async ({ pull_number }) => {
        calls.push(['pulls.get', { pull_number }]);
        const pr = state.pulls[String(pull_number)];
        return pr ? { data: pr } : found(`pull request ${pull_number}`);
      },
    },
    issues: {
      listComments: async ({ issue_number }) => {
        calls.push(['issues.listComments', { issue_number }]);
        return { data: state.comments[String(issue_number)] || [] };
      },
      createComment: async ({ issue_number, body }) => {
        const comment = { id: nextId++, user: { login: state.bot }, body };
        calls.push(['issues.createComment', { issue_number, body, id: comment.id }]);
        (state.comments[String(issue_number)] ||= []).push(comment);
        return { data: comment };
      },
      updateComment: async ({ comment_id, body }) => {
        calls.push(['issues.updateComment', { comment_id, body }]);
        return { data: { id: comment_id, body } };
      },
    },
  },
  paginate: async (method, request) => (await method(request)).data,
};
const context = {
  repo: { owner: state.repository.split('/')[0], repo: state.repository.split('/')[1] },
  payload: state.payload,
  eventName: state.event_name,
};
let failed = null;
const core = {
  info: (m) => console.log(m),
  notice: (m) => console.log(`::notice::${m}`),
  warning: (m) => console.log(`::warning::${m}`),
  error: (m) => console.log(`::error::${m}`),
  setFailed: (m) => { failed = m; console.log(`::error::${m}`); },
};
const save = () => fs.writeFileSync(process.env.FAKE_GITHUB_CALLS, JSON.stringify(calls));
(async () => {
SCRIPT
})().then(
  () => { save(); process.exit(failed === null ? 0 : 1); },
  (error) => { save(); console.log(`::error::${error.message}`); process.exit(1); },
);
"""


class FakeGitHub:
    """Pull requests and their comments, as the comment workflow reads and writes them."""

    def __init__(self, repository: str) -> None:
        self.repository = repository
        self.pulls: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.next_id = 1

    def comment(self, number: int) -> str:
        """The body of the bot's one comment on pull request `number`."""
        [mine] = [c for c in self.comments.get(number, []) if c["user"]["login"] == BOT]
        body: str = mine["body"]
        return body

    def apply(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        """Carry out the recorded calls of one script run."""
        for name, request in calls:
            self.calls.append((name, request))
            if name == "issues.createComment":
                comment = {"id": request["id"], "user": {"login": BOT}, "body": request["body"]}
                self.comments.setdefault(request["issue_number"], []).append(comment)
                self.next_id = max(self.next_id, request["id"] + 1)
            elif name == "issues.updateComment":
                for comments in self.comments.values():
                    for comment in comments:
                        if comment["id"] == request["comment_id"]:
                            comment["body"] = request["body"]


def run_github_script(
    script: str,
    api: FakeGitHub,
    event_name: str,
    payload: dict[str, Any],
    environ: dict[str, str],
    cwd: Path,
) -> tuple[int, str]:
    """Run an actions/github-script `script` with node against `api`: (exit code, output)."""
    state = {
        "repository": api.repository,
        "bot": BOT,
        "next_id": api.next_id,
        "pulls": {str(n): pr for n, pr in api.pulls.items()},
        "comments": {str(n): c for n, c in api.comments.items()},
        "payload": payload,
        "event_name": event_name,
    }
    (cwd / "fake-github-state.json").write_text(json.dumps(state))
    (cwd / "harness.js").write_text(HARNESS.replace("SCRIPT", script))
    calls_file = cwd / "fake-github-calls.json"
    proc = subprocess.run(
        ["node", str(cwd / "harness.js")],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={
            **environ,
            "FAKE_GITHUB_STATE": str(cwd / "fake-github-state.json"),
            "FAKE_GITHUB_CALLS": str(calls_file),
        },
        timeout=60,
    )
    if calls_file.exists():
        api.apply([(name, request) for name, request in json.loads(calls_file.read_text())])
    return proc.returncode, proc.stdout + proc.stderr
