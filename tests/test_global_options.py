"""Global options are click parameters every command accepts, before or after its name.

No argv is rewritten: a value that looks like an option (`plan --out -e.json`) stays the value
of the option it follows, because click's parser knows which options take values.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from project_helpers import NOT_A_REPOSITORY

from apply_helpers import make_repo
from cli_helpers import command_path, commands, options_of, parse_down
from conftest import RunPfsync, run_in_process
from pfsync.cli.common import GlobalOptions

PLAN_OF_TWO = (
    "Business: biz_e2e\n"
    "API: https://api.pocketflows.com\n"
    "Lockfile: pfsync.lock does not exist yet: every declared trigger is a create.\n"
    + NOT_A_REPOSITORY
    + "\n"
    + "".join(
        f"+ biz_e2e/{key}  create  triggers/{key}.yaml:3\n"
        f'      $.spec.name: "Trigger {key}"\n'
        '      $.spec.project_defined_event: "pde_signup"\n'
        '      $.spec.steps[0].type: "email"\n'
        f'      $.spec.steps[0].email_template_id: "et_{key}"\n'
        "\n"
        for key in ("t000", "t001")
    )
    + "Plan: 2 to create, 0 to replace. Needs a person: 0 update, 0 delete, 0 uncertain. "
    "0 unchanged.\n"
)


def test_plan_dash_v_is_pfsync_dash_v_plan(run_pfsync: RunPfsync, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, 2)
    after = run_pfsync("plan", "-v", "--no-color", cwd=repo)
    before = run_pfsync("-v", "--no-color", "plan", cwd=repo)
    # -v adds the state read (no lockfile yet) and the unchanged addresses (none) on stderr.
    verbose = "State: pfsync.lock (file store), not written yet\nUnchanged: none\n"
    assert (after.code, after.out, after.err) == (0, PLAN_OF_TWO, verbose)
    assert (before.code, before.out, before.err) == (0, PLAN_OF_TWO, verbose)
    quiet = run_pfsync("validate", "-q", cwd=repo)
    assert (quiet.code, quiet.out, quiet.err) == (0, "", "")


def test_plan_out_takes_a_value_that_looks_like_an_option(
    run_pfsync: RunPfsync, tmp_path: Path
) -> None:
    """`--out -e.json` saves to `-e.json` (it was taken for `-e .json`), and the apply command
    it prints works as pasted: the file name follows `--`."""
    repo = make_repo(tmp_path, 2)
    run = run_pfsync("plan", "--out", "-e.json", "-q", cwd=repo)
    assert (run.code, run.out, run.err) == (0, PLAN_OF_TWO, "")
    assert (repo / "-e.json").is_file()
    run = run_pfsync("plan", "--out=-q.json", cwd=repo)
    hint = "Saved the plan to -q.json; apply it with `pfsync apply -- -q.json`.\n"
    assert (run.code, run.out, run.err) == (0, PLAN_OF_TWO, hint)
    assert (repo / "-q.json").is_file()


def test_options_in_process(tmp_path: Path) -> None:
    """The same, in process: -C after the command, then `--` before a file named like an option."""
    repo = make_repo(tmp_path, 1)
    code, _ = run_in_process(["plan", "-C", str(repo), "--out", "-C.json", "-q"], tmp_path)
    assert code == 0
    assert (repo / "-C.json").is_file()


# Every option that takes a value, on every command (the group included), read from the tree.
VALUED = [
    (path, command, param)
    for path, command in commands()
    for param in command.params
    if isinstance(param, click.Option) and not param.is_flag and not param.count
]
# Values a parser could mistake for options, or that a shell would split, or that contain `=`:
# each is an explicit example of every option below, always run; random text adds the rest.
TRICKY = ["-e.json", "-Cx", "--", "-", "-q", "--env", "--help", "a b", "=", "a=b", "--x=y", ""]
VALUES = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12
)
TestFunction = TypeVar("TestFunction", bound=Callable[..., None])


def with_tricky_values(test: TestFunction) -> TestFunction:
    """Run `test` on every TRICKY value (Hypothesis's explicit examples) before drawn ones."""
    for value in reversed(TRICKY):
        test = example(value=value)(test)
    return test


def _forms(param: click.Option, value: str) -> list[list[str]]:
    """`--opt VALUE` and `--opt=VALUE` (`-C VALUE` and `-CVALUE` for a short-only option)."""
    long = [name for name in param.opts if name.startswith("--")]
    if long:
        return [[long[0], value], [f"{long[0]}={value}"]]
    short = param.opts[0]
    return [[short, value]] + ([[short + value]] if value else [])


def _required(command: click.Command, tested: click.Option) -> list[str]:
    """What the command needs besides the tested option: its other required options, then a
    word for each required argument after `--` (so none is read as an option)."""
    options = [
        word
        for param in command.params
        if isinstance(param, click.Option) and param.required and param is not tested
        for word in (param.opts[0], "x")
    ]
    arguments = [
        "x" for param in command.params if isinstance(param, click.Argument) and param.required
    ]
    return options + (["--", *arguments] if arguments else [])


def _id(case: tuple[tuple[str, ...], click.Command, click.Option]) -> str:
    return " ".join(("pfsync", *case[0], case[2].opts[0]))


@pytest.mark.parametrize("case", VALUED, ids=_id)
@settings(max_examples=8, deadline=None)
@given(value=VALUES)
@with_tricky_values
def test_every_value_reaches_its_option(
    case: tuple[tuple[str, ...], click.Command, click.Option], value: str
) -> None:
    """The parser gives each option exactly the word after it, whatever it looks like."""
    path, command, param = case
    assert param.name is not None
    for words in _forms(param, value):
        # The group's help names: click caches a command's help option from the first context
        # it sees, and a bare one would leave `--help` alone to every later run.
        context = click.Context(
            command, info_name=path[-1] if path else None, help_option_names=["-h", "--help"]
        )
        parser = command.make_parser(context)
        given, _, _ = parser.parse_args([*words, *_required(command, param)])
        assert given[param.name] == ([value] if param.multiple else value), words


# The global options' parameters, by the GlobalOptions field they fill.
GLOBAL_FIELDS = {f"global_{name}": name for name in ("directory", "config_path", "environment")}
TEXT_TYPES = (click.types.StringParamType, click.Path)


def _reaches_the_command_as_given(param: click.Option, command: click.Command) -> bool:
    """Whether any text is the option's value as the command sees it. Not for a typed option
    (choices, numbers) or a group's, nor one that parses its value (--sandbox-faults): for
    those, the parser test above checks the word."""
    if not isinstance(param.type, TEXT_TYPES) or isinstance(command, click.Group):
        return False
    return param.callback is None or param.name in GLOBAL_FIELDS


@pytest.mark.parametrize(
    "case", [c for c in VALUED if _reaches_the_command_as_given(c[2], c[1])], ids=_id
)
# Every tricky value, and 3 drawn texts: those reach the parser's test above 8 times per option;
# here what is checked is what the command sees.
@settings(max_examples=3, deadline=None)
@given(value=VALUES)
@with_tricky_values
def test_every_text_value_reaches_its_command(
    case: tuple[tuple[str, ...], click.Command, click.Option], value: str
) -> None:
    """Parsed down to the command, as pfsync will: a global option's value is what the command
    sees as global options, and a command's own text option's value is its parameter."""
    path, command, param = case
    assert param.name is not None
    # A path type refuses an existing path of the wrong kind (`--config /`): rightly.
    assume(not isinstance(param.type, click.Path) or not os.path.exists(value))
    for words in _forms(param, value):
        chain = parse_down([*path, *words, *_required(command, param)])
        assert command_path(chain) == " ".join(path)
        if param.name in GLOBAL_FIELDS:
            assert getattr(options_of(chain), GLOBAL_FIELDS[param.name]) == value, words
        else:
            got = chain[-1].params[param.name]
            assert got == ((value,) if param.multiple else value), words


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-e", "a", "plan", "-e", "b"], GlobalOptions(0, None, None, environment="b")),
        (["-v", "plan", "-v"], GlobalOptions(2, None, None)),
        (["-C", "d", "state", "-C", "e", "list"], GlobalOptions(0, "e", None)),
        (["state", "list", "--config=c.yaml", "-q"], GlobalOptions(-1, None, "c.yaml")),
        (["plan", "--no-cache", "--no-color"], GlobalOptions(0, None, None, True, None, True)),
        (["-qestaging", "plan"], GlobalOptions(-1, None, None, environment="staging")),
        (["validate", "-vvC", "d"], GlobalOptions(2, "d", None)),
        # init's own --env defines environments; -e before init still selects one.
        (["-e", "x", "init", "d", "--env", "a"], GlobalOptions(0, None, None, environment="x")),
    ],
)
def test_before_and_after_the_command(argv: list[str], expected: GlobalOptions) -> None:
    """Given before and after the command, a value's last word wins and -v counts add up."""
    assert options_of(parse_down(argv)) == expected


