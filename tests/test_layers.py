"""The package's shape stays as docs/architecture.md draws it: layers import downwards only, running a
model never imports training, and there are no import circles (lazy imports inside functions count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "impasto"

#: lowest first; a module may import its own layer and the ones below it, never one above
LAYERS: list[set[str]] = [
    {"errors", "progress"},
    {"io", "device", "color", "guided", "bundled", "lbfgs", "options", "paths"},
    {"features", "losses", "tiling", "sheet"},
    {"calibrate", "models", "metrics"},
    {"optimize", "methods", "translate", "generate", "video", "report", "export"},
    {"stylizer"},
    {"compare", "train", "web", "feedback"},
    {"cli", "__main__"},
]
#: what only these may import (besides themselves): inference is a lower layer than training
ONLY_FROM = {"train": {"train", "cli"}, "cli": {"cli", "__main__"}, "web": {"web", "cli"}}


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every ``impasto.*`` module ``source`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("impasto")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name.startswith("impasto"):
                if name != "impasto":  # `from impasto import io` imports impasto.io, not a layer of its own
                    found.add(name)
                found |= {f"{name}.{a.name}" for a in node.names}  # `from impasto.models import files`
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        raw = imports_of(path.read_text(), name, path.name == "__init__.py")
        graph[name] = {m for m in raw if m in modules and m != name}
    return graph


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "impasto"


def _layer(module: str) -> int:
    top = _top(module)
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"{module}: not placed in a layer; add it to LAYERS in tests/test_layers.py")


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in graph.items():
        if module == "impasto":
            continue
        for target in targets:
            if target == "impasto":
                found.append(f"{module} imports the package root")
                continue
            owner = _top(target)
            if owner in ONLY_FROM and _top(module) not in ONLY_FROM[owner]:
                found.append(f"{module} imports {target} (only {sorted(ONLY_FROM[owner])} may)")
            elif _layer(target) > _layer(module):
                found.append(f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)}), above it")
    return sorted(found)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import circles (strongly connected groups of more than one module, or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_imports_only_its_own_layer_or_below():
    assert violations(import_graph()) == []


def test_nothing_that_runs_a_model_imports_training():
    graph = import_graph()
    runners = ["impasto.methods", "impasto.translate", "impasto.generate", "impasto.video", "impasto.export",
               "impasto.stylizer", "impasto.web.app", "impasto.web.jobs"]
    for module in runners:
        reached, todo = set(), [module]
        while todo:  # everything it imports, directly or not
            for target in graph.get(todo.pop(), ()):
                if target not in reached:
                    reached.add(target)
                    todo.append(target)
        assert not [m for m in reached if m.startswith("impasto.train")], module


def test_there_are_no_import_circles():
    assert cycles(import_graph()) == []


def test_the_checker_catches_a_planted_wrong_import(tmp_path):
    """The checks above can fail: a model module that imports a trainer, and a circle, are reported."""
    pkg = tmp_path / "impasto"
    (pkg / "models").mkdir(parents=True)
    (pkg / "train").mkdir()
    for init in (pkg, pkg / "models", pkg / "train"):
        (init / "__init__.py").write_text("")
    (pkg / "models" / "net.py").write_text("def load():\n    from impasto.train.recipe import KIND\n")
    (pkg / "train" / "recipe.py").write_text("from impasto.models.net import load\nKIND = 'x'\n")
    graph = import_graph(pkg)
    assert any("impasto.models.net imports impasto.train.recipe" in v for v in violations(graph))
    assert cycles(graph) == [["impasto.models.net", "impasto.train.recipe"]]


@pytest.mark.parametrize("limit", [60])
def test_no_function_is_longer_than_the_limit(limit):
    """Long functions are where several jobs hide; split them (docs/architecture.md)."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > limit:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def test_no_function_takes_more_than_eight_parameters():
    """Pass a request or an options object instead of a long list (keyword-only options of the public
    engine entry points are the documented exception: they are the Python API's options)."""
    allowed: set[str] = set()
    wide = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name not in allowed:
                a = node.args
                n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) - (1 if a.args and a.args[0].arg in (
                    "self", "cls") else 0)
                if n > 8:
                    wide.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({n} parameters)")
    assert wide == []
