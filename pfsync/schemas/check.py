"""The fast yes/no schema check: jsonschema-rs, never answering differently from jsonschema.

Why: jsonschema builds a validator object per keyword and per value, about 150 µs per manifest;
validating 10,000 manifests, a 5,000-trigger lockfile or every journal line spent most of its
time there. jsonschema-rs (compiled Rust) answers the same question in about 1 µs. The data
pfsync reads is almost always valid, so jsonschema is imported only when a value fails, to find
and word the errors (docs/libraries.md has the measurements).

The two libraries do not always agree, and pfsync must give jsonschema's answer, the one its
error messages explain. jsonschema-rs is stricter in places: a pattern's `$` does not match
before a trailing newline (ECMA-262, where Python's `re` does), NaN and infinity are not
numbers, and a string holding a lone surrogate (valid JSON, not UTF-8) raises where a pattern
or a const reads it. So a value jsonschema-rs rejects, or cannot read, is judged again by
jsonschema. It is never laxer on values parsed from JSON or YAML (it also takes a tuple for an
array; parsed data holds lists): `tests/test_schema_check.py` compares the verdicts on generated
documents, and on every edge value at every place of valid ones.

    library_check(documents, name, pointer="") -> Check | None   jsonschema-rs alone
    confirmed(fast, confirm) -> Check                            its rejections re-judged
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Check = Callable[[Any], bool]

# Schemas refer to each other by relative file name (no $id). jsonschema-rs resolves them
# against this base, among the registered documents only: it never fetches anything.
BASE_URI = "https://pfsync.invalid/schemas/"


def library_check(
    documents: Iterable[tuple[str, Any]], name: str, pointer: str = ""
) -> Check | None:
    """jsonschema-rs's check of the schema at `name#pointer`, `documents` being (name, schema).

    None when jsonschema-rs cannot build it (a reference outside `documents`, a schema it
    refuses): then use jsonschema alone.
    """
    import jsonschema_rs

    try:
        registry = jsonschema_rs.Registry(
            [(BASE_URI + file_name, schema) for file_name, schema in documents],
            draft=jsonschema_rs.Draft202012,
        )
        fast = jsonschema_rs.Draft202012Validator(
            {"$ref": f"{name}#{pointer}" if pointer else name},
            registry=registry,
            base_uri=BASE_URI,
            validate_formats=False,  # as jsonschema without a format checker
            offline=True,
        )
    except (ValueError, jsonschema_rs.ReferencingError):
        return None
    return fast.is_valid


def confirmed(fast: Check | None, confirm: Check) -> Check:
    """`fast`'s answer when it accepts; otherwise `confirm`'s (jsonschema's) answer."""
    if fast is None:
        return confirm

    def check(value: Any) -> bool:
        try:
            if fast(value):
                return True
        except ValueError:  # a lone surrogate or a value that is not JSON
            pass
        return confirm(value)

    return check
