"""The layout keeps its shape: no import cycle in the package, the devices' code free of the
command, the core free of everything but the standard library (docs/architecture.md).
The import graph is grimp's (the library behind import-linter), type-checking imports aside."""

from __future__ import annotations

import grimp
import pytest

PACKAGES = ("queue_engine", "window_agents")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)


def cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in edges.get(module, ()):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in edges:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle(graph):
    found = cycles(graph)
    chains = [graph.find_shortest_chain(importer=c[0], imported=c[1]) for c in found]
    assert found == [], f"import cycles: {found}; e.g. {chains}"


def test_the_cycle_finder_finds_a_cycle():
    class Two:
        modules = {"a", "b", "c"}

        def find_modules_directly_imported_by(self, module):
            return {"a": {"b"}, "b": {"a", "c"}, "c": set()}[module]

    assert cycles(Two()) == [["a", "b"]]


def test_the_device_agents_import_nothing_of_the_command(graph):
    importers = graph.find_modules_that_directly_import("queue_engine.cli")
    for module in graph.find_children("queue_engine.cli"):
        importers |= graph.find_modules_that_directly_import(module)
    assert sorted(m for m in importers if m.startswith("window_agents")) == []


def test_the_core_imports_only_the_core(graph):
    core = {"queue_engine.core"} | graph.find_descendants("queue_engine.core")
    outside = {
        (module, imported)
        for module in core
        for imported in graph.find_modules_directly_imported_by(module)
        if imported not in core
    }
    assert outside == set()
