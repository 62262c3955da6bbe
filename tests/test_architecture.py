"""The package's layout: no import circle, no reaching into another package's private parts.

Read from the source with `ast`, nothing imported. Every `import` and
`from ... import` counts, at module level or inside a function.

The import graph: one node per module of `keras_robust` (a package is its
`__init__`). An import of a dotted name is an edge to the longest module that
names: `from keras_robust import data` is an edge to `keras_robust.data`,
`from keras_robust.attacks import pgd` to `keras_robust.attacks.pgd`,
`from keras_robust.attacks import Ensemble` to `keras_robust.attacks` (the
package's `__init__`). Python also runs the parents' `__init__` when it loads
a module, so importing `keras_robust.defenses.base` from outside
`keras_robust.defenses` is an edge to `keras_robust.defenses` as well (the
implicit edge to the parent package). A module's own packages are loading
already when it runs, so an import inside one's own package adds no such
edge (a package's `__init__` re-exporting its own submodules is no circle),
and neither does the root `keras_robust`. A circle is a strongly connected
set of two or more modules: `keras_robust.defenses` re-exporting
`keras_robust.bat.model.BATModel`, whose module imports
`keras_robust.defenses.base`, would be one (`bat.model` -> `defenses` ->
`bat.model`), which only an import order could make work.

Each paper is one package (`PAPERS`); no other module imports it but the public
faces (`FACES`) that re-export its names.

Private parts: a module with a leading underscore (`keras_robust.corruptions._checks`)
belongs to its package and the package's subpackages (so every module of the
library may use `keras_robust._validation`); an underscore name of a module
(`keras_robust.data._augment`, imported or read as an attribute of an imported
module) belongs to that module's package only, not its subpackages. Nothing in
`examples/`, `bench/` or `tests/` may use either, except the files listed in
`ALLOWED` below.
"""
from __future__ import annotations

import ast
import os
from typing import Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTSIDE = ("examples", "bench", "tests")

# Ground-floor modules: any module may import them, they import nothing of the package
# but `keras_robust._validation`.
GROUND_FLOOR = ("keras_robust._io", "keras_robust._labels", "keras_robust._random", "keras_robust._startup",
                "keras_robust.progress")

# One package per paper; the rest of the library is shared and imports none of them,
# except the public faces that re-export the papers' names.
PAPERS = ("keras_robust.afs", "keras_robust.bat", "keras_robust.bpfc", "keras_robust.datacentric",
          "keras_robust.gradalign", "keras_robust.mtlat", "keras_robust.smoothing")
FACES = ("keras_robust", "keras_robust.layers", "keras_robust.losses",
         "keras_robust.quantization")

# (importer, private module or name) pairs allowed for now.
ALLOWED = {
    # Tests of a private module or name itself.
    ("tests/test_keras_compat.py", "keras_robust._keras_compat"),
    ("tests/test_random.py", "keras_robust._random"),
    ("tests/corruptions/test_corruptions.py", "keras_robust.corruptions._imgaug"),
    ("tests/attacks/test_fab.py", "keras_robust.attacks.fab._project"),
    ("tests/evaluate/test_report.py", "keras_robust.evaluate.report._Progress"),
    ("tests/evaluate/test_report.py", "keras_robust.evaluate.report._Runner"),
}


def _files(folder: str) -> Iterator[str]:
    for directory, _, names in sorted(os.walk(os.path.join(ROOT, folder))):
        for name in sorted(names):
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def package_modules(root: str = ROOT) -> dict[str, str]:
    """Module name -> file of every module of the `keras_robust` package under `root`."""
    modules = {}
    for directory, _, names in sorted(os.walk(os.path.join(root, "keras_robust"))):
        for file_name in sorted(names):
            if file_name.endswith(".py"):
                path = os.path.join(directory, file_name)
                name = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                modules[name.removesuffix(".__init__")] = path
    return modules


MODULES = package_modules()


def _package_of(module: str) -> str:
    """The package a module belongs to (a package's `__init__` belongs to the package itself)."""
    return module if MODULES[module].endswith("__init__.py") else module.rpartition(".")[0]


def _longest_module(dotted: str) -> str:
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted


