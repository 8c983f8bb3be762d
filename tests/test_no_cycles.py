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


def cyclic_garbage(loads: dict[str, Callable[[], object]]) -> dict[str, int]:
    """For each named load, how many objects only the cyclic collector frees after it runs
    three times (once before, not counted: first calls fill caches and compile validators).

    With the collector paused, what a load allocates stays in the youngest generations: a
    collection of those after each load finds its cycles without walking the whole heap of a
    test worker again per load (the slow part). A cycle that reached an older object is still
    found by the full collection at the end, counted under "older objects".
    """
    for load in loads.values():
        load()
    found = {}
    gc.collect()
    gc.disable()
    try:
        for name, load in loads.items():
            for _ in range(3):
                load()
            found[name] = gc.collect(1)
        found["older objects"] = gc.collect()
    finally:
        gc.enable()
    return found


def loader(path: Path, declaring: Declaring) -> Callable[[], object]:
    return lambda: load_file(str(path), "m.yaml", declaring)


@pytest.mark.parametrize("with_bodies", [True, False])
def test_loading_files_good_and_bad_leaves_no_cyclic_garbage(
    with_bodies: bool, tmp_path: Path
) -> None:
    declaring = Declaring("biz_1", {"title": "Hi", "count": 3}, "staging", with_bodies)
    loads = {}
    for n, (kind, text) in enumerate(sorted(FILES.items())):
        path = tmp_path / f"m{n}.yaml"
        path.write_text(text, encoding="utf-8")
        loads[kind] = loader(path, declaring)
    not_utf8 = tmp_path / "bytes.yaml"
    not_utf8.write_bytes(b"key: \xff\n")
    loads["bytes that are not UTF-8"] = loader(not_utf8, declaring)
    assert cyclic_garbage(loads) == dict.fromkeys([*loads, "older objects"], 0)
