"""Reading a module's imports from its source (for the layout tests): every import, as absolute module names."""

from __future__ import annotations

import ast


def imported_modules(
    source: str, package: list[str], *, runtime_only: bool = False
) -> list[tuple[int, str, list[str]]]:
    """Every import in `source`, a module of `package` (top level and in functions; under `if TYPE_CHECKING:` too
    unless `runtime_only`): (line, absolute module, imported names)."""
    tree = ast.parse(source)
    hidden: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                hidden.update(id(inner) for inner in ast.walk(node))
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module, [alias.name for alias in node.names]))
    return found
