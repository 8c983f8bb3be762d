"""RFC 8785 (JCS) canonical JSON and the body digest recorded in the lockfile.

    canonical_json(value) -> str     keys sorted by UTF-16 code units, no whitespace,
                                     ECMAScript number form (1.0 → 1, 1e21 → 1e+21, -0 → 0),
                                     minimal string escaping
    body_digest(body) -> str         "sha256:" + hex sha256 of the UTF-8 canonical JSON

The digest decides `no-op` versus `update`, so formatting-only edits to a manifest (comments, key
order, quoting, `1.0` versus `1`) never show as changes, while `null` and an absent field differ.

Why not the `rfc8785` package: it writes the same text for every other value, but refuses
integers beyond 2**53 - 1 and lone surrogates, both of which a body recorded in a lockfile may
hold (their digests must not change), and it takes twice as long per body; docs/libraries.md
has the measurements.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

DIGEST_PREFIX = "sha256:"
_encode_string = json.JSONEncoder(ensure_ascii=False).encode

# Integers beyond 2**53 are not exactly representable as IEEE 754 doubles; JCS (I-JSON) treats
# every number as a double, so larger integers are serialised through float like JavaScript does.
_MAX_SAFE_INTEGER = 2**53


# Python's own encoder writes exactly the JCS text when there is nothing it formats differently.
_encode_plain = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode
_PLAIN_SCAN_LIMIT = 1_000_000


def canonical_json(value: Any) -> str:
    """The RFC 8785 canonical JSON text of `value` (JSON types only)."""
    if _is_plain(value):
        return _encode_plain(value)
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _is_plain(value: Any) -> bool:
    """Whether json's C encoder writes `value` exactly as JCS does (the usual manifest body).

    That holds for strings (its escaping is JCS's, see `_string`), null, booleans, integers up
    to 2**53, and lists and objects of them whose keys are ASCII (so that sorting by code
    point is sorting by UTF-16 code unit). Floats (ECMAScript number form), larger integers,
    other keys and any subclass take the slow, explicit path.
    """
    stack = [value]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int:
            if -_MAX_SAFE_INTEGER <= item <= _MAX_SAFE_INTEGER:
                continue
            return False
        if kind is dict:
            for key in item:
                if type(key) is not str or not key.isascii():
                    return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        else:
            return False
        if seen > _PLAIN_SCAN_LIMIT:  # never the case for a 1 MiB document; guards a cycle
            return False
    return True


def body_digest(body: Any) -> str:
    """`sha256:<hex>` of the canonical JSON of `body`."""
    # A lone surrogate (JSON allows "\ud800"; a manifest cannot hold one, a hand-made lockfile
    # can) has no UTF-8 form: hashed as its code unit, so the check fails cleanly, never crashes.
    data = canonical_json(body).encode("utf-8", "surrogatepass")
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


def _write(value: Any, parts: list[str]) -> None:
    # An explicit stack would avoid recursion limits, but bodies are validated manifests whose
    # depth is bounded by the 1 MiB expansion limit; recursion keeps this readable.
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(_integer(value))
    elif isinstance(value, float):
        parts.append(format_number(value))
    elif isinstance(value, str):
        parts.append(_string(value))
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _write(item, parts)
        parts.append("]")
    elif isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
        parts.append("{")
        for index, key in enumerate(sorted(value, key=_utf16_key)):
            if index:
                parts.append(",")
            parts.append(_string(key))
            parts.append(":")
            _write(value[key], parts)
        parts.append("}")
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value")


def _utf16_key(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly like the sequence of UTF-16 code units.
    return key.encode("utf-16-be", "surrogatepass")


def _string(text: str) -> str:
    # Python's encoder with ensure_ascii=False escapes exactly what JCS requires: '"', '\\',
    # \b \f \n \r \t by name, other controls below U+0020 as lowercase \u00xx, nothing else.
    return _encode_string(text)


def _integer(number: int) -> str:
    if -_MAX_SAFE_INTEGER <= number <= _MAX_SAFE_INTEGER:
        return str(number)
    try:
        return format_number(float(number))
    except OverflowError:
        raise ValueError(f"integer {number} is too large for JSON (beyond IEEE 754)") from None


def format_number(number: float) -> str:
    """ECMAScript Number::toString of a finite double (the JCS number form)."""
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{number} is not a JSON number")
    if number == 0:
        return "0"  # also -0
    sign = "-" if number < 0 else ""
    digits, point = _shortest_digits(abs(number))
    count = len(digits)
    if count <= point <= 21:
        text = digits + "0" * (point - count)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        exponent = point - 1
        mantissa = digits if count == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"
    return sign + text


def _shortest_digits(number: float) -> tuple[str, int]:
    """Digits d1…dk and point n with number = 0.d1…dk * 10**n, k as small as possible.

    Python's repr is the shortest string that round-trips, the same digits ECMAScript uses.
    """
    mantissa, _, exponent_text = repr(number).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent_text) if exponent_text else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    return stripped.rstrip("0") or "0", point
