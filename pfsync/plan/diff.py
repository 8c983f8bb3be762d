"""Field-level differences between a recorded body and a declared one, for `update` entries.

deepdiff is imported inside `field_diff`, never at module import: `pfsync --help` and
`pfsync validate` must not pay for it: they import no HTTP or diff library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pfsync.support.canonical import canonical_json


class _Absent:
    """The value of a field that is not there (distinct from JSON null)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class FieldChange:
    """One changed field: its JSON path in the manifest, the recorded and declared values."""

    path: str  # e.g. $.spec.name, $.spec.steps[0].type
    before: Any  # ABSENT when the field was not recorded
    after: Any  # ABSENT when the field is no longer declared


def _path_key(path: list[Any]) -> tuple[tuple[int, int, str], ...]:
    # Sort list indexes numerically and keys by name, so [2] comes before [10].
    return tuple((0, item, "") if isinstance(item, int) else (1, 0, str(item)) for item in path)


def field_diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[FieldChange, ...]:
    """The changes from the recorded body to the declared one, as manifest paths `$.spec…`."""
    from deepdiff import DeepDiff

    from pfsync.support.diagnostics import json_path

    # Compare canonical forms, so 1 and 1.0 are equal here exactly as they are for the digest.
    old = json.loads(canonical_json(before))
    new = json.loads(canonical_json(after))
    found = []
    for report_type, levels in DeepDiff(old, new, view="tree").items():
        for level in levels:
            path = ["spec", *level.path(output_format="list")]
            was = ABSENT if report_type.endswith("_added") else level.t1
            now = ABSENT if report_type.endswith("_removed") else level.t2
            found.append((_path_key(path), FieldChange(json_path(path), was, now)))
    found.sort(key=lambda item: item[0])
    return tuple(change for _, change in found)
