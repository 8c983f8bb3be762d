"""The files `pfsync init` writes for a new repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pfsync.errors import PfsyncError

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


def _ci_files(kind: str) -> dict[str, str]:
    if kind == "none":
        return {}
    folder = ci_recipe_dir() / kind
    return {
        str(path.relative_to(folder)): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name.endswith((".yml", ".yaml"))
    }


def ci_recipe_dir() -> Path:
    """`examples/ci` of the source tree, shipped in wheels as `pfsync/_ci`."""
    packaged = Path(__file__).parent / "_ci"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "examples" / "ci"


def scaffold(root: Path, business: str, api_url: str, ci: str, force: bool) -> Iterator[str]:
    """Write the files (refusing to overwrite without `force`); yield a line per file."""
    from pfsync.config import check_api_url
    from pfsync.manifests.load import BUSINESS_RE
    from pfsync.state.lockfile import Lockfile, save_lockfile

    if not BUSINESS_RE.fullmatch(business):
        raise PfsyncError(f"{business!r} is not a valid business id")
    api_url = check_api_url(api_url)
    import json

    from pfsync.schemas import self_contained_manifest_schema

    schema_text = json.dumps(self_contained_manifest_schema(), indent=2, ensure_ascii=False)
    files = {
        "pfsync.yaml": CONFIG.format(business=business, api_url=api_url)
        + (GIT_STATE if ci != "none" else ""),
        "manifest.schema.json": schema_text + "\n",
        "triggers/welcome-series.yaml": EXAMPLE,
        **_ci_files(ci),
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
    lockfile = root / "pfsync.lock"
    if lockfile.exists():
        # Even with --force: a lockfile may be the only record of real triggers.
        yield f"kept {lockfile} (an existing lockfile is never overwritten)"
    else:
        save_lockfile(lockfile, None, Lockfile.new(api_url))
        yield f"wrote {lockfile} (empty: no trigger created yet)"
    gitignore = root / ".gitignore"
    existed = gitignore.exists()
    present = gitignore.read_text(encoding="utf-8").splitlines() if existed else []
    missing = [line for line in GITIGNORE_LINES if line not in present]
    if missing:
        with open(gitignore, "a", encoding="utf-8") as f:
            if present and present[-1] != "":
                f.write("\n")
            f.write("# pfsync: the journal and lock are per run; .pfsync/ is sandbox mode\n")
            f.write("\n".join(missing) + "\n")
        yield f"{'updated' if existed else 'created'} {gitignore}"
