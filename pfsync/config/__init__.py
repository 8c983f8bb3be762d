"""`pfsync.yaml` and the environment → Config.

Discovery, in order: `--config PATH`; else `-C DIR` and that directory's pfsync.yaml; else the
nearest pfsync.yaml at or above the current directory; else (for `validate PATH…`) the nearest
at or above the given paths; else defaults. The default business comes only from the file: an
environment variable that moved every trigger to another business would create them all again,
irrevocably.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pfsync.errors import ConfigInvalid
from pfsync.support.diagnostics import Diagnostic, sort_diagnostics
from pfsync.support.invocation import Invocation
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


def check_endpoint_url(url: str) -> str:
    """`state.endpoint_url` under the API URL's policy: https, or http to a loopback host only,
    never a user name or password in it (the s3 store signs with the AWS credentials)."""
    from pfsync.errors import ConfigError

    try:
        parts = urlsplit(url)
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:
        has_credentials = False
    if has_credentials or "@" in url:
        raise ConfigError(
            "state.endpoint_url contains a user name or password; remove them from the URL: the "
            "s3 store takes its credentials from the AWS environment variables or the instance "
            "role"
        )
    try:
        return check_api_url(url)
    except ConfigError as exc:
        message = str(exc).replace("the API URL", "state.endpoint_url")
        if "state.endpoint_url" not in message:
            message = f"state.endpoint_url: {message}"
        raise ConfigError(message) from None


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
            "with `pfsync init`"
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
        "to it with -C DIR or --config PATH, or create one with `pfsync init`"
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


def check_api_url(url: str) -> str:
    """The URL if pfsync may talk to it: https, or http to a loopback host; never credentials.

    Refused with a ConfigError too: what the HTTP client cannot send to (a port that is not a
    number from 1 to 65535, a host that is not a host name or an IP address, spaces or control
    characters), so that nothing is planned against it or written with it. No message repeats
    a URL that carries credentials or shows a control character as it is.
    """
    from pfsync.errors import ConfigError

    if any(char.isspace() or not char.isprintable() for char in url):
        # Before urlsplit, which silently drops tabs and newlines the HTTP client would refuse.
        raise ConfigError("the API URL contains a space or control character")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:
        raise ConfigError("the API URL is not a valid URL") from None
    if has_credentials or "@" in parts.netloc:
        raise ConfigError(
            "the API URL contains a user name or password; remove them from the URL and set "
            "PFSYNC_USERNAME and PFSYNC_PASSWORD instead"
        )
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"the API URL {url!r} must start with https:// and name a host")
    written_host, port = _host_and_port(parts.netloc)
    if port is not None and not _is_port(port):
        raise ConfigError(
            f"the API URL {url!r} has an invalid port {port!r}: a port is a number from 1 to 65535"
        )
    if not _is_host(written_host):
        raise ConfigError(
            f"the API URL {url!r} has an invalid host {written_host!r}: write a host name "
            "(letters, digits, '-' and '_' in dot-separated labels; an international name in "
            "its xn-- form) or an IP address (IPv6 in brackets)"
        )
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError(
            f"refusing plain http:// for {host!r}: credentials would cross the network "
            "unencrypted; use https:// (http:// is allowed only for loopback hosts)"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"the API URL {url!r} must not have a query or fragment")
    return url.rstrip("/")


_HOST_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
_IPV4_STYLE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")  # as the HTTP client tells them


def _host_and_port(netloc: str) -> tuple[str, str | None]:
    """The host as written (IPv6 with its brackets) and the port text after ':', or None."""
    if netloc.startswith("["):
        close = netloc.find("]")
        if close < 0:
            return netloc, None
        host, rest = netloc[: close + 1], netloc[close + 1 :]
        if rest and not rest.startswith(":"):
            return netloc, None  # not a host followed by a port: refused as a host
        return host, rest[1:] if rest else None
    host, colon, port = netloc.partition(":")
    return host, port if colon else None


def _is_port(port: str) -> bool:
    # "" (a ':' with no port) means the default port. Only ASCII digits: int() takes ' 8', '+8'
    # and other scripts' digits.
    return port == "" or (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535)


def _is_host(host: str) -> bool:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return host.endswith("]")
    if _IPV4_STYLE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    name = host[:-1] if host.endswith(".") else host  # a fully qualified name's final dot
    return (
        0 < len(name) <= 253
        and name.isascii()
        and all(_is_label(label) for label in name.split("."))
    )


def _is_label(label: str) -> bool:
    if not _HOST_LABEL.fullmatch(label):
        return False
    if label[:4].lower() != "xn--":
        return True
    # An international name's ASCII form must be valid IDNA 2008, as httpx checks it (with the
    # `idna` package httpx depends on; far lighter to import than httpx).
    import idna

    try:
        idna.decode(label)
    except (idna.IDNAError, UnicodeError):
        return False
    return True


def is_loopback_host(host: str) -> bool:
    """Whether `host` names this machine only (`localhost` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
