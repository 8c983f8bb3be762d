#!/usr/bin/env python3
"""Libraries measured against pfsync's own code: the fast schema check and canonical JSON.

    .venv/bin/python benchmarks/libraries.py                  # about 40 seconds
    .venv/bin/python benchmarks/libraries.py --end-to-end     # and `pfsync validate`: 1.5 min
    .venv/bin/python benchmarks/libraries.py --quick          # 2,000 documents, fewer repeats

Run it in pfsync's development environment (an editable install of this checkout). It installs
nothing: a library that is missing is named with the pip command that adds it, and its rows are
left out. docs/libraries.md shows the tables it prints and the decisions taken from them.

Every contender gets the same inputs: the benchmark's generated manifests (benchmarks/generate.py,
the same 10,000 as `run.py --only validate`, loaded with pfsync's YAML loader), their request
bodies, the repository's example manifests and test data, and every edge value written at every
place of the valid example documents. Timings are the best and the median of several repeats of
the whole set, in microseconds per document; on a shared machine the best is the steadier one.
The hand-written check that jsonschema-rs replaced is read from git at commit HAND_WRITTEN.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import run_measured  # the timed child process of benchmarks/run.py
from report import table  # the Markdown tables of benchmarks/run.py

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HAND_WRITTEN = "6ec3c1354271dfbde7a5ff74053646a5f309a795"  # last commit with pfsync's own check

Check = Callable[[Any], bool]
MISSING: dict[str, str] = {}


def optional(module: str, package: str) -> Any:
    """The module, or None (and a note of the pip command that installs it)."""
    try:
        return __import__(module)
    except ImportError:
        MISSING[package] = f"{Path(sys.executable).parent / 'pip'} install {package}"
        return None


# ---------------------------------------------------------------------------------------------
# Inputs


def generated_manifests(count: int) -> list[Any]:
    """The data of `count` generated manifests (the validate benchmark's repository)."""
    sys.path.insert(0, str(HERE))
    from generate import write_repository  # type: ignore[import-not-found]

    cached = HERE / "work" / f"single-{count}"
    if (cached / ".complete").exists():
        files = sorted((cached / "triggers").rglob("*.yaml"))
        return _load(files)
    with tempfile.TemporaryDirectory() as folder:
        files = sorted(write_repository(Path(folder), count, multi_document=False, split=True))
        return _load(files)


def _load(files: Sequence[Path]) -> list[Any]:
    from pfsync.support.yamlload import Document, iter_documents

    return [
        document.data
        for path in files
        for document in iter_documents(path.read_text(encoding="utf-8"))
        if isinstance(document, Document)
    ]


def repository_documents() -> list[Any]:
    """Every YAML document of examples/triggers and tests/data that pfsync's loader reads."""
    files = sorted((REPO / "examples" / "triggers").glob("*.yaml"))
    files += sorted((REPO / "tests" / "data").rglob("*.yaml"))
    documents = []
    for path in files:
        try:
            documents.extend(_load([path]))
        except (UnicodeDecodeError, OSError):
            continue  # tests/data holds a file that is not UTF-8 on purpose
    return documents


UUID = "0b7f6c1e-8f5a-4d43-9a43-2b6a1d1f6c10"
DIGEST = "sha256:" + "0" * 64
# The edges jsonschema draws: bool vs int, 1.0 as an integer, `$` before a trailing newline,
# NaN and infinity, big integers, lone surrogates, consts, empty containers.
EDGES: list[Any] = [
    *(None, True, False, 0, 1, -1, 1.0, 2.5, -0.5, 2**64, -(10**30)),
    *(float("nan"), float("inf")),
    *("", "x", "pfsync/v1", "pfsync/v1\n", "Trigger", "biz_123", "biz\n", "biz\ud800"),
    *("Bad Key", "welcome-series", "email", UUID, UUID + "\n", DIGEST, DIGEST + "\n"),
    *([], {}, ["a"], [1], {"type": "email"}),
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def edge_documents(seeds: Sequence[Any]) -> list[tuple[Any, str]]:
    """Each seed with one edge value written at one place; (document, "field = value")."""
    out = []
    for seed in seeds:
        for path in list(_paths(seed))[1:]:
            for value in EDGES:
                document = copy.deepcopy(seed)
                parent = document
                for step in path[:-1]:
                    parent = parent[step]
                parent[path[-1]] = copy.deepcopy(value)
                out.append((document, f"{path[-1]} = {value!r}"))
    return out


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)
    items: int = 1

    @property
    def best_us(self) -> float:
        return min(self.seconds) / self.items * 1e6

    @property
    def median_us(self) -> float:
        return statistics.median(self.seconds) / self.items * 1e6


def per_item(function: Callable[[Any], Any], items: Sequence[Any], repeats: int) -> Timing:
    timing = Timing(items=len(items))
    for _ in range(repeats):
        started = time.perf_counter()
        for item in items:
            function(item)
        timing.seconds.append(time.perf_counter() - started)
    return timing


def once(function: Callable[[], Any], repeats: int) -> float:
    """Best wall time of `function()`, in milliseconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def import_cost(module: str, runs: int) -> tuple[float, float]:
    """(cold, marginal) import time in ms, medians of fresh processes.

    cold: `python -X importtime -c "import module"`, the module's cumulative time; marginal:
    the wall time of the import in a process that has already loaded what `pfsync validate`
    loads before checking a manifest.
    """
    cold, marginal = [], []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
        )
        line = [x for x in done.stderr.splitlines() if x.rstrip().endswith(f"| {module}")][-1]
        cold.append(int(line.split("|")[1]) / 1000)
        probe = (
            "import time, pfsync.cli, pfsync.cli.validate, pfsync.manifests.load\n"
            f"started = time.perf_counter()\nimport {module}\n"
            "print(time.perf_counter() - started)"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        marginal.append(float(done.stdout) * 1000)
    return statistics.median(cold), statistics.median(marginal)


def show(title: str, rows: Sequence[Sequence[str]], header: Sequence[str]) -> None:
    print(f"\n{title}\n")
    print(table(rows, header), flush=True)


# ---------------------------------------------------------------------------------------------
# The schema check contenders


def hand_written_module() -> types.ModuleType | None:
    """pfsync's own compiled check as of HAND_WRITTEN, read with `git show` (None: no git)."""
    try:
        source = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{HAND_WRITTEN}:pfsync/schemas/check.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("hand_written_check")
    exec(compile(source, f"{HAND_WRITTEN[:7]}:pfsync/schemas/check.py", "exec"), module.__dict__)
    return module


@dataclass
class Contender:
    label: str
    build: Callable[[str, str], Check | None]  # (schema name, pointer) -> check
    note: str = ""


def contenders() -> list[Contender]:
    from pfsync.schemas import check, load_schema, schema_dir, validator
    from pfsync.schemas.check import library_check

    names = sorted(p.name for p in schema_dir().glob("*.schema.json"))

    def jsonschema_build(name: str, pointer: str) -> Check:
        built = validator.__wrapped__(name)  # not the cached one: building is measured too
        if not pointer:
            return built.is_valid  # type: ignore[no-any-return]
        return built.evolve(schema={"$ref": f"{name}#{pointer}"}).is_valid  # type: ignore[no-any-return]

    out = [
        Contender("jsonschema (the reference)", jsonschema_build),
        Contender(
            "pfsync check (jsonschema-rs, rejections re-judged)",
            lambda name, pointer: check.__wrapped__(name, pointer),  # not the cached one
        ),
        Contender(
            "jsonschema-rs alone",
            lambda name, pointer: library_check(
                [(n, load_schema(n)) for n in names], name, pointer
            ),
        ),
    ]
    hand = hand_written_module()
    if hand is not None:
        out.append(
            Contender(
                f"hand-written (git {HAND_WRITTEN[:7]})",
                lambda name, pointer: hand.compile_schema(load_schema, name, pointer),
            )
        )
    else:
        print(f"(git show {HAND_WRITTEN[:7]} failed: the hand-written check is left out)")
    fastjsonschema = optional("fastjsonschema", "fastjsonschema")
    if fastjsonschema is not None:

        def fast_build(name: str, pointer: str) -> Check:
            reference = {"$ref": f"{name}#{pointer}" if pointer else name}
            return _fast_check(fastjsonschema, reference, {"": load_schema})

        out.append(Contender("fastjsonschema", fast_build))
    return out


def _fast_check(fastjsonschema: Any, schema: Any, handlers: dict[str, Any]) -> Check:
    compiled = fastjsonschema.compile(
        schema,
        handlers=handlers,  # {"": load_schema}: sibling files by relative name
        use_default=False,  # never write defaults into the checked value
        use_formats=False,  # as jsonschema without a format checker
    )

    def check_value(value: Any) -> bool:
        try:
            compiled(value)
            return True
        except fastjsonschema.JsonSchemaException:
            return False

    return check_value


def verdict(function: Check, value: Any) -> bool | str:
    try:
        return bool(function(value))
    except Exception as error:
        return type(error).__name__


# ---------------------------------------------------------------------------------------------
# Part 1: the schema check


def bench_check(manifests: list[Any], repeats: int) -> None:
    from pfsync.schemas import MANIFEST, REQUEST

    bodies = [m["spec"] for m in manifests]
    reference_share = manifests[:1000]  # jsonschema is slow: a tenth of the documents
    rows = []
    for contender in contenders():
        manifest_check = contender.build(MANIFEST, "")
        request_check = contender.build(REQUEST, "")
        if manifest_check is None or request_check is None:
            rows.append((contender.label, "cannot build", "", "", ""))
            continue
        documents = reference_share if contender.label.startswith("jsonschema (") else manifests
        one = per_item(manifest_check, documents, 1 if documents is reference_share else repeats)
        two = per_item(request_check, bodies[: len(documents)], 1 if len(documents) < 5000 else 3)
        total = one.best_us * 10_000 / 1e6
        rows.append(
            (
                contender.label,
                f"{one.best_us:.2f} (median {one.median_us:.2f})",
                f"{two.best_us:.2f}",
                f"{total:.3f} s",
                f"{len(documents):,}",
            )
        )
    show(
        f"Schema check, µs per document (best of {repeats}; generated manifests)",
        rows,
        ("contender", "manifest schema", "request schema", "for 10,000 manifests", "documents"),
    )


def bench_build_and_import(runs: int) -> None:
    from pfsync.schemas import MANIFEST

    rows = []
    for contender in contenders():
        built = once(lambda c=contender: c.build(MANIFEST, ""), 5)  # type: ignore[misc]
        rows.append((contender.label, f"{built:.2f} ms"))
    show(
        "Building the manifest check, once per process (best of 5; libraries already imported)",
        rows,
        ("contender", "build"),
    )
    rows = []
    for module, package in (
        ("jsonschema", "jsonschema"),
        ("jsonschema_rs", "jsonschema-rs"),
        ("fastjsonschema", "fastjsonschema"),
        ("rfc8785", "rfc8785"),
    ):
        if optional(module, package) is None:
            continue
        cold, marginal = import_cost(module, runs)
        rows.append((package, f"{cold:.1f} ms", f"{marginal:.1f} ms"))
    show(
        f"Import time (medians of {runs} fresh processes)",
        rows,
        ("library", "cold (-X importtime)", "after pfsync validate's own imports"),
    )


def bench_agreement(manifests: list[Any]) -> None:
    from pfsync.schemas import CONFIG, MANIFEST, REQUEST

    examples = _load(sorted((REPO / "examples" / "triggers").glob("*.yaml")))
    config = {"business": "biz", "manifests": ["t/*.yaml"], "lockfile": "pfsync.lock"}
    corpora: list[tuple[str, str, list[tuple[Any, str]]]] = [
        ("repository documents", MANIFEST, [(d, "") for d in repository_documents()]),
        ("generated manifests", MANIFEST, [(d, "") for d in manifests]),
        ("generated request bodies", REQUEST, [(d["spec"], "") for d in manifests]),
        ("edge values, manifests", MANIFEST, edge_documents(examples)),
        ("edge values, request bodies", REQUEST, edge_documents([d["spec"] for d in examples])),
        ("edge values, config", CONFIG, edge_documents([config])),
    ]
    everyone = contenders()
    reference, others = everyone[0], everyone[1:]
    rows = []
    differences: dict[str, Counter[str]] = {c.label: Counter() for c in others}
    for title, name, documents in corpora:
        expected_check = reference.build(name, "")
        assert expected_check is not None
        expected = [verdict(expected_check, d) for d, _ in documents]
        for contender in others:
            function = contender.build(name, "")
            if function is None:  # pfsync would use jsonschema: the same answers, its speed
                rows.append(
                    (title, contender.label, f"{len(documents):,}", "cannot build", "", "", "")
                )
                continue
            counts: Counter[str] = Counter()
            for (document, place), want in zip(documents, expected, strict=True):
                got = verdict(function, document)
                if got == want:
                    counts["same"] += 1
                    continue
                kind = "laxer" if got is True else "stricter" if got is False else f"raises {got}"
                counts[kind] += 1
                differences[contender.label][f"{kind}: {name} {place}".strip()] += 1
            rows.append(
                (
                    title,
                    contender.label,
                    f"{len(documents):,}",
                    f"{counts['same']:,}",
                    f"{counts['stricter']:,}",
                    f"{counts['laxer']:,}",
                    f"{sum(v for k, v in counts.items() if k.startswith('raises')):,}",
                )
            )
    show(
        "Answers compared with jsonschema's",
        rows,
        ("corpus", "contender", "documents", "same", "stricter", "laxer", "raises"),
    )
    for label, found in differences.items():
        if found:
            print(f"\n{label}: where it differs (the field and the value written there)")
            for what, count in sorted(found.items()):
                print(f"  {count:5d}  {what}")
    probe_keywords(others)


def probe_keywords(others: Sequence[Contender]) -> None:
    """Keywords the repository's schemas do not use yet: does each contender agree?

    "cannot build": the hand-written check leaves such a schema to jsonschema, whose speed
    (see the first table) every document then pays.
    """
    import jsonschema

    draft = "https://json-schema.org/draft/2020-12/schema"
    probes: list[tuple[str, dict[str, Any], Any]] = [
        ("maxLength", {"type": "string", "maxLength": 3}, "long"),
        ("allOf", {"allOf": [{"type": "string"}, {"minLength": 2}]}, "a"),
        ("$ref beside minLength", {"$ref": "#/$defs/s", "minLength": 2, "$defs": {"s": {}}}, "a"),
        (
            "unevaluatedProperties",
            {"properties": {"a": {}}, "unevaluatedProperties": False},
            {"b": 1},
        ),
        ("dependentRequired", {"dependentRequired": {"a": ["b"]}}, {"a": 1}),
        ("prefixItems", {"prefixItems": [{"type": "string"}], "items": False}, [1]),
        ("format (not asserted)", {"format": "date-time"}, "not a date"),
        ("pattern `$`", {"pattern": "^a$"}, "a\n"),
    ]
    rows = []
    shown = list(others)
    for label, schema, instance in probes:
        schema = {"$schema": draft, **schema}
        row = [label, str(jsonschema.Draft202012Validator(schema).is_valid(instance))]
        for contender in shown:
            function = _inline(contender, schema)
            row.append("cannot build" if function is None else str(verdict(function, instance)))
        rows.append(row)
    header = ["keyword (draft 2020-12)", "jsonschema", *(c.label for c in shown)]
    show("Keywords the schemas may use one day (jsonschema's answer first)", rows, header)


def _inline(contender: Contender, schema: dict[str, Any]) -> Check | None:
    """`contender`'s check of a schema given inline rather than as a packaged file."""
    from pfsync.schemas.check import confirmed, library_check

    if contender.label.startswith("jsonschema-rs"):
        return library_check([("probe.json", schema)], "probe.json")
    if contender.label.startswith("pfsync"):
        import jsonschema

        fast = library_check([("probe.json", schema)], "probe.json")
        return confirmed(fast, jsonschema.Draft202012Validator(schema).is_valid)
    if contender.label.startswith("hand-written"):
        hand = hand_written_module()
        return hand.compile_schema(lambda name: schema, "probe.json") if hand else None
    fastjsonschema = optional("fastjsonschema", "fastjsonschema")
    return _fast_check(fastjsonschema, schema, {}) if fastjsonschema else None


# ---------------------------------------------------------------------------------------------
# Part 2: canonical JSON


def bench_canonical(manifests: list[Any], repeats: int) -> None:
    from pfsync.support.canonical import body_digest, canonical_json

    rfc8785 = optional("rfc8785", "rfc8785")
    if rfc8785 is None:
        return

    def library_digest(body: Any) -> str:
        return "sha256:" + hashlib.sha256(rfc8785.dumps(body)).hexdigest()

    bodies = [m["spec"] for m in manifests]
    ours = per_item(body_digest, bodies, repeats)
    theirs = per_item(library_digest, bodies, repeats)
    same = sum(body_digest(b) == library_digest(b) for b in bodies)
    with_floats = sum(isinstance(b.get("attributed_revenue"), float) for b in bodies)
    rows = [
        ("pfsync body_digest", f"{ours.best_us:.2f}", f"{ours.best_us * 10_000 / 1e6:.3f} s", ""),
        (
            "rfc8785.dumps + sha256",
            f"{theirs.best_us:.2f}",
            f"{theirs.best_us * 10_000 / 1e6:.3f} s",
            f"{theirs.best_us / ours.best_us:.2f}x",
        ),
    ]
    show(
        f"Body digest, µs per body (best of {repeats}; {len(bodies):,} generated request bodies, "
        f"{with_floats:,} with a float; identical digests: {same:,})",
        rows,
        ("contender", "per body", "for 10,000 bodies", "vs pfsync"),
    )

    def library_text(value: Any) -> str:
        try:
            return rfc8785.dumps(value).decode("utf-8")
        except Exception as error:
            return f"refuses ({type(error).__name__})"

    def our_text(value: Any) -> str:
        try:
            return canonical_json(value)
        except Exception as error:
            return f"refuses ({type(error).__name__})"

    edges: list[tuple[str, Any]] = [
        ("1e21", 1e21),
        ("1e20", 1e20),
        ("-0.0", -0.0),
        ("5e-324", 5e-324),
        ("1e-7", 1e-7),
        ("0.000001", 1e-6),
        ("2**53 - 1", 2**53 - 1),
        ("2**53", 2**53),
        ("2**53 + 1", 2**53 + 1),
        ("10**30", 10**30),
        ("NaN", float("nan")),
        ('"\\u0001\\u001f\\u007f"', "\x01\x1f\x7f"),
        ('"\\ud800" (lone surrogate)', "\ud800"),
        ('{"\\ud800": 1}', {"\ud800": 1}),
        (
            "keys U+20AC \\r U+FB33 1 U+1F600",
            {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5},
        ),
    ]
    rows = []
    for label, value in edges:
        mine, lib = our_text(value), library_text(value)
        same = mine == lib or (mine.startswith("refuses") and lib.startswith("refuses"))
        rows.append((label, ascii(mine)[1:-1], ascii(lib)[1:-1], "yes" if same else "NO"))
    show("Canonical text of edge values", rows, ("value", "pfsync", "rfc8785", "same"))

    rng = random.Random(8785)
    doubles = same = 0
    for _ in range(100_000):
        (number,) = struct.unpack(">d", rng.getrandbits(64).to_bytes(8, "big"))
        if number != number or number in (float("inf"), float("-inf")):
            continue
        doubles += 1
        same += canonical_json(number) == library_text(number)
    counts: Counter[str] = Counter()
    for _ in range(20_000):
        value = _random_json(rng, 3)
        mine, lib = our_text(value), library_text(value)
        counts[
            "same" if mine == lib else "rfc8785 " + lib if lib.startswith("ref") else "DIFFER"
        ] += 1
    rows = [("random doubles (any bit pattern)", f"{doubles:,}", f"{same:,}", "")]
    rows.append(
        (
            "random JSON values (ints to ±2**60, any code point)",
            f"{sum(counts.values()):,}",
            f"{counts.pop('same', 0):,}",
            ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items())),
        )
    )
    show("Byte-identical to pfsync's text", rows, ("values", "count", "identical", "otherwise"))


