"""The fast schema check (jsonschema-rs) answers exactly as jsonschema does, on valid and broken
documents; jsonschema-rs alone is never laxer than jsonschema, which is what makes that so."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO
from pfsync.models import DesiredTrigger
from pfsync.schemas import (
    CONFIG,
    LOCKFILE,
    MANIFEST,
    REQUEST,
    TRIGGER,
    check,
    load_schema,
    schema_dir,
    validator,
)
from pfsync.schemas.check import Check, confirmed, library_check
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
from pfsync.state.lockfile import Lockfile
from pfsync.state.trigger_records import HistoryEntry, PendingCreate, TriggerRecord

UUID = "0b7f6c1e-8f5a-4d43-9a43-2b6a1d1f6c10"
AT = "2026-01-31T12:00:00Z"
DIGEST = "sha256:" + "0" * 64


def _manifests() -> list[Any]:
    """The example manifests as their production environment resolves them."""
    from pfsync.config import load_config
    from pfsync.manifests.values import resolve_text

    values = load_config(cwd=REPO / "examples", environ={}, environment="production").values

    def resolved(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: resolved(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolved(value) for value in node]
        return resolve_text(node, values, "production") if isinstance(node, str) else node

    documents: list[Any] = []
    for path in sorted((REPO / "examples" / "triggers").glob("*.yaml")):
        documents.extend(resolved(d) for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


def _lockfile() -> dict[str, Any]:
    body = _manifests()[0]["spec"]
    history = (HistoryEntry("trg_0", AT, "replaced", "created", 0),)
    record = TriggerRecord("trg_1", "created", AT, "draft", 1, body, DIGEST, "t/a.yaml", history)
    desired = DesiredTrigger.at_address("biz/b", body, DIGEST, 0, "t/b.yaml")
    pending = PendingCreate(desired, UUID, AT, "unknown")
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
        Pending(DesiredTrigger.at_address("biz/a", body, DIGEST, 0, "t/a.yaml"), UUID, AT),
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
# trailing newline, NaN and infinity, lone surrogates, the consts of the manifest, empty
# containers.
EDGES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    2.5,
    float("nan"),
    float("inf"),
    2**64,
    "",
    "x",
    "pfsync/v1",
    "Trigger",
    "pfsync/v1\n",
    "biz_123",
    "biz\n",
    "biz\ud800",
    DIGEST + "\n",
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

# Drawn lists and dicts get mutated: never share them between examples.
EDGE_VALUES = st.sampled_from(EDGES).map(copy.deepcopy)
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


# The strategies `mutated` draws from, built once: a strategy built anew for every draw is
# validated anew (a tenth of the property's time).
CHANGES = st.integers(0, 3)
ONE_IN_TEN = st.integers(0, 9)
ACTIONS = st.sampled_from(["replace", "replace", "remove", "add"])
ADDED_KEYS = st.sampled_from(["nmae", "type", "extra", "id"])


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Any]) -> Any:
    """A valid document with a few changes: values replaced, keys removed or added."""
    document = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(CHANGES)):
        path = draw(st.sampled_from(_paths(document)))
        if not path:
            if draw(ONE_IN_TEN) == 0:
                document = draw(JSON)
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = draw(ACTIONS)
        if action == "replace":
            parent[path[-1]] = draw(JSON)
        elif action == "remove" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(ADDED_KEYS)] = draw(JSON)
        else:
            parent.append(draw(JSON))
    return document


# Each case's strategy, built once for all its examples.
MUTATED = {(name, pointer): mutated(seeds) for name, pointer, seeds in CASES}


def _jsonschema_verdict(name: str, pointer: str, document: Any) -> bool:
    schema_validator: Any = validator(name)
    if pointer:
        schema_validator = schema_validator.evolve(schema={"$ref": f"{name}#{pointer}"})
    return bool(schema_validator.is_valid(document))


@functools.cache
def _library(name: str, pointer: str) -> Check:
    """jsonschema-rs alone, built as pfsync builds it (from every packaged schema file)."""
    names = [CONFIG, LOCKFILE, MANIFEST, REQUEST, TRIGGER]
    fast = library_check(
        [(n, load_schema(n)) for n in names if (schema_dir() / n).exists()], name, pointer
    )
    assert fast is not None, "jsonschema-rs could not build the check: every value would be slow"
    return fast


def _library_verdict(fast: Check, document: Any) -> bool | None:
    """jsonschema-rs's verdict; None when it cannot read the value (a lone surrogate)."""
    try:
        return fast(document)
    except ValueError:
        return None


