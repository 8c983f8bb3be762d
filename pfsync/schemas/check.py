"""A fast yes/no check compiled from a JSON Schema, with exactly jsonschema's answer.

Why: jsonschema builds a validator object per keyword and per value, about half a millisecond
per manifest; validating 10,000 manifests, a 5,000-trigger lockfile or every journal line spent
most of its time there. The data pfsync reads is almost always valid, so each value is first
checked by plain closures compiled once from the same schema file; only a value that fails is
handed to jsonschema, which finds and words the errors. The check never replaces jsonschema's
verdict with a laxer one: every keyword is implemented exactly as jsonschema 4 does it (Draft
2020-12: `integer` accepts 1.0, `const`/`enum` tell True from 1), and a schema using any keyword
not listed here is not compiled at all (`compile_schema` returns None, callers use jsonschema).
`tests/test_schema_check.py` compares both verdicts on generated documents.

    compile_schema(documents, name, pointer="") -> Callable[[Any], bool] | None
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

Check = Callable[[Any], bool]
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

# Keywords that never affect validity (jsonschema attaches no check to them; `format` does
# assert nothing without a format checker, but is left out so that choice stays jsonschema's).
_ANNOTATIONS = frozenset(
    {"$schema", "$comment", "$defs", "title", "description", "default", "examples", "deprecated"}
    | {"readOnly", "writeOnly"}
)
_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, numbers.Number) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}


class _NotCompilable(Exception):
    """The schema uses something this module does not implement: use jsonschema."""


def equal(one: Any, two: Any) -> bool:
    """JSON equality as jsonschema's `const` and `enum` see it: True is not 1, 1 is 1.0."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, (list, tuple)) and isinstance(two, (list, tuple)):
        return len(one) == len(two) and all(equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(
            key in two and equal(value, two[key]) for key, value in one.items()
        )
    if isinstance(one, bool) or isinstance(two, bool):
        return one is two
    return bool(one == two)


def _pointer(document: Any, pointer: str) -> Any:
    """The part of `document` at the JSON Pointer `pointer` (as in a `$ref` fragment)."""
    node = document
    for token in unquote(pointer).split("/")[1:] if pointer else ():
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and token.isdigit():
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise _NotCompilable(f"unresolvable pointer {pointer!r}")
    return node


class _Compiler:
    def __init__(self, documents: Callable[[str], Any]) -> None:
        self.documents = documents
        self.compiled: dict[tuple[str, str], Check] = {}

    def reference(self, name: str, pointer: str) -> Check:
        key = (name, pointer)
        if key not in self.compiled:
            cell: list[Check] = []
            # Placeholder first, so a recursive $ref compiles to a call through the cell.
            self.compiled[key] = lambda value: cell[0](value)
            try:
                document = self.documents(name)
            except (OSError, KeyError, ValueError):
                raise _NotCompilable(f"unknown schema {name!r}") from None
            cell.append(self.schema(_pointer(document, pointer), name))
            self.compiled[key] = cell[0]
        return self.compiled[key]

    def schema(self, schema: Any, name: str) -> Check:
        if schema is True:
            return lambda value: True
        if schema is False:
            return lambda value: False
        if not isinstance(schema, dict):
            raise _NotCompilable("a schema must be an object or a boolean")
        if "$id" in schema or "$anchor" in schema or "$dynamicAnchor" in schema:
            raise _NotCompilable("identifiers change reference resolution")
        if schema.get("$schema", DRAFT_2020_12) != DRAFT_2020_12:
            raise _NotCompilable("another dialect")  # jsonschema would switch to its rules
        checks: list[Check] = []
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS:
                continue
            method = getattr(self, "k_" + keyword.lstrip("$"), None)
            if method is None:
                raise _NotCompilable(f"keyword {keyword!r}")
            check = method(value, schema, name)
            if check is not None:
                checks.append(check)
        if not checks:
            return lambda value: True
        if len(checks) == 1:
            return checks[0]
        return lambda value: all(check(value) for check in checks)

    # One method per keyword, each as jsonschema's `_keywords` module checks it.

    def k_ref(self, ref: Any, schema: dict[str, Any], name: str) -> Check:
        if not isinstance(ref, str):
            raise _NotCompilable("$ref must be a string")
        target, _, fragment = ref.partition("#")
        if "/" in target or ":" in target:
            raise _NotCompilable(f"only sibling files are resolved ({ref!r})")
        if fragment and not fragment.startswith("/"):
            raise _NotCompilable(f"anchors are not resolved ({ref!r})")
        return self.reference(target or name, fragment)

    def k_type(self, types: Any, schema: dict[str, Any], name: str) -> Check:
        names = types if isinstance(types, list) else [types]
        try:
            checks = [_TYPES[t] for t in names]
        except (KeyError, TypeError):
            raise _NotCompilable(f"type {types!r}") from None
        if len(checks) == 1:
            return checks[0]
        return lambda value: any(check(value) for check in checks)

    def k_const(self, const: Any, schema: dict[str, Any], name: str) -> Check:
        return lambda value: equal(value, const)

    def k_enum(self, enums: Any, schema: dict[str, Any], name: str) -> Check:
        if not isinstance(enums, list):
            raise _NotCompilable("enum must be a list")
        return lambda value: any(equal(each, value) for each in enums)

    def k_pattern(self, pattern: Any, schema: dict[str, Any], name: str) -> Check:
        search = re.compile(pattern).search
        return lambda value: not isinstance(value, str) or search(value) is not None

    def k_minLength(self, limit: Any, schema: dict[str, Any], name: str) -> Check:
        return lambda value: not isinstance(value, str) or not len(value) < limit

    def k_minItems(self, limit: Any, schema: dict[str, Any], name: str) -> Check:
        return lambda value: not isinstance(value, list) or not len(value) < limit

    def k_minimum(self, minimum: Any, schema: dict[str, Any], name: str) -> Check:
        is_number = _TYPES["number"]
        return lambda value: not is_number(value) or not value < minimum

    def k_required(self, required: Any, schema: dict[str, Any], name: str) -> Check:
        names = list(required)
        return lambda value: not isinstance(value, dict) or all(n in value for n in names)

    def k_properties(self, properties: Any, schema: dict[str, Any], name: str) -> Check:
        checks = [(key, self.schema(sub, name)) for key, sub in properties.items()]

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            return all(sub(value[key]) for key, sub in checks if key in value)

        return check

    def k_additionalProperties(self, extra: Any, schema: dict[str, Any], name: str) -> Check:
        if "patternProperties" in schema:
            raise _NotCompilable("patternProperties")
        known = frozenset(schema.get("properties", {}))
        if extra is False:
            return lambda value: not isinstance(value, dict) or known.issuperset(value)
        sub = self.schema(extra, name)
        if not isinstance(extra, dict):  # `true`: nothing to check
            return sub

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            return all(sub(item) for key, item in value.items() if key not in known)

        return check

    def k_propertyNames(self, names: Any, schema: dict[str, Any], name: str) -> Check:
        sub = self.schema(names, name)
        return lambda value: not isinstance(value, dict) or all(sub(key) for key in value)

    def k_items(self, items: Any, schema: dict[str, Any], name: str) -> Check:
        if "prefixItems" in schema:
            raise _NotCompilable("prefixItems")
        sub = self.schema(items, name)
        return lambda value: not isinstance(value, list) or all(sub(item) for item in value)

    def k_anyOf(self, schemas: Any, schema: dict[str, Any], name: str) -> Check:
        subs = [self.schema(sub, name) for sub in schemas]
        return lambda value: any(sub(value) for sub in subs)

    def k_oneOf(self, schemas: Any, schema: dict[str, Any], name: str) -> Check:
        subs = [self.schema(sub, name) for sub in schemas]
        return lambda value: sum(1 for sub in subs if sub(value)) == 1


def compile_schema(documents: Callable[[str], Any], name: str, pointer: str = "") -> Check | None:
    """A check of the schema at `name#pointer` (`documents` loads a schema file by name).

    None when the schema uses something not implemented here: then use jsonschema.
    """
    try:
        return _Compiler(documents).reference(name, pointer)
    except (_NotCompilable, re.error, TypeError, AttributeError):
        return None
