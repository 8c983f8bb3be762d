"""The `${{ … }}` expressions of GitHub Actions that pfsync's recipes use, for the test runner.

evaluate("steps.plan.outputs.code != '0'", contexts) -> Any      one expression
render("pfsync-plan-${{ matrix.environment }}", contexts) -> str  a string with expressions in it
condition("github.event_name == 'push'", contexts) -> bool       an `if:` (with or without ${{ }})

What is understood: context paths (`github.event.pull_request.number`, `steps.ID.outputs.NAME`,
`secrets.NAME`, `matrix.NAME`, `runner.temp`, `needs.JOB.result`…), 'strings' ('' escapes a
quote), numbers, true/false/null, `==`, `!=`, `&&`, `||`, `!`, parentheses, and the status
functions success(), failure(), always() and cancelled() (their answer is in contexts["job"],
key "status": success or failure). A missing property is null; comparisons follow GitHub's
loose rules as far as the recipes need them (strings compare without case; null equals '').
Anything else raises ExpressionError, so a recipe using more fails loudly here.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<op>==|!=|&&|\|\||!|\(|\))|(?P<name>[A-Za-z_][\w-]*(?:\.[\w-]+|\[[^\]]+\])*))"
)
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")


class ExpressionError(Exception):
    """An expression the runner does not understand."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, at = [], 0
    while at < len(text.rstrip()):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise ExpressionError(f"cannot read {text!r} at {text[at:]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match[kind]))
        at = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, contexts: dict[str, Any]) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.contexts = contexts

    def parse(self) -> Any:
        value = self.either()
        if self.at != len(self.tokens):
            raise ExpressionError(f"unexpected {self.tokens[self.at][1]!r} in {self.text!r}")
        return value

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise ExpressionError(f"{self.text!r} ends too soon")
        self.at += 1
        return self.tokens[self.at - 1]

    def either(self) -> Any:
        value = self.both()
        while self.peek() == "||":
            self.take()
            other = self.both()
            value = value if truthy(value) else other
        return value

    def both(self) -> Any:
        value = self.comparison()
        while self.peek() == "&&":
            self.take()
            other = self.comparison()
            value = other if truthy(value) else value
        return value

    def comparison(self) -> Any:
        value = self.unary()
        while self.peek() in ("==", "!="):
            op = self.take()[1]
            same = equal(value, self.unary())
            value = same if op == "==" else not same
        return value

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.unary())
        if self.peek() == "(":
            self.take()
            value = self.either()
            if self.take()[1] != ")":
                raise ExpressionError(f"unbalanced parentheses in {self.text!r}")
            return value
        kind, word = self.take()
        if kind == "string":
            return word[1:-1].replace("''", "'")
        if kind == "number":
            return float(word) if "." in word else int(word)
        if kind != "name":
            raise ExpressionError(f"unexpected {word!r} in {self.text!r}")
        if word in ("true", "false"):
            return word == "true"
        if word == "null":
            return None
        if self.peek() == "(":
            self.take()
            if self.take()[1] != ")" or word not in STATUS_FUNCTIONS:
                raise ExpressionError(f"unknown function {word} in {self.text!r}")
            status = self.contexts.get("job", {}).get("status", "success")
            return {"success": status == "success", "failure": status == "failure"}.get(
                word, word == "always"
            )
        return lookup(word, self.contexts)


def lookup(path: str, contexts: dict[str, Any]) -> Any:
    """The value at a dotted context path (null when any part is missing; names ignore case)."""
    parts = re.findall(r"[^.\[\]]+", path)
    value: Any = contexts
    for part in parts:
        if isinstance(value, dict):
            key = next((k for k in value if str(k).lower() == part.lower()), None)
            value = value.get(key) if key is not None else None
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "")


def equal(left: Any, right: Any) -> bool:
    if left is None:
        left = ""
    if right is None:
        right = ""
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()
    if isinstance(left, str) != isinstance(right, str):
        try:
            return float(left) == float(right)
        except ValueError:
            return False
    return bool(left == right)


def evaluate(text: str, contexts: dict[str, Any]) -> Any:
    return _Parser(text, contexts).parse()


def text_of(value: Any) -> str:
    """A value as `${{ }}` inserts it into a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def render(value: Any, contexts: dict[str, Any]) -> Any:
    """`value` with each `${{ … }}` in its strings evaluated (a whole-string one keeps its type)."""
    if isinstance(value, dict):
        return {key: render(item, contexts) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, contexts) for item in value]
    if not isinstance(value, str):
        return value
    whole = _EXPRESSION.fullmatch(value.strip())
    if whole:
        return evaluate(whole[1], contexts)
    return _EXPRESSION.sub(lambda match: text_of(evaluate(match[1], contexts)), value)


def condition(value: Any, contexts: dict[str, Any]) -> bool:
    """An `if:`: true when absent, else the expression (`${{ }}` optional) is truthy."""
    if value is None:
        return truthy(evaluate("success()", contexts))
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    whole = _EXPRESSION.fullmatch(text)
    expression = whole[1] if whole else text
    if not any(f"{name}()" in expression for name in STATUS_FUNCTIONS):
        expression = f"success() && ({expression})"
    return truthy(evaluate(expression, contexts))