def test_init_keeps_its_own_env() -> None:
    chain = parse_down(["init", "d", "--env", "a", "-eb", "-q"])
    assert chain[-1].params["environments"] == ("a", "b")
    assert options_of(chain) == GlobalOptions(-1, None, None)


def test_sandbox_password_keeps_a_value_like_an_option() -> None:
    """`sandbox --password -Cx` keeps `-Cx` as the password (it was taken for -C x)."""
    chain = parse_down(["sandbox", "--password", "-Cx", "-e", "-x"])
    assert chain[-1].params["password"] == "-Cx"
    assert options_of(chain) == GlobalOptions(0, None, None, environment="-x")


def test_the_sandbox_group_takes_global_options_with_its_subcommand(tmp_path: Path) -> None:
    """`sandbox -q list`: -q is no serving option of `sandbox` (that mix is refused)."""
    repo = make_repo(tmp_path, 1)
    assert run_in_process(["sandbox", "-q", "list"], repo) == (
        0,
        "The sandbox holds no triggers yet (.pfsync/sandbox-data.json does not exist): "
        "`pfsync apply --sandbox` creates them.\n",
    )
    code, output = run_in_process(["sandbox", "--port", "0", "list"], repo)
    assert (code, output.splitlines()[-1]) == (
        1,
        "Error: --port serves the sandbox; it cannot be combined with `sandbox list`.",
    )


def test_init_runs_as_if_started_in_the_directory_of_dash_c(tmp_path: Path) -> None:
    """`pfsync -C x init d` makes x/d, as every command runs as if started in DIR (it made ./d)."""
    (tmp_path / "x").mkdir()
    code, output = run_in_process(["-C", "x", "init", "d", "--business", "biz_1"], tmp_path)
    assert code == 0, output
    assert (tmp_path / "x" / "d" / "pfsync.yaml").is_file()
    assert not (tmp_path / "d").exists()
    assert output.splitlines()[0] == "wrote x/d/pfsync.yaml"
    assert "Next: cd x/d && pfsync validate && pfsync plan " in output
