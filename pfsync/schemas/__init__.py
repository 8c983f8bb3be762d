"""The packaged JSON Schemas and their validators, each built once per process.

The schemas' source is the top-level `schemas/` folder; wheels carry a copy as `pfsync/_schemas`.
A source checkout (editable install, tests run from the tree) reads the top-level folder directly.

`check(name)` answers "valid?" fast, with jsonschema's verdict (jsonschema-rs, see
`pfsync.schemas.check`); `validator(name)` is jsonschema's validator, imported and built only
when a value is rejected, to find and word its errors.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfsync.schemas.check import confirmed, library_check

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from referencing import Registry

REQUEST = "trigger-request.schema.json"
TRIGGER = "trigger.schema.json"
MANIFEST = "manifest.schema.json"
LOCKFILE = "lockfile.schema.json"
CONFIG = "config.schema.json"
MOVED = "moved.schema.json"
REMOVED = "removed.schema.json"
IMPORT = "import.schema.json"
NOT_CREATED = "notcreated.schema.json"
_NAMES = (REQUEST, TRIGGER, MANIFEST, LOCKFILE, CONFIG, MOVED, REMOVED, IMPORT, NOT_CREATED)


def schema_dir() -> Path:
    """The folder holding the schema files, packaged or from a source checkout."""
    packaged = Path(__file__).parent.parent / "_schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).parents[2] / "schemas"


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed schema file `name`."""
    with open(schema_dir() / name, encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


@functools.cache
def _registry() -> Registry[Any]:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    # Schemas refer to each other by relative file name (no $id), so editors that open a file
    # from disk and jsonschema here resolve the same references.
    return Registry().with_resources(
        (name, Resource.from_contents(load_schema(name), default_specification=DRAFT202012))
        for name in _present()
    )


def _present() -> list[str]:
    return [name for name in _NAMES if (schema_dir() / name).exists()]


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """A validator for schema `name`, built once (building one is the slow part)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name), registry=_registry())


@functools.cache
def check(name: str, pointer: str = "") -> Callable[[Any], bool]:
    """A fast check with jsonschema's verdict on schema `name` (at JSON Pointer `pointer`).

    Find the errors of a value it rejects with `validator(name)`.
    """
    fast = library_check(((n, load_schema(n)) for n in _present()), name, pointer)
    return confirmed(fast, lambda value: _jsonschema_check(name, pointer)(value))


@functools.cache
def _jsonschema_check(name: str, pointer: str) -> Callable[[Any], bool]:
    if not pointer:
        return validator(name).is_valid
    return validator(name).evolve(schema={"$ref": f"{name}#{pointer}"}).is_valid


def self_contained_manifest_schema() -> dict[str, Any]:
    """The manifest schema with the request schema inlined, usable on its own (editors, tools)."""
    document: dict[str, Any] = json.loads(json.dumps(load_schema(MANIFEST)))
    request: dict[str, Any] = json.loads(json.dumps(load_schema(REQUEST)))
    request.pop("$schema", None)
    spec = document["properties"]["spec"]
    document["properties"]["spec"] = {"description": spec["description"], **request}
    # The request schema's "#/$defs/step" pointed at its own root; it now lives under spec.
    request["properties"]["steps"]["items"] = {"$ref": "#/properties/spec/$defs/step"}
    return document
