"""The API URL policy: https, or http to a loopback host only, never credentials in the URL.

`api_url` (and `PFSYNC_API_URL`) and the s3 store's `state.endpoint_url` are checked once, when
the configuration is read, so nothing is planned against a URL pfsync would refuse to send to.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit


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
