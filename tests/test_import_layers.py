"""The reference layer's floors hold: no import cycle among plada_codec's modules, and each
floor imports only the floors below it (CONTRIBUTING.md's layer map)."""

from __future__ import annotations

import ast

from tests.helpers import REPO

ROOT = REPO / "plada_codec"


def module_graph() -> dict[str, set[str]]:
    """module -> the plada_codec modules it imports (relative imports, at any depth of the file)."""
    mods = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = base + ("." + node.module if node.module else "")
            submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in mods]
            for found in submodules or ([target] if target in mods else []):
                if found != module and found != "plada_codec":  # the package root is imported first anyway
                    graph[module].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    assert cycles(module_graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_floors_of_the_reference_layer():
    graph = module_graph()
    ids, kinds = "plada_codec._ids", [m for m in graph if m.startswith("plada_codec.kinds")]
    assert not {m for m in graph[ids] if m.startswith("plada_codec.")} - {"plada_codec._errors"}
    for module in kinds:  # layouts know the id rules and the codec's ground floor, never what is above them
        above = {m for m in graph[module] if m.startswith(("plada_codec._reference", "plada_codec._catalog",
                                                           "plada_codec.cli", "plada_codec.export"))}
        assert not above, (module, above)
    for module in [m for m in graph if m.startswith("plada_codec._reference")]:
        assert "plada_codec._catalog" not in graph[module], module
