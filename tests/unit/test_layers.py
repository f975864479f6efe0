"""The import rules between Lupa's layers, checked on the source text.

Imports run one way, `data_contracts` <- `models` <- `assets` <- `pipelines`: the contracts describe data and
know nothing else, the models are pure functions over that data, the assets are the Dagster glue that loads,
calls a model and writes, and `pipelines` assembles everything into one code location and the `lupa` command.
An arrow the other way (even inside a function, even under `if TYPE_CHECKING:`) ties a lower layer to the
orchestration above it: the layer can no longer be tested, reused or reasoned about alone, and sooner or
later the lazy import becomes a cycle. `models/` and `data_contracts/` must also stay free of Dagster and
DuckDB, so that they run (and are tested) without an instance or a database.

The check is pure `ast`: no module is imported, so it takes well under a second and cannot be fooled by
import-time side effects. The checker is itself tested on small synthetic trees at the bottom of the file,
so that a bug in it shows up as a failing test rather than as a silently green one.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: the layered packages, lowest first: a module may import its own layer and the layers before it
LAYERS = ("data_contracts", "models", "assets", "pipelines")
#: first-party packages outside the layering: they may import anything, but nothing layered may import them
UNLAYERED = ("tests", "benchmarks")
FIRST_PARTY = LAYERS + UNLAYERED
#: third-party roots a layer must not import (`dagster_*` covers dagster_pipes, dagster_shared, dagster_postgres)
FORBIDDEN = {"models": ("dagster", "duckdb"), "data_contracts": ("dagster", "duckdb")}


@dataclass(frozen=True)
class Import:
    """One import statement's target, as the importing module sees it."""

    importer: str  # dotted module name of the importing file
    path: Path  # the importing file, for the message
    line: int
    imported: str  # dotted name, resolved to the most specific first-party module when there is one
    module_level: bool  # executed when the importer is imported (not inside a function body)
    #: the package a `from pkg import name` runs first; a cycle edge only, the named import is checked itself
    package_init: bool = False


# --- the checker ---------------------------------------------------------------------------------


