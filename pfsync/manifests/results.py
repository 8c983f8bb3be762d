"""What loading manifests gives, and what a declaration depends on beyond its file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pfsync.config import Config, Scalar
from pfsync.models import Declaration, DesiredTrigger
from pfsync.support.diagnostics import Diagnostic


@dataclass(frozen=True)
class Declaring:
    """What a manifest's declaration depends on beyond its file: the environment's defaults."""

    default_business: str | None = None
    values: Mapping[str, Scalar] = field(default_factory=dict)
    environment: str | None = None
    # validate needs neither bodies nor their digests: off, a trigger's body is BODY_NOT_READ
    # and its digest "" (digests were a tenth of its time in 10,000 files, and sending the
    # bodies back from the worker processes another tenth)
    with_bodies: bool = True
    environments: tuple[str, ...] = ()  # every environment pfsync.yaml defines

    @classmethod
    def of(cls, config: Config) -> Declaring:
        """The defaults of the configured (or selected) environment."""
        return cls(
            config.business, config.values, config.environment, environments=config.environments
        )


# The body of a trigger loaded without bodies (validate counts and locates triggers only).
BODY_NOT_READ: dict[str, Any] = {}


@dataclass
class LoadResult:
    """Every valid manifest found, and every problem, sorted by file then line."""

    manifests: list[DesiredTrigger] = field(default_factory=list)
    # the record changes declared beside the triggers (Moved, Removed) for this environment, in
    # file then line order
    declarations: list[Declaration] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # what is accepted but probably not meant (a `$values.NAME` without braces): never an error
    warnings: list[Diagnostic] = field(default_factory=list)
    # environment → how many manifests it declares (only when several were loaded)
    per_environment: dict[str, int] = field(default_factory=dict)
