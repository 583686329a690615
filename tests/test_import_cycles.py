"""No module of ours imports, through any chain, a module that imports it back.

`make lint`'s import-linter contracts forbid cycles between the siblings of a package; this covers the rest,
cycles that cross the three packages (`dispatcher` → `tasks` → `dispatcher`), imports inside functions
included, as grimp (import-linter's graph) reads them.
"""

import grimp


def closing_imports(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """Every import `a → b` where `b` leads back to `a` by some chain: the imports that close a cycle."""
    return sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    )


def test_the_project_has_no_import_cycle():
    assert closing_imports(grimp.build_graph("dispatcher", "tasks", "providers")) == []


def test_a_cycle_is_found():
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c", "d"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    graph.add_import(importer="c", imported="d")
    assert closing_imports(graph) == [("a", "b"), ("b", "c"), ("c", "a")]
