"""jsonschema's errors → located, concise diagnostics at the line and column of the YAML value."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pfsync.support.diagnostics import Diagnostic, json_path
from pfsync.support.suggest import closest
from pfsync.support.textsafety import json_text
from pfsync.support.yamlload import Document

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError


def field_hint(field_name: str) -> str | None:
    """What a valid value of a top-level identifier field looks like."""
    return {
        "key": "a key is 1-100 characters of a-z, 0-9, '.', '_', '-', starting with a letter "
        "or digit",
        "business": "a business id is 1-128 characters of A-Z, a-z, 0-9, '.', '_', '~', '-', "
        "starting with a letter or digit",
    }.get(field_name)


def schema_diagnostics(
    schema_validator: Draft202012Validator, document: Document, shown: str
) -> list[Diagnostic]:
    """Every schema violation in `document`, each at the line and column of its YAML value."""
    problems = []
    for error in schema_validator.iter_errors(document.data):
        problems.extend(_error_diagnostics(error, document, shown))
    # jsonschema reports `required` once per missing field, and each names all of them.
    return list(dict.fromkeys(problems))


MAX_SHOWN_VALUE = 80
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def shown_value(value: Any) -> str:
    """`value` as JSON (`true`, `null`, `{"a": 1}`, `"x"`), shortened when long."""
    text = json_text(value)
    return text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 1] + "…"


def _type_names(expected: Any) -> str:
    names = expected if isinstance(expected, list) else [expected]
    return " or ".join(_TYPE_NAMES.get(str(name), str(name)) for name in names)


def _plain_scalar_hint(instance: Any, source: str | None) -> str | None:
    """Why an unquoted YAML scalar is not the string it looks like, and how to quote it."""
    if source is None or isinstance(instance, str):
        return None
    if source == "":
        return "the value is empty, which YAML reads as null; write the text after the colon"
    quoted = json_text(source)
    if isinstance(instance, bool):
        return f"YAML reads yes/no/on/off/true/false as a boolean; quote it: {quoted}"
    if instance is None:
        return f"YAML reads {source} as null; quote it: {quoted}"
    return f"YAML reads {source} as a number; quote it: {quoted}"


def _count(number: Any, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _message(error: ValidationError, source: str | None) -> tuple[str, str | None]:
    """A concise message (values shown as JSON) and a hint, from the error's fields."""
    kind, expected, value = error.validator, error.validator_value, error.instance
    shown = shown_value(value)
    if kind == "type":
        hint = None
        if "string" in (expected if isinstance(expected, list) else [expected]):
            hint = _plain_scalar_hint(value, source)
        if expected == "array" and isinstance(value, (dict, str)):
            hint = "a list item starts with `- `"
        return f"{shown} is not {_type_names(expected)}", hint
    if kind == "enum" and isinstance(expected, list):
        choices = ", ".join(shown_value(choice) for choice in expected)
        return f"{shown} is not one of {choices}", None
    if kind == "const":
        return f"must be {shown_value(expected)}, not {shown}", None
    if kind == "pattern":
        return f"{shown} does not match {expected}", None
    if kind == "minLength":
        if expected == 1:
            return f"{shown} must not be empty", None
        return f"{shown} is shorter than {_count(expected, 'character')}", None
    if kind == "maxLength":
        return f"{shown} is longer than {_count(expected, 'character')}", None
    if kind == "minItems":
        if expected == 1:
            return f"{shown} must not be empty", None
        return f"{shown} has fewer than {_count(expected, 'item')}", None
    if kind == "maxItems":
        return f"{shown} has more than {_count(expected, 'item')}", None
    if kind == "minimum":
        return f"{shown} is less than the minimum of {shown_value(expected)}", None
    if kind == "maximum":
        return f"{shown} is more than the maximum of {shown_value(expected)}", None
    return error.message, None


def _error_diagnostics(error: ValidationError, document: Document, shown: str) -> list[Diagnostic]:
    path = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "propertyNames" in error.relative_schema_path and isinstance(error.instance, str):
        # A name that is not allowed: point at that key, not at the mapping holding it.
        line, col = document.locate([*path, error.instance], key=True)
        message, _ = _message(error, None)
        return [Diagnostic(shown, line, col, f"key {message}", json_path(path))]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(schema.get("properties", {}))
        out = []
        for name in error.instance:
            if name in known:
                continue
            line, col = document.locate([*path, name], key=True)
            close = closest(name, known)
            advice = (
                f"did you mean {json_text(close)}?"
                if close
                else "known fields: " + ", ".join(known)
            )
            out.append(
                Diagnostic(
                    shown,
                    line,
                    col,
                    f"unknown field {json_text(name)}",
                    json_path([*path, name]),
                    advice,
                )
            )
        return out
    if (
        error.validator == "required"
        and isinstance(error.validator_value, list)
        and isinstance(error.instance, dict)
    ):
        missing = [name for name in error.validator_value if name not in error.instance]
        line, col = document.locate(path, key=True) if path else document.start
        return [
            Diagnostic(
                shown, line, col, f"missing required field {json_text(name)}", json_path(path)
            )
            for name in missing
        ]
    line, col = document.locate(path)
    message, hint = _message(error, document.plain.get((line, col)))
    if len(path) == 1 and error.validator == "pattern":
        hint = field_hint(str(path[-1]))
    if len(message) > 300:
        message = message[:300] + "…"
    return [Diagnostic(shown, line, col, message, json_path(path), hint)]
