"""Text from outside, made safe to show and to store.

    escape(text) -> str
        for terminals, logs and pull-request comments: control characters (C0, DEL, C1), lone
        surrogates and bidirectional overrides written as escapes (`\\n`, `\\x1b`, `\\ud800`,
        `\\u202e`), so a server, a lockfile or a manifest cannot forge lines, markup or
        terminal sequences. Everything else is shown as it is.
    json_text(value, **dumps_options) -> str
        json.dumps with ensure_ascii=False, then the same characters as `\\uXXXX` escapes: still
        exact JSON (a parser reads back the same strings, lone surrogates included), always
        encodable as UTF-8, and safe on a terminal
    Secrets(values).redact(text) -> str
        each value replaced by `***`: one of 8 characters or more wherever it is, a shorter one
        only where it stands alone (no letter or digit touches it), so that a password `p`
        cannot turn "property" into "***roperty"; e.g. in a server or git message that echoes it
    Secrets.of_login(username, password) / login_forms(username, password)
        the password, `username:password` and its Base64 form (the Authorization header's
        value)

Where: messages from a server are redacted when the client reads them (nothing downstream ever
holds the password); every renderer escapes the outside strings it shows; stored JSON (lockfile,
journal, saved plans) goes through `json_text`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from json.encoder import encode_basestring
from typing import Any

# C0 and DEL and C1 controls, lone surrogates, and the bidirectional formatting characters that
# can make a terminal or a browser show text in another order than it is (Trojan Source).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)
# What json.dumps leaves unescaped of those (it escapes C0 itself; newlines outside strings are
# the document's own indentation).
_UNSAFE_IN_JSON = re.compile(
    "[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
REDACTED = "***"


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """`text` with every unsafe character written as an escape."""
    return _UNSAFE.sub(_escape_char, text)


def is_safe(text: str) -> bool:
    """Whether `text` has nothing `escape` would change."""
    return _UNSAFE.search(text) is None


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(value: Any, **options: Any) -> str:
    """JSON text of `value`: exact, UTF-8 encodable, and free of unsafe characters."""
    return json_safe(json_text_unchecked(value, **options))


def json_text_unchecked(value: Any, **options: Any) -> str:
    """`json_text` but for its last step, for text that joins many values: `json_safe` then
    makes the whole of it safe at once (a plan of 10,000 creates words a quarter of a million
    values)."""
    if not options:
        # What json.dumps does for a lone scalar, without building an encoder per call.
        kind = type(value)
        if kind is str:
            return encode_basestring(value)
        if kind is int:
            return int.__repr__(value)
        if kind is bool:
            return "true" if value else "false"
        if value is None:
            return "null"
    return json.dumps(value, ensure_ascii=False, **options)


def json_safe(text: str) -> str:
    """Text made of JSON values (and of characters that need no escape) with the unsafe
    characters json.dumps leaves as they are written as `\\uXXXX`. What is left of those can
    only be inside strings, where `\\uXXXX` is the same character to a parser."""
    return _UNSAFE_IN_JSON.sub(_json_escape, text)


# A secret this long is redacted wherever it appears, even inside a longer word: such a value
# is not a word of a message. A shorter one (the sandbox's `sandbox`, a test's `p`) is redacted
# only where it stands alone, or a one-letter password would be cut out of every word.
REDACTED_EVERYWHERE_FROM = 8
_NOT_ALNUM_BEFORE = r"(?<![^\W_])"  # \w without `_`: what str.isalnum() calls a letter or digit
_NOT_ALNUM_AFTER = r"(?![^\W_])"


def login_forms(username: str, password: str) -> tuple[str, ...]:
    """The password, `username:password`, and the pair in Base64 (an HTTP Basic header's value),
    with its `=` padding and without."""
    pair = f"{username}:{password}"
    token = base64.b64encode(pair.encode("utf-8", "surrogateescape")).decode("ascii")
    return password, pair, token, token.rstrip("=")


class Secrets:
    """Values that must never be printed or written, and their redaction."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        # "*", "**" and "***" are inside the mark itself: no redaction could hide them.
        kept = {value for value in values if value not in REDACTED}
        # Longest first, so `user:password` is not left as `user:***`.
        patterns = [
            re.escape(value)
            if len(value) >= REDACTED_EVERYWHERE_FROM
            else _NOT_ALNUM_BEFORE + re.escape(value) + _NOT_ALNUM_AFTER
            for value in sorted(kept, key=lambda value: (-len(value), value))
        ]
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    @classmethod
    def of_login(cls, username: str, password: str) -> Secrets:
        """The forms of an HTTP Basic login (the user name alone is not a secret)."""
        return cls(login_forms(username, password))

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by ***, wherever the rule above finds it."""
        if self._pattern is None:
            return text
        # Again until none is left: a mark can complete a secret that holds `*` ("a*" in
        # "a*a*" becomes "a****"). Each pass removes a letter, a digit or another character
        # that is not `*`, or shortens the text, so this ends.
        while True:
            text, count = self._pattern.subn(REDACTED, text)
            if not count:
                return text


_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:~+=/@-]{0,199}")
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9._:~+=/@-]")


def shown_id(value: str | None, missing: str = "ID") -> str:
    """An id from a server or a lockfile, fit for a command line, a terminal and Markdown.

    Ordinary ids (`trg_abc123`) are shown as they are; any other is shown in single quotes with
    every other character as an escape (`'trg\\x3b\\x20rm'`), so a hostile id can forge neither
    a line, nor markup, nor a shell command that a person copies from a remedy.
    """
    if value is None:
        return missing
    if _PLAIN_ID.fullmatch(value):
        return value
    escaped = _NOT_PLAIN.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) <= 0xFF else f"\\u{ord(m.group()):04x}"
        ),
        value,
    )
    return f"'{escaped}'"
