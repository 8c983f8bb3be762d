"""`pfsync.yaml` and the environment → Config.

Discovery, in order: `--config PATH`; else `-C DIR` and that directory's pfsync.yaml; else the
nearest pfsync.yaml at or above the current directory; else (for `validate PATH…`) the nearest
at or above the given paths; else defaults. The default business comes only from the file: an
environment variable that moved every trigger to another business would create them all again,
irrevocably.

The API URL policy (https, or http to a loopback host; no credentials) is in `urls`; sandbox
mode's config in `rehearsal`; the placeholder business in `placeholders`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pfsync.config.urls import check_api_url as check_api_url
from pfsync.config.urls import check_endpoint_url as check_endpoint_url
from pfsync.config.urls import is_loopback_host as is_loopback_host
from pfsync.errors import ConfigInvalid
from pfsync.support.diagnostics import Diagnostic, sort_diagnostics
from pfsync.support.invocation import BARE, Invocation
from pfsync.support.textsafety import escape

CONFIG_NAME = "pfsync.yaml"
DEFAULT_API_URL = "https://api.pocketflows.com"
DEFAULT_MANIFESTS = ("triggers/**/*.yaml",)
DEFAULT_LOCKFILE = "pfsync.lock"
API_URL_ENV = "PFSYNC_API_URL"
LOCAL_DIR = ".pfsync"  # sandbox mode's state and the manifest cache, never committed
NO_CACHE_ENV = "PFSYNC_NO_CACHE"  # 1: never read or write .pfsync/cache/


DEFAULT_INTENT_BATCH = 64
# A remote store's time bounds, in seconds (`state.timeout`, `connect_timeout`, `read_timeout`).
# An apply whose store stops answering makes at most three more operations (the write that
# failed, a read to merge its outcomes, the release of the lock): 3 x 15 s stays under a minute.
DEFAULT_STORE_TIMEOUT = 15.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0
MAX_STORE_TIMEOUT = 3600
ENVIRONMENT_KEYS = ("business", "api_url", "manifests", "lockfile", "state", "values")

Scalar = str | int | float | bool  # what `values:` may hold


@dataclass(frozen=True)
class StateConfig:
    """Where the lockfile lives (`state:` in pfsync.yaml): `file`, `git` on a branch, or `s3`."""

    store: str = "file"
    remote: str = "origin"
    branch: str | None = None  # git: None means the checked-out branch
    intent_batch: int = DEFAULT_INTENT_BATCH
    bucket: str | None = None  # s3: the bucket and the object key of the lockfile
    key: str | None = None
    endpoint_url: str | None = None  # s3: None means AWS's endpoint for the region
    region: str | None = None  # s3: None means AWS_REGION / AWS_DEFAULT_REGION
    timeout: float = DEFAULT_STORE_TIMEOUT  # git, s3: one read or write, everything included
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT  # s3: to open a connection
    read_timeout: float = DEFAULT_READ_TIMEOUT  # s3: for the next bytes of an answer

    def __post_init__(self) -> None:
        if self.endpoint_url is not None:
            object.__setattr__(self, "endpoint_url", check_endpoint_url(self.endpoint_url))
        for name in ("timeout", "connect_timeout", "read_timeout"):
            check_seconds(f"state.{name}", getattr(self, name))

    @property
    def timeouts(self) -> StoreTimeouts:
        """The store's time bounds."""
        return StoreTimeouts(self.timeout, self.connect_timeout, self.read_timeout)

    @property
    def is_remote(self) -> bool:
        """Whether the record lives beyond this machine (written through a store, not a journal)."""
        return self.store != "file"


@dataclass(frozen=True)
class StoreTimeouts:
    """How long a remote store may take, in seconds: `total` for one read or write (all its
    requests, retries and git commands), `connect` and `read` for each s3 request."""

    total: float = DEFAULT_STORE_TIMEOUT
    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT


def check_seconds(name: str, value: object) -> float:
    """`value` if it is a finite number of seconds above 0; ConfigError naming `name` if not.

    The schema checks pfsync.yaml's numbers; this also refuses what it lets through (`.nan`).
    """
    from pfsync.errors import ConfigError

    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value <= MAX_STORE_TIMEOUT
    ):
        raise ConfigError(
            f"{name} must be a number of seconds above 0 and at most {MAX_STORE_TIMEOUT}, not "
            f"{escape(repr(value))}"
        )
    return float(value)


def journal_beside(lockfile: Path) -> Path:
    """The journal of the lockfile at `lockfile`: `LOCKFILE.journal`, in the same folder."""
    return lockfile.with_name(lockfile.name + ".journal")


