"""The documentation: the README stays a front door, links hold, facts match their source.

`.ci/run` builds the site with `mkdocs build --strict`, which fails on a broken link or anchor
between pages and on a page missing from the nav (mkdocs.yml). The README and the changelog are
not part of the site, so their links into docs/ are checked here, anchors included, with GitHub's
heading anchors (the site makes the same).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import REPO

README = REPO / "README.md"
CHANGELOG = REPO / "CHANGELOG.md"
DOCS = REPO / "docs"
README_LIMIT = 12_000  # bytes: the README is the front door, the manual lives in docs/

# The two commands the README must carry as they are: `.ci/run` runs the second one.
QUICKSTART = (
    "python3 -m venv .venv && .venv/bin/pip install -q . && cd examples && "
    "../.venv/bin/pfsync -e staging plan --sandbox && "
    "../.venv/bin/pfsync -e staging apply --sandbox --auto-approve && "
    "../.venv/bin/pfsync -e staging plan --sandbox --detailed-exitcode"
)
TEST_COMMAND = (
    'python3 -m venv .venv && .venv/bin/pip install -q --no-compile ".[test]" && '
    ".venv/bin/python -m pytest -q -n auto"
)

LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def documents() -> list[Path]:
    """The README, the changelog and every page under docs/."""
    return [README, CHANGELOG, *sorted(DOCS.rglob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and the site's slugify) makes for a heading's text."""
    text = re.sub(r"<[^>]+>", "", heading).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a Markdown page, repeats numbered as GitHub numbers them."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(page.read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if not heading:
            continue
        anchor = github_anchor(heading.group(1))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def broken_links(document: Path) -> list[str]:
    """The relative links of a document whose file or anchor does not exist."""
    broken: list[str] = []
    for line in prose_lines(document.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto: and the like
            path_part, _, anchor = target.partition("#")
            page = (document.parent / path_part).resolve() if path_part else document
            if not page.exists():
                broken.append(f"{target}: no such file")
            elif anchor and page.suffix == ".md" and anchor not in anchors(page):
                broken.append(f"{target}: no heading makes #{anchor}")
    return broken


def test_every_page_is_in_the_nav() -> None:
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*([\w./-]+\.md)\s*$", nav, re.M))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages == listed


def test_the_readme_is_a_front_door() -> None:
    size = len(README.read_bytes())
    assert size < README_LIMIT, f"README.md is {size} bytes; move detail into docs/"
    text = README.read_text(encoding="utf-8")
    assert f"```sh\n{QUICKSTART}\n```" in text
    assert f"```sh\n{TEST_COMMAND}\n```" in text


def test_the_test_command_is_what_ci_runs() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    install, _, run = TEST_COMMAND.rpartition(" && ")
    assert install in ci and run in ci


def test_no_document_cites_the_specification() -> None:
    citing = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in documents()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "\u00a7" in line or "PRODUCT.md" in line
    ]
    assert not citing, "\n".join(citing)


SECTION_SIGN = "\u00a7"  # written as an escape so that this file passes its own test
SKIPPED_DIRECTORIES = {".venv", "work", "__pycache__"}  # benchmarks' venv and scratch, caches


def project_files() -> list[Path]:
    """Every file of pfsync/, tests/ and benchmarks/ (no venv, scratch or cache), and the docs."""
    found: list[Path] = []
    for top in ("pfsync", "tests", "benchmarks"):
        for directory, subdirectories, files in os.walk(REPO / top):
            subdirectories[:] = sorted(
                name
                for name in subdirectories
                if name not in SKIPPED_DIRECTORIES and not name.startswith(".")
            )
            found.extend(Path(directory) / name for name in sorted(files))
    return [*found, *documents()]


