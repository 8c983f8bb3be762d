"""The tutorial runs: every ```sh block of it, in order, against the installed pfsync.

The tutorial is the `## Tutorial` section of docs/getting-started.md; the manifest format is
described in docs/manifests.md.

A block preceded by `<!-- not run -->` is skipped (none is today). A command written
`CMD; echo "exit $?"` must exit with the code the tutorial states for it (`exit N` in its
comment or the comment lines below it); every other command must succeed (`set -euo pipefail`).
A comment line of its own shows output: unless it elides something with `…`, that text must
appear in the block's output (whitespace aside).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO, clean_env

NOT_RUN = "<!-- not run -->"
FENCE = re.compile(r"^```(\S*)\s*$")
SHOWS_EXIT = re.compile(r'^(?P<cmd>.*?);\s*echo "exit \$\?"(?P<comment>\s*#.*)?$')
STATED_EXIT = re.compile(r"\bexit (\d+)\b")
HEREDOC = re.compile(r"<<-?'?\"?(\w+)")
TRIGGER_ID = re.compile(r"trg_[0-9a-f]+")
BLOCK_TIMEOUT = 120.0
GETTING_STARTED = Path("docs") / "getting-started.md"
MANIFESTS = Path("docs") / "manifests.md"


def read_doc(relative: Path) -> str:
    """A documentation page's text."""
    return (REPO / relative).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Block:
    """One ```sh block of the tutorial: its first line number in its page and its text."""

    line: int
    text: str


def tutorial_section(page: str) -> list[tuple[int, str]]:
    """The numbered lines from the `## Tutorial` heading up to the next `## ` heading."""
    lines = page.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## Tutorial"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [(i + 1, lines[i]) for i in range(start, end)]


def sh_blocks(page: str) -> list[Block]:
    """The tutorial's ```sh blocks in order, without those marked `<!-- not run -->`."""
    blocks: list[Block] = []
    section = tutorial_section(page)
    i = 0
    while i < len(section):
        number, line = section[i]
        fence = FENCE.match(line)
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(section)) if section[j][1].startswith("```"))
        previous = [text for _, text in section[:i] if text.strip()]
        marked = bool(previous) and previous[-1].strip() == NOT_RUN
        if fence.group(1) == "sh" and not marked:
            body = "\n".join(text for _, text in section[i + 1 : end])
            blocks.append(Block(number, body + "\n"))
        i = end + 1
    return blocks


def logical_lines(text: str) -> list[str]:
    """The block's lines with backslash continuations joined."""
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    if pending:
        joined.append(pending)
    return joined


def runnable(block: Block) -> tuple[str, list[int]]:
    """The block as a script that survives `set -e`, and the exit codes it must echo in order.

    `CMD; echo "exit $?"` becomes `rc=0; CMD || rc=$?; echo "exit $rc"`; the stated code is the
    first `exit N` in its own comment or in the comment lines right below it.
    """
    lines = logical_lines(block.text)
    script: list[str] = []
    expected: list[int] = []
    for index, line in enumerate(lines):
        shows = SHOWS_EXIT.match(line)
        if not shows:
            script.append(line)
            continue
        comments = [shows.group("comment") or ""]
        for following in lines[index + 1 :]:
            if not following.lstrip().startswith("#"):
                break
            comments.append(following)
        stated = [m.group(1) for c in comments for m in STATED_EXIT.finditer(c)]
        assert stated, (
            f"{GETTING_STARTED}:{block.line}: `{line}` states no `exit N` in its comments"
        )
        expected.append(int(stated[0]))
        script.append(f'rc=0; {shows.group("cmd")} || rc=$?; echo "exit $rc"')
    return "\n".join(script) + "\n", expected


def shown_output(block: Block) -> list[re.Pattern[str]]:
    """The block's own-line comments that quote output in full (no `…`), as patterns.

    Whitespace is collapsed, a trigger id stands for any id, and here-documents are skipped.
    """
    patterns: list[re.Pattern[str]] = []
    heredoc_end: str | None = None
    for line in block.text.splitlines():
        if heredoc_end is not None:
            heredoc_end = None if line == heredoc_end else heredoc_end
            continue
        if start := HEREDOC.search(line):
            heredoc_end = start.group(1)
        comment = line.strip()[1:] if line.strip()[:1] == "#" else ""
        if comment.strip() and "…" not in comment:
            text = re.escape(" ".join(comment.split()))
            patterns.append(re.compile(TRIGGER_ID.sub("trg_[0-9a-f]+", text)))
    return patterns


def test_the_tutorial_blocks_are_found() -> None:
    blocks = sh_blocks(read_doc(GETTING_STARTED))
    assert len(blocks) >= 9
    assert blocks[0].text.startswith("pfsync init ")


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    blocks = sh_blocks(read_doc(GETTING_STARTED))
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    cwd_file = tmp_path / "cwd"
    cwd_file.write_text(str(work), encoding="utf-8")
    bin_dir = str(Path(sys.executable).parent)
    env = clean_env({"HOME": str(home), "NO_COLOR": "1", "LC_ALL": "C.UTF-8"})
    env["PATH"] = bin_dir + ":" + env.get("PATH", "/usr/bin:/bin")
    env.pop("VIRTUAL_ENV", None)
    for block in blocks:
        script, expected = runnable(block)
        wrapped = (
            f'set -euo pipefail\ncd "$(cat {str(cwd_file)!r})"\n{script}pwd > {str(cwd_file)!r}\n'
        )
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-c", wrapped],
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
        shown = (
            f"{GETTING_STARTED}:{block.line}: the tutorial block\n{block.text}"
            f"exited {done.returncode}\n"
            f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
        )
        assert done.returncode == 0, shown
        echoed = [int(m.group(1)) for m in re.finditer(r"^exit (\d+)$", done.stdout, re.M)]
        assert echoed == expected, shown
        output = " ".join((done.stdout + "\n" + done.stderr).split())
        missing = [p.pattern for p in shown_output(block) if not p.search(output)]
        assert not missing, f"{shown}\n--- shown in {GETTING_STARTED} but not output: {missing}"


def manifests_section(page: str) -> str:
    """The Manifests page from its `# Manifests` title up to its first `## ` section."""
    assert page.startswith("# Manifests\n")
    return page[: page.index("\n## ")]


def test_the_manifest_example_names_the_schema_init_writes() -> None:
    from pfsync.scaffold import EXAMPLE

    section = manifests_section(read_doc(MANIFESTS))
    example = section[section.index("```yaml\n") + len("```yaml\n") :]
    assert example.splitlines()[0] == EXAMPLE.splitlines()[0]
    assert "`pfsync init` writes" in section and "`pfsync schema" in section


def test_the_manifests_page_says_step_types_are_left_to_pocketflows() -> None:
    section = manifests_section(read_doc(MANIFESTS))
    assert (
        "The API reference shows only `email` as a step `type` and lists no others, so pfsync "
        "checks that `type` is a string and leaves the value to Pocketflows."
    ) in " ".join(section.split())
