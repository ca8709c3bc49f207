"""Dependencies point one way (docs/architecture.md, "Layers"): each package imports only
the packages below it, so the core never learns of the web layer and a lower layer can
be read, tested and changed without the ones above."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each package, lowest first, with the project packages it may import besides itself.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "models": frozenset({"core"}),
    "schemas": frozenset({"core"}),
    "store": frozenset({"core", "models", "schemas"}),
    "services": frozenset({"core", "models", "schemas", "store"}),
    "handlers": frozenset({"core", "models", "schemas", "services"}),
    "tasks": frozenset({"core", "models", "schemas", "services"}),
    "app": frozenset({"core", "models", "schemas", "store", "services", "handlers", "tasks"}),
}


def project_imports(path: Path) -> set[str]:
    """The project packages a module imports, at its top or inside a function."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        imported |= {name.split(".")[0] for name in names} & MAY_IMPORT.keys()
    return imported


@pytest.mark.parametrize("package", list(MAY_IMPORT))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(found - MAY_IMPORT[package] - {package})
        for path in sorted((ROOT / package).rglob("*.py"))
        if (found := project_imports(path)) - MAY_IMPORT[package] - {package}
    }
    assert wrong == {}


def test_the_check_sees_an_import_from_a_layer_above(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("def late():\n    from handlers.base import BaseHandler\n")
    assert project_imports(module) == {"handlers"}
