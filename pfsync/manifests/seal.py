"""The seal of a cache file: an HMAC-SHA256 of its content under this user's key, kept outside
every repository, so a torn or damaged cache file, or one this machine did not write (one
committed in a pull request), is never read.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path


def seal(content: bytes) -> bytes:
    """The checksum line of a cache file: HMAC-SHA256 under this machine's cache key."""
    return hmac.new(machine_key(), content, hashlib.sha256).hexdigest().encode()


def machine_key() -> bytes:
    """This user's cache key, kept outside every repository under XDG_CACHE_HOME (else
    ~/.cache) as it is now: a long-lived caller may change it between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return _key_at(Path(base) / "pfsync" / "cache-key")


@functools.cache
def _key_at(path: Path) -> bytes:
    """The key kept at `path` (made on first use), read once per process.

    Where it cannot be kept, a key for this process alone: the cache then never outlives the
    run that wrote it (slower, never wrong).
    """
    with contextlib.suppress(OSError, ValueError):
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        if len(key) >= 32:
            return key
    key = secrets.token_bytes(32)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".cache-key.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key.hex() + "\n")
        os.replace(temporary, path)  # two first runs at once: both keys valid, one kept
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    return key


def read_sealed(path: Path) -> bytes | None:
    """The content of a cache file whose seal holds, else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    checksum, _, content = data.partition(b"\n")
    return content if hmac.compare_digest(checksum, seal(content)) else None
