"""The documentation: the site builds strictly, the README stays a front door, links hold.

`mkdocs build --strict` fails on a broken link or anchor between pages and on a page missing from
the nav (mkdocs.yml). The README and the changelog are not part of the site, so their links into
docs/ are checked here, anchors included, with GitHub's heading anchors (the site makes the same).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO

README = REPO / "README.md"
CHANGELOG = REPO / "CHANGELOG.md"
DOCS = REPO / "docs"
README_LIMIT = 12_000  # bytes: the README is the front door, the manual lives in docs/
BUILD_TIMEOUT = 300.0

# The two commands the README must carry as they are: `.ci/run` runs the second one.
QUICKSTART = (
    "python3 -m venv .venv && .venv/bin/pip install -q . && cd examples && "
    "../.venv/bin/pfsync -e staging plan --sandbox && "
    "../.venv/bin/pfsync -e staging apply --sandbox --auto-approve && "
    "../.venv/bin/pfsync -e staging plan --sandbox --detailed-exitcode"
)
TEST_COMMAND = (
    'python3 -m venv .venv && .venv/bin/pip install -q ".[test]" && '
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


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    config = ["-f", str(REPO / "mkdocs.yml")]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-d",
            str(tmp_path / "site"),
            *config,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()


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
