"""Loading manifests builds nothing the cyclic garbage collector would have to free.

pfsync pauses that collector while it loads and plans (pfsync/support/collector.py): with
10,000 manifests it otherwise walks a few hundred thousand containers again and again. That is
only free if loading leaves no reference cycle behind, for good files and for every kind of bad
one; a cycle per file would hold each file's document in memory until the run ends.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import pytest

from pfsync.manifests.load import load_file
from pfsync.manifests.results import Declaring

MANIFEST = """\
apiVersion: pfsync/v1
kind: Trigger
key: {key}
spec:
  name: {name}
  project_defined_event: pde_signup
  steps:
    - type: email
      email_template_id: et_1
"""

FILES = {
    "plain": MANIFEST.format(key="a", name="Welcome"),
    "a whole value": MANIFEST.format(key="a", name="${values.title}"),
    "a value inside text": MANIFEST.format(key="a", name="'Hello ${values.title}'"),
    "a value of the wrong type": MANIFEST.format(key="a", name="${values.count}"),
    "an unknown value": MANIFEST.format(key="a", name="${values.nope}"),
    "an unclosed reference": MANIFEST.format(key="a", name="'${values.title'"),
    "a schema error": MANIFEST.format(key="A B", name="Welcome"),
    "a YAML syntax error": MANIFEST.format(key="a", name="[unclosed"),
    "a tab": MANIFEST.format(key="a", name="Welcome").replace("  name", "\tname"),
    "a duplicate key": MANIFEST.format(key="a", name="Welcome") + "key: b\n",
    "aliases": "base: &b {x: 1}\n---\n" + MANIFEST.format(key="a", name="Welcome"),
    "two documents": MANIFEST.format(key="a", name="A")
    + "---\n"
    + MANIFEST.format(key="b", name="B"),
    "not a mapping": "- a\n- b\n",
    "empty": "",
}


def cyclic_garbage_of(load: Callable[[], object]) -> int:
    """How many objects only the cyclic collector frees after `load` runs three times (once
    before, untimed by this count: first calls fill caches and compile validators)."""
    load()
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            load()
        return gc.collect()
    finally:
        gc.enable()


@pytest.mark.parametrize("kind", sorted(FILES))
@pytest.mark.parametrize("with_bodies", [True, False])
def test_loading_a_file_leaves_no_cyclic_garbage(
    kind: str, with_bodies: bool, tmp_path: Path
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(FILES[kind], encoding="utf-8")
    declaring = Declaring("biz_1", {"title": "Hi", "count": 3}, "staging", with_bodies)
    assert cyclic_garbage_of(lambda: load_file(str(path), "m.yaml", declaring)) == 0


def test_loading_bytes_that_are_not_utf8_leaves_no_cyclic_garbage(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"key: \xff\n")
    assert cyclic_garbage_of(lambda: load_file(str(path), "m.yaml", Declaring("biz_1"))) == 0
