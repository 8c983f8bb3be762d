"""The schemas derived from the API reference accept its examples and reject what it forbids."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from conftest import REPO
from pfsync.schemas import MANIFEST, REQUEST, TRIGGER, validator

REFERENCE = REPO.parent / "shared" / "pocketflows-api" / "create-trigger.txt"

EXAMPLE_REQUEST: dict[str, Any] = {
    "project_defined_event": "<string>",
    "name": "<string>",
    "filter": "<string>",
    "metadata": {},
    "attributed_revenue": 123,
    "steps": [{"type": "email", "custom_step_id": "<string>", "email_template_id": "<string>"}],
    "email_address": "<string>",
    "phone_number": "<string>",
    "excluded_customers": ["<string>"],
}
EXAMPLE_RESPONSE: dict[str, Any] = {
    "id": "<string>",
    "created_at": "<string>",
    "updated_at": "<string>",
    "name": "<string>",
    "project_defined_event": "<string>",
    "internal_event_definition": {"type": "customer_created", "segment": "<string>"},
    "trigger": "<string>",
    "steps": [{"type": "email", "custom_step_id": "<string>", "email_template_id": "<string>"}],
    "status": "draft",
    "filter": "<string>",
    "email_address": "<string>",
    "phone_number": "<string>",
    "attributed_revenue": 123,
    "statistics": {
        "total_customers_enrolled": 123,
        "total_customers_started": 123,
        "total_customers_finished": 123,
        "emails": {
            "sent": 123,
            "delivered": 123,
            "opened": 123,
            "soft_bounced": 123,
            "hard_bounced": 123,
            "clicked": 123,
        },
        "custom_steps": [{"custom_step": "<string>", "sent": 123}],
    },
}


def _reference_examples() -> tuple[Any, Any]:
    """The two JSON examples as printed on the reference page (request inside the curl call)."""
    text = REFERENCE.read_text()
    request_text = text.split("--data '", 1)[1].split("'", 1)[0]
    response_start = text.index("{", text.index("}'"))
    response, _ = json.JSONDecoder().raw_decode(text[response_start:])
    return json.loads(request_text), response


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared/ is not beside the checkout")
def test_transcribed_examples_match_the_reference_page() -> None:
    assert _reference_examples() == (EXAMPLE_REQUEST, EXAMPLE_RESPONSE)


def test_reference_examples_validate() -> None:
    assert list(validator(REQUEST).iter_errors(EXAMPLE_REQUEST)) == []
    assert list(validator(TRIGGER).iter_errors(EXAMPLE_RESPONSE)) == []


@pytest.mark.parametrize("field", ["project_defined_event", "name", "steps"])
def test_request_required_fields(field: str) -> None:
    body = copy.deepcopy(EXAMPLE_REQUEST)
    del body[field]
    assert not validator(REQUEST).is_valid(body)


def test_step_requires_type_and_rejects_unknown_fields() -> None:
    body = copy.deepcopy(EXAMPLE_REQUEST)
    del body["steps"][0]["type"]
    assert not validator(REQUEST).is_valid(body)
    body = copy.deepcopy(EXAMPLE_REQUEST)
    body["steps"][0]["template"] = "x"
    assert not validator(REQUEST).is_valid(body)
    body["steps"] = [{"type": "sms"}]  # no enum: the reference shows only "email"
    assert validator(REQUEST).is_valid(body)


@pytest.mark.parametrize(
    "field", ["filter", "metadata", "attributed_revenue", "email_address", "phone_number"]
)
def test_nullable_request_fields(field: str) -> None:
    assert validator(REQUEST).is_valid({**EXAMPLE_REQUEST, field: None})


def test_unknown_request_field_fails() -> None:
    assert not validator(REQUEST).is_valid({**EXAMPLE_REQUEST, "nmae": "x"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 1),
        ("project_defined_event", None),
        ("steps", {}),
        ("filter", 3),
        ("metadata", []),
        ("attributed_revenue", "123"),
        ("email_address", 1),
        ("phone_number", True),
        ("excluded_customers", [1]),
        ("excluded_customers", None),
    ],
)
def test_wrong_types_fail(field: str, value: Any) -> None:
    assert not validator(REQUEST).is_valid({**EXAMPLE_REQUEST, field: value})


REQUIRED_RESPONSE = [
    "id",
    "created_at",
    "updated_at",
    "name",
    "project_defined_event",
    "internal_event_definition",
    "steps",
    "status",
    "filter",
    "email_address",
    "phone_number",
    "attributed_revenue",
    "statistics",
]


@pytest.mark.parametrize("field", REQUIRED_RESPONSE)
def test_response_required_fields(field: str) -> None:
    body = copy.deepcopy(EXAMPLE_RESPONSE)
    del body[field]
    assert not validator(TRIGGER).is_valid(body)


def test_response_tolerates_growth() -> None:
    body = {**EXAMPLE_RESPONSE, "new_field": {"x": 1}, "status": "archived", "trigger": None}
    body["created_at"] = "not a date"  # no format assertions
    assert validator(TRIGGER).is_valid(body)
    assert not validator(TRIGGER).is_valid({**EXAMPLE_RESPONSE, "id": 5})


def test_manifest_schema_refers_to_the_request_schema() -> None:
    manifest = {"apiVersion": "pfsync/v1", "kind": "Trigger", "key": "k", "spec": EXAMPLE_REQUEST}
    assert validator(MANIFEST).is_valid(manifest)
    assert not validator(MANIFEST).is_valid({**manifest, "spec": {"name": "x"}})
    assert not validator(MANIFEST).is_valid({**manifest, "revision": -1})
    assert not validator(MANIFEST).is_valid({**manifest, "business": "../x"})
