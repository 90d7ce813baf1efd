"""Static checks that keep the codebase honest: layers, types, lint."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
ADAPTERS = {"cli.py", "cli_common.py", "cli_governance.py", "cli_reviews.py", "cli_models.py",
            "cli_evidence.py", "cli_export.py", "__main__.py"}
# nbgov.load_ipython_extension is the one extension entry point; it imports nbgov.magics lazily.
ENTRY_POINT = "__init__.py"
FORBIDDEN_IN_CORE = ("IPython", "ipywidgets", "nbgov.magics", "nbgov.widgets")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "nbgov").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT / "nbgov")))
def test_the_core_never_imports_notebook_adapters(path: Path) -> None:
    imported = _imports(path)
    bad = {name for name in imported for root in FORBIDDEN_IN_CORE if name == root or name.startswith(root + ".")}
    if path.name in ADAPTERS or path.name == ENTRY_POINT:
        bad -= {"nbgov.magics", "nbgov.widgets"}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_core_modules_do_not_import_the_cli() -> None:
    for path in (ROOT / "nbgov").rglob("*.py"):
        if path.name not in ADAPTERS:
            cli = {name for name in _imports(path) if name == "nbgov.cli" or name.startswith("nbgov.cli_")}
            assert not cli, f"{path.name} imports {sorted(cli)}"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


@pytest.mark.slow
def test_mypy_strict() -> None:
    result = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_ruff() -> None:
    result = subprocess.run([_tool("ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_python_version_matches_the_project() -> None:
    assert sys.version_info >= (3, 11)
