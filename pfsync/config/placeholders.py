"""A placeholder business in pfsync.yaml: where it is set, the warning there, the refusal.

`validate` reports a located warning (the repository is still well-formed); `plan` and `apply`
against Pocketflows refuse, since a placeholder is nobody's business; sandbox mode, and a
loopback API (`pfsync sandbox`), run with it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pfsync.config import Config, is_loopback_host
from pfsync.config.rehearsal import is_sandbox
from pfsync.errors import ConfigError
from pfsync.support.diagnostics import Diagnostic, json_path
from pfsync.support.placeholders import is_placeholder_business
from pfsync.support.textsafety import escape

HINT = "set the real business id here; until then, plan and apply run only with --sandbox"


def _setting(config: Config) -> tuple[list[str | int], Diagnostic | None]:
    """Where pfsync.yaml sets the config's business (its path), and that place as a Diagnostic
    to fill in (None when the file cannot be read again)."""
    from pfsync.support.yamlfile import load_yaml_file

    path: list[str | int] = ["business"]
    if config.path is None:
        return path, None
    documents, problems = load_yaml_file(config.path, config.path.name)
    if problems or not documents or not isinstance(documents[0].data, dict):
        return path, None
    environments = documents[0].data.get("environments")
    if config.environment is not None and isinstance(environments, dict):
        own = environments.get(config.environment)
        if isinstance(own, dict) and "business" in own:
            path = ["environments", config.environment, "business"]
    line, col = documents[0].locate(path)
    return path, Diagnostic(config.path.name, line, col, "", json_path(path), HINT)


def placeholder_warnings(config: Config) -> list[Diagnostic]:
    """A warning at the line that sets init's placeholder business, if the config has it."""
    if not is_placeholder_business(config.business):
        return []
    _, place = _setting(config)
    if place is None:
        return []
    message = (
        f"business {escape(str(config.business))} is the placeholder `pfsync init` wrote, "
        "not a Pocketflows business"
    )
    return [Diagnostic(place.file, place.line, place.col, message, place.path, place.hint)]


def refuse_placeholder(config: Config) -> None:
    """ConfigError when `config` would plan or apply a placeholder business against an API."""
    if is_sandbox(config) or not is_placeholder_business(config.business):
        return
    if is_loopback_host(urlsplit(config.api_url).hostname or ""):
        return  # `pfsync sandbox` (or a test server): a local API, no real business in it
    path, _ = _setting(config)
    which = f" (environment {escape(str(config.environment))})" if len(path) > 1 else ""
    setting = ".".join(str(step) for step in path)
    raise ConfigError(
        f"business {escape(str(config.business))}{which} is the placeholder `pfsync init` "
        f"wrote, not a Pocketflows business: set the real business id in pfsync.yaml "
        f"(`{escape(setting)}`), or run with --sandbox. Nothing was sent."
    )
