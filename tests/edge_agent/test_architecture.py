"""The agent's modules import each other without circles (edge_agent.agent sits above its parts)."""

from __future__ import annotations


def _circles(graph: object, package: str) -> list[list[str]]:
    """Strongly connected groups of more than one module among ``package``'s modules (Tarjan)."""
    modules = sorted(m for m in graph.modules if m.startswith(package))  # type: ignore[attr-defined]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph.find_modules_directly_imported_by(module):  # type: ignore[attr-defined]
            if not imported.startswith(package):
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return circles


def test_no_module_of_the_agent_imports_one_that_imports_it_back() -> None:
    import grimp

    graph = grimp.build_graph("edge_agent")
    assert _circles(graph, "edge_agent") == []
    graph.add_import(importer="edge_agent.slots", imported="edge_agent.agent")  # the circle there was
    assert ["edge_agent.agent", "edge_agent.slots"] in _circles(graph, "edge_agent")