@dataclass(frozen=True)
class Config:
    """Where the manifests and lockfile are, which business and API they belong to."""

    path: Path | None  # the pfsync.yaml read, or None when running on defaults
    root: Path  # manifests and lockfile paths are relative to this directory
    business: str | None
    api_url: str
    manifests: tuple[str, ...]
    lockfile: Path
    state: StateConfig = StateConfig()
    environment: str | None = None  # the environment selected with -e (None: none selected)
    values: Mapping[str, Scalar] = field(default_factory=dict)  # for `${values.NAME}`
    environments: tuple[str, ...] = ()  # every environment pfsync.yaml defines, sorted
    # The other environments' lockfiles: commits touching only those (and this one's) change
    # nothing this environment applies from (the git store's "apply from the tip" check).
    other_lockfiles: tuple[Path, ...] = ()
    cache: bool = True  # reuse unchanged manifests' results (.pfsync/cache/)
    # How this config was reached (-e, -C, --config, --sandbox): what printed commands repeat.
    invocation: Invocation = field(default_factory=Invocation)

    @property
    def journal(self) -> Path:
        """The journal beside the lockfile."""
        return journal_beside(self.lockfile)

    @property
    def local_dir(self) -> Path:
        """`.pfsync/` beside pfsync.yaml: sandbox mode's state and the manifest cache."""
        return self.root / LOCAL_DIR

    def prepare_local_dir(self) -> Path:
        """Create `.pfsync/` with a `.gitignore` of `*` (none of it is committed); returns it."""
        folder = self.local_dir
        folder.mkdir(exist_ok=True)
        ignore = folder / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# pfsync's local state: not part of the repository\n*\n")
        return folder

    @property
    def shown_lockfile(self) -> str:
        """The lockfile as plan, apply and the state commands name it (relative to the root)."""
        from pfsync.support.paths import display_path

        return display_path(self.lockfile, self.root)


def find_config_file(
    config_path: str | None,
    directory: str | None,
    cwd: Path,
    paths: Sequence[str] = (),
) -> Path | None:
    """The pfsync.yaml to use, in the discovery order above; None means defaults."""
    if config_path is not None:
        return (cwd / config_path).absolute()
    if directory is not None:
        candidate = (cwd / directory).absolute() / CONFIG_NAME
        return candidate if candidate.is_file() else None
    found = _nearest_above(cwd.absolute())
    if found is not None:
        return found
    for path in paths:
        start = (cwd / path).absolute()
        found = _nearest_above(start if start.is_dir() else start.parent)
        if found is not None:
            return found
    return None


