"""The official YAML test suite's inputs: each ends in a clean, located error or is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO
from pfsync.manifests.load import load_file
from pfsync.manifests.results import Declaring

SUITE = REPO.parent / "shared" / "testdata" / "yaml-test-suite"
CASES = sorted(SUITE.glob("*/*.yaml")) if SUITE.is_dir() else []


@pytest.mark.skipif(not CASES, reason="shared/testdata/yaml-test-suite is not beside the checkout")
def test_corpus_is_present() -> None:
    assert len(CASES) > 300


def holds_only_empty_documents(case: Path) -> bool:
    """Whether libyaml reads `case` as empty documents only (comments, markers, directives)."""
    try:
        return all(d is None for d in yaml.load_all(case.read_bytes(), Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        return False


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_every_case_ends_cleanly(case: Path) -> None:
    result = load_file(case, case.name, Declaring("biz_test"))
    # None of these is a manifest: anything loaded would be a bug in the loader.
    assert result.manifests == []
    for problem in result.diagnostics:
        assert problem.file == case.name
        assert problem.line >= 1 and problem.col >= 1
        assert problem.message and "Traceback" not in problem.message
    # A file of empty documents declares nothing and is skipped without a word (libyaml also
    # takes a few directive-only inputs YAML 1.2 calls invalid as such); any other input, valid
    # YAML that is not a trigger or YAML libyaml rejects, gets at least one located diagnostic.
    assert bool(result.diagnostics) != holds_only_empty_documents(case), result.diagnostics