def test_no_code_or_test_cites_the_specification() -> None:
    # Section numbers point into a specification the repository does not hold: state the rule.
    sign = SECTION_SIGN.encode("utf-8")
    citing = [
        f"{path.relative_to(REPO)}:{number}: {line.decode('utf-8', 'replace').strip()}"
        for path in project_files()
        for number, line in enumerate(path.read_bytes().splitlines(), 1)
        if sign in line
    ]
    assert not citing, "\n".join(citing)


def test_links_from_the_readme_and_the_changelog_hold() -> None:
    broken = {
        str(path.relative_to(REPO)): found
        for path in (README, CHANGELOG)
        if (found := broken_links(path))
    }
    assert not broken


# One source per fact: where the manual states what the code holds, the code is the source and
# the manual is tested against it.

INDEX = DOCS / "index.md"
ROW = re.compile(r"^\| `([^`]+)` \| (.*) \|$")


def section(page: Path, heading: str) -> str:
    """The text of a page's `## heading` section, up to the next `## ` heading."""
    text = page.read_text(encoding="utf-8")
    return text.partition(f"\n## {heading}\n")[2].partition("\n## ")[0]


def table_rows(text: str) -> dict[str, str]:
    """The rows of a Markdown table whose first cell is code: that code → the rest of the row."""
    return {match[1]: match[2] for match in map(ROW.match, text.splitlines()) if match}


def cli_commands() -> dict[str, str]:
    """Every command a person runs → its summary, from the click command tree.

    A command is written with its arguments as its usage shows them (`pfsync state mv OLD NEW`).
    A group is a command of its own only when it runs without a subcommand (`pfsync sandbox`).
    """
    import click

    from pfsync.cli import cli

    found: dict[str, str] = {}

    def visit(command: click.Command, words: list[str]) -> None:
        group = isinstance(command, click.Group)
        if words and (not group or getattr(command, "invoke_without_command", False)):
            # The group's help names: click caches a command's help option from the first
            # context it sees, and a bare one would leave `--help` alone to every later run.
            context = click.Context(
                command, info_name=words[-1], help_option_names=["-h", "--help"]
            )
            arguments = [
                piece
                for piece in command.collect_usage_pieces(context)
                if piece != "[OPTIONS]" and "COMMAND" not in piece
            ]
            found[" ".join(["pfsync", *words, *arguments])] = command.get_short_help_str(10**6)
        if isinstance(command, click.Group):
            for name, subcommand in sorted(command.commands.items()):
                visit(subcommand, [*words, name])

    visit(cli, [])
    return found


def test_the_command_table_is_the_cli() -> None:
    # Each row: the command as its usage shows it, then its --help summary (a link may follow).
    rows = table_rows(section(INDEX, "Commands"))
    commands = cli_commands()
    expected = "\n".join(f"| `{usage}` | {summary} |" for usage, summary in commands.items())
    assert sorted(rows) == sorted(commands), f"docs/index.md's commands are:\n{expected}"
    stale = [usage for usage, summary in commands.items() if not rows[usage].startswith(summary)]
    assert not stale, f"rows to start with the command's summary:\n{expected}"


def remote_stores() -> list[str]:
    """The state stores of the config schema that keep the record beyond this machine."""
    stores: list[str] = []
    for node in _walk_json(config_schema()):
        if isinstance(node, dict) and isinstance(node.get("store"), dict):
            stores.extend(node["store"].get("enum", []))
    return sorted(set(stores) - {"file"})