def module_name(root: Path, path: Path) -> str:
    """`assets/core/tables.py` -> `assets.core.tables`; a package's `__init__.py` is the package itself."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def discover(root: Path, packages: Iterable[str] = FIRST_PARTY) -> dict[str, Path]:
    """Every first-party module under `root`, by dotted name (test folders have no `__init__.py`, so walk files)."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                modules[module_name(root, path)] = path
    return modules


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """`from ..x import y` in `a.b.c` -> `a.x`; raises when the dots climb above the top-level package."""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    if level - 1 > len(package) - 1:
        raise ValueError(f"relative import beyond the top-level package in {importer}")
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _most_specific(name: str, modules: Mapping[str, Path]) -> str:
    """The longest prefix of `name` that is a known module (`pkg.mod.func` -> `pkg.mod`), else `name` itself."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return name


class _ImportVisitor(ast.NodeVisitor):
    """Collects every import, noting whether it sits inside a function body (runs later) or not."""

    def __init__(self, importer: str, path: Path, modules: Mapping[str, Path]):
        self.importer, self.path, self.modules = importer, path, modules
        self.is_package = path.name == "__init__.py"
        self.depth = 0  # nesting of function bodies
        self.found: list[Import] = []

    def _add(self, node: ast.AST, name: str, package_init: bool = False) -> None:
        imported = _most_specific(name, self.modules)
        self.found.append(Import(self.importer, self.path, node.lineno, imported, self.depth == 0, package_init))

    def _function(self, node: ast.AST) -> None:
        # decorators and default values run at definition time, in the enclosing scope
        for decorator in getattr(node, "decorator_list", []):
            self.visit(decorator)
        self.visit(node.args)
        self.depth += 1
        body = node.body if isinstance(node.body, list) else [node.body]
        for statement in body:
            self.visit(statement)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = _resolve_relative(self.importer, self.is_package, node.level, node.module)
        else:
            base = node.module or ""
        if base in self.modules and base != self.importer:
            # `from pkg import name` runs pkg's __init__ first, whatever name is: a package that imports
            # its own module while that module imports `from pkg import sibling` is a cycle
            self._add(node, base, package_init=True)
        for alias in node.names:
            # `from pkg import name`: name is a submodule when one exists, otherwise an attribute of pkg
            self._add(node, base if alias.name == "*" else f"{base}.{alias.name}" if base else alias.name)

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("pkg.mod") / __import__("pkg.mod") with a literal name is an import too
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name in {"import_module", "__import__"} and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and not first.value.startswith("."):
                self._add(node, first.value)
        self.generic_visit(node)


def collect_imports(modules: Mapping[str, Path]) -> list[Import]:
    """Every import of every module, module-level and function-level, `if TYPE_CHECKING:` included."""
    found: list[Import] = []
    for name, path in sorted(modules.items()):
        visitor = _ImportVisitor(name, path, modules)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found.extend(visitor.found)
    return found


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _where(imp: Import, root: Path) -> str:
    return f"{imp.importer} ({imp.path.relative_to(root)}:{imp.line}) imports {imp.imported}"


def layer_violations(imports: Iterable[Import], root: Path) -> list[str]:
    """Every import that points up the layers, or from a layer into `tests`/`benchmarks`."""
    problems = []
    for imp in imports:
        source, target = _top(imp.importer), _top(imp.imported)
        if imp.package_init or source not in LAYERS or target not in FIRST_PARTY:
            continue
        if target in UNLAYERED:
            problems.append(f"{_where(imp, root)}: {source} must not import {target}")
        elif LAYERS.index(target) > LAYERS.index(source):
            problems.append(
                f"{_where(imp, root)}: {source} may import only {', '.join(LAYERS[: LAYERS.index(source) + 1])}"
            )
    return problems


def forbidden_imports(imports: Iterable[Import], root: Path) -> list[str]:
    """Every Dagster or DuckDB import in the layers that must run without them."""
    problems = []
    for imp in (imp for imp in imports if not imp.package_init):
        banned = FORBIDDEN.get(_top(imp.importer), ())
        root_name = _top(imp.imported)
        if any(root_name == b or root_name.startswith(f"{b}_") for b in banned):
            problems.append(f"{_where(imp, root)}: {_top(imp.importer)} must not import {root_name}")
    return problems


def _strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one member, each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(node: str) -> None:
        # recursion depth is bounded by the length of an import chain, a few dozen at most
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                strongconnect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = [stack.pop()]
            while component[-1] != node:
                component.append(stack.pop())
            on_stack.difference_update(component)
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return sorted(components)


def _shortest_cycle(graph: Mapping[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, as `[a, b, ..., a]` (breadth first)."""
    members, start = set(component), component[0]
    previous: dict[str, str] = {start: start}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & members):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if succ not in previous:
                    previous[succ] = node
                    following.append(succ)
        frontier = following
    raise AssertionError(f"no cycle through {start} in its own component")  # unreachable for a real component


