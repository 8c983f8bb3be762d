"""The house: no module of pfsync imports itself back, however indirectly.

import-linter (in CI) keeps the layers pointing one way between packages; inside a package a
cycle would still be allowed by it, so it is checked here, lazy imports in functions included.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import grimp

from conftest import REPO

ARCHITECTURE = REPO / "docs" / "architecture.md"
# The extras of development tools (docs/development.md says why each), not of pfsync's use.
DEVELOPMENT_EXTRAS = re.compile(r"extra\s*==\s*[\"'](test|lint)[\"']")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle() -> None:
    assert _cycles(grimp.build_graph("pfsync")) == []


def test_a_cycle_would_be_found() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "a.b", "a.c"):
        graph.add_module(module)
    graph.add_import(importer="a.b", imported="a.c")
    graph.add_import(importer="a.c", imported="a.b")
    assert _cycles(graph) == [["a.b", "a.c"]]


def _imported_at_run_time(node: ast.AST) -> set[str]:
    """The top-level modules a module imports, lazy ones included, `if TYPE_CHECKING:` excluded."""
    if isinstance(node, ast.Import):
        return {alias.name.partition(".")[0] for alias in node.names}
    if isinstance(node, ast.ImportFrom):
        return {node.module.partition(".")[0]} if node.level == 0 and node.module else set()
    children: list[ast.AST] = list(ast.iter_child_nodes(node))
    if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
        children = list(node.orelse)  # the body is for type checkers only, never run
    found: set[str] = set()
    for child in children:
        found |= _imported_at_run_time(child)
    return found


def _third_party_imports() -> dict[str, set[str]]:
    """The distribution behind each third-party module pfsync imports → the modules."""
    distributions = packages_distributions()
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "pfsync").rglob("*.py")):
        for module in _imported_at_run_time(ast.parse(path.read_text(encoding="utf-8"))):
            if module in sys.stdlib_module_names or module == "pfsync":
                continue
            for distribution in distributions.get(module, [module]):
                found.setdefault(_normal(distribution), set()).add(module)
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    """The distributions pfsync's metadata requires, its extras' included (development tools
    aside)."""
    return {
        _normal(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])
        for requirement in requires("pfsync") or []
        if not DEVELOPMENT_EXTRAS.search(requirement)
    }


def test_every_package_pfsync_imports_is_declared() -> None:
    # A package that works only because another dependency pulls it in breaks when that one
    # stops needing it.
    undeclared = {
        distribution: sorted(modules)
        for distribution, modules in _third_party_imports().items()
        if distribution not in _declared()
    }
    assert not undeclared


def test_the_manual_says_why_each_dependency() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.partition("\n## Dependencies\n")[2].partition("\n## ")[0]
    named = {_normal(row.split("|")[1].strip()) for row in section.splitlines() if row[:2] == "| "}
    assert sorted(_declared() - named) == []


MODULE_LIMIT = 450  # lines of a module of pfsync/
FUNCTION_LIMIT = 80  # lines of a function, from its `def` to its last line
EXCEPTION_ROW = re.compile(r"^\| `(pfsync/[\w/]+\.py)(?::([\w.]+))?` \| (.*\S) \|$")


def _functions(node: ast.AST, prefix: str = "") -> list[tuple[str, int]]:
    """Each function's qualified name (`Class.method`, `outer.inner`) and its length in lines."""
    found: list[tuple[str, int]] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                found.append((name, (child.end_lineno or child.lineno) - child.lineno + 1))
            found.extend(_functions(child, f"{name}."))
        else:
            found.extend(_functions(child, prefix))
    return found


def oversized(root: Path) -> set[str]:
    """`path` for each module over the limit, `path:function` for each function over it."""
    found: set[str] = set()
    for path in sorted((root / "pfsync").rglob("*.py")):
        name = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MODULE_LIMIT:
            found.add(name)
        found |= {
            f"{name}:{function}"
            for function, length in _functions(ast.parse(text))
            if length > FUNCTION_LIMIT
        }
    return found


def size_exceptions(text: str) -> dict[str, str]:
    """The "Exceptions" section of docs/architecture.md: `path` or `path:function` → its reason."""
    section = text.partition("\n## Exceptions\n")[2].partition("\n## ")[0]
    return {
        match[1] + (f":{match[2]}" if match[2] else ""): match[3]
        for match in map(EXCEPTION_ROW.match, section.splitlines())
        if match
    }


def test_modules_and_functions_stay_small() -> None:
    # The limits and their exceptions have one source: the exceptions are the manual's table.
    allowed = size_exceptions(ARCHITECTURE.read_text(encoding="utf-8"))
    found = oversized(REPO)
    assert sorted(found - allowed.keys()) == [], "split it, or add it to docs/architecture.md"
    assert sorted(allowed.keys() - found) == [], "no longer too long: remove its row"


def test_an_oversized_function_and_its_exception_are_found(tmp_path: Path) -> None:
    module = tmp_path / "pfsync" / "long.py"
    module.parent.mkdir()
    body = "".join(f"        x{n} = {n}\n" for n in range(FUNCTION_LIMIT - 1))
    # f has exactly the limit's lines; g one more.
    module.write_text(
        f"class A:\n    def f(self) -> None:\n{body}    def g(self) -> None:\n{body}        pass\n"
    )
    assert oversized(tmp_path) == {"pfsync/long.py:A.g"}
    row = "| `pfsync/long.py:A.g` | a reason |"
    doc = f"# Architecture\n## Exceptions\n\n| where | why |\n|---|---|\n{row}\n## Next\n"
    assert size_exceptions(doc) == {"pfsync/long.py:A.g": "a reason"}


LISTED = re.compile(r"^(\w+/?)\s{2,}\S", re.M)  # `name   what it holds`, a module list's line


def _modules(package: Path) -> set[str]:
    """The modules of a package (`name`) and its subpackages (`name/`)."""
    return {path.stem for path in package.glob("*.py") if path.stem != "__init__"} | {
        f"{path.name}/" for path in package.iterdir() if (path / "__init__.py").is_file()
    }


def test_the_manual_and_each_package_name_every_module() -> None:
    # docs/architecture.md's package table names each module; a package docstring that lists its
    # modules lists them all.
    rows = dict(
        re.findall(r"^\| `pfsync/(\w+)/` \| (.*) \|$", ARCHITECTURE.read_text("utf-8"), re.M)
    )
    unnamed: dict[str, list[str]] = {}
    for package in sorted((REPO / "pfsync").iterdir()):
        if not (package / "__init__.py").is_file():
            continue
        modules = _modules(package)
        row = rows.get(package.name, "")
        missing = [name for name in sorted(modules) if f"`{name}" not in row]
        listed = LISTED.findall(
            ast.get_docstring(ast.parse((package / "__init__.py").read_text("utf-8"))) or ""
        )
        if len(listed) > 1:
            missing += [f"{name} (docstring)" for name in sorted(modules ^ set(listed))]
        if missing:
            unnamed[package.name] = missing
    assert unnamed == {}