def _walk_json(node: object) -> list[object]:
    nodes = [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        nodes.extend(_walk_json(child))
    return nodes


def test_unlock_names_every_store_that_keeps_a_lock_record() -> None:
    summary = cli_commands()["pfsync state unlock LOCK_ID"]
    assert [store for store in remote_stores() if store not in summary] == []


# A measured figure: a ratio (1.13 and the multiplication sign) or a time with decimals (`0.84 s`,
# `5.4 ms`) or in microseconds.
TIMES = "\u00d7"  # the multiplication sign, written as an escape for ruff's ambiguity check
FIGURE = re.compile(rf"(?<![\w.])\d+(?:\.\d+)?{TIMES}|(?<![\w.])\d+\.\d+ ?(?:s|ms|µs)\b|\d ?µs\b")
FIGURE_PAGES = {DOCS / "performance.md", DOCS / "libraries.md"}


def test_figures_live_on_the_performance_pages() -> None:
    # A benchmark figure copied to another page drifts from the next run: other pages link
    # docs/performance.md (the budgets) or docs/libraries.md (the libraries measured). The
    # changelog is a record of the past and keeps the figures each release was measured at.
    found = [
        f"{path.relative_to(REPO)}:{number}: {figure}"
        for path in documents()
        if path not in FIGURE_PAGES and path != CHANGELOG
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for figure in FIGURE.findall(line)
    ]
    assert not found, "\n".join(found)


def ci_commands() -> list[str]:
    """The commands `.ci/run` runs, as written there, without `.venv/bin/` and shell plumbing.

    A command stops at its first word that holds a quote, a `$`, a redirection or `||`, `&`:
    `.venv/bin/mkdocs build --strict --quiet --site-dir "$(mktemp -d)"` is
    `mkdocs build --strict --quiet --site-dir`.
    """
    commands: list[str] = []
    for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines():
        for part in line.strip().split(" && "):
            if not part.startswith((".venv/bin/", ".ci/", "python3 ")):
                continue
            words: list[str] = []
            for word in part.removeprefix(".venv/bin/").split():
                if re.search(r"[\"'$<>|&]", word):
                    break
                words.append(word)
            commands.append(" ".join(words))
    return commands


def test_development_names_every_command_ci_runs() -> None:
    account = section(DOCS / "development.md", "Setting up and running the tests")
    commands = ci_commands()
    assert "mypy --strict --platform win32 pfsync/" in commands  # the parser sees .ci/run
    assert [command for command in commands if f"`{command}" not in account] == []


def config_schema() -> dict[str, Any]:
    """The JSON Schema of pfsync.yaml, the config loader's source of truth."""
    schema: dict[str, Any] = json.loads(
        (REPO / "schemas" / "config.schema.json").read_text(encoding="utf-8")
    )
    return schema


def test_the_config_tables_name_every_key_of_the_config_schema() -> None:
    schema = config_schema()
    top = table_rows(section(DOCS / "configuration.md", "`pfsync.yaml`"))
    state = table_rows(section(DOCS / "state-stores.md", "Configuration reference"))
    assert sorted(top) == sorted(schema["properties"])
    assert sorted(state) == sorted(schema["properties"]["state"]["properties"])


def pfsync_variables() -> set[str]:
    """The PFSYNC_ environment variables pfsync's code names (whole string constants)."""
    return {
        node.value
        for path in sorted((REPO / "pfsync").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"PFSYNC_[A-Z0-9_]+", node.value)
    }


def test_the_environment_variable_table_is_the_code() -> None:
    table = section(DOCS / "configuration.md", "Environment variables")
    documented = set(re.findall(r"\bPFSYNC_[A-Z0-9_]+", table))  # not click's _PFSYNC_COMPLETE
    assert sorted(documented) == sorted(pfsync_variables())


def test_the_exit_code_table_is_the_code() -> None:
    import signal

    from pfsync.plan.planner import EXIT_CHANGES, EXIT_NEEDS_PERSON, EXIT_NOTHING_TO_DO

    table = section(INDEX, "Exit codes")
    codes = [line.split("|")[1].strip() for line in table.splitlines() if line[:2] == "| "][1:]
    stopped = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # the process exits 128 + signal
    assert codes == [
        str(EXIT_NOTHING_TO_DO),
        "1",  # every error: pfsync never exits with click's usage code 2
        str(EXIT_CHANGES),
        str(EXIT_NEEDS_PERSON),
        " / ".join(str(128 + signum) for signum in stopped),
    ]


def test_performance_names_every_benchmark_step() -> None:
    # benchmarks/run.py's steps (its --only choices) are the source; it imports only the standard
    # library until a step runs.
    import importlib.util

    folder = str(REPO / "benchmarks")
    loaded = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location("benchmarks_run", f"{folder}/run.py")
        assert spec is not None and spec.loader is not None
        run = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(run)
        steps = list(run.STEPS)
    finally:
        sys.path.remove(folder)
        for name in set(sys.modules) - loaded:  # its own modules (harness, report…) go again
            if str(getattr(sys.modules[name], "__file__", "")).startswith(folder):
                del sys.modules[name]
    usage = (DOCS / "performance.md").read_text(encoding="utf-8").partition("--only apply")[2]
    listed = re.findall(r"[\w-]+", usage.partition("```")[0].partition("(")[2])
    assert listed == steps


def test_the_documented_defaults_are_the_config_loaders() -> None:
    # The loader's defaults are the source; the state reference table and the schema's
    # descriptions (what an editor shows) repeat each number or name.
    import dataclasses

    from pfsync.config import DEFAULT_API_URL, DEFAULT_LOCKFILE, DEFAULT_MANIFESTS, StateConfig

    schema = config_schema()["properties"]
    state = table_rows(section(DOCS / "state-stores.md", "Configuration reference"))
    for field in dataclasses.fields(StateConfig):
        if isinstance(field.default, int | float) and not isinstance(field.default, bool):
            shown = f"{field.default:g}"
            assert state[field.name].split(" | ")[1] == f"`{shown}`", field.name
            description = schema["state"]["properties"][field.name]["description"]
            assert f"(default {shown})" in description, field.name
    # Prose that gives a time limit's default in seconds: `state.timeout` (default 15 s).
    defaults = {f.name: f.default for f in dataclasses.fields(StateConfig)}
    stated = re.compile(r"`(?:state\.)?(\w+)`[^`]{0,20}?\((?:default )?([\d.]+) s\b")
    wrong = [
        f"{path.relative_to(REPO)}: {name} {value} s"
        for path in documents()
        if path != CHANGELOG
        for name, value in stated.findall(" ".join(path.read_text(encoding="utf-8").split()))
        if name in defaults and float(value) != defaults[name]
    ]
    assert not wrong
    top = table_rows(section(DOCS / "configuration.md", "`pfsync.yaml`"))
    assert top["api_url"].startswith(f"`{DEFAULT_API_URL}` |")
    assert top["manifests"].startswith(f"`{json.dumps(list(DEFAULT_MANIFESTS))}` |")
    assert top["lockfile"].startswith(f"`{DEFAULT_LOCKFILE}` |")


def requirements() -> dict[str, set[str]]:
    """pfsync's declared distributions by extra ("" for the runtime ones), names normalised."""
    from importlib.metadata import requires

    found: dict[str, set[str]] = {}
    for requirement in requires("pfsync") or []:
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
        extra = re.search(r"extra\s*==\s*[\"'](\w+)[\"']", requirement)
        found.setdefault(extra[1] if extra else "", set()).add(normal_name(name))
    return found


def normal_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def test_the_dependency_lists_are_the_package_metadata() -> None:
    # pyproject.toml declares them; the README names the runtime ones and the s3 extra's,
    # docs/development.md says why each test tool is there.
    declared = requirements()
    readme = " ".join(README.read_text(encoding="utf-8").split())
    runtime = readme.partition("Runtime dependencies: ")[2].partition(" ([why each]")[0]
    assert {normal_name(name) for name in runtime.split(", ")} == declared[""]
    s3 = readme.partition("the s3 state store adds ")[2].partition(" (`pfsync[s3]`)")[0]
    assert {normal_name(name) for name in s3.split(" and ")} == declared["s3"]
    for extra, heading in (
        ("test", "Test-only dependencies"),
        ("lint", "Quality-gate dependencies"),
    ):
        table = section(DOCS / "development.md", heading)
        named = {
            normal_name(name)
            for row in table.splitlines()
            if row[:2] == "| " and not row.startswith("| package")
            for name in row.split("|")[1].split(",")
        }
        assert sorted(named) == sorted(declared[extra] - declared[""])


def test_every_state_command_takes_sandbox_as_the_index_says() -> None:
    import click

    from pfsync.cli import cli

    assert "Every `state` command takes `--sandbox`" in INDEX.read_text(encoding="utf-8")
    state = cli.commands["state"]
    assert isinstance(state, click.Group)
    without = [
        name
        for name, command in state.commands.items()
        if not any("--sandbox" in parameter.opts for parameter in command.params)
    ]
    assert without == []


def test_the_sandbox_outcomes_are_the_sandboxs() -> None:
    # pfsync.sandbox.faults names them; the manual and `pfsync sandbox --help` list them.
    from pfsync.cli import cli
    from pfsync.sandbox.faults import NAMED

    page = " ".join((DOCS / "sandbox.md").read_text(encoding="utf-8").split())
    listed = page.partition("the next outcomes exactly: ")[2].partition(", or any status")[0]
    assert set(re.findall(r"`([\w-]+)`", listed)) == NAMED
    help_text = " ".join((cli.commands["sandbox"].help or "").split())
    named = help_text.partition("Outcomes: ")[2].partition(", and any 4xx/5xx")[0]
    assert set(named.split(", ")) == NAMED


def test_every_source_path_the_manual_names_exists() -> None:
    # A module split or renamed leaves the manual pointing at nothing; `pfsync/_schemas` is the
    # copy of schemas/ that only a wheel carries. The changelog keeps the paths of its time.
    named = {
        (path.relative_to(REPO), found)
        for path in documents()
        if path != CHANGELOG
        for found in re.findall(
            r"`((?:pfsync|tests|benchmarks)/[\w/.-]+)`", path.read_text("utf-8")
        )
    }
    missing = sorted(
        f"{page}: {found}"
        for page, found in named
        if found != "pfsync/_schemas" and not (REPO / found).exists() and not _made_by_a_run(found)
    )
    assert not missing


def _made_by_a_run(path: str) -> bool:
    """Whether git ignores `path`: what a command makes (`benchmarks/.venv`), not a source. (Asked
    of a name inside it, since a folder pattern matches only what git can tell is a folder.)"""
    inside = f"{path}/-"
    check = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", "--no-index", inside])
    return check.returncode == 0


def test_the_global_options_the_manual_lists_are_the_clis() -> None:
    from pfsync.cli import cli

    def named(text: str) -> set[str]:
        items = re.findall(r"`([^`]+)`", text)
        return {option for item in items for option in item.split()[0].split("/")}

    index = " ".join(INDEX.read_text(encoding="utf-8").split())
    conventions = " ".join(section(DOCS / "configuration.md", "Command-line conventions").split())
    pages = {
        "index": named(index.partition("global options (")[2].partition(")")[0]),
        "configuration": named(conventions.partition("Global options: ")[2].partition(" All ")[0]),
    }
    for page, options in pages.items():
        params = [p for p in cli.params if page == "configuration" or p.name != "version"]
        known = {option for param in params for option in param.opts}
        assert options <= known, page
        assert [param.name for param in params if not options & set(param.opts)] == [], page


def test_the_schema_names_the_manual_gives_are_the_clis() -> None:
    import click

    from pfsync.cli import cli

    option = next(p for p in cli.commands["schema"].params if p.name == "name")
    assert isinstance(option.type, click.Choice)
    conventions = " ".join(section(DOCS / "configuration.md", "Command-line conventions").split())
    others = re.findall(r"`--name ([\w|-]+)` prints the others", conventions)
    assert len(others) == 1
    assert sorted([option.default, *others[0].split("|")]) == sorted(option.type.choices)