def imported_names(path: str, module: str | None) -> Iterator[tuple[str, int]]:
    """(dotted name, line) of every `keras_robust` name a file imports or reads off an
    imported module (`data._augment` after `from keras_robust import data`)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = _package_of(module) if module else ""
    bound: dict[str, str] = {}  # local name -> the keras_robust module it names
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("keras_robust"):
                    yield alias.name, node.lineno
                    local = alias.asname or alias.name.split(".")[0]
                    bound[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package
                for _ in range(node.level - 1):
                    parent = parent.rpartition(".")[0]
                base = f"{parent}.{base}" if base else parent
            if not base.startswith("keras_robust"):
                continue
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno
                if f"{base}.{alias.name}" in MODULES:
                    bound[alias.asname or alias.name] = f"{base}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in bound:
                yield ".".join([bound[value.id], *chain]), node.lineno


def _parents(module: str) -> list[str]:
    """The packages above `module`, nearest first (`a.b.c` -> `a.b`, `a`)."""
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(len(parts) - 1, 0, -1)]


def import_graph(modules: dict[str, str] | None = None) -> dict[str, set[str]]:
    """Module -> the modules it imports (see the module docstring for what counts).

    `modules` (name -> file) defaults to the package's own (`MODULES`).
    """
    global MODULES
    saved, MODULES = MODULES, MODULES if modules is None else modules
    try:
        graph = {}
        for module, path in MODULES.items():
            targets = {_longest_module(name) for name, _ in imported_names(path, module)}
            own = {module, *_parents(module)}
            implicit = {parent for target in targets if target for parent in _parents(target)
                        if parent in MODULES and parent not in own}
            graph[module] = {target for target in targets | implicit if target and target not in own}
        return graph
    finally:
        MODULES = saved


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected sets of two or more nodes (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def private_uses() -> list[tuple[str, str, int]]:
    """(importer, private module or name, line) of every use the rules forbid."""
    files = [(module, path) for module, path in MODULES.items()]
    files += [(os.path.relpath(path, ROOT), path) for folder in OUTSIDE for path in _files(folder)]
    found = set()
    for importer, path in files:
        inside = importer in MODULES
        for name, line in imported_names(path, importer if inside else None):
            target = _longest_module(name)
            if not target:
                continue
            parts = target.split(".")
            private = next((i for i, part in enumerate(parts) if part.startswith("_")
                            and not part.startswith("__")), None)
            if private is not None:
                owner = ".".join(parts[:private])
                if not (inside and (importer == owner or importer.startswith(owner + "."))):
                    found.add((importer, target, line))
                continue
            rest = name[len(target) + 1:].split(".")[0] if name != target else ""
            if rest.startswith("_") and not rest.startswith("__"):
                if not (inside and _package_of(importer) == _package_of(target)):
                    found.add((importer, f"{target}.{rest}", line))
    return sorted(found)


def test_the_cycle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_level_imports_and_package_faces():
    graph = import_graph()
    # `train_surrogates` imports RobustModel inside the function.
    assert "keras_robust.defenses.base" in graph["keras_robust.datacentric.surrogates"]
    assert "keras_robust.attacks.pgd" in graph["keras_robust.attacks"]
    assert "keras_robust" not in set().union(*graph.values())


def test_the_graph_counts_the_implicit_edge_to_a_parent_package(tmp_path):
    # A planted circle that only the implicit edge closes: the face `shared` re-exports
    # `paper.model`, which imports `shared.base` (and so runs `shared/__init__`).
    files = {
        "keras_robust/__init__.py": "",
        "keras_robust/shared/__init__.py": "from keras_robust.paper.model import Model\n",
        "keras_robust/shared/base.py": "from keras_robust import _validation\n",
        "keras_robust/_validation.py": "",
        "keras_robust/paper/__init__.py": "from keras_robust.paper.model import Model\n",
        "keras_robust/paper/model.py": "from keras_robust.shared.base import Base\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(package_modules(str(tmp_path)))
    assert graph["keras_robust.paper.model"] == {"keras_robust.shared.base", "keras_robust.shared"}
    assert graph["keras_robust.paper"] == {"keras_robust.paper.model"}  # its own: no parent edge
    assert graph["keras_robust.shared.base"] == {"keras_robust._validation"}  # never the root
    # `shared` -> `paper.model` (and the implicit `paper`) -> `shared`.
    assert find_cycles(graph) == [["keras_robust.paper", "keras_robust.paper.model", "keras_robust.shared"]]


def test_no_import_circle_between_the_package_modules():
    cycles = find_cycles(import_graph())
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_ground_floor_imports_nothing_of_the_package_but_validation():
    graph = import_graph()
    for module in GROUND_FLOOR:
        assert graph[module] <= {"keras_robust._validation"}, (module, graph[module])


def test_nothing_in_the_package_imports_the_examples_recipes():
    graph = import_graph()
    importers = sorted(m for m, targets in graph.items() if "keras_robust.experiment" in targets)
    assert importers == ["keras_robust"], importers  # the package face re-exports it, no one else


def _paper_of(module: str) -> str | None:
    return next((p for p in PAPERS if module == p or module.startswith(p + ".")), None)


def test_each_paper_is_one_package_and_the_shared_code_imports_none():
    wrong = []
    for module, targets in import_graph().items():
        if module in FACES:
            continue
        for target in targets:
            paper = _paper_of(target)
            if paper and paper != _paper_of(module):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_module_uses_another_package_private_modules_or_names():
    uses = private_uses()
    forbidden = [f"{importer}:{line} uses {name}" for importer, name, line in uses
                 if (importer, name) not in ALLOWED]
    assert not forbidden, "\n".join(forbidden)
