"""The packages' dependency rule: each imports only the layers below it.

video_processor (stage logic) < blocks (configuration) < flows < sensors, workers,
operations (none of these three imports another). Nothing in the product imports the
tooling (local_stack, bench). Imports inside functions and under TYPE_CHECKING count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLING = {"local_stack", "bench"}
TOP = {"sensors", "workers", "operations"}
NOT_IMPORTED_BY = {
    "video_processor": TOP | TOOLING | {"flows", "blocks"},
    "blocks": TOP | TOOLING | {"flows"},
    "flows": TOP | TOOLING,
    **{package: TOP - {package} | TOOLING for package in TOP},
}


def imported_modules(source: str) -> set[str]:
    """Every absolute module name the source imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def forbidden_imports(package: str) -> list[str]:
    banned = NOT_IMPORTED_BY[package]
    return [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in sorted(imported_modules(path.read_text()))
        if module.split(".")[0] in banned
    ]


@pytest.mark.parametrize("package", sorted(NOT_IMPORTED_BY))
def test_package_imports_nothing_above_it(package: str):
    assert forbidden_imports(package) == []


def test_imports_are_found_in_functions_and_type_checking_blocks():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from flows.runs import Routes\n"
        "def f():\n    import sensors.health\n    from . import sibling\n"
    )
    assert imported_modules(source) == {"typing", "flows.runs", "sensors.health"}
