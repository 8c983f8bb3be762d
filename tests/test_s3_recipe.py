"""The s3 store as a user meets it: the install its error names, and the local recipe.

`Trying the s3 store locally` in docs/state-stores.md is run as written: its ```sh blocks in
order, in one shell, against moto's server and `pfsync sandbox` on 127.0.0.1 (free ports instead
of the documented 5000 and 8787). Its `pip install` is not run (no network in tests): the
packages it names must be the ones installed here, from the test extra.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

from conftest import REPO, clean_env
from pfsync.state.stores.s3_client import EXTRA

STATE_STORES = REPO / "docs" / "state-stores.md"
RECIPE_HEADING = "### Trying the s3 store locally"
INSTALL_MOTO = "python -m pip install 'moto[s3]' flask flask-cors"
FENCE = re.compile(r"^```(\S*)\s*$")
RECIPE_TIMEOUT_SECONDS = 240
# The README's install: `pip install "pfsync @ git+https://…/pfsync@vX.Y.Z"`.
README_INSTALL = re.compile(r'pip install "(pfsync @ git\+https://github\.com/[^"]+)"')
DOCUMENTED_S3_INSTALL = re.compile(r"pip install '(pfsync\[s3\][^']*)'")


def test_the_s3_extra_is_installed_from_pfsyncs_own_repository() -> None:
    # The README's pinned install with the extra: `pip install 'pfsync[s3]'` asks PyPI, whose
    # `pfsync` is another project.
    [spec] = set(README_INSTALL.findall((REPO / "README.md").read_text(encoding="utf-8")))
    with_extra = spec.replace("pfsync @", "pfsync[s3] @", 1)
    assert f"pip install '{with_extra}'" == EXTRA
    for page in [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]:
        for documented in DOCUMENTED_S3_INSTALL.findall(page.read_text(encoding="utf-8")):
            assert f"pip install '{documented}'" == EXTRA, page
    assert EXTRA in STATE_STORES.read_text(encoding="utf-8")


def recipe_blocks() -> list[str]:
    """The ```sh blocks of the recipe's section, in order."""
    lines = STATE_STORES.read_text(encoding="utf-8").splitlines()
    start = lines.index(RECIPE_HEADING)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("##"))
    blocks, i = [], start
    while i < end:
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        close = next(j for j in range(i + 1, end) if lines[j].startswith("```"))
        if fence.group(1) == "sh":
            blocks.append("\n".join(lines[i + 1 : close]) + "\n")
        i = close + 1
    return blocks


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_recipe_installs_what_the_test_extra_has() -> None:
    blocks = recipe_blocks()
    assert blocks[0].splitlines()[0] == INSTALL_MOTO
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    test_extra = pyproject[
        pyproject.index("test = [") : pyproject.index("]\n\n", pyproject.index("test = ["))
    ]
    for name in ('"moto[s3]', '"flask"', '"flask-cors"'):
        assert name in test_extra
    for name in ("moto", "flask", "flask-cors"):
        distribution(name)  # installed here, so the recipe below runs with what it names


def test_the_local_s3_recipe_runs_as_written(tmp_path: Path) -> None:
    s3_port, api_port = free_port(), free_port()
    script = "".join(recipe_blocks()).replace(INSTALL_MOTO + "\n", "", 1)
    script = script.replace("5000", str(s3_port)).replace("8787", str(api_port))
    assert "127.0.0.1" in script and not re.search(r"https?://(?!127\.0\.0\.1)", script)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in clean_env().items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1,localhost",
    )
    proc = subprocess.Popen(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the servers it starts are in its group: all stopped below
    )
    try:
        out, err = proc.communicate(timeout=RECIPE_TIMEOUT_SECONDS)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == 0, f"{out}\n--- stderr\n{err}"
    # What the comments of `plan` and `state list` show (up to a `…`) is their output, in order.
    shown = [
        line.split("#", 1)[1].split("…")[0].strip()
        for line in script.splitlines()
        if line.startswith(("pfsync plan", "pfsync state list")) and "#" in line
    ]
    assert len(shown) == 3
    position = 0
    for text in shown:
        found = out.find(text, position)
        assert found >= 0, f"{text!r} not in:\n{out}"
        position = found + len(text)
