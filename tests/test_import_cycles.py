"""No import cycles between Continuity's modules: the import graph (every import, at the top of a module or inside
a function; only `if TYPE_CHECKING:` blocks are left out, they never run) has no strongly connected component
bigger than one module."""

from __future__ import annotations

from pathlib import Path

from tests._imports import imported_modules

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("watchdog", "worker", "devtools")  # top-level folders, each the package continuity.<folder>


def _modules(root: Path, folders: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under root/<folder> (a package's own name for __init__.py)."""
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            parts = ["continuity", folder, *path.relative_to(root / folder).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the modules of `modules` it imports at run time. `from pkg import name` counts as importing
    pkg.name when that is a module (else pkg itself)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps: set[str] = set()
        for _line, module, names in imported_modules(path.read_text(encoding="utf-8"), package, runtime_only=True):
            subs = [f"{module}.{alias}" for alias in names if f"{module}.{alias}" in modules]
            targets = subs if names and len(subs) == len(names) else [module, *subs]
            deps.update(target for target in targets if target in modules and target != name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    """No two of Continuity's modules import each other, directly or through others (function-level imports too)."""
    folders = tuple(folder for folder in PACKAGES if (REPO / folder).is_dir())
    graph = import_graph(_modules(REPO, folders))
    assert len(graph) > 100  # the walk saw the tree
    found = cycles(graph)
    described = [
        " -> ".join(c) + "  edges: " + "; ".join(f"{a}->{b}" for a in c for b in graph[a] & set(c)) for c in found
    ]
    assert found == [], "\n".join(described)


def test_the_walk_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    """A cycle closed by an import inside a function (and by a relative `from . import x`) is found; an import
    under `if TYPE_CHECKING:` is not an edge."""
    pkg = tmp_path / "watchdog"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .c import x\n    return x\n")
    (pkg / "c.py").write_text("from continuity.watchdog.a import y\nx = 1\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .e import z\n")
    (pkg / "e.py").write_text("from .d import w\n")
    graph = import_graph(_modules(tmp_path, ("watchdog",)))
    assert cycles(graph) == [["continuity.watchdog.a", "continuity.watchdog.b", "continuity.watchdog.c"]]
