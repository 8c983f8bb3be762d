"""Every command pfsync prints for a person works as pasted.

In an environments repository (whose folder name has a space), each kind of remedy, hint and
next step is produced in process, three ways: `-e staging`; `-C DIR --config FILE -e staging`
from the folder above; and `-e staging … --sandbox`. Every `pfsync …` command in the output (in
backticks, or a step of `Next: … && …`) is read back by click's parser down to its command, and
must name the same directory, config, environment and sandbox mode as the run that printed it,
and only addresses the repository knows. Upper-case words (ID, NEW_ADDRESS) are the placeholders
the remedies tell a person to fill in.

An architecture test keeps it so: outside support/invocation.py, no module writes a
`pfsync <command>` by hand in text it prints (docstrings and --help texts may show examples).
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

import click
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from project_helpers import body, manifest_yaml

from cli_helpers import command_path, options_of, parse_down
from conftest import REPO, run_in_process
from git_helpers import git
from pfsync.cli.common import GlobalOptions
from pfsync.models import DesiredTrigger
from pfsync.state.lock_record import StateLockRecord
from pfsync.state.lockfile import Lockfile, save_lockfile
from pfsync.state.trigger_records import PendingCreate, TriggerRecord
from pfsync.support.canonical import body_digest
from pfsync.support.invocation import Invocation

CONFIG = """\
business: biz_1
environments:
  staging:
    lockfile: state/staging.lock
  production:
    business: biz_2
    lockfile: state/production.lock
