"""The compiled schema check answers exactly as jsonschema does, on valid and broken documents."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO
from pfsync.schemas import CONFIG, LOCKFILE, MANIFEST, REQUEST, TRIGGER, load_schema, validator
from pfsync.schemas.check import compile_schema, equal
from pfsync.state.journal_records import (
    Begin,
    Created,
    Failed,
    Folded,
    Pending,
    Record,
    Uncertain,
    record_to_json,
)
from pfsync.state.lockfile import HistoryEntry, Lockfile, PendingCreate, TriggerRecord

UUID = "0b7f6c1e-8f5a-4d43-9a43-2b6a1d1f6c10"
AT = "2026-01-31T12:00:00Z"
DIGEST = "sha256:" + "0" * 64


def _manifests() -> list[Any]:
    documents: list[Any] = []
    for path in sorted((REPO / "examples" / "triggers").glob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


def _lockfile() -> dict[str, Any]:
    body = _manifests()[0]["spec"]
    history = (HistoryEntry("trg_0", AT, "replaced", "created", 0),)
    record = TriggerRecord("trg_1", "created", AT, "draft", 1, body, DIGEST, "t/a.yaml", history)
    pending = PendingCreate(UUID, DIGEST, body, 0, "t/b.yaml", None, AT, "unknown")
    lockfile = Lockfile(
        lineage=UUID,
        serial=3,
        api_url="https://api.pocketflows.com",
        triggers={"biz/a": record},
        pending={"biz/b": pending},
        forgotten={"biz/c": history},
    )
    return lockfile.to_json()


def _journal_records() -> list[dict[str, Any]]:
    body = _manifests()[0]["spec"]
    records: list[Record] = [
        Begin(UUID, 1, AT),
        Pending("biz/a", UUID, DIGEST, body, 0, "t/a.yaml", None, AT),
        Created("biz/a", UUID, "trg_1", AT, "draft", AT),
        Created("biz/a", UUID, None, None, None, AT),
        Failed("biz/a", UUID, "bad", 422, AT),
        Uncertain("biz/a", UUID, "HTTP 500", AT),
        Folded(2, "0" * 64, AT),
    ]
    return [record_to_json(r) for r in records]


TRIGGER_RESPONSE = {
    "id": "trg_1",
    "created_at": AT,
    "updated_at": AT,
    "name": "n",
    "project_defined_event": "pde",
    "internal_event_definition": {"type": "customer_created", "segment": "s"},
    "trigger": None,
    "steps": [{"type": "email", "email_template_id": "et"}],
    "status": "draft",
    "filter": None,
    "email_address": None,
    "phone_number": None,
    "attributed_revenue": 1.5,
    "statistics": {"total_customers_enrolled": 0, "emails": {"sent": 0}, "custom_steps": []},
}

# (schema file, JSON Pointer, valid documents to start from)
CASES = [
    (MANIFEST, "", _manifests()),
    (REQUEST, "", [m["spec"] for m in _manifests()]),
    (TRIGGER, "", [TRIGGER_RESPONSE]),
    (LOCKFILE, "", [_lockfile()]),
    (LOCKFILE, "/$defs/journal_record", _journal_records()),
    (CONFIG, "", [{"business": "biz", "manifests": ["t/*.yaml"], "lockfile": "pfsync.lock"}]),
]
IDS = [f"{name}#{pointer}" for name, pointer, _ in CASES]

# Values that sit on the edges jsonschema draws: bool vs int, 1.0 as an integer, patterns with a
# trailing newline, the consts of the manifest, empty containers.
EDGE_VALUES = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        1,
        -1,
        1.0,
        2.5,
        float("nan"),
        "",
        "x",
        "pfsync/v1",
        "Trigger",
        "pfsync/v1\n",
        "biz_123",
        "biz\n",
        "Bad Key",
        "welcome-series",
        "email",
        "draft",
        "begin",
        "pending",
        "created",
        UUID,
        AT,
        DIGEST,
        [],
        {},
        ["a"],
        [1],
        {"type": "email"},
    ]
).map(copy.deepcopy)  # drawn lists and dicts get mutated: never share them between examples
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | EDGE_VALUES,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.text(max_size=4) | st.sampled_from(["type", "name", "id", "key"]),
            children,
            max_size=3,
        )
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(_paths(item, (*prefix, index)))
    return out


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Any]) -> Any:
    """A valid document with a few changes: values replaced, keys removed or added."""
    document = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(document)))
        if not path:
            if draw(st.integers(0, 9)) == 0:
                document = draw(JSON)
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON)
        elif action == "remove" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["nmae", "type", "extra", "id"]))] = draw(JSON)
        else:
            parent.append(draw(JSON))
    return document


def _jsonschema_verdict(name: str, pointer: str, document: Any) -> bool:
    schema_validator: Any = validator(name)
    if pointer:
        schema_validator = schema_validator.evolve(schema={"$ref": f"{name}#{pointer}"})
    return bool(schema_validator.is_valid(document))


@pytest.mark.parametrize(("name", "pointer", "seeds"), CASES, ids=IDS)
def test_every_pfsync_schema_compiles_and_accepts_its_valid_documents(
    name: str, pointer: str, seeds: list[Any]
) -> None:
    check = compile_schema(load_schema, name, pointer)
    assert check is not None
    for seed in seeds:
        assert _jsonschema_verdict(name, pointer, seed)
        assert check(seed)


@pytest.mark.parametrize(("name", "pointer", "seeds"), CASES, ids=IDS)
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_check_agrees_with_jsonschema(
    name: str, pointer: str, seeds: list[Any], data: st.DataObject
) -> None:
    document = data.draw(mutated(seeds))
    check = compile_schema(load_schema, name, pointer)
    assert check is not None
    assert check(document) == _jsonschema_verdict(name, pointer, document), document


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "unevaluatedProperties": False},
        {"format": "date-time"},
        {"$ref": "https://example.com/schema.json"},
        {"$ref": "#anchor"},
        {"patternProperties": {"^x": {}}, "additionalProperties": False},
        {"prefixItems": [{}], "items": False},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"},
        {"type": "strange"},
        {"$id": "other.json"},
    ],
)
def test_anything_not_implemented_is_left_to_jsonschema(schema: dict[str, Any]) -> None:
    assert compile_schema(lambda name: schema, "s.json") is None


def test_recursive_references_compile() -> None:
    tree = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#"}}},
        "additionalProperties": False,
    }
    check = compile_schema(lambda name: tree, "tree.json")
    assert check is not None
    assert check({"children": [{"children": []}, {}]})
    assert not check({"children": [{"children": [{"x": 1}]}]})


@pytest.mark.parametrize(
    ("one", "two", "same"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        ([True], [1], False),
        ({"a": 1}, {"a": 1.0}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ("1", 1, False),
        (None, None, True),
    ],
)
def test_equal_tells_booleans_from_numbers(one: Any, two: Any, same: bool) -> None:
    assert equal(one, two) is same
    assert equal(two, one) is same
