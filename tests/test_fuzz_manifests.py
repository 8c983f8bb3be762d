"""Fuzzing the manifest loader: any text gives manifests or located problems, never a traceback.

The property: `load_file` returns values — every problem a Diagnostic with a file, a line and
a column from 1 — whatever the bytes. Structured mutations start from a valid manifest and delete
keys, swap types, duplicate lines (duplicate keys), nest deeply, add huge strings and odd Unicode.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfsync.manifests.load import load_file
from pfsync.manifests.results import Declaring, LoadResult
from pfsync.state.lockfile import Lockfile
from pfsync.state.trigger_records import TriggerRecord
from pfsync.support.canonical import body_digest
from pfsync.support.diagnostics import format_github, format_json, format_text, sort_diagnostics
from pfsync.support.yamlload import MAX_NESTING_DEPTH, YamlProblem, iter_documents

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

VALID: dict[str, Any] = {
    "apiVersion": "pfsync/v1",
    "kind": "Trigger",
    "key": "welcome",
    "business": "biz_1",
    "revision": 0,
    "spec": {
        "name": "Welcome",
        "project_defined_event": "pde_signup",
        "steps": [{"type": "email", "email_template_id": "et_1"}],
        "email_address": "ea_1",
        "excluded_customers": ["cus_1", "cus_2"],
        "metadata": {"team": "growth"},
        "filter": None,
        "attributed_revenue": 1.5,
    },
}
ODD_TEXT = st.sampled_from(
    [
        "",
        "\x00",
        "\x1b[31m",
        "\u202e",
        "\U0001f600",
        "\u2028",
        "\x85",
        "\ufeff",
        "İ",
        "\u017f",  # long s: uppercases to S
        "\uff11",  # fullwidth digit one
        "a\nb",
        "../x",
        "%2F",
        "a b",
        "x" * 50_000,
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    ODD_TEXT,
)
DEEP = st.integers(1, 300).map(lambda n: f"__DEEP_{n}__")  # written as flow text, see below
VALUES = st.one_of(
    st.recursive(
        SCALARS,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.one_of(st.text(max_size=6), ODD_TEXT), children, max_size=3),
        ),
        max_leaves=8,
    ),
    DEEP,
)


def load_text(tmp_path: Path, data: bytes) -> LoadResult:
    path = tmp_path / "m.yaml"
    path.write_bytes(data)
    return load_file(path, "m.yaml", Declaring("biz_default"))


def assert_values_not_tracebacks(result: LoadResult) -> None:
    for problem in result.diagnostics:
        assert problem.file == "m.yaml"
        assert problem.line >= 1 and problem.col >= 1
        assert problem.message and problem.path.startswith("$")
    # Every output format copes with whatever ended up in the messages.
    problems = sort_diagnostics(result.diagnostics)
    for render in (format_text, format_json, format_github):
        render(problems)
    for manifest in result.manifests:
        body_digest(manifest.body)  # what plan computes next


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    assert_values_not_tracebacks(load_text(tmp_path, data))


YAML_PIECES = st.sampled_from(
    [*"abc:- \n\t{}[],&*!|>'\"#%@`?<=~0.\\", "<<", "!!str ", "!!binary ", "!!timestamp ", "&a ",
     "*a", "---\n", "...\n", "\ufeff", "\u2028", "\x85", "  ", ": ", "- ", "key: k\n",
     "apiVersion: pfsync/v1\n", "spec:\n", "2001-01-01", ".nan", "0x1F", "1e999"]
)  # fmt: skip


@FUZZ
@given(st.lists(YAML_PIECES, max_size=60).map("".join))
def test_yaml_shaped_text(tmp_path: Path, text: str) -> None:
    assert_values_not_tracebacks(load_text(tmp_path, text.encode("utf-8")))


@st.composite
def mutated_manifest(draw: st.DrawFn) -> str:
    """A valid manifest with a few random deletions, type swaps and additions, as YAML text."""
    document = json.loads(json.dumps(VALID))
    for _ in range(draw(st.integers(1, 4))):
        node, path = document, []
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            steps = sorted(node) if isinstance(node, dict) else list(range(len(node)))
            step = draw(st.sampled_from(steps))
            path.append(step)
            node = node[step]
        if not path:
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        operation = draw(st.sampled_from(["delete", "swap", "add"]))
        if operation == "delete":
            del parent[path[-1]]
        elif operation == "swap":
            parent[path[-1]] = draw(VALUES)
        elif isinstance(parent, dict):
            parent[draw(st.one_of(st.text(max_size=8), ODD_TEXT))] = draw(VALUES)
    text = yaml.safe_dump(
        document,
        allow_unicode=draw(st.booleans()),
        default_flow_style=draw(st.sampled_from([None, True, False])),
        width=10**6,
    )
    text = re.sub(
        r"'?__DEEP_(\d+)__'?",
        lambda m: "[{k: " * int(m.group(1)) + "x" + "}]" * int(m.group(1)),
        text,
    )
    lines = text.splitlines(keepends=True)
    if draw(st.booleans()):
        at = draw(st.integers(0, len(lines) - 1))
        lines.insert(at, lines[at])  # usually a duplicate key
    if draw(st.booleans()):
        lines += ["---\n", *lines]  # a second document: the same address twice
    return "".join(lines)


@FUZZ
@given(mutated_manifest())
def test_mutated_manifests(tmp_path: Path, text: str) -> None:
    result = load_text(tmp_path, text.encode("utf-8"))
    assert_values_not_tracebacks(result)
    assert result.manifests or result.diagnostics


def test_the_unmutated_manifest_is_valid(tmp_path: Path) -> None:
    result = load_text(tmp_path, yaml.safe_dump(VALID).encode())
    assert result.diagnostics == [] and len(result.manifests) == 1


# --- regression: deep nesting validated, then crashed `plan` ------------------------------------
# A document nested ~990 levels deep passed `pfsync validate` (libyaml stops at 1000), and `plan`
# died with a RecursionError traceback computing its digest. Nesting is now bounded by the loader.


def nested_manifest(levels: int) -> str:
    return (
        "apiVersion: pfsync/v1\nkind: Trigger\nkey: deep\nspec:\n  name: n\n"
        "  project_defined_event: p\n  steps: []\n"
        "  metadata: " + "{a: " * levels + "1" + "}" * levels + "\n"
    )


def test_nesting_beyond_the_limit_is_a_located_problem(tmp_path: Path) -> None:
    # root mapping, spec, then `levels` mappings: the limit is reached at levels = depth - 2.
    over = MAX_NESTING_DEPTH - 1
    result = load_text(tmp_path, nested_manifest(over).encode())
    [problem] = result.diagnostics
    assert (problem.line, problem.col) == (8, 13 + 4 * (over - 1))
    assert problem.message == f"lists and mappings nested more than {MAX_NESTING_DEPTH} levels deep"
    assert problem.path.startswith("$.spec.metadata.a.a")


def test_nesting_at_the_limit_goes_through_digest_and_lockfile(tmp_path: Path) -> None:
    result = load_text(tmp_path, nested_manifest(MAX_NESTING_DEPTH - 2).encode())
    assert result.diagnostics == []
    [manifest] = result.manifests
    record = TriggerRecord(
        "trg_1", "created", None, "draft", 0, manifest.body, body_digest(manifest.body), "m.yaml"
    )
    text = Lockfile("l", 1, "https://x", {manifest.address: record}).dumps()
    assert json.loads(text)["triggers"]["biz_default/deep"]["digest"] == record.digest


def test_aliases_count_towards_the_nesting_limit() -> None:
    half = MAX_NESTING_DEPTH // 2
    text = f"x: &a {'[' * half}{']' * half}\ny: {'[' * half}*a{']' * half}\n"
    [problem] = list(iter_documents(text))
    assert isinstance(problem, YamlProblem)
    assert problem.position == (2, 4 + half)
    assert "nested more than" in problem.message
