"""The values that flow between pfsync's steps: a validated manifest and its address."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def make_address(business: str, key: str) -> str:
    """A trigger's address, `BUSINESS/KEY`, unique across all manifests."""
    return f"{business}/{key}"


@dataclass(frozen=True)
class Manifest:
    """One validated trigger declaration.

    `spec` is exactly the create-trigger request body; `file` is the path shown to users
    (relative to the config directory when inside it), `line` the 1-based line of `key:`.
    """

    business: str
    key: str
    revision: int
    spec: dict[str, Any]
    file: str
    line: int

    @property
    def address(self) -> str:
        """`BUSINESS/KEY`."""
        return make_address(self.business, self.key)

    @property
    def source(self) -> str:
        """`file:line`, where the trigger is declared."""
        return f"{self.file}:{self.line}"