@pytest.mark.parametrize(("name", "pointer", "seeds"), CASES, ids=IDS)
def test_every_pfsync_schema_accepts_its_valid_documents_on_the_fast_path(
    name: str, pointer: str, seeds: list[Any]
) -> None:
    fast = _library(name, pointer)
    for seed in seeds:
        assert _jsonschema_verdict(name, pointer, seed)
        assert fast(seed)
        assert check(name, pointer)(seed)


@pytest.mark.parametrize(("name", "pointer", "seeds"), CASES, ids=IDS)
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_check_agrees_with_jsonschema(
    name: str, pointer: str, seeds: list[Any], data: st.DataObject
) -> None:
    document = data.draw(MUTATED[name, pointer])
    verdict = _jsonschema_verdict(name, pointer, document)
    # The premise of `confirmed`: what jsonschema-rs accepts, jsonschema accepts.
    if _library_verdict(_library(name, pointer), document):
        assert verdict, document
    assert check(name, pointer)(document) == verdict, document


@pytest.mark.parametrize(("name", "pointer", "seeds"), CASES, ids=IDS)
def test_every_edge_value_at_every_place_gets_jsonschemas_answer(
    name: str, pointer: str, seeds: list[Any]
) -> None:
    """Systematically, what the generated documents reach only by chance."""
    fast = _library(name, pointer)
    for seed in seeds:
        for path in _paths(seed)[1:]:
            for value in EDGES:
                document = copy.deepcopy(seed)
                parent = document
                for step in path[:-1]:
                    parent = parent[step]
                parent[path[-1]] = copy.deepcopy(value)
                verdict = _jsonschema_verdict(name, pointer, document)
                if _library_verdict(fast, document):
                    assert verdict, document
                assert check(name, pointer)(document) == verdict, document


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("key", "biz\n"),  # `$` before a trailing newline: Python's re matches, ECMA-262 not
        ("business", "biz\n"),
        ("key", "biz\ud800"),  # a lone surrogate: jsonschema-rs cannot read it
    ],
)
def test_where_jsonschema_rs_is_stricter_the_check_still_gives_jsonschemas_answer(
    field: str, value: Any
) -> None:
    document = {**_manifests()[0], field: value}
    assert check(MANIFEST)(document) == _jsonschema_verdict(MANIFEST, "", document)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_numbers_as_jsonschema_says(number: float) -> None:
    body = {**_manifests()[0]["spec"], "attributed_revenue": number}
    assert _jsonschema_verdict(REQUEST, "", body)
    assert check(REQUEST)(body)


def test_a_value_jsonschema_rs_rejects_is_judged_by_jsonschema() -> None:
    asked: list[Any] = []

    def confirm(value: str) -> bool:
        asked.append(value)
        return value == "second opinion"

    def fast(value: str) -> bool:
        if value == "unreadable":
            raise ValueError("not JSON")
        return value == "fine"

    both = confirmed(fast, confirm)
    assert both("fine") and asked == []
    assert both("second opinion") and asked == ["second opinion"]
    assert not both("unreadable") and asked[-1] == "unreadable"
    assert confirmed(None, confirm) is confirm


def test_references_are_resolved_among_the_schema_files_only_never_fetched() -> None:
    remote = {"$ref": "https://example.com/schema.json"}
    assert library_check([("s.json", remote)], "s.json") is None
    assert library_check([("s.json", {"$ref": "other.json"})], "s.json") is None
    sibling = library_check(
        [("s.json", {"$ref": "t.json#/$defs/x"}), ("t.json", {"$defs": {"x": {"type": "string"}}})],
        "s.json",
    )
    assert sibling is not None
    assert sibling("x") and not sibling(1)


def test_formats_are_not_asserted_as_jsonschema_without_a_format_checker() -> None:
    fast = library_check([("s.json", {"format": "date-time"})], "s.json")
    assert fast is not None
    assert fast("not a date")