def _nearest_above(directory: Path) -> Path | None:
    for folder in (directory, *directory.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(
    config_path: str | None = None,
    directory: str | None = None,
    *,
    cwd: Path | None = None,
    paths: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    check_url: bool = True,
    environment: str | None = None,
    needs_environment: bool = False,
    no_cache: bool = False,
) -> Config:
    """Find and read the configuration; raise ConfigInvalid or ConfigError when unusable.

    The API URL is checked here (`check_api_url`) unless `check_url` is False: for commands
    that never use it (validate, sandbox list) and for sandbox mode, which replaces it.
    `environment` selects one of pfsync.yaml's environments (`-e NAME`); with
    `needs_environment`, a pfsync.yaml that defines environments requires one.
    """
    from pfsync.errors import ConfigError

    cwd = cwd or Path.cwd()
    environ = os.environ if environ is None else environ
    if directory is not None and config_path is None and not (cwd / directory).is_dir():
        raise ConfigError(f"-C {directory}: no such directory")
    file = find_config_file(config_path, directory, cwd, paths)
    if file is None:
        # Defaults would make an empty plan in the wrong directory look like success in CI.
        raise ConfigError(_not_found(directory, cwd, paths))
    if not file.is_file():
        raise ConfigError(
            f"config file {file} does not exist; check the --config path, or create one "
            f"with `{BARE.command('init', str(file.parent))}`"
        )
    settings = _read_config_file(file)
    environments = settings.get("environments") or {}
    assert isinstance(environments, dict)
    names = tuple(sorted(environments))
    every = {name: _config_from(file, settings, name, environments[name]) for name in names}
    _check_distinct_state(every)
    if environment is None:
        if names and needs_environment:
            raise ConfigError(
                f"{CONFIG_NAME} defines the environments {', '.join(names)}: choose one with "
                f"-e NAME (for example -e {names[0]})"
            )
        config = _config_from(file, settings, None, {})
    elif environment in every:
        config = every[environment]
    elif names:
        raise ConfigError(
            f"-e {escape(environment)}: {CONFIG_NAME} defines no such environment; its "
            f"environments are {', '.join(names)}"
        )
    else:
        raise ConfigError(
            f"-e {escape(environment)}: {CONFIG_NAME} defines no environments; drop -e, or "
            "add `environments:` to it"
        )
    api_url = environ.get(API_URL_ENV) or config.api_url
    if check_url:
        api_url = check_api_url(api_url)
    cache = not no_cache and environ.get(NO_CACHE_ENV, "") in ("", "0")
    others = tuple(other.lockfile for name, other in every.items() if name != environment)
    return dataclasses.replace(
        config,
        api_url=api_url.rstrip("/"),
        environments=names,
        other_lockfiles=others,
        cache=cache,
        invocation=Invocation(environment, directory, config_path),
    )


def _config_from(
    file: Path, top: Mapping[str, Any], environment: str | None, overrides: Mapping[str, Any]
) -> Config:
    """The config of one environment: its own keys, the others from the top level."""

    def setting(key: str, default: Any) -> Any:
        return overrides[key] if key in overrides else top.get(key, default)

    root = file.parent
    business = setting("business", None)
    state = setting("state", None) or {}
    return Config(
        path=file,
        root=root,
        business=str(business) if business is not None else None,
        api_url=str(setting("api_url", DEFAULT_API_URL)),
        manifests=tuple(str(m) for m in setting("manifests", DEFAULT_MANIFESTS)),
        lockfile=root / str(setting("lockfile", DEFAULT_LOCKFILE)),
        state=StateConfig(**state),
        environment=environment,
        # Values merge name by name: the top level's are shared defaults.
        values={**top.get("values", {}), **overrides.get("values", {})},
    )


def state_location(config: Config) -> tuple[str, ...]:
    """Where a config's lockfile lives, for telling two environments' records apart."""
    state = config.state
    if state.store == "file":
        return ("file", str(config.lockfile.resolve()))
    if state.store == "git":
        relative = os.path.relpath(config.lockfile, config.root)
        return ("git", state.remote, state.branch or "", relative)
    if state.store == "s3":
        # One object: the same endpoint, bucket and key, whatever else differs (region, batch).
        return ("s3", (state.endpoint_url or "").rstrip("/"), state.bucket or "", state.key or "")
    raise AssertionError(f"unknown state store {state.store!r}")  # the schema allows no other


def _check_distinct_state(every: Mapping[str, Config]) -> None:
    from pfsync.errors import ConfigError

    seen: list[tuple[str, Config]] = []
    for name, config in every.items():
        for earlier, other in seen:
            if _same_record(config, other):
                raise ConfigError(
                    f"the environments {earlier} and {name} share one lockfile "
                    f"({config.shown_lockfile}, store {config.state.store}); give each "
                    "environment its own `lockfile:` (or state location), or one would record "
                    "the other's triggers"
                )
        seen.append((name, config))


def _same_record(a: Config, b: Config) -> bool:
    """Whether two configs' lockfiles could be one file or object (whatever the spelling)."""
    if "s3" in (a.state.store, b.state.store):
        return a.state.store == b.state.store and state_location(a) == state_location(b)
    # file and git keep the lockfile at its path in the working tree; its journal and lock
    # sidecar are files too, and must not be another environment's lockfile either.
    path_a, path_b = str(a.lockfile.resolve()), str(b.lockfile.resolve())
    sidecars = ("", ".journal", ".lck")
    if not any(path_a + s == path_b or path_b + s == path_a for s in sidecars):
        return False
    if a.state.store == "git" and b.state.store == "git":
        # Another remote or another branch is another file; an unset branch is the checked-out
        # one, which may be either.
        if a.state.remote != b.state.remote:
            return False
        return None in (a.state.branch, b.state.branch) or a.state.branch == b.state.branch
    return True


def _not_found(directory: str | None, cwd: Path, paths: Sequence[str]) -> str:
    """Where pfsync looked for pfsync.yaml, and what to do."""
    if directory is not None:
        where = f"in {(cwd / directory).absolute()} (given with -C)"
    else:
        where = f"in {cwd.absolute()} or any directory above it"
        if paths:
            where += " nor above the given paths"
    return (
        f"no {CONFIG_NAME} found {where}. Run pfsync in the repository that holds it, point "
        "to it with -C DIR or --config PATH, or create one with "
        f"`{BARE.command('init', *([directory] if directory is not None else []))}`"
    )


def _read_config_file(file: Path) -> dict[str, object]:
    from pfsync.schemas import CONFIG, check, validator
    from pfsync.schemas.diagnostics import schema_diagnostics
    from pfsync.support.paths import display_path
    from pfsync.support.yamlfile import load_yaml_file

    shown = display_path(file, file.parent)
    documents, diagnostics = load_yaml_file(file, shown)
    if diagnostics:
        raise ConfigInvalid(diagnostics)
    if not documents:
        return {}
    if len(documents) > 1:
        line = documents[1].start[0]
        raise ConfigInvalid([Diagnostic(shown, line, 1, "pfsync.yaml must hold one document")])
    document = documents[0]
    if not isinstance(document.data, dict):
        line, col = document.start
        raise ConfigInvalid([Diagnostic(shown, line, col, "pfsync.yaml must be a mapping")])
    if not check(CONFIG)(document.data):
        problems = schema_diagnostics(validator(CONFIG), document, shown)
        raise ConfigInvalid(sort_diagnostics(problems))
    return document.data
