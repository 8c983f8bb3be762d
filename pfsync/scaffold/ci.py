"""The CI recipes `pfsync init --ci github|gitlab` writes, fitted to the layout it writes.

Without environments, the one-environment recipes as they are. With environments, pull requests
and the merge queue plan every environment (a matrix, one comment section each), and merges apply
to the first environment at once and to each next one only after the one before it succeeded:
right after that apply its plan is saved with `--after` the one before (only what that one
created from the same manifests) and shown in the run's summary, and once a person approves (a
GitHub environment with required reviewers; a GitLab manual job in a protected environment) the
next job applies exactly that saved plan. The order of `--env` is the order of promotion.

The templates are the YAML files under `templates/`; `@NAME@` marks what depends on the
environment names. An environment name (letters, digits, '.', '_', '-') is a safe shell word, and
a safe YAML scalar once quoted where YAML would read it as another type.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

from pfsync.errors import PfsyncError

TEMPLATES = Path(__file__).parent / "templates"

# Where each template lands in the new repository, per CI.
OUTPUTS = {
    "github": {
        f".github/workflows/pfsync-{name}.yml": f"pfsync-{name}.yml"
        for name in ("apply", "comment", "plan")
    },
    "gitlab": {".gitlab-ci.yml": "gitlab-ci.yml"},
}
_MARKER = re.compile(r"@([A-Z_]+)@")
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_NOT_STRINGS = {"y", "yes", "n", "no", "true", "false", "on", "off", "null"}  # to YAML 1.1


def ci_files(kind: str, environments: Sequence[str] = ()) -> dict[str, str]:
    """The recipe files (path in the repository → text) of `kind`: none, github or gitlab."""
    if kind == "none":
        return {}
    if not environments:
        folder = TEMPLATES / "one-environment" / kind
        return {path: _read(folder / name) for path, name in OUTPUTS[kind].items()}
    folder = TEMPLATES / "environments" / kind
    jobs = job_ids(environments)
    fragments = [
        _fill(
            _read(folder / ("apply-first.yml" if index == 0 else "apply-next.yml")),
            JOB=jobs[index],
            NAME=name,
            NAME_SCALAR=yaml_scalar(name),
            PLAN_JOB="plan-" + jobs[index].removeprefix("apply-"),
            PREVIOUS=environments[index - 1] if index else "",
            PREVIOUS_JOB=jobs[index - 1] if index else "",
            NEXT_PLAN=_next_plan(folder, environments, index),
        )
        for index, name in enumerate(environments)
    ]
    values = {
        "SUMMARY": textwrap.fill(
            promotion(kind, environments), width=99, initial_indent="# ", subsequent_indent="# "
        ),
        "ENVIRONMENT_LIST": f"[{', '.join(map(yaml_scalar, environments))}]",
        "ENVIRONMENT_WORDS": f'"{" ".join(environments)}"',
        "JOBS": "".join(fragments).rstrip("\n"),
    }
    return {path: _fill(_read(folder / name), **values) for path, name in OUTPUTS[kind].items()}


def promotion(kind: str, environments: Sequence[str]) -> str:
    """What the recipes do with a merge, environment by environment, in a sentence."""
    first, *rest = environments
    said = f"Each merge is applied to {first} at once"
    if not rest:
        return said + "."
    approval = {
        "github": "a reviewer approves it",
        "gitlab": "someone runs its manual job",
    }[kind]
    if len(rest) == 1:
        return f"{said}, then to {rest[0]} once {approval}."
    return f"{said}, then to {' and then to '.join(rest)}, each once {approval}."


def ci_next_steps(kind: str, environments: Sequence[str]) -> str:
    """What to set up in the CI after `pfsync init --ci`, for its closing message."""
    pin = 'pin PFSYNC_PIP_SPEC to a pfsync release (see the pfsync docs, "CI recipes").'
    if not environments:
        needed = {
            "github": "the secrets PFSYNC_USERNAME and PFSYNC_PASSWORD (environment pfsync)",
            "gitlab": "the variables PFSYNC_USERNAME, PFSYNC_PASSWORD and PFSYNC_PUSH_TOKEN",
        }[kind]
        return f"CI: set {needed} for the apply job; {pin}"
    names = ", ".join(environments)
    gated = " and ".join(environments[1:])
    protected = "a protected environment" if len(environments) == 2 else "protected environments"
    if kind == "github":
        setup = (
            "Set the secrets PFSYNC_USERNAME and PFSYNC_PASSWORD in each GitHub environment "
            f"({names})" + (f", and required reviewers on {gated}" if gated else "")
        )
    else:
        setup = (
            "Set PFSYNC_PUSH_TOKEN, and PFSYNC_USERNAME and PFSYNC_PASSWORD scoped to each "
            f"environment ({names})" + (f"; make {gated} {protected}" if gated else "")
        )
    said = promotion(kind, environments)
    return f"CI: {said[0].lower()}{said[1:]} {setup}; {pin}"


def job_ids(environments: Sequence[str]) -> list[str]:
    """The apply job of each environment (`apply-NAME`, '.' as '_'), refused when two clash."""
    ids = ["apply-" + name.replace(".", "_") for name in environments]
    for index, job in enumerate(ids):
        if job in ids[:index]:
            other = environments[ids.index(job)]
            raise PfsyncError(
                f"the environments {other} and {environments[index]} would share the CI job "
                f"{job}; rename one of them"
            )
    return ids


def yaml_scalar(name: str) -> str:
    """`name` as a YAML string: plain when YAML reads it so, else double-quoted."""
    if _PLAIN.fullmatch(name) and name.lower() not in _NOT_STRINGS:
        return name
    return f'"{name}"'


def _next_plan(folder: Path, environments: Sequence[str], index: int) -> str:
    """The steps that end environment `index`'s apply job: the next environment's saved plan
    (GitHub; GitLab plans in a job of its own), or nothing after the last environment."""
    template = folder / "plan-next.yml"
    if index + 1 == len(environments) or not template.exists():
        return ""
    return _fill(_read(template), NAME=environments[index + 1], PREVIOUS=environments[index])


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _fill(template: str, **values: str) -> str:
    """`template` with each `@NAME@` replaced by `values[NAME]` (a KeyError names a stray one)."""
    return _MARKER.sub(lambda match: values[match[1]], template)
