"""Problems no single file shows: an address declared twice across files, a trigger two
environments would both create, and the same problem found in several environments reported once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from pfsync.config import Config
from pfsync.manifests.results import LoadResult
from pfsync.models import DesiredTrigger
from pfsync.support.diagnostics import Diagnostic


def duplicate_address_diagnostics(
    manifests: Sequence[DesiredTrigger], reported_files: set[str] | None = None
) -> list[Diagnostic]:
    """One problem per repeated address, naming both places (only in `reported_files` if given)."""
    first: dict[str, DesiredTrigger] = {}
    problems = []
    for manifest in sorted(manifests, key=lambda m: (m.file, m.line)):
        earlier = first.setdefault(manifest.address, manifest)
        if earlier is manifest:
            continue
        if reported_files is not None and manifest.file not in reported_files:
            if earlier.file not in reported_files:
                continue
            manifest, earlier = earlier, manifest
        problems.append(
            Diagnostic(
                manifest.file,
                manifest.line,
                1,
                f"address {manifest.address} is declared twice: here and at {earlier.source}",
                "$.key",
                "each BUSINESS/KEY must be declared once; rename one key",
            )
        )
    return problems


_ENVIRONMENT_SLOT = "\0environment\0"


def _named(text: str, name: str) -> str:
    """`text` with `environment NAME` (the way a message names its environment) as a slot."""
    if not name:
        return text
    return re.sub(
        rf"(?<![\w.-])environment {re.escape(name)}(?![\w.-])",
        lambda _: _ENVIRONMENT_SLOT,
        text,
    )


def once_each(found: dict[str, list[Diagnostic]]) -> list[Diagnostic]:
    """One diagnostic per problem found in one or more environments (`found`: name → its).

    The same problem in several environments is one line: a message naming its environment
    names them all (`in environments staging and production`), with each environment's hint
    when they differ; any other says where it was found unless that is every environment.
    """
    places: dict[Diagnostic, list[tuple[str, Diagnostic]]] = {}
    for name, diagnostics in found.items():
        for diagnostic in diagnostics:
            generic = dataclasses.replace(
                diagnostic, message=_named(diagnostic.message, name), hint=None
            )
            places.setdefault(generic, []).append((name, diagnostic))
    out = []
    for generic, holders in places.items():
        names = [name for name, _ in holders]
        label = "environment" if len(names) == 1 else "environments"
        where = f"{label} {_and(names)}"
        hints = list(dict.fromkeys(d.hint for _, d in holders if d.hint))
        generic_hints = {_named(d.hint, name) for name, d in holders if d.hint}
        if len(generic_hints) == 1 and len(hints) > 1:
            hints = [next(iter(generic_hints)).replace(_ENVIRONMENT_SLOT, where)]
        hint = "; ".join(hints) or None
        if _ENVIRONMENT_SLOT in generic.message:
            message = generic.message.replace(_ENVIRONMENT_SLOT, where)
        elif len(names) < len(found):
            message = f"{generic.message} (in {where})"
        else:
            message = generic.message
        out.append(dataclasses.replace(generic, message=message, hint=hint))
    return out


def _and(names: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def shared_address_diagnostics(
    configs: Sequence[Config], results: Sequence[LoadResult], involving: str | None = None
) -> list[Diagnostic]:
    """One problem per trigger that two environments would both create.

    The same address at the same API (a literal `business:` in a manifest, or two environments
    with one business) would be created once by each environment: two triggers in Pocketflows,
    each environment's lockfile recording only its own.
    """
    declared: dict[tuple[str, str], list[tuple[str, DesiredTrigger]]] = {}
    for config, result in zip(configs, results, strict=True):
        for manifest in result.manifests:
            place = (config.api_url.rstrip("/"), manifest.address)
            declared.setdefault(place, []).append((config.environment or "", manifest))
    problems = []
    for (_, address), holders in declared.items():
        names = sorted({name for name, _ in holders})
        if len(names) < 2 or (involving is not None and involving not in names):
            continue
        first = min((manifest for _, manifest in holders), key=lambda m: (m.file, m.line))
        problems.append(
            Diagnostic(
                first.file,
                first.line,
                1,
                f"environments {' and '.join(names)} would each create {address} (the same "
                "business at the same API): two triggers",
                "$.business",
                "give each environment its own business: leave `business:` out of the manifest "
                "or write `business: ${values.NAME}`, and set `business:` per environment",
            )
        )
    return problems