def import_cycles(imports: Iterable[Import], modules: Mapping[str, Path]) -> list[list[str]]:
    """Cycles in the module-level import graph between first-party modules, one example per strongly
    connected component, each as `[a, b, ..., a]`. Function-level imports are left out: they run after
    every module has finished loading, so they cannot leave a module half-initialised (the layer rule
    still catches the upward ones). `if TYPE_CHECKING:` imports stay in: a cycle hidden from the
    interpreter is still a cycle for the reader and for the type checker."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for imp in imports:
        if imp.module_level and imp.imported in modules and imp.imported != imp.importer:
            graph[imp.importer].add(imp.imported)
    return [_shortest_cycle(graph, component) for component in _strongly_connected(graph)]


def check(root: Path) -> dict[str, list[str]]:
    """All three rules on the tree at `root`, as readable messages per rule."""
    modules = discover(root)
    return check_imports(root, modules, collect_imports(modules))


def check_imports(root: Path, modules: Mapping[str, Path], imports: list[Import]) -> dict[str, list[str]]:
    return {
        "layers": layer_violations(imports, root),
        "forbidden": forbidden_imports(imports, root),
        "cycles": [" -> ".join(cycle) for cycle in import_cycles(imports, modules)],
    }


def _report(title: str, problems: list[str]) -> str:
    return f"{title}:\n  " + "\n  ".join(problems)


# --- the rules on this repository ----------------------------------------------------------------


@pytest.fixture(scope="module")
def repo_walk() -> tuple[dict[str, Path], list[Import]]:
    """The repository parsed once for all tests in this file (about a megabyte of source)."""
    modules = discover(REPO)
    return modules, collect_imports(modules)


@pytest.fixture(scope="module")
def repo_check(repo_walk) -> dict[str, list[str]]:
    return check_imports(REPO, *repo_walk)


def test_the_walk_sees_the_code_base(repo_walk):
    """Guards the checker against a silent pass: it must find every layer and plenty of first-party imports."""
    modules, imports = repo_walk
    for layer in LAYERS:
        assert any(_top(name) == layer for name in modules), f"no module found for layer {layer}"
    first_party = [imp for imp in imports if _top(imp.imported) in FIRST_PARTY]
    assert len(first_party) > 50, f"only {len(first_party)} first-party imports found"


def test_imports_follow_the_layers(repo_check):
    """data_contracts <- models <- assets <- pipelines, function-level and TYPE_CHECKING imports included."""
    assert not repo_check["layers"], _report("imports against the layer order", repo_check["layers"])


def test_no_import_cycles(repo_check):
    assert not repo_check["cycles"], _report("import cycles between first-party modules", repo_check["cycles"])


def test_models_and_contracts_run_without_dagster_or_duckdb(repo_check):
    assert not repo_check["forbidden"], _report(
        "dagster/duckdb imports in models/data_contracts", repo_check["forbidden"]
    )


# --- the checker on synthetic trees --------------------------------------------------------------


def _tree(root: Path, files: Mapping[str, str]) -> Path:
    """Writes a minimal first-party tree: every layer package exists, plus the given files."""
    for package in LAYERS:
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").touch()
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return root


CLEAN = {
    "data_contracts/tables.py": "import polars as pl\n",
    "models/score.py": "from data_contracts.tables import pl\nfrom . import helpers\n",
    "models/helpers.py": "import math\n",
    "assets/core/__init__.py": "",
    "assets/core/build.py": "import dagster\nfrom models import score\nfrom ..common import io\n",
    "assets/common/__init__.py": "",
    "assets/common/io.py": "import duckdb\nfrom data_contracts.tables import pl\n",
    "pipelines/defs.py": "from assets.core import build\nfrom models.score import helpers\n",
    "tests/test_x.py": "from pipelines.defs import build\n",
    "benchmarks/run.py": "import tests.test_x\n",
}


def test_checker_passes_a_clean_tree(tmp_path):
    assert check(_tree(tmp_path, CLEAN)) == {"layers": [], "forbidden": [], "cycles": []}


def test_checker_resolves_relative_imports(tmp_path):
    root = _tree(tmp_path, CLEAN)
    imports = {(imp.importer, imp.imported) for imp in collect_imports(discover(root))}
    assert ("assets.core.build", "assets.common.io") in imports
    assert ("models.score", "models.helpers") in imports
    assert ("pipelines.defs", "models.score") in imports  # `helpers` is an attribute there, not a module


def test_checker_catches_an_upward_import_inside_a_function(tmp_path):
    root = _tree(
        tmp_path,
        {
            **CLEAN,
            "assets/common/io.py": """\
                def erase():
                    from pipelines.defs import build  # the lazy upward arrow
                    return build
                """,
        },
    )
    problems = check(root)
    assert problems["layers"] == [
        "assets.common.io (assets/common/io.py:2) imports pipelines.defs: assets may import only "
        "data_contracts, models, assets"
    ]
    assert problems["cycles"] == []  # function-level: not a module-level cycle


def test_checker_counts_type_checking_imports(tmp_path):
    root = _tree(
        tmp_path,
        {
            **CLEAN,
            "data_contracts/tables.py": """\
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from models.score import Score
                """,
        },
    )
    assert check(root)["layers"] == [
        "data_contracts.tables (data_contracts/tables.py:3) imports models.score: data_contracts may import only "
        "data_contracts"
    ]


def test_checker_catches_dynamic_upward_imports(tmp_path):
    root = _tree(
        tmp_path,
        {**CLEAN, "data_contracts/tables.py": "import importlib\nx = importlib.import_module('models.score')\n"},
    )
    assert check(root)["layers"] == [
        "data_contracts.tables (data_contracts/tables.py:2) imports models.score: data_contracts may import only "
        "data_contracts"
    ]


def test_checker_rejects_relative_imports_above_the_top_level(tmp_path):
    """Relative imports cannot cross top-level packages (Python refuses them), so the checker refuses too."""
    root = _tree(tmp_path, {**CLEAN, "models/helpers.py": "from ..assets.core import build\n"})
    with pytest.raises(ValueError, match="beyond the top-level package in models.helpers"):
        check(root)


def test_checker_forbids_layers_importing_tests(tmp_path):
    root = _tree(tmp_path, {**CLEAN, "assets/core/build.py": "from tests.test_x import build\n"})
    assert check(root)["layers"] == [
        "assets.core.build (assets/core/build.py:1) imports tests.test_x: assets must not import tests"
    ]


def test_checker_catches_dagster_and_duckdb_in_pure_layers(tmp_path):
    root = _tree(
        tmp_path,
        {
            **CLEAN,
            "models/helpers.py": "def f():\n    import duckdb\n",
            "data_contracts/tables.py": "from dagster_pipes import open_dagster_pipes\nimport dagsterish\n",
        },
    )
    assert check(root)["forbidden"] == [
        "data_contracts.tables (data_contracts/tables.py:1) imports dagster_pipes.open_dagster_pipes: "
        "data_contracts must not import dagster_pipes",
        "models.helpers (models/helpers.py:2) imports duckdb: models must not import duckdb",
    ]


def test_checker_names_a_package_that_imports_its_own_module(tmp_path):
    root = _tree(
        tmp_path,
        {
            **CLEAN,
            "assets/core/__init__.py": "from assets.core import build\n",
            "assets/core/build.py": "from assets.core import helpers\n",
            "assets/core/helpers.py": "",
        },
    )
    assert check(root)["cycles"] == ["assets.core -> assets.core.build -> assets.core"]


def test_checker_names_a_cycle(tmp_path):
    root = _tree(
        tmp_path,
        {
            **CLEAN,
            "assets/common/io.py": "from assets.core import build\n",  # build imports ..common.io
            "models/helpers.py": "import models.score\n",  # score imports .helpers
        },
    )
    assert check(root)["cycles"] == [
        "assets.common.io -> assets.core.build -> assets.common.io",
        "models.helpers -> models.score -> models.helpers",
    ]


def test_checker_counts_type_checking_imports_in_cycles(tmp_path):
    root = _tree(
        tmp_path,
        {
            **CLEAN,
            "models/helpers.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .score import x\n",
        },
    )
    assert check(root)["cycles"] == ["models.helpers -> models.score -> models.helpers"]


def test_checker_names_a_longer_cycle(tmp_path):
    root = _tree(
        tmp_path,
        {
            "models/a.py": "from models import b\n",
            "models/b.py": "from models.c import thing\n",
            "models/c.py": "class Thing:\n    from models.a import x\n",  # class bodies run at import
        },
    )
    assert check(root)["cycles"] == ["models.a -> models.b -> models.c -> models.a"]
