"""The test workflow runner's own rules: expressions, step files and concurrency groups."""

from __future__ import annotations

from typing import Any

import pytest

from workflow_expressions import ExpressionError, condition, render
from workflow_runner import _Groups, _key_values, _matrix_legs

CONTEXTS: dict[str, Any] = {
    "github": {"event": {"pull_request": {"number": 7}}, "event_name": "pull_request"},
    "steps": {"plan": {"outputs": {"code": "3"}}},
    "matrix": {"environment": "staging"},
    "secrets": {},
    "job": {"status": "success"},
}


def test_expressions_the_recipes_use() -> None:
    assert render("pfsync-plan-${{ matrix.environment }}", CONTEXTS) == "pfsync-plan-staging"
    assert render("${{ github.event.pull_request.number }}", CONTEXTS) == 7
    assert render("x${{ secrets.PFSYNC_PASSWORD }}y", CONTEXTS) == "xy"
    assert condition("steps.plan.outputs.code != '0' && steps.plan.outputs.code != '2'", CONTEXTS)
    assert not condition("${{ github.event_name == 'push' }}", CONTEXTS)
    assert condition("github.event_name == 'merge_group' || (1 == 1 && !false)", CONTEXTS)
    failed = {**CONTEXTS, "job": {"status": "failure"}}
    assert not condition(None, failed)
    assert not condition("github.event_name == 'pull_request'", failed)
    assert condition("always() && github.event_name == 'pull_request'", failed)
    with pytest.raises(ExpressionError):
        render("${{ format('{0}', 1) }}", CONTEXTS)


def test_step_files_and_matrices() -> None:
    assert _key_values("code=3\nbody<<EOF\na=b\nc\nEOF\nx=\n") == {
        "code": "3",
        "body": "a=b\nc",
        "x": "",
    }
    assert _matrix_legs({"environment": ["staging", "production"]}) == [
        {"environment": "staging"},
        {"environment": "production"},
    ]
    assert _matrix_legs(None) == [{}]


def test_a_newer_pending_job_cancels_the_older_one_of_its_group() -> None:
    groups = _Groups()
    running, older, newer = object(), object(), object()
    groups.queue("apply", running)
    assert groups.acquire("apply", running)
    groups.queue("apply", older)
    groups.queue("apply", newer)
    assert groups.is_cancelled(older) and not groups.is_cancelled(newer)
    assert not groups.acquire("apply", older)
    groups.release("apply")
    assert groups.acquire("apply", newer)
