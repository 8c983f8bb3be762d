"""The files `pfsync init` writes for a new repository."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from pfsync.errors import PfsyncError

ENVIRONMENT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

CONFIG = """\
# pfsync configuration (see the pfsync docs, "Configuration": docs/configuration.md).
business: {business}                 # default business for manifests that name none
api_url: {api_url}   # PFSYNC_API_URL overrides it
manifests: ["triggers/**/*.yaml"]    # globs relative to this file
lockfile: pfsync.lock                # the record of what exists: commit it, never delete it
"""

# With a CI recipe, `pfsync apply` on the runner commits and pushes the lockfile itself (the
# recipes have no push step of their own).
GIT_STATE = (
    "state: {store: git, branch: main}   "
    "# CI pushes the lockfile itself (see the docs on state stores)\n"
)

ENVIRONMENTS_CONFIG = """\
# pfsync configuration (see the pfsync docs, "Configuration" and "Environments").
api_url: {api_url}   # PFSYNC_API_URL overrides it
manifests: ["triggers/**/*.yaml"]    # globs relative to this file
"""

ENVIRONMENTS_KEY = """\
# Each environment is its own Pocketflows business with its own lockfile; choose one with
# `pfsync -e NAME plan`. Keys an environment does not set come from the top level.
environments:
"""

ENVIRONMENT = """\
  {key}:
    business: {business}  # this environment's own business id (two may not share one)
    lockfile: state/{name}.lock  # its record of what exists: commit it, never delete it
    values:  # ${{values.NAME}} in manifests
      welcome_template: et_welcome_1
"""

EXAMPLE = """\
# yaml-language-server: $schema=../manifest.schema.json
apiVersion: pfsync/v1
kind: Trigger
key: welcome-series
spec:
  name: Welcome series
  project_defined_event: pde_signup
  steps:
    - type: email
      email_template_id: et_welcome_1
"""

GITIGNORE_LINES = ("pfsync.lock.journal", "pfsync.lock.lck", ".pfsync/")
ENVIRONMENT_GITIGNORE_LINES = ("state/*.lock.journal", "state/*.lock.lck", ".pfsync/")


def scaffold(
    root: Path,
    business: str,
    api_url: str,
    ci: str,
    force: bool,
    environments: Sequence[str] = (),
) -> Iterator[str]:
    """Write the files (refusing to overwrite without `force`); yield a line per file.

    With `environments`, pfsync.yaml defines each (the same business to start with, a
    lockfile under `state/`, a value the example trigger uses) and each gets its lockfile.
    """
    import json

    from pfsync.scaffold.ci import ci_files
    from pfsync.schemas import self_contained_manifest_schema

    api_url = _checked(business, api_url, environments)
    schema_text = json.dumps(self_contained_manifest_schema(), indent=2, ensure_ascii=False)
    config, example, lockfiles = _repository(root, business, api_url, ci, environments)
    files = {
        "pfsync.yaml": config,
        "manifest.schema.json": schema_text + "\n",
        "triggers/welcome-series.yaml": example,
        **ci_files(ci, environments),
    }
    existing = [name for name in files if (root / name).exists()]
    if existing and not force:
        raise PfsyncError(
            f"refusing to overwrite {', '.join(existing)} in {root}; pass --force to overwrite"
        )
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        yield f"wrote {path}"
    yield from _write_lockfiles(api_url, lockfiles)
    yield from _update_gitignore(
        root / ".gitignore", ENVIRONMENT_GITIGNORE_LINES if environments else GITIGNORE_LINES
    )


def _checked(business: str, api_url: str, environments: Sequence[str]) -> str:
    """The API URL as pfsync.yaml will hold it; PfsyncError for any argument init refuses."""
    from pfsync.config import check_api_url
    from pfsync.manifests.document import BUSINESS_RE

    if not BUSINESS_RE.fullmatch(business):
        raise PfsyncError(f"{business!r} is not a valid business id")
    api_url = check_api_url(api_url)
    for name in environments:
        if not ENVIRONMENT_NAME_RE.fullmatch(name):
            raise PfsyncError(
                f"{name!r} is not an environment name (1-64 characters of A-Z, a-z, 0-9, '.', "
                "'_', '-', starting with a letter or digit)"
            )
    if len(set(environments)) != len(environments):
        raise PfsyncError("each --env name must be given once")
    return api_url


def _repository(
    root: Path, business: str, api_url: str, ci: str, environments: Sequence[str]
) -> tuple[str, str, dict[str | None, Path]]:
    """pfsync.yaml's text, the example trigger's, and each environment's lockfile path."""
    if not environments:
        config = CONFIG.format(business=business, api_url=api_url)
        config += GIT_STATE if ci != "none" else ""
        return config, EXAMPLE, {None: root / "pfsync.lock"}
    # With CI, the git store for every environment (each its own lockfile on main).
    config = (
        ENVIRONMENTS_CONFIG.format(api_url=api_url)
        + (GIT_STATE if ci != "none" else "")
        + ENVIRONMENTS_KEY
        # A placeholder per environment: one business for all would create every trigger
        # once per environment in it (validate refuses that).
        + "".join(
            ENVIRONMENT.format(
                key=_yaml_key(name),
                name=name,
                business=f"{business}-{name}" if len(environments) > 1 else business,
            )
            for name in environments
        )
    )
    example = EXAMPLE.replace("et_welcome_1", "${values.welcome_template}")
    return config, example, {name: root / "state" / f"{name}.lock" for name in environments}


def _write_lockfiles(api_url: str, lockfiles: dict[str | None, Path]) -> Iterator[str]:
    """An empty lockfile for each environment that has none; an existing one is kept."""
    from pfsync.state.lockfile import Lockfile, save_lockfile

    for environment, lockfile in lockfiles.items():
        if lockfile.exists():
            # Even with --force: a lockfile may be the only record of real triggers.
            yield f"kept {lockfile} (an existing lockfile is never overwritten)"
        else:
            lockfile.parent.mkdir(parents=True, exist_ok=True)
            save_lockfile(lockfile, None, Lockfile.new(api_url, environment))
            yield f"wrote {lockfile} (empty: no trigger created yet)"


def _update_gitignore(gitignore: Path, wanted: Sequence[str]) -> Iterator[str]:
    """Append the lines `wanted` that .gitignore lacks, under a comment saying why."""
    existed = gitignore.exists()
    present = gitignore.read_text(encoding="utf-8").splitlines() if existed else []
    missing = [line for line in wanted if line not in present]
    if missing:
        with open(gitignore, "a", encoding="utf-8") as f:
            if present and present[-1] != "":
                f.write("\n")
            f.write("# pfsync: the journal and lock are per run; .pfsync/ is sandbox mode\n")
            f.write("\n".join(missing) + "\n")
        yield f"{'updated' if existed else 'created'} {gitignore}"


def _yaml_key(name: str) -> str:
    """`name` as a mapping key YAML reads back as that string (`on`, `1.0`, `null` quoted)."""
    import json

    import yaml

    return name if yaml.safe_load(f"{name}: 0") == {name: 0} else json.dumps(name)