def _random_json(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth and roll < 0.2:
        return [_random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    if depth and roll < 0.4:
        return {_random_text(rng): _random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))}
    if roll < 0.55:
        return rng.randint(-(2**60), 2**60) >> rng.randint(0, 60)
    if roll < 0.7:
        (number,) = struct.unpack(">d", rng.getrandbits(64).to_bytes(8, "big"))
        return number if number == number and abs(number) != float("inf") else 0.5
    if roll < 0.95:
        return _random_text(rng)
    return rng.choice([None, True, False])


def _random_text(rng: random.Random) -> str:
    # Mostly ASCII, some BMP and astral characters, now and then a lone surrogate.
    pools = [(0x20, 0x7E), (0, 0x1F), (0x80, 0xFFFF), (0x10000, 0x10FFFF)]
    chars = []
    for _ in range(rng.randint(0, 6)):
        low, high = pools[rng.choices(range(4), weights=(70, 5, 20, 5))[0]]
        chars.append(chr(rng.randint(low, high)))
    return "".join(chars)


# ---------------------------------------------------------------------------------------------
# Part 3 (--end-to-end): `pfsync validate`, the check as it is now vs the hand-written one


def bench_end_to_end(count: int, runs: int) -> None:
    repository = HERE / "work" / f"single-{count}"
    if not (repository / ".complete").exists():
        print(f"\n(--end-to-end: run `run.py --only validate` first, to make {repository})")
        return
    now, hand = "jsonschema-rs (now)", f"hand-written ({HAND_WRITTEN[:7]})"
    cliff = "hand-written, key with maxLength 100"
    with tempfile.TemporaryDirectory() as folder:
        trees = {}
        for n, label in enumerate((now, hand, cliff)):
            tree = Path(folder) / str(n)
            shutil.copytree(REPO / "pfsync", tree / "pfsync")
            shutil.copytree(REPO / "schemas", tree / "schemas")
            trees[label] = tree
        for label in (hand, cliff):
            for path in ("pfsync/schemas/check.py", "pfsync/schemas/__init__.py"):
                try:
                    text = subprocess.run(
                        ["git", "-C", str(REPO), "show", f"{HAND_WRITTEN}:{path}"],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                except (OSError, subprocess.CalledProcessError):
                    print(f"\n(--end-to-end: git show {HAND_WRITTEN[:7]}:{path} failed)")
                    return
                (trees[label] / path).write_text(text)
        # One keyword the hand-written check does not implement, changing no answer (the key's
        # pattern allows 100 characters already): every manifest then goes to jsonschema.
        schema_file = trees[cliff] / "schemas" / "manifest.schema.json"
        schema = json.loads(schema_file.read_text())
        schema["properties"]["key"]["maxLength"] = 100
        schema_file.write_text(json.dumps(schema, indent=2))
        cases = {
            f"validate, {count:,} manifests": ["-C", str(repository), "-q", "validate"],
            "validate, examples/ (6 files)": ["-C", str(REPO / "examples"), "-q", "validate"],
        }
        rows = []
        for case, args in cases.items():
            wall: dict[str, list[float]] = {label: [] for label in trees}
            cpu: dict[str, list[float]] = {label: [] for label in trees}
            labels = list(trees)
            for round_ in range(runs):  # in turns, the order rotating: noise hits all alike
                for n in range(len(labels)):
                    label = labels[(round_ + n) % len(labels)]
                    seconds, cpu_seconds = _run_pfsync(trees[label], args)
                    wall[label].append(seconds)
                    cpu[label].append(cpu_seconds)
            for label in labels:
                rows.append(
                    (
                        case,
                        label,
                        f"{min(wall[label]):.3f} s (median {statistics.median(wall[label]):.3f})",
                        f"{min(cpu[label]):.3f} s (median {statistics.median(cpu[label]):.3f})",
                    )
                )
    show(
        f"pfsync validate, whole process ({runs} runs each, in turns; CPU = user + system of "
        "the process and its forked workers)",
        rows,
        ("command", "schema check", "wall, best", "CPU, best"),
    )


def _run_pfsync(tree: Path, args: Sequence[str]) -> tuple[float, float]:
    # PFSYNC_NO_CACHE: every manifest read and checked, not taken from .pfsync/cache/.
    env = {**os.environ, "PYTHONPATH": str(tree), "PFSYNC_NO_CACHE": "1"}
    # cwd: not the checkout, whose editable install would win over PYTHONPATH's ''.
    elapsed, usage = run_measured([sys.executable, "-m", "pfsync", *args], cwd=tree, env=env)
    return elapsed, usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 documents, fewer repeats")
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="also time `pfsync validate` with the current and the hand-written check",
    )
    options = parser.parse_args(argv)
    try:
        import pfsync  # noqa: F401
    except ImportError:
        raise SystemExit(
            f"pfsync is not importable: {Path(sys.executable).parent / 'pip'} install -e '.[test]'"
        ) from None
    optional("jsonschema_rs", "jsonschema-rs")
    optional("fastjsonschema", "fastjsonschema")
    optional("rfc8785", "rfc8785")
    if "jsonschema-rs" in MISSING:  # pfsync itself needs it
        raise SystemExit(f"jsonschema-rs is missing: {MISSING['jsonschema-rs']}")
    count, repeats, runs = (2000, 3, 3) if options.quick else (10_000, 5, 5)
    print(
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    versions = []
    for package in ("jsonschema", "jsonschema-rs", "fastjsonschema", "rfc8785"):
        try:
            from importlib.metadata import version

            versions.append(f"{package} {version(package)}")
        except Exception:
            pass
    print("Libraries: " + ", ".join(versions))
    for package, command in MISSING.items():
        print(f"{package} is not installed, its rows are left out: {command}")
    manifests = generated_manifests(count)
    bench_check(manifests, repeats)
    bench_build_and_import(runs)
    bench_agreement(manifests)
    bench_canonical(manifests, repeats)
    if options.end_to_end:
        bench_end_to_end(count, runs)
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