"""
API_URL = "https://api.pocketflows.com"
SANDBOX_API_URL = "sandbox:.pfsync"
# What the manifests declare (key: name, revision) and what the lockfile records.
DECLARED = {"changed": ("B", 0), "raised": ("R", 1), "new-name": ("N", 0), "unsure": ("U", 0)}
RECORDED = {"changed": "A", "raised": "R", "old-name": "N", "gone": "G", "lost-id": "L"}
PENDING = {"unsure": "U", "abandoned": "X"}
ADDRESSES = {f"biz_1/{key}" for key in (*DECLARED, *RECORDED, *PENDING)}
PLACEHOLDER = re.compile(r"[A-Z][A-Z_]*")
# Modules whose printed commands are still written by hand (none now). Each must still hold a
# hand-written command, so the list only shrinks.
NOT_YET_CONVERTED: set[str] = set()


def _record(key: str, name: str) -> TriggerRecord:
    spec = body(name)
    return TriggerRecord(
        id=None if key == "lost-id" else f"trg_{key}",
        origin="created",
        created_at="2026-01-01T00:00:00Z",
        status="draft",
        revision=0,
        body=spec,
        digest=body_digest(spec),
        file=f"triggers/{key}.yaml",
    )


def _pending(key: str, name: str) -> PendingCreate:
    trigger = DesiredTrigger.at_address(
        f"biz_1/{key}", body(name), body_digest(body(name)), 0, f"triggers/{key}.yaml"
    )
    return PendingCreate(trigger, f"1111111{len(key)}-2222-4333-8444-555555555555", "t0", "504")


def _lockfile(api_url: str) -> Lockfile:
    return Lockfile(
        lineage="0f0e0d0c-0b0a-4908-8706-050403020100",
        serial=1,
        api_url=api_url,
        triggers={f"biz_1/{key}": _record(key, name) for key, name in RECORDED.items()},
        pending={f"biz_1/{key}": _pending(key, name) for key, name in PENDING.items()},
        environment="staging",
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repository(tmp_path)


def make_repository(tmp_path: Path) -> Path:
    """An environments repository whose staging plan has every kind of entry needing a person
    (in its lockfile and in sandbox mode's)."""
    root = tmp_path / "my repo"
    (root / "triggers").mkdir(parents=True)
    (root / "pfsync.yaml").write_text(CONFIG, encoding="utf-8")
    for key, (name, revision) in DECLARED.items():
        text = manifest_yaml(key, name, revision=revision or None)
        (root / "triggers" / f"{key}.yaml").write_text(text, encoding="utf-8")
    (root / "state").mkdir()
    save_lockfile(root / "state" / "staging.lock", None, _lockfile(API_URL))
    sandbox = root / ".pfsync" / "env" / "staging"
    sandbox.mkdir(parents=True)
    save_lockfile(sandbox / "pfsync.lock", None, _lockfile(SANDBOX_API_URL))
    return root


@dataclass(frozen=True)
class Run:
    """How a scenario runs pfsync: from where, with which global words and --sandbox."""

    name: str
    before: tuple[str, ...]  # global options, before the command
    from_parent: bool = False
    sandbox: bool = False

    def argv(self, *command: str) -> list[str]:
        return [*self.before, *command, *(["--sandbox"] if self.sandbox else [])]


RUNS = [
    Run("env", ("-e", "staging")),
    Run("dir+config", ("-C", "my repo", "--config", "my repo/pfsync.yaml", "-e", "staging"), True),
    Run("sandbox", ("-e", "staging"), sandbox=True),
]


def printed_commands(output: str) -> list[str]:
    """The `pfsync …` commands in `output`: in backticks, or a step of `Next: a && b`."""
    found = re.findall(r"`(pfsync [^`]*)`", output)
    for line in re.sub(r"`[^`]*`", "", output).splitlines():
        for step in line.removeprefix("Next:").split("&&"):
            step = step.split("   (")[0].strip()
            if step.startswith("pfsync "):
                found.append(step)
    return found


def check_command(text: str, run: Run, known: set[str] = ADDRESSES) -> None:
    """`text` parses down to a command, with the run's -C, --config, -e and --sandbox, and
    names only known addresses or placeholders."""
    words = shlex.split(text)
    assert words[0] == "pfsync", text
    chain = parse_down(words[1:])
    command = chain[-1].command
    assert not isinstance(command, click.Group) or command_path(chain) == "sandbox", text
    options = options_of(chain)
    given = dict(zip(run.before[::2], run.before[1::2], strict=True))
    expected = (given.get("-C"), given.get("--config"), given.get("-e"))
    assert (options.directory, options.config_path, options.environment) == expected, text
    if "sandbox" in chain[-1].params:
        assert chain[-1].params["sandbox"] is run.sandbox, text
    else:  # `sandbox list`: only where sandbox mode is what the person looks at
        assert command_path(chain) in {"sandbox list", "validate"}, text
        assert run.sandbox or command_path(chain) == "validate", text
    for name in ("address", "addresses", "old", "new"):
        values = chain[-1].params.get(name)
        for value in (values,) if isinstance(values, str) else values or ():
            assert value in known or PLACEHOLDER.fullmatch(value), (text, value)


def run_pfsync_in(repo: Path, run: Run, *command: str) -> tuple[int, str]:
    return run_in_process(run.argv(*command), repo.parent if run.from_parent else repo)


@pytest.mark.parametrize("run", RUNS, ids=lambda run: run.name)
def test_every_remedy_and_hint_of_a_plan_works_as_pasted(
    repo: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = run_pfsync_in(repo, run, "plan", "--out", "-plan.json")
    assert code == 0, output
    monkeypatch.chdir(repo.parent if run.from_parent else repo)  # apply's PLANFILE must exist
    commands = printed_commands(output)
    # update, delete (twice), the rename's two sides, two uncertain creates, the saved plan.
    states = [c for c in commands if " state " in c]
    assert len(states) >= 10, output
    for text in commands:
        check_command(text, run)
    apply = [c for c in commands if " apply " in c]
    assert len(apply) == 1 and shlex.split(apply[0])[-2:] == ["--", "-plan.json"], output
    if run.sandbox:
        assert "`pfsync -e staging sandbox list`" in output, output
        assert "in Pocketflows: if it exists" not in output, output


@pytest.mark.parametrize("run", RUNS, ids=lambda run: run.name)
def test_the_errors_advice_works_as_pasted(repo: Path, run: Run) -> None:
    """A --replace of an uncertain create, an address `state show` cannot find, a manifest
    problem and a declaration that contradicts the lockfile: each names its commands."""
    outputs = [
        run_pfsync_in(repo, run, "plan", "--replace", "biz_1/unsure"),
        run_pfsync_in(repo, run, "state", "show", "biz_1/nowhere"),
    ]
    moves = repo / "triggers" / "moves.yaml"
    moves.write_text("apiVersion: pfsync/v1\nkind: Moved\nfrom: changed\nto: raised\n")
    outputs.append(run_pfsync_in(repo, run, "plan"))
    moves.write_text("apiVersion: pfsync/v1\nkind: Trigger\nkey: broken\n")
    outputs.append(run_pfsync_in(repo, run, "plan"))
    for code, output in outputs:
        assert code == 1, output
        commands = printed_commands(output)
        assert commands, output
        for text in commands:
            check_command(text, run, ADDRESSES | {"biz_1/nowhere"})


LOCK_ID = "5f0c6c2e-8d7a-4d0e-9c53-2b1f3f1d9a10"


def _git_store_with_a_held_lock(repo: Path, tmp_path: Path) -> None:
    """`repo` made a clone whose staging lockfile lives on origin's main (the git store), and
    recorded there while a dead run holds its lock."""
    config = CONFIG.replace("state/staging.lock\n", "state/staging.lock\n    state: {store: git}\n")
    (repo / "pfsync.yaml").write_text(config, encoding="utf-8")
    lock = StateLockRecord(LOCK_ID, "ci-7", 12, None, "2026-01-31T12:00:00Z", "apply")
    save_lockfile(repo / "state" / "staging.lock", None, replace(_lockfile(API_URL), lock=lock))
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
    git(repo, "init", "--quiet", "-b", "main")
    git(repo, "add", "pfsync.yaml", "triggers", "state")
    git(repo, "commit", "--quiet", "-m", "start")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "--quiet", "origin", "main")


@pytest.mark.parametrize("run", RUNS[:2], ids=lambda run: run.name)
def test_a_held_lock_names_the_unlock_command_of_its_environment(
    repo: Path, tmp_path: Path, run: Run
) -> None:
    _git_store_with_a_held_lock(repo, tmp_path)
    code, output = run_pfsync_in(repo, run, "state", "rm", "biz_1/gone")
    assert code == 1, output
    commands = printed_commands(output)
    assert [shlex.split(c)[-1] for c in commands if " unlock " in c] == [LOCK_ID], output
    for text in commands:
        check_command(text, run)


@pytest.mark.parametrize("run", RUNS[:2], ids=lambda run: run.name)
def test_unlock_names_the_commands_that_settle_what_the_dead_run_left(
    repo: Path, tmp_path: Path, run: Run
) -> None:
    _git_store_with_a_held_lock(repo, tmp_path)
    code, output = run_pfsync_in(repo, run, "state", "unlock", LOCK_ID)
    assert code == 0, output
    commands = printed_commands(output)
    assert len(commands) >= 3, output
    for text in commands:
        check_command(text, run)


SANDBOX_RUNS = [RUNS[2], Run("dir+config+sandbox", RUNS[1].before, True, sandbox=True)]


@pytest.mark.parametrize("run", SANDBOX_RUNS, ids=lambda run: run.name)
def test_an_apply_whose_creates_are_uncertain_prints_commands_that_work(
    repo: Path, run: Run
) -> None:
    """apply's plan, its uncertain outcomes' advice and its closing sandbox note."""
    faults = ("--sandbox-faults", "lose-response=1,seed=1")
    code, output = run_pfsync_in(repo, run, "apply", "--auto-approve", *faults)
    assert code == 3, output
    commands = printed_commands(output)
    assert len([c for c in commands if " sandbox list" in c]) >= 5, output
    for text in commands:
        check_command(text, run)


@pytest.mark.parametrize(
    ("argv", "first", "go_there"),
    [
        (["init", "my new", "--env", "staging", "--env", "prod"], "staging", "cd 'my new' && "),
        (
            ["init", "my new", "--ci", "github", "-e", "staging", "--business", "biz_1"],
            "staging",
            "cd 'my new' && git init -b main && ",
        ),
        (["init", "--", "-dir"], None, "cd ./-dir && "),
    ],
)
def test_init_next_steps_work_as_pasted_from_where_init_ran(
    tmp_path: Path, argv: list[str], first: str | None, go_there: str
) -> None:
    code, output = run_in_process(argv, tmp_path)
    assert code == 0, output
    assert f"Next: {go_there}pfsync validate && " in output, output
    commands = printed_commands(output)
    assert len(commands) >= 2, output
    for text in commands:
        # validate checks every environment; the others name the first one.
        words = ("-e", first) if first and " validate" not in text else ()
        check_command(text, Run("init", words, sandbox="--sandbox" in text), known=set())


def test_init_refusing_a_selected_environment_names_a_command_that_works(tmp_path: Path) -> None:
    code, output = run_in_process(["-e", "x", "init", "--env", "a", "--", "-d"], tmp_path)
    assert code == 1
    (text,) = re.findall(r"give them to init: (.*)$", output, re.M)
    chain = parse_down(shlex.split(text)[1:])
    assert chain[-1].params["directory"] == "-d"
    assert chain[-1].params["environments"] == ("a", "x")


# ---------------------------------------------------------------------------------------------
# No module writes `pfsync <command>` by hand in what it prints.

COMMAND_NAMES = "validate|plan|apply|state|sandbox|init|schema|cache"
# A command for a person: in backticks, or a string that is one (`pfsync -e x plan …`).
HAND_WRITTEN = re.compile(rf"(?:`|^)pfsync (?:-\S+ (?:\S+ )?)*(?:{COMMAND_NAMES})\b")
# A command named, not given to run (what wrote a placeholder), and the example in the comment
# of the pfsync.yaml init writes.
NAMED = ("`pfsync init` wrote", '`pfsync init` "', "`pfsync -e NAME plan`")


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _help_texts(tree: ast.AST) -> set[int]:
    """The ids of string nodes given as `help=` (click options) or `epilog=`."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in {"help", "epilog", "metavar"}:
            found |= {id(part) for part in ast.walk(node.value)}
    return found


def _literal_text(node: ast.AST) -> str | None:
    """A string literal's text, an f-string's with `X` for each value put in; else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else "X"
            for part in node.values
        )
    return None


def hand_written_commands(path: Path) -> list[str]:
    """The string literals of `path` that write a `pfsync <command>` by hand, outside
    docstrings and help texts."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    allowed = _docstrings(tree) | _help_texts(tree)
    inside = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
    }
    found = []
    for node in ast.walk(tree):
        text = _literal_text(node)
        if text is None or id(node) in allowed | inside:
            continue
        for named in NAMED:
            text = text.replace(named, "")
        if HAND_WRITTEN.search(text):
            found.append(f"{getattr(node, 'lineno', 0)}: {text.strip()[:80]}")
    return found


def test_no_module_writes_a_pfsync_command_by_hand() -> None:
    package = REPO / "pfsync"
    offenders = {
        str(path.relative_to(REPO)): hand_written_commands(path)
        for path in sorted(package.rglob("*.py"))
        if path.name != "invocation.py"
    }
    offenders = {name: lines for name, lines in offenders.items() if lines}
    assert {name: lines for name, lines in offenders.items() if name not in NOT_YET_CONVERTED} == {}
    assert set(offenders) >= NOT_YET_CONVERTED, "converted: take it off NOT_YET_CONVERTED"


def test_the_scan_finds_a_hand_written_command(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        '"""`pfsync plan` in a docstring is an example."""\n'
        'import click\n@click.option("--x", help="see `pfsync state list`")\n'
        'def f() -> str:\n    return f"run `pfsync -e {1} state rm {2}`"\n'
    )
    assert hand_written_commands(source) == ["5: run `pfsync -e X state rm X`"]


def test_the_repository_plans_every_kind_of_entry_needing_a_person(repo: Path) -> None:
    """What the scenarios above rely on: staging's plan has each kind of remedy."""
    code, output = run_in_process(["-e", "staging", "plan"], repo)
    assert (code, output.splitlines()[-1]) == (
        0,
        "Plan: 1 to create, 1 to replace. Needs a person: 1 update, 3 delete, 2 uncertain. "
        "0 unchanged.",
    ), output


WORDS = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    directory=st.none() | WORDS,
    config=st.none() | WORDS,
    environment=st.none() | WORDS,
    sandbox=st.booleans(),
    address=WORDS,
    trigger_id=WORDS,
)
def test_any_invocation_builds_a_command_that_parses_back_to_it(
    directory: str | None,
    config: str | None,
    environment: str | None,
    sandbox: bool,
    address: str,
    trigger_id: str,
) -> None:
    """Whatever the words (`-x`, `--`, spaces, quotes, `$`), the command pfsync prints gives
    click back exactly the run's options and the command's arguments."""
    for path in (directory, config):
        assume(path is None or not Path(path).exists())  # -C wants no file, --config no folder
    invocation = Invocation(environment, directory, config, sandbox)
    text = invocation.command("state import", address, trigger_id, options=("--force",))
    chain = parse_down(shlex.split(text)[1:])
    assert command_path(chain) == "state import"
    assert options_of(chain) == GlobalOptions(0, directory, config, environment=environment)
    params = chain[-1].params
    assert params["pairs"] == (address, trigger_id)
    assert (params["force"], params["sandbox"]) == (True, sandbox)
